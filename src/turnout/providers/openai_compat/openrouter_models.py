"""OpenRouter ``GET /api/v1/models``.

``{"data": [{"id", "name", "context_length", "architecture": {"input_modalities",
"output_modalities", ...}, "pricing": {"prompt", "completion", ...}, "top_provider": {...},
"supported_parameters": [...], ...}]}``. Prices are strings in USD per token; "-1" means unknown
(e.g. ``openrouter/auto``).
"""

from __future__ import annotations

from collections.abc import Collection
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from turnout.modelinfo.capabilities import infer_capabilities, is_embedding
from turnout.modelinfo.discovered import DiscoveredModel, UnexpectedPayload
from turnout.modelinfo.pricing import fill_missing

_ZERO = Decimal(0)


@lru_cache(maxsize=8192)
def per_token_to_mtok(value: str | int | float | None) -> Decimal | None:
    """USD per token (as OpenRouter writes it) to USD per 1M tokens, exactly; unknown -> ``None``."""
    if value is None or isinstance(value, bool):
        return None
    try:
        price = Decimal(value if isinstance(value, str | int) else repr(value))
    except (InvalidOperation, ValueError):
        return None
    if not price.is_finite() or price < 0:
        return None
    return _ZERO if price == 0 else price.scaleb(6)


def _listed(value: Any) -> list[Any] | tuple[()]:
    """A JSON list as is (only membership is tested), anything else as empty."""
    return value if isinstance(value, list) else ()


def _modalities(arch: dict[str, Any], key: str, side: int) -> Collection[Any]:
    found = _listed(arch.get(key))
    if found:
        return found
    modality = arch.get("modality")  # older entries: "text+image->text"
    if isinstance(modality, str) and "->" in modality:
        return tuple(modality.split("->")[side].split("+"))
    return ()


def _ctx(entry: dict[str, Any]) -> int | None:
    ctx = entry.get("context_length")
    if not isinstance(ctx, int) or isinstance(ctx, bool) or ctx <= 0:
        top = entry.get("top_provider")
        ctx = top.get("context_length") if isinstance(top, dict) else None
    return ctx if isinstance(ctx, int) and not isinstance(ctx, bool) and ctx > 0 else None


def parse_entry(entry: Any, price_id: str | None = "openrouter") -> DiscoveredModel | None:
    """One model entry, or ``None`` when it has no id or produces no text/embeddings."""
    if not isinstance(entry, dict):
        return None
    model_id = entry.get("id")
    if not isinstance(model_id, str) or not model_id:
        return None
    arch = entry.get("architecture")
    arch = arch if isinstance(arch, dict) else {}
    inputs = _modalities(arch, "input_modalities", 0)
    outputs = _modalities(arch, "output_modalities", 1)
    embedding = is_embedding(model_id, outputs)
    if outputs and not embedding and "text" not in outputs:
        return None  # image/audio generators are not chat models
    pricing = entry.get("pricing")
    pricing = pricing if isinstance(pricing, dict) else {}
    ctx, price_in, price_out = fill_missing(
        price_id,
        model_id,
        _ctx(entry),
        per_token_to_mtok(pricing.get("prompt")),
        per_token_to_mtok(pricing.get("completion")),
    )
    name = entry.get("name")
    name = name if isinstance(name, str) and name else model_id
    model_type = "embedding" if embedding else "chat"
    caps = infer_capabilities(
        model_id,
        model_type=model_type,
        name=name,
        input_modalities=inputs,
        supported_parameters=_listed(entry.get("supported_parameters")),
        ctx_length=ctx,
    )
    return DiscoveredModel(
        external_id=model_id,
        display_name=name,
        model_type=model_type,
        capabilities=caps,
        ctx_length=ctx,
        pricing_input=price_in,
        pricing_output=price_out,
        pricing_cache_read=per_token_to_mtok(pricing.get("input_cache_read")),
        pricing_cache_write=per_token_to_mtok(pricing.get("input_cache_write")),
        metadata=entry,
    )


def parse_page(payload: Any, price_id: str | None = "openrouter") -> tuple[list[DiscoveredModel], str | None]:
    """All models of the (single, unpaginated) answer; no next cursor."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list):
        raise UnexpectedPayload("expected an object with a 'data' list")
    found = [parse_entry(entry, price_id) for entry in data]
    return [m for m in found if m is not None], None


def parse(payload: Any, price_id: str | None = "openrouter") -> list[DiscoveredModel]:
    """Models of an OpenRouter models answer."""
    return parse_page(payload, price_id)[0]
