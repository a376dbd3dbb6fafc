"""Anthropic Messages API adapter (``provider_type: anthropic``): outbound chat calls only.

Requests go to ``{api_base}/v1/messages`` with ``x-api-key`` and ``anthropic-version``; the
translation itself lives in ``anthropic_translate``. Anthropic has no embeddings endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

import orjson

from turnout.providers.anthropic_outbound import openai_to_anthropic_request
from turnout.providers.anthropic_response import (
    anthropic_provider_error,
    anthropic_to_openai_response,
    malformed,
)
from turnout.providers.anthropic_stream import AnthropicStreamDecoder
from turnout.providers.base import ProviderError, Target, UpstreamRequest
from turnout.providers.errors_map import parse_retry_after

ANTHROPIC_VERSION = "2023-06-01"


def messages_url(api_base: str) -> str:
    """``{api_base}/v1/messages``, without doubling a ``/v1`` that ``api_base`` already ends with."""
    base = api_base.rstrip("/")
    return f"{base}/messages" if base.endswith("/v1") else f"{base}/v1/messages"


def _error_object(payload: bytes) -> Any:
    """The ``error`` object of an Anthropic error body, or the body's text when it is not one."""
    try:
        obj = orjson.loads(payload) if payload else None
    except orjson.JSONDecodeError:
        obj = None
    if isinstance(obj, dict):
        error = obj.get("error")
        if isinstance(error, dict):
            return error
        if isinstance(error, str):
            return {"message": error}
        if isinstance(obj.get("message"), str):
            return {"type": obj.get("type"), "message": obj["message"]}
    return payload.decode("utf-8", "replace").strip() if payload else ""


class AnthropicAdapter:
    """Adapter for ``anthropic`` providers (stateless)."""

    def headers(self, target: Target, *, stream: bool = False) -> dict[str, str]:
        """JSON, ``anthropic-version`` and, when the target has a key, ``x-api-key``."""
        headers = {"content-type": "application/json", "anthropic-version": ANTHROPIC_VERSION}
        if stream:
            headers["accept"] = "text/event-stream"
        if target.api_key:
            headers["x-api-key"] = target.api_key
        return headers

    def chat_request(self, target: Target, body: dict[str, Any], *, stream: bool) -> UpstreamRequest:
        """Canonical body -> ``POST /v1/messages`` (Anthropic streams always carry usage)."""
        out = openai_to_anthropic_request(body, target.external_id)
        if stream:
            out["stream"] = True
        else:
            out.pop("stream", None)
        return UpstreamRequest(
            "POST", messages_url(target.api_base), self.headers(target, stream=stream), orjson.dumps(out)
        )

    def chat_response(self, target: Target, payload: bytes) -> dict[str, Any]:
        """Anthropic ``message`` -> canonical ``chat.completion`` (``model`` = catalog id)."""
        try:
            obj = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise malformed("message") from None
        if not isinstance(obj, dict):
            raise malformed("message")
        if obj.get("type") == "error":
            raise anthropic_provider_error(None, obj.get("error"), api_key=target.api_key)
        return anthropic_to_openai_response(obj, target.model_id)

    def stream_decoder(self, target: Target) -> AnthropicStreamDecoder:
        """A fresh decoder for one Anthropic SSE stream."""
        return AnthropicStreamDecoder(target.model_id, api_key=target.api_key)

    def embeddings_request(self, target: Target, body: dict[str, Any]) -> UpstreamRequest:
        """Anthropic has no embeddings endpoint: always a 400."""
        _no_embeddings()

    def embeddings_response(self, target: Target, payload: bytes) -> dict[str, Any]:
        """Anthropic has no embeddings endpoint: always a 400."""
        _no_embeddings()

    def error(self, status: int, payload: bytes, headers: Mapping[str, str]) -> ProviderError:
        """HTTP error answer -> ProviderError: Anthropic's message (keys scrubbed), OpenAI error type,
        529 as 503, retryable for 408/409/429/5xx, ``retry_after_s`` from ``retry-after``."""
        return anthropic_provider_error(
            status, _error_object(payload), retry_after_s=parse_retry_after(headers)
        )


def _no_embeddings() -> NoReturn:
    raise ProviderError(
        "embeddings are not supported by Anthropic",
        status=400,
        error_type="invalid_request_error",
        code="unsupported_operation",
        param="model",
    )
