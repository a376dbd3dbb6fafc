"""AWS Bedrock's Converse API <-> the canonical model (OpenAI Chat Completions shapes).

Requests: system/developer messages become ``system`` text blocks; user content becomes ``text``
and ``image`` blocks (images only as base64 ``data:`` URLs: Converse takes bytes or S3, not web
URLs); assistant tool calls become ``toolUse`` blocks and tool messages ``toolResult`` blocks.
Converse wants turns that alternate between user and assistant, so neighbours of one role (tool
results above all) merge into one turn, tool results first; empty turns are dropped. Sampling
fields go to ``inferenceConfig``, tools to ``toolConfig`` (``tool_choice: none`` has no Converse
equivalent: tools are then left out unless the history uses them, which Converse requires them for).

Answers: ``output.message.content`` becomes text, ``tool_calls`` and ``reasoning_content`` (as
Anthropic's thinking does); ``stopReason``
becomes ``finish_reason``; ``usage`` follows Anthropic's split (``inputTokens`` without cache reads
and writes), so it goes through the same mapping as Anthropic's. Streams (binary AWS event-stream
frames) are in :mod:`turnout.translate.bedrock_stream`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

import orjson

from turnout.ids import new_hex
from turnout.translate import errors
from turnout.translate.anthropic import openai_usage, tool_input
from turnout.translate.canonical_read import (
    fail,
    format_instruction,
    function_tools,
    is_int,
    is_number,
    plain_text,
    string_field,
)
from turnout.translate.errors import (
    MAX_MESSAGE_CHARS,
    ProviderError,
    error_from_response,
    is_retryable_status,
    openai_type_for_status,
    parse_retry_after,
    scrub,
)
from turnout.translate.types import ChatRequest, Completion, Message, ToolCall, Usage

STOP_TO_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "content_filtered": "content_filter",
    "guardrail_intervened": "content_filter",
}
# Bedrock exception name (lower case: streams spell them camelCase) -> (status, OpenAI type, retryable).
# Signature and key errors are 403 at AWS; to a client they are what a 401 says: bad credentials.
_EXCEPTIONS: dict[str, tuple[int, str, bool]] = {
    "validationexception": (400, "invalid_request_error", False),
    "accessdeniedexception": (403, "permission_error", False),
    "unrecognizedclientexception": (401, "authentication_error", False),
    "invalidsignatureexception": (401, "authentication_error", False),
    "incompletesignatureexception": (401, "authentication_error", False),
    "missingauthenticationtokenexception": (401, "authentication_error", False),
    "expiredtokenexception": (401, "authentication_error", False),
    "resourcenotfoundexception": (404, "not_found_error", False),
    "throttlingexception": (429, "rate_limit_error", True),
    "servicequotaexceededexception": (429, "rate_limit_error", True),
    "modelnotreadyexception": (503, "api_error", True),
    "serviceunavailableexception": (503, "api_error", True),
    "internalserverexception": (500, "api_error", True),
    "modeltimeoutexception": (504, "api_error", True),
    "modelerrorexception": (502, "api_error", True),
    "modelstreamerrorexception": (502, "api_error", True),
}
_IMAGE_FORMATS = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg", "pjpeg": "jpeg", "gif": "gif", "webp": "webp"}
_DATA_URL = re.compile(r"^data:image/([\w.+-]+)(?:;[\w.+-]+=[^;,]*)*;base64,(.*)$", re.DOTALL)


# -- requests --------------------------------------------------------------------------------------


def openai_to_converse_request(body: ChatRequest) -> dict[str, Any]:
    """Canonical chat body -> Converse request body (the model id goes in the URL, not here)."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        fail("messages must be an array", "messages")
    if body.get("n") not in (None, 1):
        fail("n > 1 is not supported by Bedrock models", "n")
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            fail(f"{where} must be an object", where)
        role = message.get("role")
        if role in ("system", "developer"):
            text = plain_text(message.get("content"), where, "\n\n")
            if text:
                system.append({"text": text})
            continue
        if role == "user":
            blocks = _user_blocks(message.get("content"), where)
        elif role == "assistant":
            blocks = _assistant_blocks(message, where)
        elif role == "tool":
            blocks = [_tool_result(message, where)]
        else:
            fail(f"{where}.role '{role}' is not supported for Bedrock models", f"{where}.role")
        converse_role = "assistant" if role == "assistant" else "user"
        if not blocks:
            continue  # Converse rejects empty turns; neighbours of one role merge below
        if turns and turns[-1]["role"] == converse_role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": converse_role, "content": blocks})
    if not turns:
        fail("messages must hold at least one non-system message with content", "messages")
    for turn in turns:  # tool results lead their user turn, as they answer the turn before
        if turn["role"] == "user":
            turn["content"].sort(key=lambda block: "toolResult" not in block)
    instruction = format_instruction(body.get("response_format"))
    if instruction:
        system.append({"text": instruction})
    out: dict[str, Any] = {"messages": turns}
    if system:
        out["system"] = system
    config = _inference_config(body)
    if config:
        out["inferenceConfig"] = config
    tool_config = _tool_config(body, turns)
    if tool_config:
        out["toolConfig"] = tool_config
    return out


