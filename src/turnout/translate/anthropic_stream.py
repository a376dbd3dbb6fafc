"""Anthropic Messages streams <-> canonical ``chat.completion.chunk`` dicts.

``AnthropicStreamDecoder`` reads an Anthropic SSE stream from a provider; ``AnthropicStreamEncoder``
writes canonical chunks as an Anthropic SSE stream to an Anthropic-dialect client.

Anthropic numbers content blocks (text and tool_use alike); OpenAI numbers tool calls only. The
decoder maps each tool_use block to the next tool-call index; the encoder opens one block per text
run and per tool call, closing the previous block first (Anthropic blocks do not interleave).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from turnout.ids import new_hex
from turnout.translate.anthropic import (
    FORMAT_TOOL,
    anthropic_error_type,
    anthropic_provider_error,
    anthropic_usage,
    finish_reason,
    malformed,
    openai_usage,
    reasoning_text,
    stop_reason,
    tool_use,
)
from turnout.translate.errors import ProviderError
from turnout.translate.sse import SseEvent, SseParser, sse_frame
from turnout.translate.types import Chunk, ChunkChoice, Delta, ToolCallDelta


class AnthropicStreamDecoder:
    """Anthropic SSE bytes (any split, LF/CRLF/CR) -> canonical chunks.

    Emits: a first chunk with the assistant role; text deltas; thinking as ``reasoning_content``
    deltas; a tool_calls delta (id, name) per tool_use block and argument fragments per
    ``input_json_delta``; a ``finish_reason`` chunk on
    ``message_delta``; on ``message_stop`` a usage chunk (``choices: []``). An ``error`` event
    raises ProviderError; so does an end of stream before ``message_stop``.
    """

    __slots__ = (
        "_answer",
        "_created",
        "_finished",
        "_id",
        "_model",
        "_secrets",
        "_sse",
        "_started",
        "_tools",
        "_usage",
        "done",
    )

    def __init__(self, model: str, *, secrets: tuple[str, ...] = ()) -> None:
        self._sse = SseParser()
        self._model = model
        self._secrets = secrets  # the credential's values, scrubbed from error events
        self._id = f"chatcmpl-{new_hex()}"
        self._created = int(time.time())
        self._tools: dict[int, list[Any]] = {}  # block index -> [tool-call index, saw arguments]
        self._answer: dict[int, bool] = {}  # the format tool's block index -> saw its input
        self._usage: dict[str, Any] = {}
        self._started = False
        self._finished = False
        self.done = False

    def feed(self, data: bytes) -> list[Chunk]:
        """Consume streamed bytes; return the chunks they complete."""
        events = self._sse.feed(data)
        return self._decode(events) if events else []

    def finish(self) -> list[Chunk]:
        """End of stream: decode a trailing event; raise ProviderError if ``message_stop`` never came."""
        out = self._decode(self._sse.flush())
        if not self.done:
            raise ProviderError("Anthropic stream ended before message_stop", status=502, retryable=True)
        return out

    def _chunk(self, delta: Delta, finish: str | None = None) -> Chunk:
        choice: ChunkChoice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [choice],
        }

    def _begin(self, out: list[Chunk]) -> None:
        if not self._started:
            self._started = True
            out.append(self._chunk({"role": "assistant", "content": ""}))

    def _delta(self, out: list[Chunk], delta: Delta) -> None:
        self._begin(out)
        out.append(self._chunk(delta))

    def _add_usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            self._usage.update({k: v for k, v in usage.items() if v is not None})

    def _decode(self, events: list[SseEvent]) -> list[Chunk]:
        out: list[Chunk] = []
        for event in events:
            if self.done:
                break
            try:
                obj = orjson.loads(event.data)
            except orjson.JSONDecodeError:
                if event.event == "error":
                    raise anthropic_provider_error(None, event.data, secrets=self._secrets) from None
                raise malformed("stream event") from None
            if not isinstance(obj, dict):
                raise malformed("stream event")
            kind = obj.get("type") or event.event
            if kind == "error":
                raise anthropic_provider_error(None, obj.get("error") or obj, secrets=self._secrets)
            if kind == "message_start":
                message = obj.get("message")
                if isinstance(message, dict):
                    if isinstance(message.get("id"), str):
                        self._id = message["id"]
                    self._add_usage(message.get("usage"))
                self._begin(out)
            elif kind == "content_block_start":
                self._block_start(out, obj.get("index"), obj.get("content_block"))
            elif kind == "content_block_delta":
                self._block_delta(out, obj.get("index"), obj.get("delta"))
            elif kind == "content_block_stop":
                index = obj.get("index")
                tool = self._tools.get(index) if isinstance(index, int) else None
                if tool is not None and not tool[1]:
                    tool[1] = True  # no input deltas at all: arguments must still be JSON
                    self._delta(out, _args(tool[0], "{}"))
                if isinstance(index, int) and self._answer.get(index) is False:
                    self._answer[index] = True  # an answer with no input deltas is still JSON
                    self._delta(out, {"content": "{}"})
            elif kind == "message_delta":
                self._add_usage(obj.get("usage"))
                delta = obj.get("delta")
                reason = delta.get("stop_reason") if isinstance(delta, dict) else None
                if reason is not None and not self._finished:
                    self._finished = True
                    answered = reason == "tool_use" and self._answer and not self._tools
                    out.append(self._chunk({}, "stop" if answered else finish_reason(reason)))
            elif kind == "message_stop":
                if not self._finished:
                    self._finished = True
                    out.append(self._chunk({}, "tool_calls" if self._tools else "stop"))
                last = self._chunk({})
                last["choices"], last["usage"] = [], openai_usage(self._usage)
                out.append(last)
                self.done = True
            # ping and event types added later by Anthropic are ignored
        return out

    def _block_start(self, out: list[Chunk], index: Any, block: Any) -> None:
        if not isinstance(block, dict):
            return
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str) and block["text"]:
            self._delta(out, {"content": block["text"]})
        elif kind == "thinking" and isinstance(block.get("thinking"), str) and block["thinking"]:
            self._delta(out, {"reasoning_content": block["thinking"]})
        elif kind == "tool_use" and isinstance(index, int):
            call_id, name = tool_use(block, "stream event")
            ordinal = len(self._tools)
            arguments = block.get("input")
            initial = orjson.dumps(arguments).decode() if isinstance(arguments, dict) and arguments else ""
            if name == FORMAT_TOOL:  # the answer itself, as content
                self._answer[index] = bool(initial)
                if initial:
                    self._delta(out, {"content": initial})
                return
            self._tools[index] = [ordinal, bool(initial)]
            call: ToolCallDelta = {
                "index": ordinal,
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": initial},
            }
            self._delta(out, {"tool_calls": [call]})

    def _block_delta(self, out: list[Chunk], index: Any, delta: Any) -> None:
        if not isinstance(delta, dict):
            return
        kind = delta.get("type")
        if kind == "text_delta":
            text = delta.get("text")
            if isinstance(text, str) and text:
                self._delta(out, {"content": text})
        elif kind == "thinking_delta":
            thinking = delta.get("thinking")
            if isinstance(thinking, str) and thinking:
                self._delta(out, {"reasoning_content": thinking})
        elif kind == "input_json_delta":
            tool = self._tools.get(index) if isinstance(index, int) else None
            fragment = delta.get("partial_json")
            if isinstance(index, int) and index in self._answer and isinstance(fragment, str) and fragment:
                self._answer[index] = True
                self._delta(out, {"content": fragment})
            elif tool is not None and isinstance(fragment, str) and fragment:
                tool[1] = True
                self._delta(out, _args(tool[0], fragment))
        # signature_delta, citations_delta: not part of the canonical shape


def _args(ordinal: int, fragment: str) -> Delta:
    call: ToolCallDelta = {"index": ordinal, "function": {"arguments": fragment}}
    return {"tool_calls": [call]}


_THINKING_START = {"type": "thinking", "thinking": "", "signature": ""}  # no Anthropic model wrote it


def _frame(payload: dict[str, Any]) -> bytes:
    return sse_frame(orjson.dumps(payload), payload["type"])


class AnthropicStreamEncoder:
    """Canonical chunks -> Anthropic SSE events for an Anthropic-dialect client.

    ``message_start`` goes out with the first chunk (``input_tokens`` when known, else 0); runs of
    thinking (``reasoning_content`` or ``reasoning``) and of text, and tool calls, become content
    blocks; ``finish`` closes the open block and writes ``message_delta`` (stop reason, usage) and
    ``message_stop``.
    """

    __slots__ = (
        "_block",
        "_finished",
        "_id",
        "_input_tokens",
        "_kind",
        "_model",
        "_next",
        "_started",
        "_stop",
        "_tools",
        "_usage",
    )

    def __init__(self, model: str, *, input_tokens: int | None = None, message_id: str | None = None) -> None:
        self._model = model
        self._id = message_id or f"msg_{new_hex()}"
        self._input_tokens = input_tokens or 0
        self._started = False
        self._finished = False
        self._block: int | None = None  # index of the open content block
        self._kind: str | None = None  # "text" or "thinking" while such a block is open
        self._next = 0
        self._tools: dict[int, int] = {}  # OpenAI tool-call index -> block index
        self._stop: str | None = None
        self._usage: Mapping[str, Any] | None = None

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        message: dict[str, Any] = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self._input_tokens, "output_tokens": 0},
        }
        return _frame({"type": "message_start", "message": message})

    def _close(self) -> bytes:
        if self._block is None:
            return b""
        index, self._block, self._kind = self._block, None, None
        return _frame({"type": "content_block_stop", "index": index})

    def _open(self, block: dict[str, Any]) -> bytes:
        out = self._close()
        self._block, self._next = self._next, self._next + 1
        return out + _frame({"type": "content_block_start", "index": self._block, "content_block": block})

    def _text(self, text: str, kind: str = "text") -> bytes:
        """A piece of text (``kind`` "text") or of thinking, in a block of its kind."""
        out = b""
        if self._kind != kind:
            opening = {"type": "text", "text": ""} if kind == "text" else _THINKING_START
            out = self._open(dict(opening))
            self._kind = kind
        delta = (
            {"type": "text_delta", "text": text}
            if kind == "text"
            else {"type": "thinking_delta", "thinking": text}
        )
        return out + _frame({"type": "content_block_delta", "index": self._block, "delta": delta})

    def _tool(self, call: Mapping[str, Any]) -> bytes:
        out = b""
        key = call.get("index", 0)
        fn = call.get("function")
        fn = fn if isinstance(fn, dict) else {}
        if key not in self._tools:
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": call.get("id") or f"toolu_{new_hex()}",
                "name": fn.get("name") or "",
                "input": {},
            }
            out = self._open(block)
            self._tools[key] = self._next - 1
        arguments = fn.get("arguments")
        if isinstance(arguments, str) and arguments:
            delta = {"type": "input_json_delta", "partial_json": arguments}
            out += _frame({"type": "content_block_delta", "index": self._tools[key], "delta": delta})
        return out

    def encode(self, chunk: Chunk) -> bytes:
        """One canonical chunk -> the SSE events it implies (maybe none)."""
        if self._finished:
            return b""
        out = self._start()
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        choices = chunk.get("choices") or []
        for choice in choices[:1]:
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if isinstance(delta, dict):
                thinking = reasoning_text(delta)
                if thinking:
                    out += self._text(thinking, "thinking")
                for text in (delta.get("content"), delta.get("refusal")):
                    if isinstance(text, str) and text:
                        out += self._text(text)
                for call in delta.get("tool_calls") or ():
                    if isinstance(call, dict):
                        out += self._tool(call)
            if isinstance(choice, dict) and choice.get("finish_reason"):
                self._stop = stop_reason(choice["finish_reason"])
        return out

    def finish(self, usage: Mapping[str, Any] | None) -> bytes:
        """Close the open block; write ``message_delta`` (stop reason, usage) and ``message_stop``."""
        if self._finished:
            return b""
        out = self._start() + self._close()
        self._finished = True
        usage = usage or self._usage
        counts: dict[str, int] = anthropic_usage(usage) if usage else {"output_tokens": 0}
        stop = self._stop or ("tool_use" if self._tools else "end_turn")
        if stop == "end_turn" and self._tools:
            stop = "tool_use"
        delta = {"stop_reason": stop, "stop_sequence": None}
        out += _frame({"type": "message_delta", "delta": delta, "usage": counts})
        return out + _frame({"type": "message_stop"})

    def error(self, message: str, error_type: str = "api_error") -> bytes:
        """An ``event: error`` frame, for a stream that breaks after its first byte."""
        self._finished = True
        kind = anthropic_error_type(500, error_type)
        return _frame({"type": "error", "error": {"type": kind, "message": message}})
