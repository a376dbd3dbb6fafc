"""Fill missing prices and context windows from the offline ``genai-prices`` data.

``genai-prices`` matches a model id by trying every model's match rules in order, which takes
hundreds of microseconds per unknown id. A sync may ask for 50,000 ids, so each provider's models
are pre-indexed by the literal strings their rules need (a model can only match an id that
contains one of them); only those few candidates are then checked with ``genai-prices``' own
rules, in its order, so the answer is the same, just faster. Results are cached.

Which genai-prices provider a model is looked up under is part of its provider's spec
(``ProviderSpec.price_id``); ``None`` guesses the provider from the model id.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache, lru_cache
from typing import Any, Generic, TypeVar

from genai_prices import data_snapshot
from genai_prices import types as gp

from turnout.modelinfo.discovered import DiscoveredModel

_normalize_dated: Callable[[str], str] = getattr(gp, "_normalize_compact_dated_ref", lambda ref: ref)
_REGEX_PREFIX = re.compile(r"\^((?:[A-Za-z0-9 _/:@,=-]|\\[.\-/\[\]()])*)")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PriceInfo:
    """Prices in USD per 1M tokens and the context window, each ``None`` when not known."""

    input_per_mtok: Decimal | None
    output_per_mtok: Decimal | None
    context_window: int | None
    source_model: str
    cache_read_per_mtok: Decimal | None = None
    cache_write_per_mtok: Decimal | None = None


def _regex_literal(regex: str) -> str:
    """A literal every match of ``^literal...`` must start with, or "" when there is none to rely on."""
    if "|" in regex:
        return ""
    m = _REGEX_PREFIX.match(regex)
    if m is None:
        return ""
    lit = re.sub(r"\\(.)", r"\1", m.group(1))
    if regex[m.end() : m.end() + 1] in ("?", "*", "{") and lit:
        lit = lit[:-1]  # the last character is optional
    return lit.lower()


_Lit = tuple[str, str]  # (text, where): where is "eq", "start", "end" or "any"
_CLAUSE_ATTRS = (("equals", "eq"), ("starts_with", "start"), ("ends_with", "end"), ("contains", "any"))


def _literals(clause: Any) -> frozenset[_Lit] | None:
    """Literals of which any match must contain one, where stated; ``None``: no such guarantee."""
    for attr, where in _CLAUSE_ATTRS:
        value = getattr(clause, attr, None)
        if isinstance(value, str):
            return frozenset({(value.lower(), where)}) if value else None
    if isinstance(clause, gp.ClauseRegex):
        lit = _regex_literal(clause.regex)
        return frozenset({(lit, "start")}) if lit else None
    if isinstance(clause, gp.ClauseOr):
        parts = [_literals(c) for c in clause.or_]
        if not parts or any(p is None for p in parts):
            return None
        return frozenset().union(*(p for p in parts if p is not None))
    if isinstance(clause, gp.ClauseAnd):
        known = [p for p in (_literals(c) for c in clause.and_) if p is not None]
        return min(known, key=len) if known else None
    return None


class _RuleIndex(Generic[T]):
    """Finds the first ``(rule, value)`` whose rule matches an id, in the given order.

    Literals a match must equal, start or end with are found by slicing the id at each literal
    length (one dict look-up per distinct length); the rare "contains" literals are tested directly.
    """

    def __init__(self, rules: Iterable[tuple[Any, T]]) -> None:
        self.rules = list(rules)
        self.always: list[int] = []
        self.exact: dict[str, list[int]] = {}
        self.prefix: dict[str, list[int]] = {}
        self.suffix: dict[str, list[int]] = {}
        self.contains: list[tuple[str, int]] = []
        for i, (rule, _) in enumerate(self.rules):
            lits = _literals(rule)
            if lits is None:
                self.always.append(i)
            for lit, where in lits or ():
                if where == "any":
                    self.contains.append((lit, i))
                else:
                    table = {"eq": self.exact, "start": self.prefix, "end": self.suffix}[where]
                    table.setdefault(lit, []).append(i)
        self.prefix_lengths = sorted({len(k) for k in self.prefix})
        self.suffix_lengths = sorted({len(k) for k in self.suffix})

    def _candidates(self, ref: str) -> set[int]:
        found = set(self.always)
        found.update(self.exact.get(ref, ()))
        size = len(ref)
        for length in self.prefix_lengths:
            if length > size:
                break
            found.update(self.prefix.get(ref[:length], ()))
        for length in self.suffix_lengths:
            if length > size:
                break
            found.update(self.suffix.get(ref[size - length :], ()))
        found.update(i for lit, i in self.contains if lit in ref)
        return found

    def find(self, ref: str) -> T | None:
        """``ref`` must already be lower case."""
        for i in sorted(self._candidates(ref)):
            rule, value = self.rules[i]
            if rule.is_match(ref):
                return value
        return None


def _providers() -> list[gp.Provider]:
    return data_snapshot.get_snapshot().providers


@cache
def _index_for(provider_id: str) -> _RuleIndex[gp.ModelInfo] | None:
    """Index of a provider's models followed by its fallback providers' (one step, like genai-prices)."""
    providers = {p.id: p for p in _providers()}
    provider = providers.get(provider_id)
    if provider is None:
        return None
    models = list(provider.models)
    for fallback in provider.fallback_model_providers or ():
        if fallback in providers:
            models.extend(providers[fallback].models)
    return _RuleIndex((m.match, m) for m in models)


@cache
def _provider_index() -> _RuleIndex[str]:
    return _RuleIndex((p.model_match, p.id) for p in _providers() if p.model_match is not None)


@cache
def price_ids() -> frozenset[str]:
    """The genai-prices provider ids a provider's ``price_id`` may name (``groq``, ``mistral``, ...)."""
    return frozenset(p.id for p in _providers())