def _user_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if content is None or isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        fail(f"{where}.content must be a string or an array of content parts", f"{where}.content")
    blocks: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        pw = f"{where}.content[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            text = string_field(part, "text", pw, empty=True)
            if text:
                blocks.append({"text": text})
        elif kind == "image_url":
            blocks.append(_image_block(part, pw))
        else:
            fail(f"{pw}.type '{kind}' is not supported for Bedrock models", f"{pw}.type")
    return blocks


def _image_block(part: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A ``data:image/...;base64,`` URL -> an ``image`` block (its base64 is JSON's form of bytes)."""
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    param = f"{where}.image_url.url"
    if not isinstance(url, str) or not url:
        fail(f"{param} must be a non-empty string", param)
    match = _DATA_URL.match(url)
    if match is None:
        fail(f"{param}: Bedrock models take images only as base64 data: URLs", param)
    fmt = _IMAGE_FORMATS.get(match.group(1).lower())
    if fmt is None:
        fail(f"{param}: Bedrock models take png, jpeg, gif or webp images", param)
    return {"image": {"format": fmt, "source": {"bytes": match.group(2)}}}


def _assistant_blocks(message: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    content = message.get("content")
    blocks: list[dict[str, Any]] = []
    if isinstance(content, list):
        for j, part in enumerate(content):
            pw = f"{where}.content[{j}]"
            kind = part.get("type") if isinstance(part, dict) else None
            if kind not in ("text", "refusal"):
                fail(f"{pw}.type must be 'text' or 'refusal' in an assistant message", f"{pw}.type")
            text = string_field(part, kind, pw, empty=True)
            if text:
                blocks.append({"text": text})
    elif isinstance(content, str) and content:
        blocks.append({"text": content})
    elif content is not None and not isinstance(content, str):
        fail(f"{where}.content must be a string or an array of text parts", f"{where}.content")
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        fail(f"{where}.tool_calls must be an array", f"{where}.tool_calls")
    for k, call in enumerate(calls):
        cw = f"{where}.tool_calls[{k}]"
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict):
            fail(f"{cw}.function must be an object", f"{cw}.function")
        tool_use = {
            "toolUseId": string_field(call, "id", cw),
            "name": string_field(fn, "name", f"{cw}.function"),
            "input": tool_input(fn.get("arguments")),
        }
        blocks.append({"toolUse": tool_use})
    return blocks


def _tool_result(message: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A tool message -> a ``toolResult`` block: a JSON object as ``json`` (so the model reads it as
    data), any other text as ``text``, nothing as ``{}`` (Converse wants some content)."""
    text = plain_text(message.get("content"), where, "\n")
    value: Any = None
    if text.lstrip().startswith("{"):
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            value = None
    if isinstance(value, dict):
        content: dict[str, Any] = {"json": value}
    else:
        content = {"text": text} if text else {"json": {}}
    result = {"toolUseId": string_field(message, "tool_call_id", where), "content": [content]}
    return {"toolResult": result}


def _inference_config(body: Mapping[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is not None:
            if not is_int(value) or value < 1:
                fail(f"{name} must be an integer >= 1", name)
            config["maxTokens"] = value
            break
    if is_number(body.get("temperature")):
        config["temperature"] = body["temperature"]
    if is_number(body.get("top_p")):
        config["topP"] = body["top_p"]
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    stops = [s for s in stops if isinstance(s, str) and s]
    if stops:
        config["stopSequences"] = stops
    return config


def _tool_config(body: Mapping[str, Any], turns: list[dict[str, Any]]) -> dict[str, Any] | None:
    """``toolConfig`` from ``tools``/``tool_choice``. Converse rejects a history with toolUse blocks
    and no ``toolConfig``, so the tools it uses stay declared (an open schema when not given)."""
    choice = body.get("tool_choice")
    specs = _tool_specs(body.get("tools"))
    used = [b["toolUse"]["name"] for turn in turns for b in turn["content"] if "toolUse" in b]
    tools = [t for t in specs if choice != "none" or t["toolSpec"]["name"] in used]
    declared = {tool["toolSpec"]["name"] for tool in tools}
    for name in used:
        if name not in declared:
            declared.add(name)
            tools.append({"toolSpec": {"name": name, "inputSchema": {"json": _open_schema()}}})
    if not tools:
        return None
    out: dict[str, Any] = {"tools": tools}
    converted = _tool_choice(choice) if specs else None
    if converted is not None:
        out["toolChoice"] = converted
    return out


def _open_schema() -> dict[str, Any]:
    """The input schema of a tool that says nothing of its arguments."""
    return {"type": "object", "properties": {}}


def _tool_specs(tools: Any) -> list[dict[str, Any]]:
    out = []
    for tool in function_tools(tools, "Bedrock"):
        spec: dict[str, Any] = {"name": tool.name}
        if tool.description is not None:
            spec["description"] = tool.description
        spec["inputSchema"] = {"json": tool.parameters if tool.parameters is not None else _open_schema()}
        out.append({"toolSpec": spec})
    return out


def _tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice is None or choice == "none":
        return None
    if choice == "auto":
        return {"auto": {}}
    if choice == "required":
        return {"any": {}}
    fn = choice.get("function") if isinstance(choice, dict) else None
    if isinstance(fn, dict) and isinstance(fn.get("name"), str) and fn["name"]:
        return {"tool": {"name": fn["name"]}}
    fail("tool_choice must be auto, required, none or a named function", "tool_choice")


# -- answers, usage and errors ---------------------------------------------------------------------


def finish_reason(stop_reason: Any, tool_calls: bool = False) -> str:
    """Converse ``stopReason`` -> OpenAI ``finish_reason``; ``stop`` next to tool calls is
    ``tool_calls`` (some models say ``end_turn`` after calling a tool)."""
    found = STOP_TO_FINISH.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"
    return "tool_calls" if tool_calls and found == "stop" else found


def converse_usage(usage: Any) -> Usage:
    """Converse ``usage`` -> OpenAI ``usage``: cache reads in ``cached_tokens``, cache writes in
    ``cache_creation_tokens``, both counted in ``prompt_tokens`` (as for Anthropic)."""
    usage = usage if isinstance(usage, Mapping) else {}
    return openai_usage(
        {
            "input_tokens": usage.get("inputTokens"),
            "output_tokens": usage.get("outputTokens"),
            "cache_read_input_tokens": usage.get("cacheReadInputTokens"),
            "cache_creation_input_tokens": usage.get("cacheWriteInputTokens"),
        }
    )


def malformed(what: str) -> ProviderError:
    """Bedrock answered 2xx with something that is not the expected JSON."""
    return errors.malformed(what, "Bedrock")


def tool_call(block: Mapping[str, Any]) -> ToolCall:
    """A ``toolUse`` block -> an OpenAI tool call (arguments as a JSON string)."""
    arguments = block.get("input")
    return {
        "id": block.get("toolUseId") or f"tooluse_{new_hex()}",
        "type": "function",
        "function": {
            "name": block.get("name") or "",
            "arguments": orjson.dumps(arguments if arguments is not None else {}).decode(),
        },
    }


def converse_to_openai_response(payload: Mapping[str, Any], model: str) -> Completion:
    """Converse answer -> canonical ``chat.completion`` (``model`` = the catalog id)."""
    output = payload.get("output")
    message = output.get("message") if isinstance(output, dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        raise malformed("Converse answer")
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[ToolCall] = []
    for block in content:
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif isinstance(block.get("toolUse"), dict):
            calls.append(tool_call(block["toolUse"]))
        elif isinstance(block.get("reasoningContent"), dict):
            text = (block["reasoningContent"].get("reasoningText") or {}).get("text")
            if isinstance(text, str):
                reasoning.append(text)
    answer: Message = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
        "refusal": None,
    }
    if calls:
        answer["tool_calls"] = calls
    if reasoning:
        answer["reasoning_content"] = "".join(reasoning)
    return {
        "id": f"chatcmpl-{new_hex()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": answer,
                "logprobs": None,
                "finish_reason": finish_reason(payload.get("stopReason"), bool(calls)),
            }
        ],
        "usage": converse_usage(payload.get("usage")),
    }


def exception_name(value: str | None) -> str | None:
    """``ValidationException`` from ``x-amzn-errortype`` (``Name:http://...``) or a body's
    ``__type`` (``com.amazon...#Name``)."""
    if not value:
        return None
    return value.split(":", 1)[0].rsplit("#", 1)[-1].strip() or None


def bedrock_error(
    name: str | None,
    message: Any,
    status: int | None = None,
    *,
    secrets: tuple[str, ...] = (),
    retry_after_s: float | None = None,
) -> ProviderError:
    """A Bedrock exception (its name, message and HTTP status; no status: from a stream, taken
    from the name) -> ProviderError with the OpenAI status and type, the credential scrubbed."""
    mapped = _EXCEPTIONS.get(name.lower()) if name else None
    if mapped is not None:
        status, error_type, retryable = mapped
    else:
        status = status or 502
        error_type, retryable = openai_type_for_status(status), is_retryable_status(status)
    text = scrub(str(message or ""), *secrets)[:MAX_MESSAGE_CHARS]
    return ProviderError(
        text or f"Bedrock returned {name or f'HTTP {status}'}",
        status=status,
        error_type=error_type,
        code=name,
        retryable=retryable,
        retry_after_s=retry_after_s if retryable else None,
    )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)  # case-insensitive on aiohttp's headers; plain dicts in tests
    return value if value is not None else next((v for k, v in headers.items() if k.lower() == name), None)


def error_from_answer(
    status: int, payload: bytes, headers: Mapping[str, str], *, secrets: tuple[str, ...] = ()
) -> ProviderError:
    """An HTTP error answer (``{"message"}`` with ``x-amzn-errortype``) -> ProviderError; an answer
    of another shape (a proxy's) is read as any provider's."""
    try:
        obj = orjson.loads(payload) if payload else None
    except orjson.JSONDecodeError:
        obj = None
    obj = obj if isinstance(obj, dict) else {}
    name = exception_name(_header(headers, "x-amzn-errortype")) or exception_name(obj.get("__type"))
    message = obj.get("message", obj.get("Message"))
    if name is None and not isinstance(message, str):
        return error_from_response(status, payload, headers, secrets=secrets, provider="Bedrock")
    return bedrock_error(name, message, status, secrets=secrets, retry_after_s=parse_retry_after(headers))
