"""Validation of inbound OpenAI-dialect bodies into the gateway's canonical request.

Only what routing and safety need is checked; everything else is passed on untouched.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, cast

import orjson
from sqlalchemy import String

from turnout.domain.requests import CLIENT_ID_CHARS, ChatCall
from turnout.errors import InvalidRequest
from turnout.modelinfo.discovered import CAPABILITIES
from turnout.records.sanitize import UNSTORABLE
from turnout.store.messages import Message
from turnout.translate.types import ChatRequest, EmbeddingsRequest

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
EXTENSIONS = frozenset({"metadata", "fallbacks", "task_type", "requirements"})
TASK_TYPE_CHARS = 50  # the records' and experience's task_type columns
CLIENT_REQUEST_ID = "x-client-request-id"  # OpenAI's header for a caller's own id of a call


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


def client_request_id(headers: Mapping[str, str]) -> str | None:
    """The caller's own id of a call (``X-Client-Request-Id``), checked: a call's id reaches its
    client only with the answer, so this is how a caller names a call it may want to cancel."""
    value = headers.get(CLIENT_REQUEST_ID)
    if value is None:
        return None
    _expect(
        CLIENT_ID_CHARS.match(value) is not None,
        f"the {CLIENT_REQUEST_ID} header must be 1 to 512 printable ASCII characters",
        CLIENT_REQUEST_ID,
    )
    return value


def _expect(cond: bool, message: str, param: str) -> None:
    """Raise a 400 naming ``param`` unless ``cond`` (for constant messages only: an f-string
    argument would be built on every request)."""
    if not cond:
        raise InvalidRequest(message, param=param)


def _number(body: Mapping[str, Any], name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise InvalidRequest(f"{name} must be a number", param=name)
    if not low <= value <= high:
        raise InvalidRequest(f"{name} must be between {low:g} and {high:g}", param=name)


def _positive_int(body: Mapping[str, Any], name: str) -> None:
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
        role = msg.get("role")
        if not isinstance(role, str) or role not in ROLES:  # a list or object is unhashable
            raise InvalidRequest(
                f"messages[{i}].role must be one of {sorted(ROLES)}", param=f"messages[{i}].role"
            )
        calls = msg.get("tool_calls")
        if calls is not None:
            _tool_calls(calls, i)
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
            if part["type"] == "text" and not isinstance(part.get("text"), str):
                where = f"messages[{i}].content[{j}].text"
                raise InvalidRequest(f"{where} must be a string", param=where)


def _tool_calls(calls: Any, i: int) -> None:
    """An assistant message's tool calls: each an object whose function has a string name and (JSON
    text) arguments, as OpenAI's API requires; the translators to other providers rely on it."""
    if not isinstance(calls, list):
        raise InvalidRequest(f"messages[{i}].tool_calls must be an array", param=f"messages[{i}].tool_calls")
    for j, call in enumerate(calls):
        where = f"messages[{i}].tool_calls[{j}]"
        if not isinstance(call, dict):
            raise InvalidRequest(f"{where} must be an object", param=where)
        fn = call.get("function")
        if not isinstance(fn, dict):
            raise InvalidRequest(f"{where}.function must be an object", param=f"{where}.function")
        if not isinstance(fn.get("name"), str):
            raise InvalidRequest(f"{where}.function.name must be a string", param=f"{where}.function.name")
        if not isinstance(fn.get("arguments", ""), str):
            raise InvalidRequest(
                f"{where}.function.arguments must be a string of JSON", param=f"{where}.function.arguments"
            )


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


def _column_width(name: str) -> int:
    column_type = Message.__table__.c[name].type
    assert isinstance(column_type, String) and column_type.length is not None
    return column_type.length


# metadata ids and the longest value the record keeps: its Message column's width, or 255 for
# task_id (kept in the JSON metadata column)
METADATA_IDS = {name: _column_width(name) for name in ("agent_id", "conversation_id", "user_id")}
METADATA_IDS["task_id"] = 255


def _storable_id(value: Any, limit: int, where: str) -> None:
    if value is not None and (
        not isinstance(value, str) or len(value) > limit or UNSTORABLE.search(value) is not None
    ):
        raise InvalidRequest(
            f"{where} must be a string of at most {limit} characters, without NUL bytes", param=where
        )


