"""What one call's usage costs at its model's catalog prices.

Usage follows OpenAI's convention (Anthropic's is translated to it): ``prompt_tokens`` includes the
cached-read tokens (``prompt_tokens_details.cached_tokens``) and the cache writes (Turnout's
``prompt_tokens_details.cache_creation_tokens``), and ``completion_tokens`` includes the reasoning
tokens (``completion_tokens_details.reasoning_tokens``). So cached tokens are priced at the cache
prices *instead of* the input price, and reasoning tokens at the output price (no catalog lists a
separate reasoning price).

A price the catalog lacks is stood in for, and the cost then says it is an estimate: a missing
cache price by the input price (what the tokens would have cost uncached), a missing output price
by 0. With no input price there is nothing to stand on: the cost is unknown (``None``).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, NamedTuple

from turnout.domain.snapshot import ModelEntry

PER_MTOK = Decimal(1_000_000)
QUANTUM = Decimal("0.00000001")  # messages.cost_usd is NUMERIC(18, 8)


def format_usd(amount: float | Decimal) -> str:
    """Money as people read it: cents from a dollar up ($1,234.57), below it every digit a record
    keeps, cents at least ($0.50, $0.016443), so a sub-cent spend never reads as $0.00."""
    if amount >= 1 or amount <= -1:
        return f"${amount:,.2f}"
    whole, _, fraction = f"{amount:.8f}".rstrip("0").partition(".")
    return f"${whole}.{fraction.ljust(2, '0')}"


def token_count(value: Any) -> int | None:
    """A usage's token count as reported, or None when the value is not one (text, a bool, < 0):
    what records keep, and what pricing counts (as 0)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _count(value: Any) -> int:
    return token_count(value) or 0


class TokenCounts(NamedTuple):
    """A usage's token counts, each part of the one before it as OpenAI counts them (a tuple: a
    frozen dataclass takes 3x as long to build, on every call)."""

    prompt: int = 0
    completion: int = 0
    cached: int = 0  # cache reads, part of prompt
    cache_write: int = 0  # cache writes, part of prompt
    reasoning: int = 0  # part of completion

    @classmethod
    def of(cls, usage: Mapping[str, Any] | None) -> TokenCounts:
        """The counts of an OpenAI-shaped ``usage`` (missing or odd values count 0)."""
        if not usage:
            return cls()
        prompt_details = usage.get("prompt_tokens_details")
        prompt_details = prompt_details if isinstance(prompt_details, Mapping) else {}
        completion_details = usage.get("completion_tokens_details")
        completion_details = completion_details if isinstance(completion_details, Mapping) else {}
        return cls(
            _count(usage.get("prompt_tokens")),
            _count(usage.get("completion_tokens")),
            _count(prompt_details.get("cached_tokens")),
            _count(prompt_details.get("cache_creation_tokens")),
            _count(completion_details.get("reasoning_tokens")),
        )


class Cost(NamedTuple):
    """A call's cost in USD (``None``: its model has no input price) and whether it is an estimate."""

    usd: Decimal | None
    estimated: bool


@functools.lru_cache(maxsize=4096)
def _price(value: float) -> Decimal:
    """The price as written (0.15, not 0.1499999...); cached: a catalog has few distinct prices, and
    the conversion is most of a call's pricing time (~2 of 4 us)."""
    return Decimal(repr(value))


def cost_of(model: ModelEntry | None, tokens: TokenCounts, *, usage_estimated: bool = False) -> Cost:
    """``tokens`` at ``model``'s prices (USD per 1M tokens), to the 8 decimals a record keeps."""
    if model is None or model.pricing_input is None:
        return Cost(None, usage_estimated)
    estimated = usage_estimated
    price_in = _price(model.pricing_input)
    price_out = Decimal(0) if model.pricing_output is None else _price(model.pricing_output)
    estimated |= model.pricing_output is None and tokens.completion > 0
    price_read, price_write = price_in, price_in
    if model.pricing_cache_read is not None:
        price_read = _price(model.pricing_cache_read)
    else:
        estimated |= tokens.cached > 0
    if model.pricing_cache_write is not None:
        price_write = _price(model.pricing_cache_write)
    else:
        estimated |= tokens.cache_write > 0
    cached = min(tokens.cached, tokens.prompt)
    written = min(tokens.cache_write, tokens.prompt - cached)
    uncached = tokens.prompt - cached - written
    total = uncached * price_in + cached * price_read + written * price_write + tokens.completion * price_out
    return Cost((total / PER_MTOK).quantize(QUANTUM), estimated)