def _detect_provider(ref: str) -> str | None:
    return _provider_index().find(ref)


def _find(provider_id: str | None, ref: str) -> gp.ModelInfo | None:
    if provider_id is None:
        provider_id = _detect_provider(ref)
        if provider_id is None:
            return None
    index = _index_for(provider_id)
    if index is None:
        return None
    found = index.find(ref)
    if found is None:
        normalized = _normalize_dated(ref)
        if normalized != ref:
            found = index.find(normalized)
    return found


def _mtok(price: object) -> Decimal | None:
    if isinstance(price, gp.TieredPrices):
        return price.base
    return price if isinstance(price, Decimal) else None


def _price_info(model: gp.ModelInfo) -> PriceInfo:
    prices = model.get_prices(datetime.now(tz=UTC))
    return PriceInfo(
        input_per_mtok=_mtok(getattr(prices, "input_mtok", None)),
        output_per_mtok=_mtok(getattr(prices, "output_mtok", None)),
        context_window=model.context_window,
        source_model=model.id,
        cache_read_per_mtok=_mtok(getattr(prices, "cache_read_mtok", None)),
        cache_write_per_mtok=_mtok(getattr(prices, "cache_write_mtok", None)),
    )


@lru_cache(maxsize=131_072)
def lookup_price(price_id: str | None, external_id: str) -> PriceInfo | None:
    """Known prices (USD per 1M tokens) and context window of a model, or ``None``; never raises.

    ``price_id`` names the genai-prices provider whose list to use; with ``None`` (``custom``
    servers) the provider is guessed from the id, retrying without a ``vendor/`` prefix.
    """
    try:
        ref = external_id.strip().lower()
        if not ref:
            return None
        model = _find(price_id, ref)
        if model is None and price_id is None and "/" in ref:
            model = _find(None, ref.rsplit("/", 1)[1])
        return _price_info(model) if model is not None else None
    except Exception:  # price data is a best-effort hint; never break a sync over it
        return None


def clear_price_cache() -> None:
    """Forget cached lookups and indexes (e.g. after the price data changed)."""
    lookup_price.cache_clear()
    price_ids.cache_clear()
    _index_for.cache_clear()
    _provider_index.cache_clear()


def fill_missing(
    price_id: str | None,
    external_id: str,
    ctx_length: int | None,
    pricing_input: Decimal | None,
    pricing_output: Decimal | None,
) -> tuple[int | None, Decimal | None, Decimal | None]:
    """``(ctx_length, pricing_input, pricing_output)`` with the unknown ones taken from genai-prices."""
    if ctx_length is not None and pricing_input is not None and pricing_output is not None:
        return ctx_length, pricing_input, pricing_output
    info = lookup_price(price_id, external_id)
    if info is None:
        return ctx_length, pricing_input, pricing_output
    return (
        ctx_length if ctx_length is not None else info.context_window,
        pricing_input if pricing_input is not None else info.input_per_mtok,
        pricing_output if pricing_output is not None else info.output_per_mtok,
    )


def with_cache_prices(price_id: str | None, found: DiscoveredModel) -> DiscoveredModel:
    """``found`` with the cache prices its provider did not report taken from genai-prices (a model
    genai-prices does not know keeps them unknown: its cached tokens are then billed as input)."""
    if found.pricing_cache_read is not None and found.pricing_cache_write is not None:
        return found
    info = lookup_price(price_id, found.external_id)
    if info is None or (info.cache_read_per_mtok is None and info.cache_write_per_mtok is None):
        return found
    return dataclasses.replace(
        found,
        pricing_cache_read=(
            found.pricing_cache_read if found.pricing_cache_read is not None else info.cache_read_per_mtok
        ),
        pricing_cache_write=(
            found.pricing_cache_write if found.pricing_cache_write is not None else info.cache_write_per_mtok
        ),
    )
