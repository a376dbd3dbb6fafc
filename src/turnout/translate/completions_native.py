"""Legacy ``/v1/completions`` passed through to servers that have it: self-hosted OpenAI-compatible
servers (vLLM, llama.cpp, TGI) serve it for every model, so a prompt reaches the model raw, with no
chat template around it. Hosted APIs keep it for a few instruct models only, so there the call is
translated to chat instead (``api/completions``).

The answer (a ``text_completion``, or its SSE chunks) goes back as the server wrote it, ``model``
renamed to the name the client asked by, and is decoded for the record (:class:`CompletionsDecoding`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import orjson

from turnout.translate.errors import ProviderError, error_from_stream, load_object, malformed
from turnout.translate.openai import well_formed
from turnout.translate.passthrough import NativeBody, splice_model
from turnout.translate.sse import SseParser
from turnout.translate.types import Chunk, Completion, Usage

_DONE = "[DONE]"
EXTENSIONS = ("metadata", "fallbacks", "task_type", "requirements")


class _Relay:
    """SSE chunks passed on one by one, each chunk's ``model`` renamed."""

    def __init__(self, model: str) -> None:
        self._model = model
        self._sse = SseParser()

    def feed(self, data: bytes) -> bytes:
        out = b""
        for event in self._sse.feed(data):
            if event.data == _DONE:
                out += b"data: [DONE]\n\n"
                continue
            try:
                chunk = orjson.loads(event.data)
            except orjson.JSONDecodeError:
                continue  # not a chunk a client can read; the record has what happened
            if isinstance(chunk, dict) and "model" in chunk:
                chunk["model"] = self._model
            out += b"data: " + orjson.dumps(chunk) + b"\n\n"
        return out

    def error(self, message: str, error_type: str) -> bytes:
        error = {"error": {"message": message, "type": error_type, "param": None, "code": "stream_error"}}
        return b"data: " + orjson.dumps(error) + b"\n\n"


class CompletionsFormat:
    """Legacy completions as a native format (``passthrough.NativeFormat``)."""

    name = "openai-completions"

    def answer(self, payload: bytes, model: str) -> bytes:
        spliced = splice_model(payload, model)
        if spliced is not None:
            return spliced
        obj = orjson.loads(payload)
        return orjson.dumps({**obj, "model": model}) if isinstance(obj, dict) else payload

    def relay(self, model: str) -> _Relay:
        return _Relay(model)


COMPLETIONS = CompletionsFormat()


def native_completions_body(body: Mapping[str, Any], raw: bytes) -> NativeBody:
    """The client's completions body to pass on (its own bytes unless Turnout's fields must go)."""
    if any(name in body for name in EXTENSIONS):
        return NativeBody(COMPLETIONS, {k: v for k, v in body.items() if k not in EXTENSIONS}, None, {})
    return NativeBody(COMPLETIONS, body, raw, {})


def _choice_message(choice: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "index": choice.get("index", 0),
        "message": {"role": "assistant", "content": choice.get("text") or ""},
        "finish_reason": choice.get("finish_reason"),
    }


def text_completion(payload: Mapping[str, Any], model_id: str) -> Completion:
    """A ``text_completion`` as the canonical completion the record reads."""
    choices = payload.get("choices")
    if not isinstance(choices, list):
        raise malformed("text_completion")
    out: dict[str, Any] = {
        "id": payload.get("id") or "",
        "object": "chat.completion",
        "created": payload.get("created") or 0,
        "model": model_id,
        "choices": [_choice_message(c) for c in choices if isinstance(c, dict)],
    }
    if payload.get("usage") is not None:
        out["usage"] = cast(Usage, payload["usage"])
    if not well_formed(out, "message"):  # a text, finish_reason or usage of another type
        raise malformed("text_completion")
    return cast(Completion, out)


class CompletionsStreamDecoder:
    """``text_completion`` SSE chunks -> canonical chunks; ``[DONE]`` ends the stream."""

    def __init__(self, model_id: str, secrets: tuple[str, ...] = ()) -> None:
        self._sse = SseParser()
        self._model_id, self._secrets = model_id, secrets
        self.done = False

    def feed(self, data: bytes) -> list[Chunk]:
        out: list[Chunk] = []
        for event in self._sse.feed(data):
            if self.done:
                break
            if event.data == _DONE:
                self.done = True
                break
            try:
                chunk = orjson.loads(event.data)
            except orjson.JSONDecodeError:
                raise malformed("stream chunk") from None
            if not isinstance(chunk, dict):
                raise malformed("stream chunk")
            if chunk.get("error"):
                raise error_from_stream(chunk["error"], secrets=self._secrets)
            choices = [
                {
                    "index": c.get("index", 0),
                    "delta": {"content": c.get("text") or ""},
                    "finish_reason": c.get("finish_reason"),
                }
                for c in chunk.get("choices") or []
                if isinstance(c, dict)
            ]
            canonical = {
                "id": chunk.get("id") or "",
                "object": "chat.completion.chunk",
                "created": chunk.get("created") or 0,
                "model": self._model_id,
                "choices": choices,
                "usage": chunk.get("usage"),
            }
            if not well_formed(canonical, "delta"):  # a text, finish_reason or usage of another type
                raise malformed("stream chunk")
            out.append(cast(Chunk, canonical))
        return out

    def finish(self) -> list[Chunk]:
        if not self.done:
            raise ProviderError("stream ended before completion", status=502, retryable=False)
        return []


class CompletionsDecoding:
    """How an answer to a passed-through completions request is decoded for the record."""

    def chat_response(self, target: Any, payload: bytes) -> Completion:
        return text_completion(load_object(payload, "text_completion"), target.model_id)

    def stream_decoder(self, target: Any) -> CompletionsStreamDecoder:
        return CompletionsStreamDecoder(target.model_id, target.credentials.secrets)


DECODING = CompletionsDecoding()
