"""Bedrock ConverseStream (``application/vnd.amazon.eventstream``) -> canonical chunks.

The stream is binary AWS event-stream frames, decoded with botocore's ``EventStreamBuffer`` (which
checks both CRCs). Each frame has headers (``:message-type`` ``event`` or ``exception``,
``:event-type`` / ``:exception-type``) and a JSON payload; the events come in the order
``messageStart``, per content block ``contentBlockStart`` (tool use only), ``contentBlockDelta``s,
``contentBlockStop``, then ``messageStop`` (the stop reason) and ``metadata`` (usage).

Converse numbers content blocks (text and tool use alike); OpenAI numbers tool calls only, so each
toolUse block gets the next tool-call index, as in the Anthropic decoder.
"""

from __future__ import annotations

import struct
import time
from typing import Any

import orjson
from botocore.eventstream import EventStreamBuffer, EventStreamMessage, ParserError

from turnout.ids import new_hex
from turnout.translate.bedrock import bedrock_error, converse_usage, finish_reason, malformed
from turnout.translate.errors import ProviderError
from turnout.translate.types import Chunk, ChunkChoice, Delta, ToolCallDelta

CONTENT_TYPE = "application/vnd.amazon.eventstream"


class BedrockStreamDecoder:
    """Event-stream bytes (any split) -> canonical chunks.

    Emits: the assistant role on ``messageStart``; text and ``reasoning_content`` deltas; a tool_calls delta
    (id, name) per toolUse block, then its input fragments as argument deltas; a ``finish_reason``
    chunk on ``messageStop``; a usage chunk (``choices: []``) on ``metadata``. An exception frame
    raises ProviderError; so does an end of stream before ``messageStop``.
    """

    __slots__ = ("_buffer", "_created", "_id", "_model", "_secrets", "_started", "_stopped", "_tools", "done")

    def __init__(self, model: str, *, secrets: tuple[str, ...] = ()) -> None:
        self._buffer = EventStreamBuffer()
        self._model = model
        self._secrets = secrets  # the credential's values, scrubbed from exception frames
        self._id = f"chatcmpl-{new_hex()}"
        self._created = int(time.time())
        self._tools: dict[int, list[Any]] = {}  # block index -> [tool-call index, saw input]
        self._started = False
        self._stopped = False  # messageStop seen
        self.done = False  # metadata seen after messageStop: nothing more is read

    def feed(self, data: bytes) -> list[Chunk]:
        """Consume streamed bytes; return the chunks of the frames they complete."""
        self._buffer.add_data(data)
        try:
            messages = list(self._buffer)
        except (ParserError, KeyError, ValueError, struct.error):  # a bad CRC, length or header
            raise malformed("event stream frame") from None
        out: list[Chunk] = []
        for message in messages:
            if not self.done:
                self._frame(message, out)
        return out

    def finish(self) -> list[Chunk]:
        """End of stream: raise ProviderError if ``messageStop`` never came (a cut stream)."""
        if not self._stopped:
            raise ProviderError("Bedrock stream ended before messageStop", status=502, retryable=True)
        return []

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

    def _frame(self, message: EventStreamMessage, out: list[Chunk]) -> None:
        headers = message.headers
        kind = headers.get(":message-type")
        payload: Any
        try:
            payload = orjson.loads(message.payload) if message.payload else {}
        except orjson.JSONDecodeError:
            payload = None
        if kind in ("exception", "error"):
            name = headers.get(":exception-type") or headers.get(":error-code")
            text = payload.get("message") if isinstance(payload, dict) else None
            text = text or headers.get(":error-message") or message.payload.decode("utf-8", "replace")
            raise bedrock_error(name, text, secrets=self._secrets)
        if not isinstance(payload, dict):
            raise malformed("stream event")
        event = headers.get(":event-type")
        if event == "messageStart":
            self._begin(out)
        elif event == "contentBlockStart":
            self._block_start(out, payload.get("contentBlockIndex"), payload.get("start"))
        elif event == "contentBlockDelta":
            self._block_delta(out, payload.get("contentBlockIndex"), payload.get("delta"))
        elif event == "contentBlockStop":
            index = payload.get("contentBlockIndex")
            tool = self._tools.get(index) if isinstance(index, int) else None
            if tool is not None and not tool[1]:
                tool[1] = True  # no input at all: the arguments must still be JSON
                self._delta(out, _args(tool[0], "{}"))
        elif event == "messageStop" and not self._stopped:
            self._stopped = True
            self._begin(out)
            out.append(self._chunk({}, finish_reason(payload.get("stopReason"), bool(self._tools))))
        elif event == "metadata" and self._stopped:
            last = self._chunk({})
            last["choices"], last["usage"] = [], converse_usage(payload.get("usage"))
            out.append(last)
            self.done = True
        # event types added later by AWS are ignored

    def _block_start(self, out: list[Chunk], index: Any, start: Any) -> None:
        tool = start.get("toolUse") if isinstance(start, dict) else None
        if not isinstance(tool, dict) or not isinstance(index, int):
            return
        ordinal = len(self._tools)
        self._tools[index] = [ordinal, False]
        call: ToolCallDelta = {
            "index": ordinal,
            "id": tool.get("toolUseId") or f"tooluse_{new_hex()}",
            "type": "function",
            "function": {"name": tool.get("name") or "", "arguments": ""},
        }
        self._delta(out, {"tool_calls": [call]})

    def _block_delta(self, out: list[Chunk], index: Any, delta: Any) -> None:
        if not isinstance(delta, dict):
            return
        text = delta.get("text")
        if isinstance(text, str):
            if text:
                self._delta(out, {"content": text})
            return
        tool_use = delta.get("toolUse")
        if isinstance(tool_use, dict):
            tool = self._tools.get(index)
            fragment = tool_use.get("input")
            if tool is not None and isinstance(fragment, str) and fragment:
                tool[1] = True
                self._delta(out, _args(tool[0], fragment))
            return
        reasoning = delta.get("reasoningContent")
        if isinstance(reasoning, dict) and isinstance(reasoning.get("text"), str) and reasoning["text"]:
            self._delta(out, {"reasoning_content": reasoning["text"]})


def _args(ordinal: int, fragment: str) -> Delta:
    call: ToolCallDelta = {"index": ordinal, "function": {"arguments": fragment}}
    return {"tool_calls": [call]}
