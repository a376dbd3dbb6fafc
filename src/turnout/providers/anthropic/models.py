"""Anthropic ``GET /v1/models`` (cursor-paginated).

``{"data": [{"type": "model", "id", "display_name", "created_at", ...}], "has_more", "first_id",
"last_id"}``; the next page is asked for with ``after_id=<last_id>`` (``limit`` 1..1000).
Newer answers also carry ``max_input_tokens``, ``lifecycle`` and a ``capabilities`` object
(``image_input.supported`` ...); older ones do not, so the id fills in.
"""

from __future__ import annotations

import re
from typing import Any

from turnout.modelinfo.capabilities import infer_capabilities
from turnout.modelinfo.discovered import DiscoveredModel, UnexpectedPayload
from turnout.modelinfo.pricing import fill_missing

_LEGACY = re.compile(r"^claude-(?:1|2|instant)")  # text-only models without tool use


def _supported(caps: Any, name: str) -> bool | None:
    entry = caps.get(name) if isinstance(caps, dict) else None
    value = entry.get("supported") if isinstance(entry, dict) else None
    return value if isinstance(value, bool) else None


def parse_entry(entry: Any, price_id: str | None = "anthropic") -> DiscoveredModel | None:
    """One model entry, or ``None`` when it has no id or is retired."""
    if not isinstance(entry, dict):
        return None
    model_id = entry.get("id")
    if not isinstance(model_id, str) or not model_id or entry.get("lifecycle") == "retired":
        return None
    max_input = entry.get("max_input_tokens")
    reported_ctx = max_input if isinstance(max_input, int) and not isinstance(max_input, bool) else None
    ctx, price_in, price_out = fill_missing(price_id, model_id, reported_ctx, None, None)
    modern = _LEGACY.match(model_id) is None
    vision = _supported(entry.get("capabilities"), "image_input")
    name = entry.get("display_name")
    name = name if isinstance(name, str) and name else model_id
    capabilities = infer_capabilities(
        model_id,
        name=name,
        ctx_length=ctx,
        vision=modern if vision is None else vision,
        function_calling=modern,
    )
    return DiscoveredModel(
        external_id=model_id,
        display_name=name,
        model_type="chat",
        capabilities=capabilities,
        ctx_length=ctx,
        pricing_input=price_in,
        pricing_output=price_out,
        metadata=entry,
    )


def parse_page(payload: Any, price_id: str | None = "anthropic") -> tuple[list[DiscoveredModel], str | None]:
    """Models of one page and the cursor (``after_id``) of the next, ``None`` on the last page."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list):
        raise UnexpectedPayload("expected an object with a 'data' list")
    found = [parse_entry(entry, price_id) for entry in data]
    models = [m for m in found if m is not None]
    if payload.get("has_more") is not True or not data:
        return models, None
    last_id = payload.get("last_id")
    if not isinstance(last_id, str) or not last_id:
        last = data[-1]
        last_id = last.get("id") if isinstance(last, dict) else None
    if not isinstance(last_id, str) or not last_id:
        raise UnexpectedPayload("'has_more' is true but there is no 'last_id' to continue from")
    return models, last_id


def parse(payload: Any, price_id: str | None = "anthropic") -> list[DiscoveredModel]:
    """Models of a single Anthropic page (use :func:`parse_page` to follow pagination)."""
    return parse_page(payload, price_id)[0]
