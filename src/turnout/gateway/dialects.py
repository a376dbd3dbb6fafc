"""How answers and errors are written in each client dialect (OpenAI or Anthropic)."""

from __future__ import annotations

from typing import Any, Protocol

import orjson
from starlette.responses import Response

from turnout.errors import TurnoutError, error_body
from turnout.gateway.snapshot import ModelEntry


class StreamEncoder(Protocol):
    def encode(self, chunk: dict[str, Any]) -> bytes: ...
    def finish(self, usage: dict[str, Any] | None) -> bytes: ...
    def error(self, message: str, error_type: str = "api_error") -> bytes: ...


class Dialect(Protocol):
    name: str

    def error_response(self, exc: TurnoutError) -> Response: ...
    def answer(
        self, completion: dict[str, Any], model: ModelEntry, cost: float | None, message_id: str
    ) -> bytes: ...
    def stream_encoder(self, model: str, include_usage: bool) -> StreamEncoder: ...


class OpenAIStreamEncoder:
    """Canonical chunks out as OpenAI SSE; the usage chunk only when the client asked for it."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self._model = model
        self._include_usage = include_usage

    def encode(self, chunk: dict[str, Any]) -> bytes:
        if not chunk.get("choices") and chunk.get("usage") is not None and not self._include_usage:
            return b""
        chunk["model"] = self._model
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def finish(self, usage: dict[str, Any] | None) -> bytes:
        return b"data: [DONE]\n\n"

    def error(self, message: str, error_type: str = "api_error") -> bytes:
        return b"data: " + orjson.dumps(error_body(message, error_type, None, "stream_error")) + b"\n\n"


class OpenAIDialect:
    name = "openai"

    def error_response(self, exc: TurnoutError) -> Response:
        return Response(orjson.dumps(exc.body()), exc.status_code, exc.headers, media_type="application/json")

    def answer(
        self, completion: dict[str, Any], model: ModelEntry, cost: float | None, message_id: str
    ) -> bytes:
        completion["model"] = model.id
        return orjson.dumps(completion)

    def stream_encoder(self, model: str, include_usage: bool) -> StreamEncoder:
        return OpenAIStreamEncoder(model, include_usage)


class AnthropicDialect:
    name = "anthropic"

    def error_response(self, exc: TurnoutError) -> Response:
        from turnout.providers.anthropic_translate import anthropic_error_body

        body = anthropic_error_body(exc.status_code, exc.message)
        return Response(orjson.dumps(body), exc.status_code, exc.headers, media_type="application/json")

    def answer(
        self, completion: dict[str, Any], model: ModelEntry, cost: float | None, message_id: str
    ) -> bytes:
        from turnout.providers.anthropic_translate import openai_to_anthropic_response

        return orjson.dumps(openai_to_anthropic_response(completion, model.id))

    def stream_encoder(self, model: str, include_usage: bool) -> StreamEncoder:
        from turnout.providers.anthropic_stream import AnthropicStreamEncoder

        return AnthropicStreamEncoder(model)


OPENAI = OpenAIDialect()
ANTHROPIC = AnthropicDialect()
