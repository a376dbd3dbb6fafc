"""Reading a canonical (OpenAI Chat Completions) request on its way to another wire format: the
checks and shapes every outbound translation (Anthropic, Bedrock, Gemini) needs alike, so each one
refuses the same bad input with the same 400 naming the same field."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn, TypeGuard

import orjson

from turnout.errors import InvalidRequest


def fail(message: str, param: str | None) -> NoReturn:
    """Raise a 400 naming the offending field."""
    raise InvalidRequest(message, param=param)


def is_int(value: Any) -> TypeGuard[int]:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> TypeGuard[int | float]:
    """An int or float that is not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def string_field(obj: Mapping[str, Any], key: str, where: str, *, empty: bool = False) -> str:
    """``obj[key]`` when it is a string (non-empty unless ``empty``); else a 400."""
    value = obj.get(key)
    if not isinstance(value, str) or (not empty and not value):
        fail(f"{where}.{key} must be a{'' if empty else ' non-empty'} string", f"{where}.{key}")
    return value


def plain_text(content: Any, where: str, separator: str = "\n") -> str:
    """A message's content that may hold only text (system, tool): its texts joined."""
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        fail(f"{where}.content must be a string or an array of text parts", f"{where}.content")
    texts = []
    for j, part in enumerate(content):
        pw = f"{where}.content[{j}]"
        if not isinstance(part, dict) or part.get("type") != "text":
            fail(f"{pw} must be a text part here", pw)
        texts.append(string_field(part, "text", pw, empty=True))
    return separator.join(t for t in texts if t)


@dataclass(frozen=True, slots=True)
class FunctionTool:
    """A checked function tool: its name, description (None: none given) and parameters schema
    (None: none given; each format decides what stands for it)."""

    name: str
    description: str | None
    parameters: dict[str, Any] | None


def function_tools(tools: Any, vendor: str) -> list[FunctionTool]:
    """``tools`` checked: an array of function tools (``vendor`` names the models in the error)."""
    if tools is None:
        return []
    if not isinstance(tools, list):
        fail("tools must be an array", "tools")
    out = []
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        fn = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
        if not isinstance(fn, dict):
            fail(f"{where}: only function tools are supported for {vendor} models", f"{where}.type")
        parameters = fn.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            fail(f"{where}.function.parameters must be an object", f"{where}.function.parameters")
        description = fn.get("description")
        name = string_field(fn, "name", f"{where}.function")
        out.append(FunctionTool(name, description if isinstance(description, str) and description else None,
                                parameters))  # fmt: skip
    return out


def format_instruction(fmt: Any) -> str | None:
    """``response_format`` as an instruction, for formats with no JSON mode of their own."""
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return None
    if fmt["type"] == "json_object":
        return "Respond only with a single valid JSON object, with no text before or after it."
    if fmt["type"] == "json_schema":
        spec = fmt.get("json_schema")
        spec = spec if isinstance(spec, dict) else {}
        schema = orjson.dumps(spec.get("schema", {})).decode()
        return (
            "Respond only with a single valid JSON object, with no text before or after it, "
            f"that conforms to this JSON Schema: {schema}"
        )
    fail(f"response_format.type '{fmt['type']}' is not supported", "response_format.type")
