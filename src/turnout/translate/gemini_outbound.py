"""Canonical chat request -> a Gemini ``generateContent`` body (used by the Gemini adapter).

System and developer messages become ``systemInstruction``; user and tool messages ``user``
contents, assistant messages ``model`` ones (consecutive turns of one role merged, empty ones
dropped: Gemini wants non-empty turns). Images become ``inlineData`` (data URLs) or ``fileData``
(http URLs). Tool calls become ``functionCall`` parts and tool results ``functionResponse`` parts,
which Gemini matches by function *name*, so each result is named after the assistant tool call its
``tool_call_id`` points at. JSON Schemas (tool parameters, ``response_format``) are cut down to the
OpenAPI subset Gemini accepts (:func:`gemini_schema`). Sampling fields go to ``generationConfig``;
``user``, ``logit_bias``, ``logprobs`` and ``parallel_tool_calls`` have no Gemini equivalent and
are dropped.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Mapping
from typing import Any

import orjson

from turnout.translate.canonical_read import fail, function_tools, is_int, is_number, plain_text
from turnout.translate.types import ChatRequest

#: A documented stand-in for the ``thoughtSignature`` Gemini 3 requires on replayed function
#: calls: the canonical shape has nowhere to keep the real one, and without any, Gemini 3 answers 400.
SKIP_SIGNATURE = "skip_thought_signature_validator"
_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+)((?:;[\w.+-]+=[^;,]*)*);base64,(.*)$", re.DOTALL)
_MEDIA_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg"}
_AUDIO_TYPES = {"wav": "audio/wav", "mp3": "audio/mp3", "flac": "audio/flac", "ogg": "audio/ogg"}
_TOOL_MODES = {"auto": "AUTO", "required": "ANY", "none": "NONE"}


# -- JSON Schema -> Gemini's Schema --------------------------------------------------------------

_SCHEMA_COPY = frozenset(
    {
        "title",
        "description",
        "nullable",
        "maxItems",
        "minItems",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "default",
        "minimum",
        "maximum",
        "propertyOrdering",
    }
)
_FORMATS = {"string": {"enum", "date-time"}, "integer": {"int32", "int64"}, "number": {"float", "double"}}
_MAX_REF_DEPTH = 8


def gemini_schema(schema: Any) -> dict[str, Any]:
    """A JSON Schema cut down to the OpenAPI subset Gemini accepts: unknown keywords
    (``additionalProperties``, ``$schema``, ``strict`` ...) would make it answer 400, so they go;
    local ``$ref``s are inlined (recursion stops at a plain object), ``type: [x, "null"]`` and
    ``anyOf`` with ``null`` become ``nullable``, ``oneOf`` becomes ``anyOf``, a string ``const``
    a one-value ``enum``; formats and enums Gemini does not take are dropped."""
    if not isinstance(schema, dict):
        return {}
    defs: dict[str, Any] = {}
    for key in ("definitions", "$defs"):
        found = schema.get(key)
        if isinstance(found, dict):
            defs.update(found)
    return _schema(schema, defs, 0)


def _schema(schema: Any, defs: Mapping[str, Any], depth: int) -> dict[str, Any]:
    if not isinstance(schema, dict):
        return {}
    ref = schema.get("$ref")
    if isinstance(ref, str):
        target = defs.get(ref.rsplit("/", 1)[-1]) if ref.startswith("#/") else None
        if not isinstance(target, dict) or depth >= _MAX_REF_DEPTH:
            return {"type": "object"}
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        return _schema({**target, **rest}, defs, depth + 1)
    out: dict[str, Any] = {key: schema[key] for key in _SCHEMA_COPY if key in schema}
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if isinstance(k, str) and k != "null"]
        if "null" in kind:
            out["nullable"] = True
        if len(kinds) > 1:
            out["anyOf"] = [{"type": k} for k in kinds]
        kind = kinds[0] if len(kinds) == 1 else None
    if isinstance(kind, str):
        out["type"] = kind
    options = schema.get("anyOf", schema.get("oneOf"))
    if isinstance(options, list):
        branches = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
        if len(branches) < len(options):
            out["nullable"] = True
        converted = [_schema(o, defs, depth + 1) for o in branches]
        if len(converted) == 1 and "type" not in out:
            out.update(converted[0])
        elif converted:
            out["anyOf"] = converted
    every = schema.get("allOf")
    if isinstance(every, list):
        for part in every:  # a merge, good enough for the usual single-branch allOf
            for key, value in _schema(part, defs, depth + 1).items():
                out.setdefault(key, value)
    lowered = kind.lower() if isinstance(kind, str) else None
    enum = schema.get("enum")
    const = schema.get("const")
    if isinstance(const, str):
        enum = [const]
    if isinstance(enum, list) and enum and all(isinstance(v, str) for v in enum):
        out["enum"] = enum
        out.setdefault("type", "string")
    fmt = schema.get("format")
    if isinstance(fmt, str) and lowered is not None and fmt in _FORMATS.get(lowered, ()):
        out["format"] = fmt
    properties = schema.get("properties")
    if isinstance(properties, dict) and properties:
        out["properties"] = {str(name): _schema(sub, defs, depth) for name, sub in properties.items()}
        required = schema.get("required")
        if isinstance(required, list):
            kept = [r for r in required if isinstance(r, str) and r in properties]
            if kept:
                out["required"] = kept
    items = schema.get("items")
    if isinstance(items, list):  # tuple validation: Gemini has one item schema
        items = items[0] if items else None
    if isinstance(items, dict):
        out["items"] = _schema(items, defs, depth)
    return out


# -- requests --------------------------------------------------------------------------------------


def to_gemini_request(body: ChatRequest, *, system_instruction: bool = True) -> dict[str, Any]:
    """Canonical chat body -> ``generateContent`` body (the model goes in the URL). Without
    ``system_instruction`` (Gemma models refuse it) the system text opens the first user turn."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        fail("messages must be an array", "messages")
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool call id -> function name, from the assistant turns so far
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            fail(f"{where} must be an object", where)
        role = message.get("role")
        if role in ("system", "developer"):
            text = plain_text(message.get("content"), where)
            if text:
                system.append(text)
            continue
        if role == "user":
            parts, gemini_role = _user_parts(message.get("content"), where), "user"
        elif role == "assistant":
            parts, gemini_role = _model_parts(message, where, names), "model"
        elif role in ("tool", "function"):
            parts, gemini_role = [_function_response(message, where, names)], "user"
        else:
            fail(f"{where}.role '{role}' is not supported for Gemini models", f"{where}.role")
        if not parts:
            continue  # Gemini rejects empty turns; neighbours of one role merge below
        if contents and contents[-1]["role"] == gemini_role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": gemini_role, "parts": parts})
    if not contents:
        fail("messages must hold at least one non-system message with content", "messages")
    for content in contents:  # function responses lead their turn, right after the calls
        if content["role"] == "user":
            content["parts"].sort(key=lambda p: "functionResponse" not in p)
        else:
            _sign_first_call(content["parts"])
    out: dict[str, Any] = {"contents": contents}
    if system:
        text = "\n\n".join(system)
        if system_instruction:
            out["systemInstruction"] = {"parts": [{"text": text}]}
        else:
            first_user = next((c for c in contents if c["role"] == "user"), None)
            if first_user is None:
                contents.insert(0, first_user := {"role": "user", "parts": []})
            first_user["parts"].insert(0, {"text": text})
    tools = _declarations(body.get("tools"))
    if tools:
        out["tools"] = [{"functionDeclarations": tools}]
        config = _tool_config(body.get("tool_choice"))
        if config is not None:
            out["toolConfig"] = {"functionCallingConfig": config}
    generation = _generation_config(body)
    if generation:
        out["generationConfig"] = generation
    return out


