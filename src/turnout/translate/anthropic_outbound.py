"""Canonical chat request -> an Anthropic provider's Messages request (used by its adapter).

Outbound (an Anthropic provider): system/developer messages are joined into ``system``; consecutive
turns of one role are merged (tool results first, as Anthropic requires); empty turns are dropped.
``response_format`` ``json_object``/``json_schema`` becomes a tool Claude must call
(``FORMAT_TOOL``, the schema as its input schema, which Anthropic enforces; its call comes back as
the answer's content), or, where a forced tool cannot go (the call's own tools, thinking, a schema
whose root is not an object), a system instruction: the JSON asked for, not enforced.
``temperature`` is clamped to Anthropic's 0-1.
``seed``, penalties, ``logit_bias`` and ``logprobs`` are dropped.
``max_tokens`` (required by Anthropic) is ``max_completion_tokens``, else ``max_tokens``, else 4096.
``n > 1`` is rejected. ``reasoning_effort`` becomes ``thinking`` with the budget ``EFFORT_BUDGETS``
names (then ``temperature`` is dropped, and ``max_tokens`` raised above the budget when it is not),
except where Anthropic would refuse thinking (see ``_thinking_budget``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from turnout.translate.anthropic import FORMAT_TOOL
from turnout.translate.canonical_read import (
    fail,
    format_instruction,
    function_tools,
    is_int,
    is_number,
    plain_text,
    string_field,
)
from turnout.translate.types import (
    ChatRequest,
)

DEFAULT_MAX_TOKENS = 4096
FORMAT_TOOL_USE = "Give your whole answer as this tool's input: it is the JSON the user receives."
# reasoning_effort -> thinking budget_tokens (Anthropic's least is 1024); the inverse is
# anthropic_inbound.EFFORT_BY_BUDGET
EFFORT_BUDGETS = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384}
THINKING_MIN_TOP_P = 0.95  # with thinking, Anthropic takes top_p from 0.95 to 1 only
_TOOL_CHOICE_OUT = {"auto": "auto", "required": "any", "none": "none"}
_MEDIA_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg"}
_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+)((?:;[\w.+-]+=[^;,]*)*);base64,(.*)$", re.DOTALL)


def openai_to_anthropic_request(body: ChatRequest, model: str) -> dict[str, Any]:
    """Canonical chat body -> Anthropic Messages request for ``model`` (the provider's id)."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        fail("messages must be an array", "messages")
    if body.get("n") not in (None, 1):
        fail("n > 1 is not supported by Anthropic models", "n")
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            fail(f"{where} must be an object", where)
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            system.append(plain_text(content, where, "\n\n"))
            continue
        if role == "user":
            blocks = _user_blocks(content, where)
        elif role == "assistant":
            blocks = _assistant_blocks(message, where)
        elif role == "tool":
            blocks = [_tool_result_block(message, where)]
        else:
            fail(f"{where}.role '{role}' is not supported for Anthropic models", f"{where}.role")
        anthropic_role = "assistant" if role == "assistant" else "user"
        if not blocks:
            continue  # Anthropic rejects empty turns; neighbours of one role merge below
        if turns and turns[-1]["role"] == anthropic_role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": anthropic_role, "content": blocks})
    if not turns:
        fail("messages must hold at least one non-system message with content", "messages")
    for turn in turns:  # Anthropic wants tool results first in their user turn
        if turn["role"] == "user":
            turn["content"].sort(key=lambda b: b["type"] != "tool_result")
    out: dict[str, Any] = {"model": model, "max_tokens": _max_tokens(body), "messages": turns}
    budget = _thinking_budget(body, messages)
    if budget is not None:
        out["thinking"] = {"type": "enabled", "budget_tokens": budget}
        if out["max_tokens"] <= budget:  # thinking counts within max_tokens: room for the answer on top
            asked = body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_TOKENS
            out["max_tokens"] = budget + asked
    tools = _outbound_tools(body.get("tools"))
    answer_tool = None if tools or budget is not None else _format_tool(body.get("response_format"))
    if answer_tool is not None:  # the JSON comes as the forced tool's input, checked by Anthropic
        out["tools"], out["tool_choice"] = [answer_tool], {"type": "tool", "name": FORMAT_TOOL}
    else:
        instruction = format_instruction(body.get("response_format"))
        if instruction:
            system.append(instruction)
    text = "\n\n".join(s for s in system if s)
    if text:
        out["system"] = text
    temperature = body.get("temperature")
    if is_number(temperature) and budget is None:  # thinking takes no temperature
        out["temperature"] = temperature if temperature <= 1 else 1
    top_p = body.get("top_p")
    if is_number(top_p) and (budget is None or top_p >= THINKING_MIN_TOP_P):
        out["top_p"] = top_p
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    stops = [s for s in stops if isinstance(s, str) and s]
    if stops:
        out["stop_sequences"] = stops
    if body.get("stream") is True:
        out["stream"] = True
    if isinstance(body.get("user"), str) and body["user"]:
        out["metadata"] = {"user_id": body["user"]}
    if tools:
        out["tools"] = tools
        choice = _outbound_tool_choice(body.get("tool_choice"))
        if body.get("parallel_tool_calls") is False and (choice or {}).get("type") != "none":
            choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
        if choice is not None:
            out["tool_choice"] = choice
    return out


def _thinking_budget(body: Mapping[str, Any], messages: list[Any]) -> int | None:
    """``reasoning_effort`` as a thinking budget, None for none. Not where Anthropic would refuse
    thinking: a forced tool choice, or a tool loop whose assistant turn carries no thinking block
    to replay (an OpenAI client has none to send back)."""
    effort = body.get("reasoning_effort")
    if effort is None or effort == "none":
        return None
    budget = EFFORT_BUDGETS.get(effort) if isinstance(effort, str) else None
    if budget is None:
        fail(f"reasoning_effort must be one of none, {', '.join(EFFORT_BUDGETS)}", "reasoning_effort")
    choice = body.get("tool_choice")
    if choice == "required" or isinstance(choice, dict):
        return None
    for message in reversed(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role == "assistant":
            return None if message.get("tool_calls") else budget
        if role != "tool":
            return budget
    return budget


def _max_tokens(body: Mapping[str, Any]) -> int:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is not None:
            if not is_int(value) or value < 1:
                fail(f"{name} must be an integer >= 1", name)
            return int(value)
    return DEFAULT_MAX_TOKENS


def _user_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if content is None or isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        fail(f"{where}.content must be a string or an array of content parts", f"{where}.content")
    blocks: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        pw = f"{where}.content[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            text = string_field(part, "text", pw, empty=True)
            if text:
                blocks.append({"type": "text", "text": text})
        elif kind == "image_url":
            blocks.append(_image_block(part, pw))
        else:
            fail(f"{pw}.type '{kind}' is not supported for Anthropic models", f"{pw}.type")
    return blocks


def _image_block(part: dict[str, Any], where: str) -> dict[str, Any]:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        fail(f"{where}.image_url.url must be a non-empty string", f"{where}.image_url.url")
    if url.startswith("data:"):
        match = _DATA_URL.match(url)
        if match is None:
            fail(f"{where}.image_url.url must be a base64 data URL", f"{where}.image_url.url")
        media = match.group(1).lower()
        source = {"type": "base64", "media_type": _MEDIA_ALIASES.get(media, media), "data": match.group(3)}
        return {"type": "image", "source": source}
    if not url.startswith(("https://", "http://")):
        fail(f"{where}.image_url.url must be an http(s) or data URL", f"{where}.image_url.url")
    return {"type": "image", "source": {"type": "url", "url": url}}


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
                blocks.append({"type": "text", "text": text})
    elif isinstance(content, str) and content:
        blocks.append({"type": "text", "text": content})
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
        call_id = string_field(call, "id", cw)
        name = string_field(fn, "name", f"{cw}.function")
        blocks.append({"type": "tool_use", "id": call_id, "name": name, "input": _arguments(fn, cw)})
    return blocks


def _arguments(fn: dict[str, Any], where: str) -> dict[str, Any]:
    raw = fn.get("arguments")
    if isinstance(raw, dict):
        return raw
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    param = f"{where}.function.arguments"
    if not isinstance(raw, str):
        fail(f"{param} must be a JSON string", param)
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        fail(f"{param} is not valid JSON", param)
    if not isinstance(value, dict):
        fail(f"{param} must encode a JSON object", param)
    return value


def _tool_result_block(message: Mapping[str, Any], where: str) -> dict[str, Any]:
    block: dict[str, Any] = {
        "type": "tool_result",
        "tool_use_id": string_field(message, "tool_call_id", where),
    }
    text = plain_text(message.get("content"), where, "\n")
    if text:
        block["content"] = text
    return block


def _format_tool(fmt: Any) -> dict[str, Any] | None:
    """``response_format`` as the tool Claude is made to call, its input the answer: a JSON object,
    or one of the schema's (whose root must be an object, as a tool's input is); None otherwise."""
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "json_object":
        schema: Any = {"type": "object"}
        description = None
    elif kind == "json_schema":
        spec = fmt.get("json_schema") if isinstance(fmt, dict) else None
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict) or schema.get("type") != "object":
            return None
        description = spec.get("description") if isinstance(spec, dict) else None
    else:
        return None
    return {
        "name": FORMAT_TOOL,
        "description": description if isinstance(description, str) and description else FORMAT_TOOL_USE,
        "input_schema": schema,
    }


def _outbound_tools(tools: Any) -> list[dict[str, Any]]:
    out = []
    for i, tool in enumerate(function_tools(tools, "Anthropic")):
        if tool.name == FORMAT_TOOL:
            fail(f"the tool name '{FORMAT_TOOL}' is reserved", f"tools[{i}].function.name")
        converted: dict[str, Any] = {"name": tool.name}
        if tool.description is not None:
            converted["description"] = tool.description
        converted["input_schema"] = tool.parameters or {"type": "object", "properties": {}}
        out.append(converted)
    return out


def _outbound_tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, str) and choice in _TOOL_CHOICE_OUT:
        return {"type": _TOOL_CHOICE_OUT[choice]}
    fn = choice.get("function") if isinstance(choice, dict) else None
    if isinstance(fn, dict) and isinstance(fn.get("name"), str) and fn["name"]:
        return {"type": "tool", "name": fn["name"]}
    fail("tool_choice must be auto, required, none or a named function", "tool_choice")
