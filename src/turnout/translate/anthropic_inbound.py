"""An Anthropic-dialect client's Messages request -> the canonical chat request (used by api/).

Inbound (an Anthropic-dialect client): ``output_config.format`` becomes ``response_format``
(json_schema); ``thinking`` becomes ``reasoning_effort`` (its budget's size); ``top_k`` is dropped (no
counterpart), as are ``thinking`` blocks replayed in assistant turns and ``cache_control`` (OpenAI
servers may reject unknown fields). This is the path to other providers: an Anthropic provider gets
the body untouched (:mod:`turnout.translate.anthropic_native`). Server tools and ``document``-like
blocks have no counterpart: ``canonical_request`` leaves them out of the canonical form (which
still serves routing and the record) and says so with a ``NeedsNativeFormat``, the 400 a provider
of another format answers. A ``tool_result``
becomes a ``tool`` message (text only): with ``is_error`` its text is prefixed ``Error: `` and its
images move to the user message that follows the tool messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from turnout.errors import NeedsNativeFormat
from turnout.tokens import PDF_PAGE_TOKENS, document_tokens, estimate_tokens
from turnout.translate.canonical_read import fail, is_int, is_number, string_field
from turnout.translate.types import (
    ChatRequest,
    ContentPart,
    FunctionCall,
    FunctionSpec,
    ImagePart,
    Message,
    Tool,
    ToolCall,
)

TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_UNSUPPORTED_BLOCKS = frozenset(
    {
        "document",
        "search_result",
        "server_tool_use",
        "web_search_tool_result",
        "web_fetch_tool_result",
        "code_execution_tool_result",
        "mcp_tool_use",
        "mcp_tool_result",
        "container_upload",
    }
)
_THINKING = frozenset({"thinking", "redacted_thinking"})
_TOOL_CHOICE_IN = {"auto": "auto", "any": "required", "none": "none"}


def _block_type(block: Any, where: str) -> str:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        fail(f"{where} must be an object with a type", where)
    kind: str = block["type"]
    if kind in _UNSUPPORTED_BLOCKS:
        raise NeedsNativeFormat(
            f"{where}: content block type '{kind}' can only go to an Anthropic provider's model",
            param=f"{where}.type",
        )
    return kind


@dataclass(frozen=True, slots=True)
class Inbound:
    """An inbound Messages body in canonical form: ``beyond``, the first server tool or
    ``document``-like block it held (the error for providers of other formats), and the estimated
    tokens of the blocks the canonical form left out (the spend guard reserves them, routing prices
    them)."""

    request: ChatRequest
    beyond: NeedsNativeFormat | None = None
    native_tokens: int = 0


def canonical_request(body: dict[str, Any], *, count_tokens: bool = False) -> Inbound:
    """The canonical form of an inbound Messages body; where it holds server tools or
    ``document``-like blocks, translated from the body without them (a block becomes a ``[type]``
    text, so no turn is left empty)."""
    try:
        return Inbound(anthropic_to_openai_request(body, count_tokens=count_tokens))
    except NeedsNativeFormat as beyond:
        kept, tokens = _without_native_only(body)
        return Inbound(anthropic_to_openai_request(kept, count_tokens=count_tokens), beyond, tokens)


def _without_native_only(body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """``body`` without its server tools and ``document``-like blocks (a shallow copy), and the
    estimated tokens of the blocks left out."""
    out = dict(body)
    tools = body.get("tools")
    if isinstance(tools, list):
        kept = [t for t in tools if not isinstance(t, dict) or t.get("type") in (None, "custom")]
        if kept:
            out["tools"] = kept
        else:
            out.pop("tools", None)
            out.pop("tool_choice", None)
    tokens = 0
    messages = body.get("messages")
    if isinstance(messages, list):
        out["messages"] = []
        for message in messages:
            if isinstance(message, dict) and isinstance(message.get("content"), list):
                content, left_out = _blocks_without(message["content"])
                out["messages"].append({**message, "content": content})
                tokens += left_out
            else:
                out["messages"].append(message)
    return out, tokens


def _blocks_without(blocks: list[Any]) -> tuple[list[Any], int]:
    out: list[Any] = []
    tokens = 0
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind in _UNSUPPORTED_BLOCKS:
            out.append({"type": "text", "text": f"[{kind}]"})
            tokens += _left_out_tokens(block)
        elif kind == "tool_result" and isinstance(block.get("content"), list):
            content, left_out = _blocks_without(block["content"])
            out.append({**block, "content": content})
            tokens += left_out
        else:
            out.append(block)
    return out, tokens


def _left_out_tokens(block: dict[str, Any]) -> int:
    """A left-out block's tokens: a PDF by its pages, a text document by its text, a document named
    by URL or file id as one PDF page, any other block as its JSON text."""
    if block["type"] != "document":
        return estimate_tokens(len(orjson.dumps(block)))
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    data = source.get("data") if isinstance(source, dict) else None
    if kind == "base64" and isinstance(data, str):
        return document_tokens(data)
    if kind == "text" and isinstance(data, str):
        return estimate_tokens(len(data))
    if kind == "content" and isinstance(source, dict):
        return estimate_tokens(len(orjson.dumps(source.get("content"))))
    return PDF_PAGE_TOKENS  # by URL or file id: unseen here, counted as one page


def anthropic_to_openai_request(body: dict[str, Any], *, count_tokens: bool = False) -> ChatRequest:
    """Validate an inbound Anthropic Messages body and translate it to a canonical chat body
    (``count_tokens``: a ``/v1/messages/count_tokens`` body, which has no ``max_tokens``)."""
    if not isinstance(body, dict):
        fail("request body must be a JSON object", None)
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        fail("model must be a string", "model")
    max_tokens = body.get("max_tokens")
    if max_tokens is None and not count_tokens:
        fail("max_tokens: field required", "max_tokens")
    if max_tokens is not None and (not is_int(max_tokens) or max_tokens < 1):
        fail("max_tokens must be an integer >= 1", "max_tokens")
    messages = body.get("messages")
    if messages is None:
        fail("messages: field required", "messages")
    if not isinstance(messages, list) or not messages:
        fail("messages must be a non-empty array", "messages")
    out: ChatRequest = {} if model is None else {"model": model}
    converted: list[Message] = []
    system = body.get("system")
    if system is not None:
        text = _system_text(system)
        if text:
            converted.append({"role": "system", "content": text})
    for i, message in enumerate(messages):
        converted.extend(_inbound_message(message, f"messages[{i}]"))
    out["messages"] = converted
    if max_tokens is not None:
        out["max_tokens"] = max_tokens
    effort = thinking_effort(body.get("thinking"), body.get("output_config"))
    if effort is not None:
        out["reasoning_effort"] = effort
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None:
            if not is_number(value) or not 0 <= value <= 1:
                fail(f"{name} must be a number between 0 and 1", name)
            out[name] = value
    top_k = body.get("top_k")
    if top_k is not None and (not is_int(top_k) or top_k < 0):
        fail("top_k must be a non-negative integer", "top_k")
    stops = body.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            fail("stop_sequences must be an array of strings", "stop_sequences")
        if stops:
            out["stop"] = stops
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        fail("stream must be a boolean", "stream")
    if stream:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            fail("metadata must be an object", "metadata")
        user = metadata.get("user_id")
        if user is not None and not isinstance(user, str):
            fail("metadata.user_id must be a string", "metadata.user_id")
        if user:
            out["user"] = user
    tools = body.get("tools")
    if tools is not None:
        out["tools"] = _inbound_tools(tools)
    choice = body.get("tool_choice")
    if choice is not None:
        mapped, parallel = _inbound_tool_choice(choice)
        if out.get("tools"):
            out["tool_choice"] = mapped
            if parallel is False:
                out["parallel_tool_calls"] = False
    output_format = _output_format(body.get("output_config"))
    if output_format is not None:
        out["response_format"] = output_format
    return out


def thinking_effort(thinking: Any, output_config: Any = None) -> str | None:
    """Anthropic ``thinking`` -> OpenAI ``reasoning_effort``: an ``enabled`` budget by its size (the
    inverse of ``anthropic_outbound.EFFORT_BUDGETS``), ``adaptive`` by ``output_config.effort`` (else
    medium); None for ``disabled``, none given, or a shape Anthropic would refuse (passed on as is)."""
    if not isinstance(thinking, dict):
        return None
    kind = thinking.get("type")
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if not is_int(budget) or budget < 1:
            return None
        return next((effort for effort, most in EFFORT_BY_BUDGET if budget <= most), "high")
    if kind == "adaptive":
        effort = output_config.get("effort") if isinstance(output_config, dict) else None
        return effort if effort in ("low", "medium", "high") else "medium"
    return None


# the largest thinking budget each effort stands for
EFFORT_BY_BUDGET = (("low", 2048), ("medium", 8192))


def _output_format(config: Any) -> dict[str, Any] | None:
    """``output_config.format`` (structured outputs) -> OpenAI ``response_format``; ``effort`` is dropped."""
    if config is None:
        return None
    if not isinstance(config, dict):
        fail("output_config must be an object", "output_config")
    fmt = config.get("format")
    if fmt is None:
        return None
    if (
        not isinstance(fmt, dict)
        or fmt.get("type") != "json_schema"
        or not isinstance(fmt.get("schema"), dict)
    ):
        fail("output_config.format must be {type: 'json_schema', schema: {...}}", "output_config.format")
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": fmt["schema"]}}


def _system_text(system: Any) -> str:
    if isinstance(system, str):
        return system
    if not isinstance(system, list):
        fail("system must be a string or an array of text blocks", "system")
    texts = []
    for j, block in enumerate(system):
        where = f"system[{j}]"
        if _block_type(block, where) != "text":
            fail(f"{where}.type must be 'text'", f"{where}.type")
        texts.append(string_field(block, "text", where, empty=True))
    return "\n\n".join(t for t in texts if t)


def _inbound_message(message: Any, where: str) -> list[Message]:
    if not isinstance(message, dict):
        fail(f"{where} must be an object", where)
    role = message.get("role")
    if role not in ("user", "assistant"):
        fail(f"{where}.role must be 'user' or 'assistant'", f"{where}.role")
    content = message.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if not isinstance(content, list):
        fail(f"{where}.content must be a string or an array of content blocks", f"{where}.content")
    if role == "assistant":
        return [_inbound_assistant(content, where)]
    if not content:
        fail(f"{where}.content must not be empty", f"{where}.content")
    return _inbound_user(content, where)


def _inbound_user(blocks: list[Any], where: str) -> list[Message]:
    tool_messages: list[Message] = []
    parts: list[ContentPart] = []
    for j, block in enumerate(blocks):
        bw = f"{where}.content[{j}]"
        kind = _block_type(block, bw)
        if kind == "text":
            parts.append({"type": "text", "text": string_field(block, "text", bw, empty=True)})
        elif kind == "image":
            parts.append(_image_part(block, bw))
        elif kind == "tool_result":
            tool_message, images = _tool_result(block, bw)
            tool_messages.append(tool_message)
            parts.extend(images)
        else:
            fail(f"{bw}.type: unknown content block type '{kind}' in a user message", f"{bw}.type")
    if parts:
        first = parts[0]
        single_text = len(parts) == 1 and first["type"] == "text"
        content = first["text"] if single_text and first["type"] == "text" else parts
        tool_messages.append({"role": "user", "content": content})
    return tool_messages


def _image_part(block: dict[str, Any], where: str) -> ImagePart:
    source = block.get("source")
    if not isinstance(source, dict):
        fail(f"{where}.source must be an object", f"{where}.source")
    kind = source.get("type")
    if kind == "base64":
        media = string_field(source, "media_type", f"{where}.source")
        if not media.startswith("image/"):
            fail(f"{where}.source.media_type must be an image type", f"{where}.source.media_type")
        url = f"data:{media};base64,{string_field(source, 'data', f'{where}.source')}"
    elif kind == "url":
        url = string_field(source, "url", f"{where}.source")
    else:
        fail(f"{where}.source.type must be 'base64' or 'url'", f"{where}.source.type")
    return {"type": "image_url", "image_url": {"url": url}}


def _tool_result(block: dict[str, Any], where: str) -> tuple[Message, list[ImagePart]]:
    tool_use_id = string_field(block, "tool_use_id", where)
    is_error = block.get("is_error", False)
    if not isinstance(is_error, bool):
        fail(f"{where}.is_error must be a boolean", f"{where}.is_error")
    content = block.get("content")
    images: list[ImagePart] = []
    if content is None or isinstance(content, str):
        text = content or ""
    elif isinstance(content, list):
        texts = []
        for k, inner in enumerate(content):
            iw = f"{where}.content[{k}]"
            kind = _block_type(inner, iw)
            if kind == "text":
                texts.append(string_field(inner, "text", iw, empty=True))
            elif kind == "image":
                images.append(_image_part(inner, iw))
            else:
                fail(f"{iw}.type: '{kind}' is not allowed in a tool_result", f"{iw}.type")
        text = "\n".join(texts)
    else:
        fail(f"{where}.content must be a string or an array of blocks", f"{where}.content")
    if is_error:
        text = f"Error: {text}" if text else "Error"
    return {"role": "tool", "tool_call_id": tool_use_id, "content": text}, images


def _inbound_assistant(blocks: list[Any], where: str) -> Message:
    texts: list[str] = []
    calls: list[ToolCall] = []
    for j, block in enumerate(blocks):
        bw = f"{where}.content[{j}]"
        kind = _block_type(block, bw)
        if kind == "text":
            texts.append(string_field(block, "text", bw, empty=True))
        elif kind == "tool_use":
            arguments = block.get("input", {})
            if not isinstance(arguments, dict):
                fail(f"{bw}.input must be an object", f"{bw}.input")
            function: FunctionCall = {
                "name": string_field(block, "name", bw),
                "arguments": orjson.dumps(arguments).decode(),
            }
            calls.append({"id": string_field(block, "id", bw), "type": "function", "function": function})
        elif kind not in _THINKING:
            fail(f"{bw}.type: '{kind}' is not allowed in an assistant message", f"{bw}.type")
    message: Message = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _inbound_tools(tools: Any) -> list[Tool]:
    if not isinstance(tools, list):
        fail("tools must be an array", "tools")
    out: list[Tool] = []
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict):
            fail(f"{where} must be an object", where)
        kind = tool.get("type")
        if kind not in (None, "custom"):
            raise NeedsNativeFormat(
                f"{where}.type: server tool '{kind}' can only go to an Anthropic provider's model",
                param=f"{where}.type",
            )
        name = tool.get("name")
        if not isinstance(name, str) or not TOOL_NAME.match(name):
            fail(f"{where}.name must match ^[A-Za-z0-9_-]{{1,64}}$", f"{where}.name")
        schema = tool.get("input_schema")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            fail(f"{where}.input_schema must be a JSON Schema with type 'object'", f"{where}.input_schema")
        function: FunctionSpec = {"name": name}
        description = tool.get("description")
        if description is not None:
            if not isinstance(description, str):
                fail(f"{where}.description must be a string", f"{where}.description")
            function["description"] = description
        function["parameters"] = schema
        if isinstance(tool.get("strict"), bool):
            function["strict"] = tool["strict"]
        out.append({"type": "function", "function": function})
    return out


def _inbound_tool_choice(choice: Any) -> tuple[Any, bool | None]:
    if not isinstance(choice, dict) or not isinstance(choice.get("type"), str):
        fail("tool_choice must be an object with a type", "tool_choice")
    kind = choice["type"]
    disable = choice.get("disable_parallel_tool_use")
    parallel = False if disable is True else None
    if kind in _TOOL_CHOICE_IN:
        return _TOOL_CHOICE_IN[kind], parallel
    if kind == "tool":
        name = string_field(choice, "name", "tool_choice")
        return {"type": "function", "function": {"name": name}}, parallel
    fail("tool_choice.type must be one of auto, any, tool, none", "tool_choice.type")