def _user_parts(content: Any, where: str) -> list[dict[str, Any]]:
    if content is None or isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        fail(f"{where}.content must be a string or an array of content parts", f"{where}.content")
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        pw = f"{where}.content[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                fail(f"{pw}.text must be a string", f"{pw}.text")
            if text:
                parts.append({"text": text})
        elif kind == "image_url":
            parts.append(_image_part(part.get("image_url"), pw))
        elif kind == "input_audio":
            parts.append(_audio_part(part.get("input_audio"), pw))
        elif kind == "file":
            parts.append(_file_part(part.get("file"), pw))
        else:
            fail(f"{pw}.type '{kind}' is not supported for Gemini models", f"{pw}.type")
    return parts


def _inline(url: str, param: str) -> dict[str, Any]:
    match = _DATA_URL.match(url)
    if match is None:
        fail(f"{param} must be a base64 data URL", param)
    media = match.group(1).lower()
    return {"inlineData": {"mimeType": _MEDIA_ALIASES.get(media, media), "data": match.group(3)}}


def _image_part(image: Any, where: str) -> dict[str, Any]:
    url = image.get("url") if isinstance(image, dict) else image
    param = f"{where}.image_url.url"
    if not isinstance(url, str) or not url:
        fail(f"{param} must be a non-empty string", param)
    if url.startswith("data:"):
        return _inline(url, param)
    if not url.startswith(("https://", "http://")):
        fail(f"{param} must be an http(s) or data URL", param)
    guessed = mimetypes.guess_type(url.split("?", 1)[0])[0]
    mime = guessed if guessed and guessed.startswith("image/") else "image/jpeg"
    return {"fileData": {"mimeType": mime, "fileUri": url}}


def _audio_part(audio: Any, where: str) -> dict[str, Any]:
    data = audio.get("data") if isinstance(audio, dict) else None
    fmt = audio.get("format") if isinstance(audio, dict) else None
    if not isinstance(data, str) or not data or fmt not in _AUDIO_TYPES:
        param = f"{where}.input_audio"
        fail(f"{param} needs base64 data and a format ({', '.join(_AUDIO_TYPES)})", param)
    return {"inlineData": {"mimeType": _AUDIO_TYPES[fmt], "data": data}}


