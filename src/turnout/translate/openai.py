"""The OpenAI Chat Completions wire format <-> the canonical model, which it is.

This is the hot path: a request is a shallow copy of the canonical body (Turnout's extension fields
dropped, ``model`` swapped for the provider's id), and stream chunks pass through after one
``orjson.loads``. Answers get ``model`` = the catalog id, so clients see the id they asked for, not
the provider's spelling of it. Used by every OpenAI-compatible provider (OpenAI, OpenRouter, Azure,
vLLM, llama.cpp, LM Studio, ...).
"""

from __future__ import annotations

from typing import Any, cast

import orjson

from turnout.translate.errors import ProviderError, error_from_stream, load_object, malformed
from turnout.translate.sse import SseEvent, SseParser
from turnout.translate.types import (
    ChatRequest,
    Chunk,
    Completion,
    EmbeddingsRequest,
    EmbeddingsResponse,
    Message,
)

# Turnout's own request fields; never sent upstream (OpenAI accepts ``metadata`` only with ``store``).
EXTENSION_FIELDS = frozenset({"metadata", "fallbacks", "task_type", "requirements"})
_DROP_ALWAYS = EXTENSION_FIELDS | {"model"}
_DROP_NO_STREAM = _DROP_ALWAYS | {"stream", "stream_options"}
_DONE = "[DONE]"


def null_contents_as_text(messages: list[Message]) -> list[Message]:
    """``messages`` with every ``content: null`` (an assistant turn that only called tools, as OpenAI
    and the Anthropic translation write it) sent as ``""``. OpenAI accepts both; llama.cpp's server
    (500 "Expected 'content' to be a string or an array"), LM Studio and others accept only a string.
    The list is copied only when a message needs it."""
    fixed: list[Message] | None = None
    for index, message in enumerate(messages):
        if type(message) is dict and "content" in message and message["content"] is None:
            if fixed is None:
                fixed = list(messages)
            fixed[index] = {**message, "content": ""}
    return messages if fixed is None else fixed


def chat_body(body: ChatRequest, model: str | None, *, stream: bool) -> dict[str, Any]:
    """Canonical body -> the body to send: ``model`` set (left out when None), extension fields
    dropped; with ``stream``, usage asked for in the last chunk."""
    out: dict[str, Any] = {}
    if model is not None:
        out["model"] = model
    drop = _DROP_ALWAYS if stream else _DROP_NO_STREAM
    for key, value in body.items():
        if key not in drop:
            out[key] = value
    messages = out.get("messages")
    if type(messages) is list:
        out["messages"] = null_contents_as_text(messages)
    if stream:
        out["stream"] = True
        options = body.get("stream_options")
        if isinstance(options, dict):
            if options.get("include_usage") is not True:
                out["stream_options"] = {**options, "include_usage": True}
        else:
            out["stream_options"] = {"include_usage": True}
    return out


def embeddings_body(body: EmbeddingsRequest, model: str | None) -> dict[str, Any]:
    """Canonical embeddings body -> the body to send (``model`` set, extension fields dropped)."""
    out: dict[str, Any] = {}
    if model is not None:
        out["model"] = model
    for key, value in body.items():
        if key not in _DROP_ALWAYS:
            out[key] = value
    return out


def completion(payload: bytes, model_id: str, secrets: tuple[str, ...]) -> Completion:
    """A provider's ``chat.completion`` -> canonical (``model`` = catalog id). An error body
    (OpenRouter may answer 200 with one) raises ProviderError, scrubbed of ``secrets``."""
    obj = load_object(payload, "chat completion")
    error = obj.get("error")
    if error:
        raise error_from_stream(error, secrets=secrets)
    if not well_formed(obj, "message"):
        raise malformed("chat completion")
    obj["model"] = model_id
    return cast(Completion, obj)  # what Turnout reads checked; the rest passes on as written


def embeddings(payload: bytes, model_id: str, secrets: tuple[str, ...]) -> EmbeddingsResponse:
    """A provider's embeddings answer -> canonical (``model`` = catalog id)."""
    obj = load_object(payload, "embeddings response")
    error = obj.get("error")
    if error:
        raise error_from_stream(error, secrets=secrets)
    usage = obj.get("usage")
    if not isinstance(obj.get("data"), list) or not (usage is None or isinstance(usage, dict)):
        raise malformed("embeddings response")
    obj["model"] = model_id
    return cast(EmbeddingsResponse, obj)  # its data checked; the rest passes on as written


