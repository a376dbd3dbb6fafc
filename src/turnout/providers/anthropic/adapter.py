"""Transport of the Anthropic Messages API: ``{api_base}/v1/messages`` with ``x-api-key`` and
``anthropic-version``. The translation lives in :mod:`turnout.translate.anthropic` (requests,
answers, errors) and :mod:`turnout.translate.anthropic_stream`. Anthropic has no embeddings endpoint.

An Anthropic-dialect client's body is passed on untouched (``native_request``,
:mod:`turnout.translate.anthropic_native`) to ``/v1/messages`` and ``/v1/messages/count_tokens``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

import orjson

from turnout.providers.base import ProviderError, Signer, Target, UpstreamRequest
from turnout.providers.credentials import Credentials
from turnout.providers.spec import strip_suffixes
from turnout.translate.anthropic import anthropic_provider_error, anthropic_to_openai_response, malformed
from turnout.translate.anthropic_native import COUNT_TOKENS, MESSAGES
from turnout.translate.anthropic_outbound import openai_to_anthropic_request
from turnout.translate.anthropic_stream import AnthropicStreamDecoder
from turnout.translate.errors import parse_retry_after
from turnout.translate.passthrough import NativeBody, body_with_model
from turnout.translate.types import ChatRequest, Completion, EmbeddingsRequest, EmbeddingsResponse

ANTHROPIC_VERSION = "2023-06-01"
NATIVE_PATHS = {MESSAGES.name: "/v1/messages", COUNT_TOKENS.name: "/v1/messages/count_tokens"}


def api_root(api_base: str) -> str:
    """``api_base`` without a trailing ``/`` or ``/v1`` (Anthropic's paths start with ``/v1``)."""
    return strip_suffixes(api_base, "/v1")


def messages_url(api_base: str) -> str:
    """``{api_base}/v1/messages``, without doubling a ``/v1`` that ``api_base`` already ends with."""
    return f"{api_root(api_base)}/v1/messages"


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

    def __init__(self, *, sign: Signer | None = None) -> None:
        self.sign = sign

    def auth_headers(self, credentials: Credentials) -> dict[str, str]:
        """``anthropic-version`` and, when the credential has a key, ``x-api-key``."""
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if credentials.api_key:
            headers["x-api-key"] = credentials.api_key
        return headers

    def headers(self, target: Target, *, stream: bool = False) -> dict[str, str]:
        """JSON plus the auth headers (and ``accept: text/event-stream`` for a stream)."""
        headers = {"content-type": "application/json", **self.auth_headers(target.credentials)}
        if stream:
            headers["accept"] = "text/event-stream"
        return headers

    def chat_request(self, target: Target, body: ChatRequest, *, stream: bool) -> UpstreamRequest:
        """Canonical body -> ``POST /v1/messages`` (Anthropic streams always carry usage)."""
        out = openai_to_anthropic_request(body, target.external_id)
        if stream:
            out["stream"] = True
        else:
            out.pop("stream", None)
        request = UpstreamRequest(
            "POST", messages_url(target.api_base), self.headers(target, stream=stream), orjson.dumps(out)
        )
        if self.sign is not None:
            self.sign(request, target.credentials)
        return request

    def native_request(self, target: Target, native: NativeBody, *, stream: bool) -> UpstreamRequest | None:
        """An Anthropic client's body as it came (``model`` = the provider's id), with its
        ``anthropic-version`` and ``anthropic-beta`` headers; None for a format other than Anthropic's."""
        path = NATIVE_PATHS.get(native.format.name)
        if path is None:
            return None
        headers = self.headers(target, stream=stream)
        headers.update(native.headers)
        body = body_with_model(native, target.external_id)
        request = UpstreamRequest("POST", api_root(target.api_base) + path, headers, body, native=True)
        if self.sign is not None:
            self.sign(request, target.credentials)
        return request

    def chat_response(self, target: Target, payload: bytes) -> Completion:
        """Anthropic ``message`` -> canonical ``chat.completion`` (``model`` = catalog id)."""
        try:
            obj = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise malformed("message") from None
        if not isinstance(obj, dict):
            raise malformed("message")
        if obj.get("type") == "error":
            raise anthropic_provider_error(None, obj.get("error"), secrets=target.credentials.secrets)
        return anthropic_to_openai_response(obj, target.model_id)

    def stream_decoder(self, target: Target) -> AnthropicStreamDecoder:
        """A fresh decoder for one Anthropic SSE stream."""
        return AnthropicStreamDecoder(target.model_id, secrets=target.credentials.secrets)

    def embeddings_request(self, target: Target, body: EmbeddingsRequest) -> UpstreamRequest:
        """Anthropic has no embeddings endpoint: always a 400."""
        _no_embeddings()

    def embeddings_response(self, target: Target, payload: bytes) -> EmbeddingsResponse:
        """Anthropic has no embeddings endpoint: always a 400."""
        _no_embeddings()

    def error(self, target: Target, status: int, payload: bytes, headers: Mapping[str, str]) -> ProviderError:
        """HTTP error answer -> ProviderError: Anthropic's message (credential scrubbed), OpenAI error
        type, 529 as 503, retryable for 408/409/429/5xx, ``retry_after_s`` from ``retry-after``."""
        return anthropic_provider_error(
            status,
            _error_object(payload),
            secrets=target.credentials.secrets,
            retry_after_s=parse_retry_after(headers),
        )


def _no_embeddings() -> NoReturn:
    raise ProviderError(
        "embeddings are not supported by Anthropic",
        status=400,
        error_type="invalid_request_error",
        code="unsupported_operation",
        param="model",
    )
