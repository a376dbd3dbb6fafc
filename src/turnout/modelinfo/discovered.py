"""Normalized model records found at a provider, and the vocabulary they use.

This module is the one home of the capability, cost-tier and model-type names (the provider-type
names are the registered specs': ``turnout.providers.registry.PROVIDER_TYPES``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from turnout.modelinfo.tiers import cost_tier_for

CAPABILITIES: tuple[str, ...] = ("text", "vision", "code", "audio", "long_context", "function_calling")
COST_TIERS: tuple[str, ...] = ("free", "low", "standard", "premium")
MODEL_TYPES: tuple[str, ...] = ("chat", "embedding")

_BIT = {name: 1 << i for i, name in enumerate(CAPABILITIES)}


class UnexpectedPayload(ValueError):
    """A provider's answer does not have the shape its wire format promises."""


@dataclass(frozen=True, slots=True)
class DiscoveredModel:
    """One model as a provider reports it, normalized.

    Prices are USD per 1M tokens (``None`` when unknown); ``metadata`` is the raw provider entry.
    """

    external_id: str
    display_name: str
    model_type: str
    capabilities: tuple[str, ...]
    ctx_length: int | None
    pricing_input: Decimal | None
    pricing_output: Decimal | None
    pricing_cache_read: Decimal | None = None  # cached-prompt reads, USD per 1M tokens
    pricing_cache_write: Decimal | None = None  # prompt-cache writes
    metadata: dict[str, Any] = field(default_factory=dict, hash=False)
    cost_tier: str = field(init=False)  # from the prices, always (cost_tier_for)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cost_tier", cost_tier_for(self.pricing_input, self.pricing_output))


def capability_mask(caps: Iterable[str]) -> int:
    """Bit ``i`` set for ``CAPABILITIES[i]``; raises ``ValueError`` on an unknown name."""
    mask = 0
    for cap in caps:
        try:
            mask |= _BIT[cap]
        except KeyError:
            expected = ", ".join(CAPABILITIES)
            raise ValueError(f"unknown capability {cap!r}; expected one of {expected}") from None
    return mask


def capabilities_from_mask(mask: int) -> tuple[str, ...]:
    """Inverse of :func:`capability_mask`, in ``CAPABILITIES`` order."""
    return tuple(name for name, bit in _BIT.items() if mask & bit)


def ordered_capabilities(caps: Iterable[str]) -> tuple[str, ...]:
    """Deduplicate and order capability names as in ``CAPABILITIES`` (unknown names raise)."""
    return capabilities_from_mask(capability_mask(caps))
