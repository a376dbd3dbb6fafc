"""How answers and errors are written in each client dialect (OpenAI or Anthropic)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, cast

import orjson
from starlette.responses import Response

from turnout.domain.snapshot import ModelEntry
from turnout.errors import TurnoutError, error_body
from turnout.translate.types import Chunk, Completion, WholeAnswer


class StreamEncoder(Protocol):
    def encode(self, chunk: Chunk) -> bytes: ...
    def finish(self, usage: Mapping[str, Any] | None) -> bytes: ...
    def error(self, message: str, error_type: str = "api_error") -> bytes: ...


class Dialect(Protocol):
    name: str

    def error_response(self, exc: TurnoutError) -> Response: ...
    def answer(
        self,
        completion: WholeAnswer,
        model: ModelEntry,
        cost: float | None,
        message_id: str,
    ) -> bytes: ...
    def stream_encoder(self, model: str, include_usage: bool) -> StreamEncoder: ...


class OpenAIStreamEncoder:
    """Canonical chunks out as OpenAI SSE; the usage chunk only when the client asked for it, and
    then always (estimated when the provider sent none, as llama.cpp does)."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self._model = model
        self._include_usage = include_usage
        self._usage_sent = False
        self._last: Chunk | None = None

    def encode(self, chunk: Chunk) -> bytes:
        if not chunk.get("choices") and chunk.get("usage") is not None:
            if not self._include_usage:
                return b""
            self._usage_sent = True
        chunk["model"] = self._model
        self._last = chunk
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def finish(self, usage: Mapping[str, Any] | None) -> bytes:
        if self._include_usage and not self._usage_sent and usage:
            last = self._last or {}
            chunk = {
                "id": last.get("id", ""),
                "object": "chat.completion.chunk",
                "created": last.get("created", 0),
                "model": self._model,
                "choices": [],
                "usage": usage,
            }
            return b"data: " + orjson.dumps(chunk) + b"\n\ndata: [DONE]\n\n"
        return b"data: [DONE]\n\n"

    def error(self, message: str, error_type: str = "api_error") -> bytes:
        return b"data: " + orjson.dumps(error_body(message, error_type, None, "stream_error")) + b"\n\n"


class OpenAIDialect:
    name = "openai"

    def error_response(self, exc: TurnoutError) -> Response:
        return Response(orjson.dumps(exc.body()), exc.status_code, exc.headers, media_type="application/json")

    def answer(
        self,
        completion: WholeAnswer,
        model: ModelEntry,
        cost: float | None,
        message_id: str,
    ) -> bytes:
        completion["model"] = model.public_name
        return orjson.dumps(completion)

    def stream_encoder(self, model: str, include_usage: bool) -> StreamEncoder:
        return OpenAIStreamEncoder(model, include_usage)


class AnthropicDialect:
    name = "anthropic"

    def error_response(self, exc: TurnoutError) -> Response:
        from turnout.translate.anthropic import anthropic_error_body

        body = anthropic_error_body(exc.status_code, exc.message)
        return Response(orjson.dumps(body), exc.status_code, exc.headers, media_type="application/json")

    def answer(
        self,
        completion: WholeAnswer,
        model: ModelEntry,
        cost: float | None,
        message_id: str,
    ) -> bytes:
        from turnout.translate.anthropic import openai_to_anthropic_response

        return orjson.dumps(openai_to_anthropic_response(cast(Completion, completion), model.public_name))

    def stream_encoder(self, model: str, include_usage: bool) -> StreamEncoder:
        from turnout.translate.anthropic_stream import AnthropicStreamEncoder

        return AnthropicStreamEncoder(model)


OPENAI = OpenAIDialect()
ANTHROPIC = AnthropicDialect()
