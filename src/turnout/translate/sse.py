"""Incremental Server-Sent-Events parsing and framing, on bytes.

The parser follows the WHATWG ``text/event-stream`` rules that matter for LLM streams: lines end
with ``\\n``, ``\\r\\n`` or ``\\r``; a blank line ends an event; ``data:`` lines of one event are
joined with ``\\n``; lines starting with ``:`` are comments (OpenRouter's ``: OPENROUTER PROCESSING``
keep-alives) and are dropped; ``id:``/``retry:`` and unknown fields are ignored. Chunks may split
anywhere, including inside a ``\\r\\n`` pair or a multi-byte UTF-8 character.

Work is done with ``bytes`` methods (``find``/``split``/``replace``), never per character; the common
case, one ``data: {...}`` line per event, takes a fast path.
"""

from __future__ import annotations

from dataclasses import dataclass

_BOM = b"\xef\xbb\xbf"
_DATA_PREFIX = b"data: "


@dataclass(slots=True)
class SseEvent:
    """One dispatched event: its ``event:`` name (None when absent) and its joined ``data``."""

    event: str | None
    data: str


class SseParser:
    """Feed bytes as they arrive; get back the events they complete."""

    __slots__ = ("_buf", "_cr", "_started")

    def __init__(self) -> None:
        self._buf = bytearray()  # normalized (LF-only) bytes of the event in progress
        self._cr = False  # the last chunk ended with a CR that may be half of a CRLF
        self._started = False

    def feed(self, data: bytes) -> list[SseEvent]:
        """Consume ``data`` (any split); return the events whose terminating blank line it holds."""
        if not data:
            return []
        if self._cr:
            data = b"\r" + data
            self._cr = False
        if not self._started:
            if len(self._buf) + len(data) < 3 and _BOM.startswith(bytes(self._buf) + data):
                self._buf += data  # maybe a BOM still arriving; nothing to parse yet
                return []
            self._started = True
            if self._buf:
                data, self._buf = bytes(self._buf) + data, bytearray()
            if data.startswith(_BOM):
                data = data[3:]
        if b"\r" in data:
            if data.endswith(b"\r"):
                data = data[:-1]
                self._cr = True
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buf = self._buf
        if not buf and data.endswith(b"\n\n"):  # the usual case: whole events in one chunk
            return _parse_blocks(data[:-2])
        start = len(buf) - 1 if buf else 0
        buf += data
        end = buf.rfind(b"\n\n", start)
        if end < 0:
            return []
        block = bytes(buf[:end])
        del buf[: end + 2]
        return _parse_blocks(block)

    def flush(self) -> list[SseEvent]:
        """End of stream: parse what remains as a last event, even without its blank line.

        The SSE spec discards such a tail; LLM servers sometimes end on ``data: [DONE]\\n`` (or with
        no newline at all), so the lenient reading is the useful one.
        """
        self._cr = False
        if not self._buf:
            return []
        rest = bytes(self._buf)
        self._buf = bytearray()
        if not self._started:
            self._started = True
            if rest.startswith(_BOM):
                rest = rest[3:]
        return _parse_blocks(rest)


def _parse_blocks(chunk: bytes) -> list[SseEvent]:
    events: list[SseEvent] = []
    for block in chunk.split(b"\n\n"):
        if not block:
            continue
        if block.startswith(_DATA_PREFIX) and b"\n" not in block:
            events.append(SseEvent(None, block[6:].decode("utf-8", "replace")))
            continue
        event = _parse_block(block)
        if event is not None:
            events.append(event)
    return events


def _parse_block(block: bytes) -> SseEvent | None:
    name: str | None = None
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line[0] == 0x3A:  # blank, or ":" comment
            continue
        field, colon, value = line.partition(b":")
        if colon and value.startswith(b" "):
            value = value[1:]
        if field == b"data":
            data.append(value)
        elif field == b"event":
            name = value.decode("utf-8", "replace") or None
    if not data:
        return None
    return SseEvent(name, b"\n".join(data).decode("utf-8", "replace"))


def sse_frame(data: bytes, event: str | None = None) -> bytes:
    """Frame ``data`` as one SSE event (multi-line data becomes several ``data:`` lines)."""
    if b"\n" in data or b"\r" in data:
        lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        body = b"".join(b"data: " + line + b"\n" for line in lines)
    else:
        body = b"data: " + data + b"\n"
    if event:
        return b"event: " + event.encode() + b"\n" + body + b"\n"
    return body + b"\n"