def _file_part(file: Any, where: str) -> dict[str, Any]:
    data = file.get("file_data") if isinstance(file, dict) else None
    param = f"{where}.file.file_data"
    if not isinstance(data, str) or not data.startswith("data:"):
        fail(f"{param} must be a base64 data URL (uploaded file ids are not supported)", param)
    return _inline(data, param)


def tool_arguments(raw: Any) -> dict[str, Any]:
    """OpenAI's JSON-string ``arguments`` -> the object ``functionCall.args`` is: ``{}`` when empty,
    ``{"_raw": text}`` when the model wrote something that is not a JSON object."""
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str) or not raw.strip():
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {"_raw": raw}
    return value if isinstance(value, dict) else {"_raw": raw}


def _model_parts(message: Mapping[str, Any], where: str, names: dict[str, str]) -> list[dict[str, Any]]:
    content = message.get("content")
    parts: list[dict[str, Any]] = []
    if isinstance(content, str):
        if content:
            parts.append({"text": content})
    elif isinstance(content, list):
        for j, part in enumerate(content):
            pw = f"{where}.content[{j}]"
            kind = part.get("type") if isinstance(part, dict) else None
            if kind not in ("text", "refusal") or not isinstance(part.get(kind), str):
                fail(f"{pw} must be a text or refusal part in an assistant message", pw)
            if part[kind]:
                parts.append({"text": part[kind]})
    elif content is not None:
        fail(f"{where}.content must be a string or an array of text parts", f"{where}.content")
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        fail(f"{where}.tool_calls must be an array", f"{where}.tool_calls")
    for k, call in enumerate(calls):
        cw = f"{where}.tool_calls[{k}]"
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            fail(f"{cw}.function.name must be a non-empty string", f"{cw}.function.name")
        name = fn["name"]
        if isinstance(call.get("id"), str) and call["id"]:
            names[call["id"]] = name
        parts.append({"functionCall": {"name": name, "args": tool_arguments(fn.get("arguments"))}})
    return parts


def _sign_first_call(parts: list[dict[str, Any]]) -> None:
    """Gemini signs the first function call of each model turn; replayed ones get the stand-in."""
    for part in parts:
        if "functionCall" in part:
            part["thoughtSignature"] = SKIP_SIGNATURE
            return


def _function_response(message: Mapping[str, Any], where: str, names: Mapping[str, str]) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    name = names.get(call_id) if isinstance(call_id, str) else None
    if name is None:
        given = message.get("name")
        name = given if isinstance(given, str) and given else None
    if name is None:
        param = f"{where}.tool_call_id"
        fail(f"{param} {call_id!r} matches no tool call of an earlier assistant message", param)
    text = plain_text(message.get("content"), where)
    try:
        value: Any = orjson.loads(text) if text else ""
    except orjson.JSONDecodeError:
        value = text
    response = value if isinstance(value, dict) else {"output": value}
    return {"functionResponse": {"name": name, "response": response}}


def _declarations(tools: Any) -> list[dict[str, Any]]:
    out = []
    for tool in function_tools(tools, "Gemini"):
        declaration: dict[str, Any] = {"name": tool.name}
        if tool.description is not None:
            declaration["description"] = tool.description
        schema = gemini_schema(tool.parameters)
        if schema.get("properties"):  # Gemini refuses an object schema without properties
            declaration["parameters"] = schema
        out.append(declaration)
    return out


def _tool_config(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, str) and choice in _TOOL_MODES:
        return {"mode": _TOOL_MODES[choice]}
    fn = choice.get("function") if isinstance(choice, dict) else None
    if isinstance(fn, dict) and isinstance(fn.get("name"), str) and fn["name"]:
        return {"mode": "ANY", "allowedFunctionNames": [fn["name"]]}
    fail("tool_choice must be auto, required, none or a named function", "tool_choice")


def _generation_config(body: ChatRequest) -> dict[str, Any]:
    fields: Mapping[str, Any] = body
    out: dict[str, Any] = {}
    for name, key in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        value = fields.get(name)
        if value is not None:
            if not is_number(value):
                fail(f"{name} must be a number", name)
            out[key] = value
    for name in ("max_completion_tokens", "max_tokens"):
        value = fields.get(name)
        if value is not None:
            if not is_int(value) or value < 1:
                fail(f"{name} must be an integer >= 1", name)
            out["maxOutputTokens"] = value
            break
    n = fields.get("n")
    if n is not None:
        if not is_int(n) or n < 1:
            fail("n must be an integer >= 1", "n")
        if n > 1:
            out["candidateCount"] = n
    seed = fields.get("seed")
    if is_int(seed):
        out["seed"] = seed
    stop = fields.get("stop")
    stops = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    stops = [s for s in stops if isinstance(s, str) and s]
    if stops:
        out["stopSequences"] = stops
    out.update(_response_format(fields.get("response_format")))
    return out


def _response_format(fmt: Any) -> dict[str, Any]:
    if fmt is None:
        return {}
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return {}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        schema = gemini_schema(spec.get("schema") if isinstance(spec, dict) else None)
        out: dict[str, Any] = {"responseMimeType": "application/json"}
        if schema:
            out["responseSchema"] = schema
        return out
    fail(f"response_format.type '{kind}' is not supported for Gemini models", "response_format.type")
