"""The native orchestration API (`/api/models/*`) mapped onto the same pipeline."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.responses import Response

from turnout.api.dialects import OpenAIDialect, StreamEncoder
from turnout.domain.snapshot import ModelEntry
from turnout.errors import InvalidRequest, TurnoutError
from turnout.translate.types import WholeAnswer

NATIVE_FIELDS = ("max_tokens", "temperature", "top_p", "stop", "tools", "tool_choice", "response_format")


def _context_message(context: Any) -> dict[str, Any] | None:
    if context is None:
        return None
    if not isinstance(context, list) or not all(
        isinstance(c, dict) and isinstance(c.get("content"), str) for c in context
    ):
        raise InvalidRequest("context must be an array of {type, content} objects", param="context")
    text = "\n\n".join(f"[{c.get('type', 'text')}]\n{c['content']}" for c in context)
    return {"role": "system", "content": f"Context:\n{text}"}


def _model_id(body: dict[str, Any]) -> str | None:
    """The model a native request names: ``model_id`` (``model``, the OpenAI field, is refused
    rather than ignored, which would route the call as if no model were named)."""
    if "model" in body:
        raise InvalidRequest("the native API names a model with model_id, not model", param="model")
    model_id = body.get("model_id")
    if model_id is not None and not isinstance(model_id, str):
        raise InvalidRequest("model_id must be a string", param="model_id")
    return model_id


def native_chat_body(body: dict[str, Any], *, completion: bool) -> dict[str, Any]:
    """A native chat/completion request as a canonical OpenAI body (model_id -> model)."""
    if completion:
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            raise InvalidRequest("prompt is required", param="prompt")
        messages: Any = [{"role": "user", "content": prompt}]
    else:
        messages = body.get("messages")  # validated by parse_chat
    model_id = _model_id(body)
    context = _context_message(body.get("context"))
    if context is not None and isinstance(messages, list):
        messages = [context, *messages]
    canonical: dict[str, Any] = {"model": model_id, "messages": messages}
    canonical.update({k: body[k] for k in NATIVE_FIELDS if k in body})
    for key in ("metadata", "task_type", "fallbacks", "requirements"):  # parse_chat checks them
        if key in body:
            canonical[key] = body[key]
    return canonical


def native_embeddings_body(body: dict[str, Any]) -> dict[str, Any]:
    texts = body.get("texts")
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise InvalidRequest("texts must be a non-empty array of strings", param="texts")
    canonical: dict[str, Any] = {"model": _model_id(body), "input": texts}
    if isinstance(body.get("dimensions"), int):
        canonical["dimensions"] = body["dimensions"]
    return canonical


class NativeDialect:
    """Responses in the orchestration API's shape; errors keep the OpenAI error shape."""

    name = "native"

    def error_response(self, exc: TurnoutError) -> Response:
        return OpenAIDialect().error_response(exc)

    def answer(
        self, completion: WholeAnswer, model: ModelEntry, cost: float | None, message_id: str
    ) -> bytes:
        answer: Mapping[str, Any] = completion  # read alike whichever of the two it is
        usage = dict(answer.get("usage") or {})
        usage["estimated_cost"] = cost
        model_ref = {"id": model.public_name, "provider": model.provider_id}
        if answer.get("object") == "list":  # embeddings
            vectors = [item.get("embedding") for item in answer.get("data") or []]
            return orjson.dumps({"embeddings": vectors, "model": model_ref, "usage": usage})
        choice = (answer.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        return orjson.dumps(
            {
                "completion_id": message_id,
                "created_at": datetime.fromtimestamp(answer.get("created") or time.time(), UTC).isoformat(),
                "model": model_ref,
                "content": message.get("content") or "",
                "tool_calls": message.get("tool_calls") or [],
                "usage": usage,
                "performance": {"quality_score": None, "success_rate": None, "confidence": None},
                "metadata": {"finish_reason": choice.get("finish_reason"), "model_specific": {}},
            }
        )

    def stream_encoder(self, model: str, include_usage: bool) -> StreamEncoder:
        return OpenAIDialect().stream_encoder(model, include_usage)


NATIVE = NativeDialect()
