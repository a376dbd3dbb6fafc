"""The OpenAI Responses API passed through to providers that speak it (OpenAI, OpenRouter, Azure's v1
API): the client's body goes on as its own, the answer comes back as the provider wrote it.

Turnout keeps the conversation state itself, so a chain works whichever provider serves each turn:
the body sent upstream carries the whole conversation as ``input`` (no ``previous_response_id``,
which the provider would not know) and ``store: false`` (the provider need not keep a copy).
Reasoning items are not replayed: without their encrypted content they mean nothing to a model.

The answer is decoded for the record by :class:`ResponsesDecoding` (a whole ``response`` object, or
the typed event stream), in place of the adapter's Chat Completions decoding.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import orjson

from turnout.translate.errors import ProviderError, error_from_stream, load_object, malformed
from turnout.translate.openai import well_formed
from turnout.translate.passthrough import NativeBody
from turnout.translate.sse import SseEvent, SseParser
from turnout.translate.types import Chunk, Completion, ToolCall, Usage

#: Turnout's own request fields, never sent upstream
_TURNOUT_FIELDS = ("fallbacks", "task_type", "requirements", "previous_response_id")
TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})


class _Relay:
    """A Responses stream goes on byte for byte (``api/responses`` renames what the client sees)."""

    def feed(self, data: bytes) -> bytes:
        return data

    def error(self, message: str, error_type: str) -> bytes:
        event = {"type": "error", "code": error_type, "message": message, "param": None, "sequence_number": 0}
        return b"event: error\ndata: " + orjson.dumps(event) + b"\n\n"


class ResponsesFormat:
    """The Responses API as a native format (``passthrough.NativeFormat``)."""

    name = "openai-responses"

    def answer(self, payload: bytes, model: str) -> bytes:
        return payload

    def relay(self, model: str) -> _Relay:
        return _Relay()


RESPONSES = ResponsesFormat()


def _replayable(item: Mapping[str, Any]) -> dict[str, Any] | None:
    """A stored item as input to send again: without Turnout's ids and status, reasoning left out."""
    if item.get("type") == "reasoning":
        return None
    return {k: v for k, v in item.items() if k not in ("id", "status")}


def native_responses_body(
    body: Mapping[str, Any], history: list[dict[str, Any]], items: list[dict[str, Any]]
) -> NativeBody:
    """The body to send a Responses provider: the client's, with the whole conversation as input."""
    out = {k: v for k, v in body.items() if k not in _TURNOUT_FIELDS}
    replay = [r for r in (_replayable(item) for item in (*history, *items)) if r is not None]
    out["input"] = replay
    out["store"] = False
    return NativeBody(RESPONSES, out, None, {})


def _usage(usage: Any) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("input_tokens") or 0, usage.get("output_tokens") or 0
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": usage.get("total_tokens") or prompt + completion,
    }
    details = usage.get("input_tokens_details") or {}
    if details.get("cached_tokens") or details.get("cache_write_tokens"):
        out["prompt_tokens_details"] = {
            "cached_tokens": details.get("cached_tokens") or 0,
            "cache_creation_tokens": details.get("cache_write_tokens") or 0,
        }
    reasoning = (usage.get("output_tokens_details") or {}).get("reasoning_tokens")
    if reasoning:
        out["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return cast(Usage, out)


def _finish(response: Mapping[str, Any], calls: bool) -> str:
    if response.get("status") == "incomplete":
        reason = (response.get("incomplete_details") or {}).get("reason")
        return "content_filter" if reason == "content_filter" else "length"
    return "tool_calls" if calls else "stop"


def response_completion(response: Mapping[str, Any], model_id: str) -> Completion:
    """A ``response`` object as the canonical completion the record reads; one of another shape
    (an output that is not a list of items, text that is not a string...) is ``malformed``."""
    try:
        out = _completion(response, model_id)
    except (AttributeError, TypeError, ValueError):
        raise malformed("response") from None
    if not well_formed(out, "message"):
        raise malformed("response")
    return cast(Completion, out)


def _completion(response: Mapping[str, Any], model_id: str) -> dict[str, Any]:
    text: list[str] = []
    reasoning: list[str] = []
    calls: list[ToolCall] = []
    output = response.get("output", [])
    if not isinstance(output, list):  # the conversation is stored from it
        raise malformed("response")
    for item in output:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "message":
            text += [
                p.get("text") or p.get("refusal") or ""
                for p in item.get("content") or []
                if isinstance(p, dict)
            ]
        elif kind == "function_call":
            calls.append(
                {
                    "id": item.get("call_id") or "",
                    "type": "function",
                    "function": {"name": item.get("name") or "", "arguments": item.get("arguments") or ""},
                }
            )
        elif kind == "reasoning":
            reasoning += [
                p.get("text") or ""
                for p in item.get("content") or item.get("summary") or []
                if isinstance(p, dict)
            ]
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text) or (None if calls else "")}
    if calls:
        message["tool_calls"] = calls
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    out: dict[str, Any] = {
        "id": response.get("id") or "",
        "object": "chat.completion",
        "created": int(response.get("created_at") or 0),
        "model": model_id,
        "choices": [{"index": 0, "message": message, "finish_reason": _finish(response, bool(calls))}],
    }
    if (usage := _usage(response.get("usage"))) is not None:
        out["usage"] = usage
    return out


