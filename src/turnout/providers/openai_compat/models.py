"""OpenAI-style ``GET /v1/models`` (also Azure OpenAI and OpenAI-compatible "custom" servers).

``{"object": "list", "data": [{"id", "object": "model", "created", "owned_by"}]}``. OpenAI reports
nothing else, so capabilities come from the id and prices/context windows from genai-prices.
Extra fields some servers add are used when present: Azure's and Mistral's ``capabilities``
object, and ``context_window`` / ``context_length`` / ``max_model_len`` / ``max_context_length``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from turnout.modelinfo.capabilities import (
    infer_capabilities,
    is_embedding,
    is_non_text,
    name_suggests_audio,
    name_suggests_tools,
    name_suggests_vision,
)
from turnout.modelinfo.discovered import DiscoveredModel, UnexpectedPayload
from turnout.modelinfo.pricing import fill_missing

_CTX_FIELDS = ("context_window", "context_length", "max_model_len", "max_context_length")
_CHAT_FLAGS = ("chat_completion", "completion_chat")


def _ctx(entry: dict[str, Any]) -> int | None:
    for key in _CTX_FIELDS:
        value = entry.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _reported(entry: dict[str, Any]) -> dict[str, Any] | None:
    caps = entry.get("capabilities")
    return caps if isinstance(caps, dict) else None


def _said_or_guess(said: dict[str, Any], key: str, guess: Callable[[str], bool], model_id: str) -> bool:
    """The server's own flag when it has one, else the name-based guess."""
    return said[key] is True if key in said else guess(model_id)


def _kind(model_id: str, caps: dict[str, Any] | None) -> str | None:
    """ "chat", "embedding", or ``None`` for models of other kinds (images, speech, moderation)."""
    if caps is not None:
        if caps.get("embeddings") is True:
            return "embedding"
        if caps.get("inference") is False or any(caps.get(f) is False for f in _CHAT_FLAGS):
            return None
        if any(caps.get(f) is True for f in _CHAT_FLAGS):
            return "chat"
    if is_embedding(model_id):
        return "embedding"
    return None if is_non_text(model_id) else "chat"


def parse_entry(entry: Any, price_id: str | None = "openai") -> DiscoveredModel | None:
    """One model entry, or ``None`` when it has no id or is not a chat/embedding model."""
    if not isinstance(entry, dict):
        return None
    model_id = entry.get("id")
    if not isinstance(model_id, str) or not model_id:
        return None
    caps = _reported(entry)
    model_type = _kind(model_id, caps)
    if model_type is None:
        return None
    ctx, price_in, price_out = fill_missing(price_id, model_id, _ctx(entry), None, None)
    name = entry.get("display_name") or entry.get("name")
    name = name if isinstance(name, str) and name else model_id
    said = caps or {}
    capabilities = infer_capabilities(
        model_id,
        model_type=model_type,
        name=name,
        ctx_length=ctx,
        vision=_said_or_guess(said, "vision", name_suggests_vision, model_id),
        audio=_said_or_guess(said, "audio", name_suggests_audio, model_id),
        function_calling=_said_or_guess(said, "function_calling", name_suggests_tools, model_id),
    )
    return DiscoveredModel(
        external_id=model_id,
        display_name=name,
        model_type=model_type,
        capabilities=capabilities,
        ctx_length=ctx,
        pricing_input=price_in,
        pricing_output=price_out,
        metadata=entry,
    )


def parse_page(payload: Any, price_id: str | None = "openai") -> tuple[list[DiscoveredModel], str | None]:
    """All models of the (unpaginated) answer; no next cursor."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list):
        raise UnexpectedPayload("expected an object with a 'data' list")
    found = [parse_entry(entry, price_id) for entry in data]
    return [m for m in found if m is not None], None


def parse(payload: Any, price_id: str | None = "openai") -> list[DiscoveredModel]:
    """Models of an OpenAI-style models answer."""
    return parse_page(payload, price_id)[0]
