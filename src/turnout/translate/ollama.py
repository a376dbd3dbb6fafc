"""Ollama's native API (``/api/chat``, NDJSON streams, ``/api/embed``) <-> the canonical model.

Canonical (OpenAI) requests become Ollama ones: content parts are flattened to text plus an
``images`` list of base64 strings (only ``data:`` URLs; Ollama cannot fetch remote images), tool
call ``arguments`` JSON strings become objects, tool results name their tool (``tool_name``), and
sampling fields move under ``options``. Answers come back as ``chat.completion`` objects and
chunks with generated ``chatcmpl-``/``call_`` ids and JSON-string tool arguments.
"""

from __future__ import annotations

import base64
import sys
import time
from array import array
from collections.abc import Mapping
from typing import Any

import orjson

from turnout.errors import InvalidRequest
from turnout.ids import new_hex
from turnout.translate.canonical_read import is_int
from turnout.translate.errors import ProviderError, error_from_stream, load_object, malformed
from turnout.translate.types import (
    ChatRequest,
    Chunk,
    Completion,
    Delta,
    EmbeddingsRequest,
    EmbeddingsResponse,
    Message,
    ToolCall,
    Usage,
)

_OPTION_FIELDS = ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty")
_FINISH = {"stop": "stop", "length": "length"}


def _content(content: Any, where: str) -> tuple[str, list[str]]:
    """OpenAI content (string or parts) -> (text, base64 images)."""
    if content is None:
        return "", []
    if isinstance(content, str):
        return content, []
    texts: list[str] = []
    images: list[str] = []
    for j, part in enumerate(content):
        kind = part.get("type")
        if kind == "text":
            texts.append(part.get("text") or "")
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str) or not url.startswith("data:") or ";base64," not in url:
                raise InvalidRequest(
                    "Ollama models take images only as base64 data: URLs", param=f"{where}.content[{j}]"
                )
            images.append(url.split(";base64,", 1)[1])
        else:
            raise InvalidRequest(f"content part type '{kind}' is not supported by Ollama", param=where)
    return "\n".join(texts), images


def _arguments(raw: Any) -> dict[str, Any]:
    """OpenAI's JSON-string arguments -> the object Ollama wants ({} when not a JSON object)."""
    if isinstance(raw, dict):
        return raw
    try:
        value = orjson.loads(raw) if raw else {}
    except (orjson.JSONDecodeError, TypeError):
        return {}
    return value if isinstance(value, dict) else {}