class ResponsesStreamDecoder:
    """Typed Responses events -> canonical chunks (text, reasoning, function-call deltas; the
    terminal event's usage and finish); an ``error`` or ``response.failed`` event raises, and so
    does an end of stream before a terminal event."""

    def __init__(self, model_id: str, secrets: tuple[str, ...] = ()) -> None:
        self._sse = SseParser()
        self._model_id, self._secrets = model_id, secrets
        self._calls: dict[str, int] = {}  # function-call item id -> tool-call index
        self.done = False

    def feed(self, data: bytes) -> list[Chunk]:
        events = self._sse.feed(data)
        return self._decode(events) if events else []

    def finish(self) -> list[Chunk]:
        out = self._decode(self._sse.flush())
        if not self.done:
            raise ProviderError("stream ended before completion", status=502, retryable=False)
        return out

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, usage: Usage | None = None) -> Chunk:
        choices = [] if usage is not None else [{"index": 0, "delta": delta, "finish_reason": finish}]
        chunk: dict[str, Any] = {
            "id": "",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": self._model_id,
            "choices": choices,
        }
        if usage is not None:
            chunk["usage"] = usage
        return cast(Chunk, chunk)

    def _decode(self, events: list[SseEvent]) -> list[Chunk]:
        """The chunks of ``events``; an event of another shape than its type's (a delta that is not
        text, an item that is not an object...) is ``malformed``, not a crash mid-answer."""
        out: list[Chunk] = []
        for event in events:
            if self.done:
                break
            try:
                data = orjson.loads(event.data)
            except orjson.JSONDecodeError:
                raise malformed("stream event") from None
            if not isinstance(data, dict):
                raise malformed("stream event")
            start = len(out)
            try:
                self._event(data, event, out)
            except (AttributeError, TypeError, ValueError):
                raise malformed("stream event") from None
            if not all(well_formed(chunk, "delta") for chunk in out[start:]):  # type: ignore[arg-type]
                raise malformed("stream event")
        return out

    def _event(self, data: dict[str, Any], event: SseEvent, out: list[Chunk]) -> None:
        """Decode one event into ``out``."""
        kind = data.get("type")
        kind = event.event if kind is None else kind
        if not isinstance(kind, str):
            raise malformed("stream event")
        if kind == "error":
            raise error_from_stream(data, secrets=self._secrets)
        if kind == "response.output_text.delta":
            out.append(self._chunk({"content": data.get("delta") or ""}))
        elif kind in ("response.reasoning_text.delta", "response.reasoning_summary_text.delta"):
            out.append(self._chunk({"reasoning_content": data.get("delta") or ""}))
        elif kind == "response.output_item.added" and (data.get("item") or {}).get("type") == "function_call":
            item = data["item"]
            index = self._calls[item.get("id") or ""] = len(self._calls)
            call = {
                "index": index,
                "id": item.get("call_id") or "",
                "type": "function",
                "function": {"name": item.get("name") or "", "arguments": item.get("arguments") or ""},
            }
            out.append(self._chunk({"tool_calls": [call]}))
        elif kind == "response.function_call_arguments.delta":
            index = self._calls.get(data.get("item_id") or "", 0)
            call = {"index": index, "function": {"arguments": data.get("delta") or ""}}
            out.append(self._chunk({"tool_calls": [call]}))
        elif kind in TERMINAL:
            response = data.get("response") or {}
            if kind == "response.failed":
                raise error_from_stream(response.get("error") or data, secrets=self._secrets)
            if not isinstance(response.get("output", []), list):  # the conversation is stored from it
                raise malformed("stream event")
            self.done = True
            out.append(self._chunk({}, _finish(response, bool(self._calls))))
            if (usage := _usage(response.get("usage"))) is not None:
                out.append(self._chunk({}, usage=usage))


class ResponsesDecoding:
    """How an answer to a passed-through Responses request is decoded for the record (it stands in
    for the adapter's ``chat_response`` and ``stream_decoder``)."""

    def chat_response(self, target: Any, payload: bytes) -> Completion:
        return response_completion(load_object(payload, "response"), target.model_id)

    def stream_decoder(self, target: Any) -> ResponsesStreamDecoder:
        return ResponsesStreamDecoder(target.model_id, target.credentials.secrets)


DECODING = ResponsesDecoding()
