"""Gemini ``streamGenerateContent?alt=sse`` streams -> canonical ``chat.completion.chunk`` dicts.

Each SSE event is a whole ``GenerateContentResponse`` holding the next parts of each candidate.
There is no ``[DONE]``: the stream ends when the connection closes, after the chunk that carries
``finishReason``. ``usageMetadata`` may ride on every chunk (running totals) or only the last, so
the latest one is kept and sent as the usage chunk at the end of the stream.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from turnout.ids import new_hex
from turnout.translate.errors import ProviderError
from turnout.translate.gemini import (
    blocked_message,
    candidate_parts,
    finish_reason,
    gemini_error,
    malformed,
    openai_usage,
)
from turnout.translate.sse import SseEvent, SseParser
from turnout.translate.types import Chunk, ChunkChoice, Delta, FunctionDelta, ToolCallDelta


class GeminiStreamDecoder:
    """Gemini SSE bytes (any split, CRLF included) -> canonical chunks.

    Emits, per candidate (its ``index`` is the choice's): a first chunk with the assistant role;
    text deltas (thought parts as ``reasoning``); one tool-call delta per ``functionCall`` (Gemini
    sends each call whole: id, name and all its arguments at once); a ``finish_reason`` chunk. At
    the end of the stream, a usage chunk (``choices: []``). An ``error`` event raises ProviderError;
    so does a stream that closes before any candidate finished.
    """

    __slots__ = ("_created", "_finished", "_id", "_model", "_secrets", "_sse", "_tools", "_usage", "done")

    def __init__(self, model: str, *, secrets: tuple[str, ...] = ()) -> None:
        self._sse = SseParser()
        self._model = model
        self._secrets = secrets  # the credential's values, scrubbed from error events
        self._id = f"chatcmpl-{new_hex()}"
        self._created = int(time.time())
        self._tools: dict[int, int] = {}  # candidate index -> tool calls so far (the role is sent)
        self._finished: set[int] = set()
        self._usage: Any = None
        self.done = False

    def feed(self, data: bytes) -> list[Chunk]:
        """Consume streamed bytes; return the chunks they complete."""
        events = self._sse.feed(data)
        return self._decode(events) if events else []

    def finish(self) -> list[Chunk]:
        """End of stream: decode a trailing event, then the usage chunk; raise ProviderError if no
        candidate ever finished (the connection closed mid-answer)."""
        out = self._decode(self._sse.flush())
        if not self._finished:
            raise ProviderError("Gemini stream ended before a finishReason", status=502, retryable=True)
        if self._usage is not None and not self.done:
            last = self._chunk(0, {})
            last["choices"], last["usage"] = [], openai_usage(self._usage)
            out.append(last)
        self.done = True
        return out

    def _chunk(self, index: int, delta: Delta, finish: str | None = None) -> Chunk:
        choice: ChunkChoice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [choice],
        }

    def _begin(self, out: list[Chunk], index: int) -> None:
        if index not in self._tools:
            self._tools[index] = 0
            out.append(self._chunk(index, {"role": "assistant", "content": ""}))

    def _decode(self, events: list[SseEvent]) -> list[Chunk]:
        out: list[Chunk] = []
        for event in events:
            if self.done:
                break
            try:
                obj = orjson.loads(event.data)
            except orjson.JSONDecodeError:
                raise malformed("stream event") from None
            if not isinstance(obj, dict):
                raise malformed("stream event")
            if "error" in obj:
                raise gemini_error(None, obj["error"], secrets=self._secrets)
            if isinstance(obj.get("usageMetadata"), dict):
                self._usage = obj["usageMetadata"]
            candidates = obj.get("candidates")
            if isinstance(candidates, list) and candidates:
                for position, candidate in enumerate(candidates):
                    self._candidate(out, position, candidate)
            elif (
                refusal := blocked_message(obj.get("promptFeedback"))
            ) is not None and 0 not in self._finished:
                self._begin(out, 0)
                self._finished.add(0)
                out.append(self._chunk(0, {"refusal": refusal}))
                out.append(self._chunk(0, {}, "content_filter"))
        return out

    def _candidate(self, out: list[Chunk], position: int, candidate: Any) -> None:
        if not isinstance(candidate, dict):
            raise malformed("stream candidate")
        index = candidate.get("index")
        index = index if isinstance(index, int) and not isinstance(index, bool) and index >= 0 else position
        if index in self._finished:
            return
        self._begin(out, index)
        texts, thoughts, calls = candidate_parts(candidate)
        if thoughts:
            out.append(self._chunk(index, {"reasoning": "".join(thoughts)}))
        if texts:
            out.append(self._chunk(index, {"content": "".join(texts)}))
        if calls:
            deltas: list[ToolCallDelta] = []
            for call in calls:
                fn = call["function"]
                function: FunctionDelta = {"name": fn["name"], "arguments": fn["arguments"]}
                deltas.append(
                    {"index": self._tools[index], "id": call["id"], "type": "function", "function": function}
                )
                self._tools[index] += 1
            out.append(self._chunk(index, {"tool_calls": deltas}))
        reason = candidate.get("finishReason")
        if isinstance(reason, str) and reason and reason != "FINISH_REASON_UNSPECIFIED":
            self._finished.add(index)
            out.append(self._chunk(index, {}, finish_reason(reason, self._tools[index] > 0)))
