"""Gemini ``GET /v1beta/models`` (token-paginated).

``{"models": [{"name": "models/gemini-2.5-flash", "displayName", "inputTokenLimit",
"outputTokenLimit", "supportedGenerationMethods": ["generateContent", ...], ...}],
"nextPageToken": "..."}``; the next page is asked for with ``pageToken`` (``pageSize`` up to
1000, and a page may hold fewer). Models that answer ``generateContent`` are chat models, those
that answer ``embedContent`` embedding models; the rest (``predict`` image and video models,
``bidiGenerateContent``-only live models, AQA) cannot be called through this adapter and are left
out, as are the speech-only (``-tts``) ones. The list reports no prices, so they come from
genai-prices (``google``); every Gemini chat model takes images, audio and tools.
"""

from __future__ import annotations

from typing import Any

from turnout.modelinfo.capabilities import infer_capabilities, is_non_text, name_suggests_vision
from turnout.modelinfo.discovered import DiscoveredModel, UnexpectedPayload
from turnout.modelinfo.pricing import fill_missing

_EMBED_METHODS = frozenset({"embedContent", "batchEmbedContents"})


def _methods(entry: dict[str, Any]) -> set[str]:
    found = entry.get("supportedGenerationMethods")
    return {m for m in found if isinstance(m, str)} if isinstance(found, list) else set()


def parse_entry(entry: Any, price_id: str | None = "google") -> DiscoveredModel | None:
    """One model entry, or ``None`` when it has no name or is neither a chat nor an embedding model."""
    if not isinstance(entry, dict):
        return None
    name = entry.get("name")
    if not isinstance(name, str) or not name.removeprefix("models/"):
        return None
    model_id = name.removeprefix("models/")
    methods = _methods(entry)
    if "generateContent" in methods and not is_non_text(model_id):
        model_type = "chat"
    elif methods & _EMBED_METHODS:
        model_type = "embedding"
    else:
        return None
    limit = entry.get("inputTokenLimit")
    reported_ctx = limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 else None
    ctx, price_in, price_out = fill_missing(price_id, model_id, reported_ctx, None, None)
    display = entry.get("displayName")
    display = display if isinstance(display, str) and display else model_id
    gemini = model_type == "chat" and model_id.startswith("gemini-")
    capabilities = infer_capabilities(
        model_id,
        model_type=model_type,
        name=display,
        ctx_length=ctx,
        vision=gemini or (model_type == "chat" and name_suggests_vision(model_id)),
        audio=gemini,
        function_calling=gemini and "image" not in model_id,
    )
    return DiscoveredModel(
        external_id=model_id,
        display_name=display,
        model_type=model_type,
        capabilities=capabilities,
        ctx_length=ctx,
        pricing_input=price_in,
        pricing_output=price_out,
        metadata=entry,
    )


def parse_page(payload: Any, price_id: str | None = "google") -> tuple[list[DiscoveredModel], str | None]:
    """Models of one page and the ``nextPageToken``, ``None`` on the last page."""
    if not isinstance(payload, dict):
        raise UnexpectedPayload("expected an object with a 'models' list")
    data = payload.get("models", [] if not payload else None)  # Gemini answers {} for no models
    if not isinstance(data, list):
        raise UnexpectedPayload("expected an object with a 'models' list")
    found = [parse_entry(entry, price_id) for entry in data]
    token = payload.get("nextPageToken")
    return [m for m in found if m is not None], token if isinstance(token, str) and token else None


def parse(payload: Any, price_id: str | None = "google") -> list[DiscoveredModel]:
    """Models of a single page (use :func:`parse_page` to follow pagination)."""
    return parse_page(payload, price_id)[0]
