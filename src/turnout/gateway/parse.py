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
    """Raise a 400 naming ``param`` unless ``cond`` (for constant messages only: an f-string
    argument would be built on every request)."""
    if not cond:
        raise InvalidRequest(message, param=param)


def _number(body: dict[str, Any], name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise InvalidRequest(f"{name} must be a number", param=name)
    if not low <= value <= high:
        raise InvalidRequest(f"{name} must be between {low:g} and {high:g}", param=name)


def _positive_int(body: dict[str, Any], name: str) -> None:
    value = body.get(name)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise InvalidRequest(f"{name} must be an integer >= 1", param=name)


def _messages(messages: Any) -> None:
    """Every message an object with a known role and string or part-array content. Error texts
    are built only on failure: this runs for every request."""
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages must be a non-empty array", param="messages")
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise InvalidRequest(f"messages[{i}] must be an object", param=f"messages[{i}]")
        if msg.get("role") not in ROLES:
            raise InvalidRequest(
                f"messages[{i}].role must be one of {sorted(ROLES)}", param=f"messages[{i}].role"
            )
        content = msg.get("content")
        if content is None or isinstance(content, str):
            continue
        if not isinstance(content, list):
            where = f"messages[{i}].content"
            raise InvalidRequest(f"{where} must be a string or an array of content parts", param=where)
        for j, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                where = f"messages[{i}].content[{j}]"
                raise InvalidRequest(f"{where} must be an object with a type", param=where)


def _tools(tools: Any) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise InvalidRequest("tools must be an array", param="tools")
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise InvalidRequest(f"{where}.type must be 'function'", param=where)
        fn = tool.get("function")
        if not isinstance(fn, dict):
            raise InvalidRequest(f"{where}.function must be an object", param=f"{where}.function")
        name = fn.get("name")
        if not isinstance(name, str) or TOOL_NAME.match(name) is None:
            raise InvalidRequest(
                f"{where}.function.name must match ^[A-Za-z0-9_-]{{1,64}}$", param=f"{where}.function.name"
            )
        params = fn.get("parameters")
        if params is not None and (not isinstance(params, dict) or params.get("type", "object") != "object"):
            raise InvalidRequest(
                f"{where}.function.parameters must be a JSON Schema object",
                param=f"{where}.function.parameters",
            )


METADATA_IDS = ("agent_id", "conversation_id", "user_id", "task_id")


def _extensions(body: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    fallbacks = body.get("fallbacks") or []
    if (
        not isinstance(fallbacks, list)
        or len(fallbacks) > 10
        or not all(isinstance(f, str) and f for f in fallbacks)
    ):
        raise InvalidRequest("fallbacks must be an array of at most 10 model ids", param="fallbacks")
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise InvalidRequest("metadata must be an object", param="metadata")
    if metadata:
        for key in METADATA_IDS:
            value = metadata.get(key)
            if value is not None and (not isinstance(value, str) or len(value) > 255):
                raise InvalidRequest(f"metadata.{key} must be a string", param=f"metadata.{key}")
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