def _extensions(body: Mapping[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """Turnout's extensions, checked against what the call's record can store (a value the
    database would refuse is a 400 here, not a call that leaves no record)."""
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
        for key, limit in METADATA_IDS.items():
            _storable_id(metadata.get(key), limit, f"metadata.{key}")
    task_type = body.get("task_type")
    if isinstance(task_type, str):
        if UNSTORABLE.search(task_type) is not None:
            raise InvalidRequest("task_type must not contain NUL bytes", param="task_type")
        if len(task_type.strip()) > TASK_TYPE_CHARS:  # was cut silently: two long names became one
            raise InvalidRequest(f"task_type must be at most {TASK_TYPE_CHARS} characters", param="task_type")
    return fallbacks, metadata


REQUIREMENT_SCORES = ("min_quality_score", "reliability", "creativity")  # each 0..1
REQUIREMENT_COSTS = ("max_cost", "max_cost_usd")  # USD per request, >= 0
REQUIREMENT_FIELDS = frozenset({"capabilities", *REQUIREMENT_SCORES, *REQUIREMENT_COSTS})


def _requirements(body: Mapping[str, Any]) -> dict[str, Any]:
    """``requirements`` (the orchestration API's, also accepted as an OpenAI-dialect extension):
    ``capabilities`` every candidate must have, ``min_quality_score`` and ``max_cost`` filters;
    ``reliability`` and ``creativity`` are checked and recorded. An unknown field is a 400: a filter
    silently ignored would route to a model the caller ruled out."""
    req = body.get("requirements")
    if req is None:
        return {}
    if not isinstance(req, dict):
        raise InvalidRequest("requirements must be an object", param="requirements")
    for key in req:
        if key not in REQUIREMENT_FIELDS:
            raise InvalidRequest(
                f"requirements.{key} is not a known requirement; known: {sorted(REQUIREMENT_FIELDS)}",
                param=f"requirements.{key}",
            )
    capabilities = req.get("capabilities")
    if capabilities is not None:
        if not isinstance(capabilities, list):
            raise InvalidRequest(
                "requirements.capabilities must be an array", param="requirements.capabilities"
            )
        for i, cap in enumerate(capabilities):
            if cap not in CAPABILITIES:
                raise InvalidRequest(
                    f"requirements.capabilities[{i}] must be one of {list(CAPABILITIES)}",
                    param=f"requirements.capabilities[{i}]",
                )
    for key in (*REQUIREMENT_SCORES, *REQUIREMENT_COSTS):
        value = req.get(key)
        if value is None:
            continue
        high = 1.0 if key in REQUIREMENT_SCORES else 1e6
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= high:
            raise InvalidRequest(
                f"requirements.{key} must be a number from 0 to {high:g}", param=f"requirements.{key}"
            )
    return req


def parse_chat(body: Mapping[str, Any]) -> ChatCall[ChatRequest]:
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
    if fmt is not None and fmt["type"] == "json_schema":
        spec = fmt.get("json_schema")
        _expect(
            isinstance(spec, dict) and isinstance(spec.get("schema", {}), dict),
            "response_format.json_schema must be an object whose schema is a JSON Schema object",
            "response_format.json_schema",
        )
    fallbacks, metadata = _extensions(body)
    include_usage = bool(stream and options and options.get("include_usage"))
    task_type = body.get("task_type")
    _expect(task_type is None or isinstance(task_type, str), "task_type must be a string", "task_type")
    requirements = _requirements(body) if "requirements" in body else {}
    return ChatCall(
        cast(ChatRequest, body),  # validated above; the call owns the body from here on
        model if model not in (None, "auto") else None,
        fallbacks,
        stream,
        include_usage,
        metadata,
        task_type,
        requirements,
    )


def _tokens(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(type(t) is int and t >= 0 for t in value)


def _texts_or_tokens(items: list[Any]) -> bool:
    """OpenAI's embeddings inputs: strings, one array of token ids, or arrays of token ids."""
    first = items[0]
    if isinstance(first, str):
        return all(isinstance(item, str) for item in items)
    if type(first) is int:
        return _tokens(items)
    return all(_tokens(item) for item in items)


def parse_embeddings(body: Mapping[str, Any]) -> ChatCall[EmbeddingsRequest]:
    """Validate an OpenAI embeddings body."""
    model = body.get("model")
    _expect(isinstance(model, str) and 0 < len(model) <= 512, "model is required", "model")
    value = body.get("input")
    _expect(
        isinstance(value, str)
        or (isinstance(value, list) and 0 < len(value) <= 2048 and _texts_or_tokens(value)),
        "input must be a string, or a non-empty array of strings, of token ids, or of token id arrays",
        "input",
    )
    _positive_int(body, "dimensions")
    _expect(
        body.get("encoding_format") in (None, "float", "base64"),
        "encoding_format must be 'float' or 'base64'",
        "encoding_format",
    )
    fallbacks, metadata = _extensions(body)
    canonical = {k: v for k, v in body.items() if k not in EXTENSIONS}
    return ChatCall(cast(EmbeddingsRequest, canonical), model, fallbacks, False, False, metadata)
