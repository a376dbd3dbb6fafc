"""OpenAI Chat Completions wire format: OpenAI, OpenRouter and OpenAI-compatible servers (vLLM,
llama.cpp server, LM Studio, ...).

This is the hot path: the canonical shapes *are* this wire format, so requests are a shallow copy
of the body (extension fields dropped, ``model`` swapped) and stream chunks pass through after one
``orjson.loads``. The ``model`` field of answers is set to the catalog id (``target.model_id``) so
clients see the id they asked for, not the provider's spelling of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from turnout.providers.base import ProviderError, Target, UpstreamRequest
from turnout.providers.errors_map import error_from_response, error_from_stream
from turnout.providers.sse import SseEvent, SseParser

# Turnout's own request fields; never sent upstream (OpenAI accepts ``metadata`` only with ``store``).
EXTENSION_FIELDS = frozenset({"metadata", "fallbacks", "task_type", "requirements"})
_DROP_ALWAYS = EXTENSION_FIELDS | {"model"}
_DROP_NO_STREAM = _DROP_ALWAYS | {"stream", "stream_options"}
_DONE = "[DONE]"


def malformed(what: str) -> ProviderError:
    """A provider answered 2xx with something that is not the expected JSON."""
    return ProviderError(f"provider returned a malformed {what}", status=502, retryable=True)


def load_object(payload: bytes, what: str) -> dict[str, Any]:
    """Parse a JSON object or raise ``malformed``."""
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise malformed(what) from None
    if not isinstance(obj, dict):
        raise malformed(what)
    return obj


class OpenAIStreamDecoder:
    """SSE ``data:`` JSON chunks -> canonical chunks; ``data: [DONE]`` ends the stream.

    A chunk carrying ``error`` (OpenRouter, OpenAI, SGLang) or vLLM's ``{"object": "error"}`` raises
    ProviderError; so does an end of stream before ``[DONE]``.
    """

    __slots__ = ("_api_key", "_drop_empty", "_model_id", "_sse", "done")

    def __init__(self, target: Target, *, drop_empty: bool = False) -> None:
        self._sse = SseParser()
        self._model_id = target.model_id
        self._api_key = target.api_key
        self._drop_empty = drop_empty  # drop chunks with no choices and no usage (Azure filter results)
        self.done = False

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        """Consume streamed bytes; return the chunks they complete."""
        events = self._sse.feed(data)
        return self._decode(events) if events else []

    def finish(self) -> list[dict[str, Any]]:
        """End of stream: parse a trailing event without blank line; raise if ``[DONE]`` never came."""
        out = self._decode(self._sse.flush())
        if not self.done:
            raise ProviderError("stream ended before completion", status=502, retryable=False)
        return out

    def _decode(self, events: list[SseEvent]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for event in events:
            if self.done:
                break
            data = event.data
            if data == _DONE:
                self.done = True
                break
            try:
                chunk = orjson.loads(data)
            except orjson.JSONDecodeError:
                if event.event == "error":
                    raise error_from_stream(data, api_key=self._api_key) from None
                raise malformed("stream chunk") from None
            if not isinstance(chunk, dict):
                raise malformed("stream chunk")
            error = chunk.get("error")
            if error or event.event == "error" or chunk.get("object") == "error":
                raise error_from_stream(error or chunk, api_key=self._api_key)
            if self._drop_empty and not chunk.get("choices") and not chunk.get("usage"):
                continue
            chunk["model"] = self._model_id
            out.append(chunk)
        return out


class OpenAICompatAdapter:
    """Adapter for ``openai``, ``openrouter`` and ``custom`` providers (stateless)."""

    #: sent to OpenRouter for its app attribution; set ``openrouter_referer`` to a URL to add it.
    openrouter_title = "Turnout"
    openrouter_referer: str | None = None

    # -- hooks for subclasses (Azure) -------------------------------------------------------------

    def url(self, target: Target, operation: str) -> str:
        """Endpoint for ``operation`` (``chat/completions`` or ``embeddings``)."""
        return f"{target.api_base.rstrip('/')}/{operation}"

    def headers(self, target: Target) -> dict[str, str]:
        """Request headers: JSON, ``Authorization: Bearer`` when a key is set, OpenRouter extras."""
        headers = {"Content-Type": "application/json"}
        if target.api_key:
            headers["Authorization"] = f"Bearer {target.api_key}"
        if target.provider_type == "openrouter":
            headers["X-Title"] = self.openrouter_title
            if self.openrouter_referer:
                headers["HTTP-Referer"] = self.openrouter_referer
        return headers

    def upstream_model(self, target: Target) -> str | None:
        """The body's ``model`` value (None: leave it out)."""
        return target.external_id

    # -- ChatAdapter ------------------------------------------------------------------------------

    def chat_request(self, target: Target, body: dict[str, Any], *, stream: bool) -> UpstreamRequest:
        """Canonical body -> provider request; with ``stream``, ask for usage in the last chunk."""
        out: dict[str, Any] = {}
        model = self.upstream_model(target)
        if model is not None:
            out["model"] = model
        drop = _DROP_ALWAYS if stream else _DROP_NO_STREAM
        for key, value in body.items():
            if key not in drop:
                out[key] = value
        if stream:
            out["stream"] = True
            options = body.get("stream_options")
            if isinstance(options, dict):
                if options.get("include_usage") is not True:
                    out["stream_options"] = {**options, "include_usage": True}
            else:
                out["stream_options"] = {"include_usage": True}
        return UpstreamRequest(
            "POST", self.url(target, "chat/completions"), self.headers(target), orjson.dumps(out)
        )

    def chat_response(self, target: Target, payload: bytes) -> dict[str, Any]:
        """Provider ``chat.completion`` -> canonical (``model`` = catalog id)."""
        obj = load_object(payload, "chat completion")
        error = obj.get("error")
        if error:  # OpenRouter may answer 200 with an error body
            raise error_from_stream(error, api_key=target.api_key)
        if not isinstance(obj.get("choices"), list):
            raise malformed("chat completion")
        obj["model"] = target.model_id
        return obj

    def stream_decoder(self, target: Target) -> OpenAIStreamDecoder:
        """A fresh SSE decoder for one streamed response."""
        return OpenAIStreamDecoder(target)

    def embeddings_request(self, target: Target, body: dict[str, Any]) -> UpstreamRequest:
        """Canonical embeddings body -> provider request."""
        out: dict[str, Any] = {}
        model = self.upstream_model(target)
        if model is not None:
            out["model"] = model
        for key, value in body.items():
            if key not in _DROP_ALWAYS:
                out[key] = value
        return UpstreamRequest(
            "POST", self.url(target, "embeddings"), self.headers(target), orjson.dumps(out)
        )

    def embeddings_response(self, target: Target, payload: bytes) -> dict[str, Any]:
        """Provider embeddings answer -> canonical (``model`` = catalog id)."""
        obj = load_object(payload, "embeddings response")
        error = obj.get("error")
        if error:
            raise error_from_stream(error, api_key=target.api_key)
        if not isinstance(obj.get("data"), list):
            raise malformed("embeddings response")
        obj["model"] = target.model_id
        return obj

    def error(self, status: int, payload: bytes, headers: Mapping[str, str]) -> ProviderError:
        """HTTP error answer -> ProviderError (message kept and scrubbed, type by status, retry hints)."""
        return error_from_response(status, payload, headers)
