"""Validation of inbound OpenAI-dialect bodies into the gateway's canonical request.

Only what routing and safety need is checked; everything else is passed on untouched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from turnout.errors import InvalidRequest

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
EXTENSIONS = frozenset({"metadata", "fallbacks", "task_type", "requirements"})


@dataclass(slots=True)
class ChatCall:
    """A validated chat request in canonical (OpenAI) form plus Turnout's extensions."""

    body: dict[str, Any]
    model: str | None
    fallbacks: list[str]
    stream: bool
    include_usage: bool
    metadata: dict[str, Any] = field(default_factory=dict)
    task_type: str | None = None
    requirements: dict[str, Any] = field(default_factory=dict)


def decode_json(raw: bytes) -> dict[str, Any]:
    """Parse a JSON object body or raise a 400 naming the problem."""
    if not raw:
        raise InvalidRequest("request body is empty; expected a JSON object")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"malformed JSON body: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    return body


def _expect(cond: bool, message: str, param: str) -> None:
    if not cond:
        raise InvalidRequest(message, param=param)


def _number(body: dict[str, Any], name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    _expect(isinstance(value, int | float) and not isinstance(value, bool), f"{name} must be a number", name)
    _expect(low <= value <= high, f"{name} must be between {low:g} and {high:g}", name)


def _positive_int(body: dict[str, Any], name: str) -> None:
    value = body.get(name)
    if value is None:
        return
    _expect(
        isinstance(value, int) and not isinstance(value, bool) and value >= 1,
        f"{name} must be an integer >= 1",
        name,
    )


def _messages(messages: Any) -> None:
    _expect(
        isinstance(messages, list) and len(messages) > 0, "messages must be a non-empty array", "messages"
    )
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        _expect(isinstance(msg, dict), f"{where} must be an object", where)
        _expect(msg.get("role") in ROLES, f"{where}.role must be one of {sorted(ROLES)}", f"{where}.role")
        content = msg.get("content")
        _expect(
            content is None or isinstance(content, str | list),
            f"{where}.content must be a string or an array of content parts",
            f"{where}.content",
        )
        if isinstance(content, list):
            for j, part in enumerate(content):
                _expect(
                    isinstance(part, dict) and isinstance(part.get("type"), str),
                    f"{where}.content[{j}] must be an object with a type",
                    f"{where}.content[{j}]",
                )


def _tools(tools: Any) -> None:
    if tools is None:
        return
    _expect(isinstance(tools, list), "tools must be an array", "tools")
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        _expect(
            isinstance(tool, dict) and tool.get("type") == "function",
            f"{where}.type must be 'function'",
            where,
        )
        fn = tool.get("function")
        _expect(isinstance(fn, dict), f"{where}.function must be an object", f"{where}.function")
        name = fn.get("name")
        _expect(
            isinstance(name, str) and TOOL_NAME.match(name) is not None,
            f"{where}.function.name must match ^[A-Za-z0-9_-]{{1,64}}$",
            f"{where}.function.name",
        )
        params = fn.get("parameters")
        _expect(
            params is None or (isinstance(params, dict) and params.get("type", "object") == "object"),
            f"{where}.function.parameters must be a JSON Schema object",
            f"{where}.function.parameters",
        )


def _extensions(body: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    fallbacks = body.get("fallbacks") or []
    _expect(
        isinstance(fallbacks, list)
        and all(isinstance(f, str) and f for f in fallbacks)
        and len(fallbacks) <= 10,
        "fallbacks must be an array of at most 10 model ids",
        "fallbacks",
    )
    metadata = body.get("metadata") or {}
    _expect(isinstance(metadata, dict), "metadata must be an object", "metadata")
    for key in ("agent_id", "conversation_id", "user_id", "task_id"):
        value = metadata.get(key)
        _expect(
            value is None or (isinstance(value, str) and len(value) <= 255),
            f"metadata.{key} must be a string",
            f"metadata.{key}",
        )
    return fallbacks, metadata


def parse_chat(body: dict[str, Any]) -> ChatCall:
    """Validate an OpenAI chat body; raise InvalidRequest (400) naming the field."""
    model = body.get("model")
    _expect(
        model is None or (isinstance(model, str) and 0 < len(model) <= 512), "model must be a string", "model"
    )
    _messages(body.get("messages"))
    _tools(body.get("tools"))
    stream = body.get("stream", False)
    _expect(isinstance(stream, bool), "stream must be a boolean", "stream")
    n = body.get("n")
    _expect(n in (None, 1), "only n=1 is supported", "n")
    _number(body, "temperature", 0, 2)
    _number(body, "top_p", 0, 1)
    _number(body, "presence_penalty", -2, 2)
    _number(body, "frequency_penalty", -2, 2)
    _positive_int(body, "max_tokens")
    _positive_int(body, "max_completion_tokens")
    stop = body.get("stop")
    _expect(
        stop is None or isinstance(stop, str) or (isinstance(stop, list) and len(stop) <= 4),
        "stop must be a string or up to 4 strings",
        "stop",
    )
    options = body.get("stream_options")
    _expect(
        options is None or isinstance(options, dict), "stream_options must be an object", "stream_options"
    )
    fmt = body.get("response_format")
    _expect(
        fmt is None or (isinstance(fmt, dict) and isinstance(fmt.get("type"), str)),
        "response_format must be an object with a type",
        "response_format",
    )
    fallbacks, metadata = _extensions(body)
    include_usage = bool(stream and options and options.get("include_usage"))
    task_type = body.get("task_type") if isinstance(body.get("task_type"), str) else None
    return ChatCall(
        body,
        model if model not in (None, "auto") else None,
        fallbacks,
        stream,
        include_usage,
        metadata,
        task_type,
    )


def parse_embeddings(body: dict[str, Any]) -> ChatCall:
    """Validate an OpenAI embeddings body."""
    model = body.get("model")
    _expect(isinstance(model, str) and 0 < len(model) <= 512, "model is required", "model")
    value = body.get("input")
    _expect(
        isinstance(value, str) or (isinstance(value, list) and 0 < len(value) <= 2048),
        "input must be a string or a non-empty array",
        "input",
    )
    fallbacks, metadata = _extensions(body)
    canonical = {k: v for k, v in body.items() if k not in EXTENSIONS}
    return ChatCall(canonical, model, fallbacks, False, False, metadata)