def to_ollama_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Canonical messages -> Ollama messages."""
    out: list[dict[str, Any]] = []
    tool_names: dict[str, str] = {}
    for i, msg in enumerate(messages):
        role = msg.get("role")
        text, images = _content(msg.get("content"), f"messages[{i}]")
        item: dict[str, Any] = {"role": "system" if role == "developer" else role, "content": text}
        if images:
            item["images"] = images
        if role == "assistant" and msg.get("tool_calls"):
            calls = []
            for call in msg["tool_calls"]:
                fn: Any = call.get("function") or {}
                if call.get("id"):
                    tool_names[call["id"]] = fn.get("name", "")
                calls.append(
                    {"function": {"name": fn.get("name", ""), "arguments": _arguments(fn.get("arguments"))}}
                )
            item["tool_calls"] = calls
        elif role == "tool":
            name = tool_names.get(msg.get("tool_call_id") or "") or msg.get("name")
            if name:
                item["tool_name"] = name
        elif role == "function":  # legacy function result
            item["role"] = "tool"
            if msg.get("name"):
                item["tool_name"] = msg["name"]
        out.append(item)
    return out


def to_ollama_chat(body: ChatRequest, model: str, *, stream: bool) -> dict[str, Any]:
    """Canonical chat body -> Ollama ``/api/chat`` body for ``model`` (the provider's id)."""
    out: dict[str, Any] = {
        "model": model,
        "messages": to_ollama_messages(body.get("messages") or []),
        "stream": stream,
    }
    if body.get("tools") and body.get("tool_choice") != "none":
        out["tools"] = body["tools"]
    fields: Mapping[str, Any] = body
    options = {name: fields[name] for name in _OPTION_FIELDS if fields.get(name) is not None}
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if limit is not None:
        options["num_predict"] = limit
    stop = body.get("stop")
    if stop:
        options["stop"] = [stop] if isinstance(stop, str) else list(stop)
    if options:
        out["options"] = options
    fmt = body.get("response_format")
    if isinstance(fmt, dict):
        if fmt.get("type") == "json_object":
            out["format"] = "json"
        elif fmt.get("type") == "json_schema":
            schema = (fmt.get("json_schema") or {}).get("schema")
            out["format"] = schema if isinstance(schema, dict) else "json"
    return out


def _message(obj: dict[str, Any], what: str) -> dict[str, Any]:
    """An answer's (or stream line's) ``message``, checked: right JSON of the wrong shape (a broken
    build, a proxy rewriting bodies) is a 502 from the provider, not a crash or a list passed on as
    the answer's text."""
    message = obj.get("message") or {}
    if not isinstance(message, dict):
        raise malformed(what)
    for field in ("content", "thinking", "role"):
        if not isinstance(message.get(field) or "", str):
            raise malformed(what)
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise malformed(what)
    for call in calls:
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise malformed(what)
        arguments, call_id = fn.get("arguments") or {}, call.get("id") or ""
        if not isinstance(arguments, (dict, str)) or not isinstance(call_id, str):
            raise malformed(what)
    for field in ("prompt_eval_count", "eval_count"):
        count = obj.get(field) or 0
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise malformed(what)
    if not isinstance(obj.get("done_reason") or "", str):
        raise malformed(what)
    return message


def _tool_calls(calls: Any, start: int) -> list[ToolCall]:
    """Ollama tool calls (checked by ``_message``) -> OpenAI ones (``index`` from ``start``,
    ``call_`` ids, string arguments)."""
    out: list[ToolCall] = []
    for n, call in enumerate(calls or ()):
        fn = call.get("function") or {}
        args = fn.get("arguments")
        out.append(
            {
                "index": start + n,
                "id": call.get("id") or f"call_{new_hex()[:24]}",
                "type": "function",
                "function": {
                    "name": fn.get("name", ""),
                    "arguments": args if isinstance(args, str) else orjson.dumps(args or {}).decode(),
                },
            }
        )
    return out


def _usage(obj: dict[str, Any]) -> Usage:
    prompt = int(obj.get("prompt_eval_count") or 0)
    completion = int(obj.get("eval_count") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _finish_reason(obj: dict[str, Any], tool_calls: bool) -> str:
    return "tool_calls" if tool_calls else _FINISH.get(obj.get("done_reason") or "stop", "stop")


class OllamaStreamDecoder:
    """Ollama NDJSON lines -> canonical chunks; ``done: true`` ends the stream with a
    ``finish_reason`` chunk and a usage chunk (``choices: []``)."""

    __slots__ = ("_buf", "_created", "_id", "_model_id", "_role_sent", "_secrets", "_tools", "done")

    def __init__(self, model_id: str, secrets: tuple[str, ...] = ()) -> None:
        self._buf = bytearray()
        self._model_id = model_id
        self._secrets = secrets  # the credential's values, scrubbed from error lines
        self._id = f"chatcmpl-{new_hex()}"
        self._created = int(time.time())
        self._role_sent = False
        self._tools = 0
        self.done = False

    def feed(self, data: bytes) -> list[Chunk]:
        """Consume streamed bytes; return the chunks of the lines they complete."""
        buf = self._buf
        start = len(buf)
        buf += data
        end = buf.rfind(b"\n", start)
        if end < 0:
            return []
        lines = bytes(buf[:end]).split(b"\n")
        del buf[: end + 1]
        out: list[Chunk] = []
        for line in lines:
            self._line(line, out)
        return out

    def finish(self) -> list[Chunk]:
        """End of stream: decode a last unterminated line; raise if ``done: true`` never came."""
        out: list[Chunk] = []
        if self._buf:
            line, self._buf = bytes(self._buf), bytearray()
            self._line(line, out)
        if not self.done:
            raise ProviderError("stream ended before completion", status=502, retryable=False)
        return out

    def _chunk(self, delta: Delta, finish: str | None) -> Chunk:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model_id,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    def _line(self, line: bytes, out: list[Chunk]) -> None:
        line = line.strip()
        if not line or self.done:
            return
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise malformed("stream line") from None
        if not isinstance(obj, dict):
            raise malformed("stream line")
        if obj.get("error"):
            raise error_from_stream(obj["error"], secrets=self._secrets)
        message = _message(obj, "stream line")
        delta: Delta = {}
        if not self._role_sent:
            delta["role"] = "assistant"
            self._role_sent = True
        if message.get("content"):
            delta["content"] = message["content"]
        if message.get("thinking"):
            delta["reasoning"] = message["thinking"]
        if message.get("tool_calls"):
            delta["tool_calls"] = _tool_calls(message["tool_calls"], self._tools)
            self._tools += len(delta["tool_calls"])
        done = bool(obj.get("done"))
        if len(delta) > ("role" in delta) or (delta and not done):
            out.append(self._chunk(delta, None))
            delta = {}
        if done:
            self.done = True
            out.append(self._chunk(delta, _finish_reason(obj, self._tools > 0)))
            final = self._chunk({}, None)
            final["choices"] = []
            final["usage"] = _usage(obj)
            out.append(final)


def completion(payload: bytes, model_id: str, secrets: tuple[str, ...]) -> Completion:
    """An Ollama chat answer -> ``chat.completion`` (``model`` = catalog id)."""
    obj = load_object(payload, "chat response")
    if obj.get("error"):
        raise error_from_stream(obj["error"], secrets=secrets)
    if not isinstance(obj.get("message"), dict):
        raise malformed("chat response")
    message = _message(obj, "chat response")
    out_message: Message = {"role": "assistant", "content": message.get("content") or ""}
    calls = _tool_calls(message.get("tool_calls"), 0)
    if calls:
        for call in calls:
            del call["index"]
        out_message["tool_calls"] = calls
        out_message["content"] = out_message["content"] or None
    if message.get("thinking"):
        out_message["reasoning"] = message["thinking"]
    return {
        "id": f"chatcmpl-{new_hex()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_id,
        "choices": [{"index": 0, "message": out_message, "finish_reason": _finish_reason(obj, bool(calls))}],
        "usage": _usage(obj),
    }


def embed_body(body: EmbeddingsRequest, model: str) -> dict[str, Any]:
    """Canonical embeddings body -> ``/api/embed`` body (text input only: a 400 otherwise)."""
    value = body.get("input")
    if not (isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))):
        raise InvalidRequest("Ollama embeddings take text input (a string or strings)", param="input")
    out: dict[str, Any] = {"model": model, "input": value}
    if body.get("dimensions") is not None:
        out["dimensions"] = body["dimensions"]
    return out


def embeddings(payload: bytes, model_id: str, secrets: tuple[str, ...]) -> EmbeddingsResponse:
    """Ollama ``{"embeddings": [[...]]}`` -> OpenAI embeddings list (floats; see ``as_base64``)."""
    obj = load_object(payload, "embeddings response")
    if obj.get("error"):
        raise error_from_stream(obj["error"], secrets=secrets)
    vectors, tokens = obj.get("embeddings"), obj.get("prompt_eval_count") or 0
    if not isinstance(vectors, list) or not all(isinstance(v, list) for v in vectors) or not is_int(tokens):
        raise malformed("embeddings response")
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
        "model": model_id,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def as_base64(vector: list[float]) -> str:
    """An embedding as OpenAI's ``encoding_format: base64`` string (little-endian float32)."""
    packed = array("f", vector)
    if sys.byteorder != "little":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode()
