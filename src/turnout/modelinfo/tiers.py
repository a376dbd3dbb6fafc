"""Cost tiers from prices (USD per 1M tokens)."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

LOW_BELOW = Decimal(1)
STANDARD_BELOW = Decimal(10)


def blended_price(pricing_input: Decimal | None, pricing_output: Decimal | None) -> Decimal | None:
    """The 3:1 input:output blend ``(3*in + out) / 4``, the usual mix of chat traffic.

    With only one price known (e.g. embeddings, which bill input only) that price is the blend;
    with neither known, or a negative price, the result is ``None``.
    """
    if pricing_input is None or pricing_output is None:
        known = pricing_output if pricing_input is None else pricing_input
        return None if known is None or known < 0 else known
    if pricing_input < 0 or pricing_output < 0:
        return None
    return (3 * pricing_input + pricing_output) / 4


@lru_cache(maxsize=8192)  # syncs see the same few price points over and over
def cost_tier_for(pricing_input: Decimal | None, pricing_output: Decimal | None) -> str:
    """Cost tier of a model from its per-1M-token prices.

    On the blended price ``(3*in + out) / 4`` (see :func:`blended_price`):

    * ``"free"``: every known price is zero;
    * ``"low"``: blend < $1 per 1M tokens;
    * ``"standard"``: blend < $10 per 1M tokens, and whenever the price is unknown;
    * ``"premium"``: blend >= $10 per 1M tokens.
    """
    blend = blended_price(pricing_input, pricing_output)
    if blend is None:
        return "standard"
    if blend == 0:
        return "free"
    if blend < LOW_BELOW:
        return "low"
    if blend < STANDARD_BELOW:
        return "standard"
    return "premium"