class OpenAIStreamDecoder:
    """SSE ``data:`` JSON chunks -> canonical chunks; ``data: [DONE]`` ends the stream.

    A chunk carrying ``error`` (OpenRouter, OpenAI, SGLang) or vLLM's ``{"object": "error"}`` raises
    ProviderError; so does an end of stream before ``[DONE]``.
    """

    __slots__ = ("_drop_empty", "_model_id", "_secrets", "_sse", "done")

    def __init__(self, model_id: str, secrets: tuple[str, ...] = (), *, drop_empty: bool = False) -> None:
        self._sse = SseParser()
        self._model_id = model_id
        self._secrets = secrets  # the credential's values, scrubbed from error chunks
        self._drop_empty = drop_empty  # drop chunks with no choices and no usage (Azure filter results)
        self.done = False

    def feed(self, data: bytes) -> list[Chunk]:
        """Consume streamed bytes; return the chunks they complete."""
        events = self._sse.feed(data)
        return self._decode(events) if events else []

    def finish(self) -> list[Chunk]:
        """End of stream: parse a trailing event without blank line; raise if ``[DONE]`` never came."""
        out = self._decode(self._sse.flush())
        if not self.done:
            raise ProviderError("stream ended before completion", status=502, retryable=False)
        return out

    def _decode(self, events: list[SseEvent]) -> list[Chunk]:
        out: list[Chunk] = []
        for event in events:
            if self.done:
                break
            data = event.data
            if data == _DONE:
                self.done = True
                break
            try:
                chunk = orjson.loads(data)
            except orjson.JSONDecodeError:
                if event.event == "error":
                    raise error_from_stream(data, secrets=self._secrets) from None
                raise malformed("stream chunk") from None
            if not isinstance(chunk, dict):
                raise malformed("stream chunk")
            error = chunk.get("error")
            if error or event.event == "error" or chunk.get("object") == "error":
                raise error_from_stream(error or chunk, secrets=self._secrets)
            if self._drop_empty and not chunk.get("choices") and not chunk.get("usage"):
                continue
            if not well_formed(chunk, "delta"):
                raise malformed("stream chunk")
            chunk["model"] = self._model_id
            out.append(cast(Chunk, chunk))  # what Turnout reads checked; passed on as written
        return out


def well_formed(obj: dict[str, Any], key: str) -> bool:
    """Whether a completion (``key`` "message") or stream chunk ("delta") has the shape of what the
    gateway reads from it, pricing, recording and translating to other dialects: ``choices`` a list
    (a chunk may leave it out) of objects, each ``finish_reason`` a string, each message or delta an
    object whose ``content`` is text (in a whole message also a list of parts, as some servers write
    it) and whose ``tool_calls`` are objects with a ``function`` object of text ``name`` and
    ``arguments``; ``usage`` an object.
    Anything else is a malformed answer, a 502 the failover retries and the record attributes, not a
    crash mid-answer. A few type checks a chunk, nothing next to its ``orjson.loads``."""
    usage = obj.get("usage")
    if usage is not None and not isinstance(usage, dict):
        return False
    choices = obj.get("choices")
    if not isinstance(choices, list):
        return choices is None and key == "delta"
    for choice in choices:
        if not isinstance(choice, dict):
            return False
        reason = choice.get("finish_reason")
        if reason is not None and not isinstance(reason, str):
            return False
        message = choice.get(key)
        if message is None:
            continue
        if not isinstance(message, dict):
            return False
        content = message.get("content")
        if not (content is None or isinstance(content, str)) and not (
            key == "message" and isinstance(content, list) and all(isinstance(p, dict) for p in content)
        ):
            return False
        calls = message.get("tool_calls")
        if calls is not None and not (isinstance(calls, list) and all(map(_tool_call, calls))):
            return False
    return True


def _tool_call(call: Any) -> bool:
    """An object with a text ``id`` and an integer ``index``, if any, whose ``function``, if any, is
    an object with a text ``name`` and ``arguments``."""
    if not isinstance(call, dict) or not isinstance(call.get("id", ""), (str, type(None))):
        return False
    index = call.get("index", 0)  # a stream's calls are told apart by it
    if type(index) is not int:
        return False
    function = call.get("function")
    if function is None:
        return True
    if not isinstance(function, dict):
        return False
    name, arguments = function.get("name"), function.get("arguments")
    return (name is None or isinstance(name, str)) and (arguments is None or isinstance(arguments, str))
