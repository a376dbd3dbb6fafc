"""Pass-through: a client's request sent on in its own wire format, when the provider of an attempt
speaks that format, instead of through the canonical (OpenAI Chat Completions) shapes.

Translation loses what the canonical model has no room for (Anthropic's signed ``thinking`` blocks,
``cache_control``, ``top_k`` ...). So a dialect that can be passed on keeps the client's body next to
its canonical translation as a ``NativeBody``: routing, guards and records still read the canonical
one; an adapter that speaks the format (``native_request``) sends the native one, ``model`` swapped for
the provider's id; the answer goes back as the provider wrote it, ``model`` swapped for the public
name the client sees (``NativeFormat``). An attempt on another provider uses the canonical body.

A format is an object (``anthropic_native.MESSAGES``; the OpenAI Responses API can be another), so
nothing below the API layer switches on dialect names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from turnout.errors import NeedsNativeFormat


class StreamRelay(Protocol):
    """Passes a native stream's bytes on as they arrive, rewriting only what names the model."""

    def feed(self, data: bytes) -> bytes:
        """The bytes to send for ``data`` (held back only while a model-naming event is incomplete)."""
        ...

    def error(self, message: str, error_type: str) -> bytes:
        """The format's error event, for a stream that broke after its first byte."""
        ...


class NativeFormat(Protocol):
    """A wire format a client body can be passed on in (``name`` is what adapters dispatch on)."""

    name: str

    def answer(self, payload: bytes, model: str) -> bytes:
        """A whole answer as the provider wrote it, ``model`` set to the client-facing name."""
        ...

    def relay(self, model: str) -> StreamRelay:
        """A fresh relay for one streamed answer."""
        ...


@dataclass(frozen=True, slots=True)
class NativeBody:
    """The client's request in its own format: the parsed ``body``, the ``raw`` bytes it came as
    (None when the body was changed, so it must be serialised again) and the client headers that go
    with it upstream (e.g. ``anthropic-beta``)."""

    format: NativeFormat
    body: Mapping[str, Any]
    raw: bytes | None
    headers: Mapping[str, str]
    # what the canonical translation left out (a document, a server tool): a provider of another
    # format cannot serve the call, and failover passes over its models with this error
    beyond: NeedsNativeFormat | None = None


_MODEL_KEY = b'"model"'
_MODEL_MEMBER = re.compile(rb'"model"\s*:\s*("(?:[^"\\]|\\.)*")')
# "model" however a JSON string may spell it (a letter may be written as a \u escape)
_ANY_MODEL = re.compile(rb'"(?:m|\\u006[dD])(?:o|\\u006[fF])(?:d|\\u0064)(?:e|\\u0065)(?:l|\\u006[cC])"')


def splice_model(raw: bytes, model: str, expected: str | None = None) -> bytes | None:
    """``raw`` (a JSON object) with the string value of its ``model`` member replaced by ``model``,
    the other bytes untouched; None when that member cannot be found for certain.

    Certain: the string ``"model"`` occurs once in the bytes, however spelled, and is followed by
    ``:`` and a string (equal to ``expected`` when given). Inside a JSON string a quote is escaped, so
    an occurrence followed by ``:`` is a key, and a nested ``model`` key beside the top-level one would
    be a second occurrence. One C-level scan of the bytes: no parse, no serialisation."""
    at = raw.find(_MODEL_KEY)
    if at < 0 or len(_ANY_MODEL.findall(raw)) != 1:
        return None
    found = _MODEL_MEMBER.match(raw, at)
    if found is None or (expected is not None and orjson.loads(found.group(1)) != expected):
        return None
    return raw[: found.start(1)] + orjson.dumps(model) + raw[found.end(1) :]


def body_with_model(native: NativeBody, model: str) -> bytes:
    """The native body to send, its top-level ``model`` set to ``model``: the client's bytes with
    the value spliced in where that is certain (``splice_model``), else the body serialised again."""
    asked = native.body.get("model")
    if native.raw is not None and isinstance(asked, str):
        spliced = splice_model(native.raw, model, asked)
        if spliced is not None:
            return spliced
    return orjson.dumps({**native.body, "model": model})
