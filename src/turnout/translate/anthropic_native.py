"""Anthropic Messages passed on untouched (:mod:`turnout.translate.passthrough`): an Anthropic-dialect
client's body to an Anthropic provider, and its answer back, with only ``model`` rewritten.

What the canonical translation would lose goes through as the client wrote it: ``thinking`` blocks
and their signatures, ``redacted_thinking``, ``cache_control`` (with ``ttl``), ``top_k``,
``stop_sequences``, ``metadata.user_id``, server tools, and the ``anthropic-version`` and
``anthropic-beta`` headers. Turnout's own ``metadata`` ids (``conversation_id``, ``agent_id``,
``task_id``) are read for the record and never sent upstream: Anthropic accepts only ``user_id``;
nor are Turnout's own fields (``fallbacks``, ``task_type``, ``requirements``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from turnout.errors import NeedsNativeFormat
from turnout.translate.anthropic import anthropic_error_type
from turnout.translate.openai import EXTENSION_FIELDS
from turnout.translate.passthrough import NativeBody, splice_model
from turnout.translate.sse import sse_frame

FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta")
ANTHROPIC_METADATA = frozenset({"user_id"})  # the metadata Anthropic takes; the rest is Turnout's
TURNOUT_FIELDS = EXTENSION_FIELDS - {"metadata"}  # Turnout's own body fields but metadata: never sent
_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")
_MESSAGE_START = b"message_start"


class MessagesRelay:
    """An Anthropic SSE stream passed on as it arrives: events go out untouched once the
    ``message_start`` event (the one that names the model) has gone out with the public name."""

    __slots__ = ("_model", "_passing", "_pending")

    def __init__(self, model: str) -> None:
        self._model = model
        self._pending = b""
        self._passing = False

    def feed(self, data: bytes) -> bytes:
        """``data`` to send: as is after ``message_start``; until then, whole events only."""
        if self._passing:
            return data
        buf, out = self._pending + data, b""
        while (end := _EVENT_END.search(buf)) is not None:
            event, buf = buf[: end.end()], buf[end.end() :]
            if _MESSAGE_START in event:
                self._passing, self._pending = True, b""
                return out + _renamed(event, self._model) + buf
            out += event
        self._pending = buf
        return out

    def error(self, message: str, error_type: str) -> bytes:
        """An ``event: error`` frame in Anthropic's shape (an incomplete event held back is dropped)."""
        self._pending = b""
        body = {"type": "error", "error": {"type": anthropic_error_type(500, error_type), "message": message}}
        return sse_frame(orjson.dumps(body), "error")


def _renamed(event: bytes, model: str) -> bytes:
    """A ``message_start`` event with ``message.model`` set to ``model`` (its other bytes kept
    where the model's value can be spliced in)."""
    spliced = splice_model(event, model)
    if spliced is not None:
        return spliced
    lines = event.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    data = b"\n".join(line[5:].lstrip(b" ") for line in lines if line.startswith(b"data:"))
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return event  # not JSON: the decoder reading the same bytes fails the stream
    message = obj.get("message") if isinstance(obj, dict) else None
    if not isinstance(message, dict):
        return event
    message["model"] = model
    return sse_frame(orjson.dumps(obj), "message_start")


class MessagesFormat:
    """``POST /v1/messages``: a ``message`` object, or an SSE stream of Anthropic events."""

    name = "anthropic.messages"

    def answer(self, payload: bytes, model: str) -> bytes:
        """The provider's ``message`` with ``model`` set to the public name."""
        spliced = splice_model(payload, model)
        if spliced is not None:
            return spliced
        try:
            obj = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return payload
        if not isinstance(obj, dict):
            return payload
        obj["model"] = model
        return orjson.dumps(obj)

    def relay(self, model: str) -> MessagesRelay:
        return MessagesRelay(model)


class CountTokensFormat(MessagesFormat):
    """``POST /v1/messages/count_tokens``: ``{"input_tokens": n}``, which names no model."""

    name = "anthropic.count_tokens"

    def answer(self, payload: bytes, model: str) -> bytes:
        return payload


MESSAGES = MessagesFormat()
COUNT_TOKENS = CountTokensFormat()


def native_body(
    body: dict[str, Any],
    raw: bytes,
    headers: Mapping[str, str],
    fmt: MessagesFormat = MESSAGES,
    beyond: NeedsNativeFormat | None = None,
) -> NativeBody:
    """A validated Anthropic body as a ``NativeBody``: its raw bytes kept unless Turnout's own
    ``metadata`` ids must be taken out, and the client's ``anthropic-*`` headers to forward;
    ``beyond``: what its canonical translation left out (only an Anthropic provider can serve it)."""
    forwarded = {name: value for name in FORWARDED_HEADERS if (value := headers.get(name))}
    metadata = body.get("metadata")
    own_metadata = isinstance(metadata, dict) and any(key not in ANTHROPIC_METADATA for key in metadata)
    if not own_metadata and not any(name in body for name in TURNOUT_FIELDS):
        return NativeBody(fmt, body, raw, forwarded, beyond)
    upstream = {key: value for key, value in body.items() if key != "metadata" and key not in TURNOUT_FIELDS}
    if isinstance(metadata, dict):
        kept = {key: value for key, value in metadata.items() if key in ANTHROPIC_METADATA}
        if kept:
            upstream["metadata"] = kept
    elif metadata is not None:
        upstream["metadata"] = metadata
    return NativeBody(fmt, upstream, None, forwarded, beyond)
