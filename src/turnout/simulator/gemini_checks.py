"""Request checks of the simulator's Gemini routes: field by field, as the real API refuses bad
input (unknown fields, empty parts, roles other than ``user``/``model``, function calls answered by
as many function responses in the next turn, JSON-Schema keywords Gemini's Schema lacks), and its
error shape ``{"error": {"code", "message", "status", "details"}}``."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import orjson
from aiohttp import web

from turnout.simulator.respond import JSON_HEADERS, format_seconds

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_MESSAGES = {
    400: "Request contains an invalid argument.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    429: "Resource has been exhausted (e.g. check quota).",
    500: "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
    504: "Deadline expired before operation could complete.",
}
_NO_KEY = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
_TOP_FIELDS = frozenset(
    {
        "model",
        "contents",
        "systemInstruction",
        "tools",
        "toolConfig",
        "generationConfig",
        "safetySettings",
        "cachedContent",
    }
)
_PART_DATA = frozenset(
    {
        "text",
        "inlineData",
        "fileData",
        "functionCall",
        "functionResponse",
        "executableCode",
        "codeExecutionResult",
    }
)
_PART_META = frozenset({"thought", "thoughtSignature", "videoMetadata", "mediaResolution", "partMetadata"})
_GENERATION_FIELDS = frozenset(
    {
        "stopSequences",
        "responseMimeType",
        "responseSchema",
        "responseJsonSchema",
        "responseModalities",
        "candidateCount",
        "maxOutputTokens",
        "temperature",
        "topP",
        "topK",
        "seed",
        "presencePenalty",
        "frequencyPenalty",
        "responseLogprobs",
        "logprobs",
        "enableEnhancedCivicAnswers",
        "speechConfig",
        "thinkingConfig",
        "mediaResolution",
    }
)
_TOOL_FIELDS = frozenset(
    {"functionDeclarations", "googleSearch", "googleSearchRetrieval", "codeExecution", "urlContext"}
)
_DECLARATION_FIELDS = frozenset(
    {"name", "description", "parameters", "parametersJsonSchema", "response", "behavior"}
)
_SCHEMA_FIELDS = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "maxItems",
        "minItems",
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "anyOf",
        "propertyOrdering",
        "default",
        "items",
        "minimum",
        "maximum",
    }
)
_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object", "null", "type_unspecified"})
_MODES = frozenset({"AUTO", "ANY", "NONE", "VALIDATED", "MODE_UNSPECIFIED"})
_SNAKE = re.compile(r"_([a-z])")


def gemini_error(
    status: int,
    message: str | None = None,
    retry_after: float | None = None,
    *,
    reason: str | None = None,
) -> web.Response:
    """An error in Gemini's shape; 429 carries ``RetryInfo`` in its details (Gemini sends no
    Retry-After header), a key problem an ``ErrorInfo`` reason."""
    name = _STATUS_NAMES.get(status) or ("INTERNAL" if status >= 500 else "FAILED_PRECONDITION")
    error: dict[str, Any] = {
        "code": status,
        "message": message or _MESSAGES.get(status, f"Simulated error (HTTP {status})."),
        "status": name,
    }
    details: list[dict[str, Any]] = []
    if reason is not None:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
        )
    if status == 429 or retry_after is not None:
        wait = 1.0 if retry_after is None else retry_after
        details.append(
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{format_seconds(wait)}s"}
        )
    if details:
        error["details"] = details
    return web.Response(body=orjson.dumps({"error": error}), status=status, headers=JSON_HEADERS)


def _camel(name: str) -> str:
    """Gemini's JSON takes field names in lowerCamelCase or in the protos' snake_case."""
    return _SNAKE.sub(lambda m: m.group(1).upper(), name) if "_" in name else name


def _unknown(obj: dict[str, Any], known: frozenset[str], where: str) -> web.Response | None:
    for key in obj:
        if _camel(key) not in known:
            return gemini_error(
                400, f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': Cannot find field."
            )
    return None


def _get(obj: dict[str, Any], name: str) -> Any:
    """A field by its camelCase name, or by its snake_case one."""
    if name in obj:
        return obj[name]
    return obj.get(re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), name))


def _invalid(where: str, problem: str) -> web.Response:
    return gemini_error(400, f"* GenerateContentRequest.{where}: {problem}\n")


def _check_schema(schema: Any, where: str) -> web.Response | None:
    if not isinstance(schema, dict):
        return _invalid(where, "schema must be an object")
    if (bad := _unknown(schema, _SCHEMA_FIELDS, where)) is not None:
        return bad
    kind = schema.get("type")
    if kind is not None and (not isinstance(kind, str) or kind.lower() not in _TYPES):
        return gemini_error(400, f"Invalid value at '{where}.type', \"{kind}\"")
    properties = schema.get("properties")
    if isinstance(properties, dict):
        if not properties and isinstance(kind, str) and kind.lower() == "object":
            return _invalid(f"{where}.properties", "should be non-empty for OBJECT type")
        for name, sub in properties.items():
            if (bad := _check_schema(sub, f"{where}.properties[{name}].value")) is not None:
                return bad
    if "items" in schema and (bad := _check_schema(schema["items"], f"{where}.items")) is not None:
        return bad
    for k, sub in enumerate(schema.get("anyOf") or ()):
        if (bad := _check_schema(sub, f"{where}.any_of[{k}]")) is not None:
            return bad
    return None


def _check_part(part: Any, where: str) -> tuple[str | None, web.Response | None]:
    """(its data field, or a 400) for one part."""
    if not isinstance(part, dict):
        return None, _invalid(where, "must be an object")
    if (bad := _unknown(part, _PART_DATA | _PART_META, where)) is not None:
        return None, bad
    present = [_camel(k) for k, v in part.items() if _camel(k) in _PART_DATA and v is not None]
    if len(present) != 1:
        problem = "required oneof field 'data' must have one initialized field"
        return None, _invalid(f"{where}.data", problem)
    field, value = present[0], next(v for k, v in part.items() if _camel(k) == present[0])
    if field == "text":
        if not isinstance(value, str):
            return None, _invalid(f"{where}.text", "must be a string")
        if not value:
            message = (
                "Unable to submit request because it has an empty text parameter. "
                "Add a value to the parameter and try again."
            )
            return None, gemini_error(400, message)
    elif field == "inlineData":
        data = _get(value, "data") if isinstance(value, dict) else None
        mime = _get(value, "mimeType") if isinstance(value, dict) else None
        if not isinstance(mime, str) or not mime:
            return None, _invalid(f"{where}.inline_data.mime_type", "must be set")
        try:
            base64.b64decode(data if isinstance(data, str) else "", validate=True)
        except (binascii.Error, ValueError):
            return None, gemini_error(
                400, f"Invalid value at '{where}.inline_data.data' (TYPE_BYTES), Base64 decoding failed"
            )
        if not data:
            return None, _invalid(f"{where}.inline_data.data", "must not be empty")
    elif field == "fileData":
        uri = _get(value, "fileUri") if isinstance(value, dict) else None
        if not isinstance(uri, str) or not uri:
            return None, _invalid(f"{where}.file_data.file_uri", "must be set")
    elif field in ("functionCall", "functionResponse"):
        name = value.get("name") if isinstance(value, dict) else None
        if not isinstance(name, str) or not name:
            snake = "function_call" if field == "functionCall" else "function_response"
            return None, _invalid(f"{where}.{snake}.name", "Name cannot be empty.")
        body = value.get("args" if field == "functionCall" else "response")
        if body is not None and not isinstance(body, dict):
            return None, gemini_error(
                400, f"Invalid value at '{where}': Starting an object on a scalar field"
            )
    return field, None


def _check_contents(contents: Any) -> web.Response | None:
    if not isinstance(contents, list) or not contents:
        return _invalid("contents", "contents is not specified")
    previous_calls = 0  # function calls of the previous (model) turn, still to be answered
    previous_role: str | None = None
    for i, content in enumerate(contents):
        where = f"contents[{i}]"
        if not isinstance(content, dict):
            return _invalid(where, "must be an object")
        if (bad := _unknown(content, frozenset({"role", "parts"}), where)) is not None:
            return bad
        role = content.get("role") or "user"
        if role not in ("user", "model"):
            return gemini_error(400, "Please use a valid role: user, model.")
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            return _invalid(f"{where}.parts", "contents.parts must not be empty.")
        fields = []
        for j, part in enumerate(parts):
            field, bad = _check_part(part, f"{where}.parts[{j}]")
            if bad is not None:
                return bad
            fields.append(field)
        calls, answers = fields.count("functionCall"), fields.count("functionResponse")
        if (calls and role != "model") or (answers and role != "user"):
            return gemini_error(
                400, "Function calls come from the model and function responses from the user."
            )
        if calls and previous_role == "model" and previous_calls:
            message = (
                "Please ensure that function call turn comes immediately after a user turn "
                "or after a function response turn."
            )
            return gemini_error(400, message)
        if answers and answers != previous_calls:
            message = (
                "Please ensure that the number of function response parts is equal to the number of "
                "function call parts of the function call turn."
            )
            return gemini_error(400, message)
        if previous_calls and not answers:
            return gemini_error(
                400, "Please ensure that function response turn comes immediately after a function call turn."
            )
        previous_calls, previous_role = calls, role
    return None


def _check_request(body: Any) -> web.Response | None:
    """A 400 in Gemini's words for the first problem of a ``generateContent`` body, or None."""
    if not isinstance(body, dict):
        return gemini_error(400, "Invalid JSON payload received. Expected an object.")
    if (bad := _unknown(body, _TOP_FIELDS, "")) is not None:
        return bad
    if (bad := _check_contents(body.get("contents"))) is not None:
        return bad
    system = _get(body, "systemInstruction")
    if system is not None:
        parts = system.get("parts") if isinstance(system, dict) else None
        if not isinstance(parts, list) or not parts:
            return _invalid("system_instruction.parts", "contents.parts must not be empty.")
        for j, part in enumerate(parts):
            field, bad = _check_part(part, f"system_instruction.parts[{j}]")
            if bad is not None:
                return bad
            if field != "text":
                return _invalid(f"system_instruction.parts[{j}]", "only text parts are allowed")
    for i, tool in enumerate(_get(body, "tools") or ()):
        where = f"tools[{i}]"
        if not isinstance(tool, dict):
            return _invalid(where, "must be an object")
        if (bad := _unknown(tool, _TOOL_FIELDS, where)) is not None:
            return bad
        for k, declaration in enumerate(_get(tool, "functionDeclarations") or ()):
            dw = f"{where}.function_declarations[{k}]"
            if not isinstance(declaration, dict) or not declaration.get("name"):
                return _invalid(f"{dw}.name", "Name cannot be empty.")
            if (bad := _unknown(declaration, _DECLARATION_FIELDS, dw)) is not None:
                return bad
            parameters = declaration.get("parameters")
            if parameters is not None and (bad := _check_schema(parameters, f"{dw}.parameters")) is not None:
                return bad
    config = _get(body, "toolConfig")
    calling = _get(config, "functionCallingConfig") if isinstance(config, dict) else None
    if isinstance(calling, dict) and calling.get("mode") not in (None, *_MODES):
        return gemini_error(
            400, f"Invalid value at 'tool_config.function_calling_config.mode', \"{calling.get('mode')}\""
        )
    generation = _get(body, "generationConfig")
    if generation is not None:
        return _check_generation(generation)
    return None


def _check_generation(config: Any) -> web.Response | None:
    if not isinstance(config, dict):
        return _invalid("generation_config", "must be an object")
    if (bad := _unknown(config, _GENERATION_FIELDS, "generation_config")) is not None:
        return bad
    stops = _get(config, "stopSequences")
    if stops is not None and (not isinstance(stops, list) or len(stops) > 5):
        return _invalid("generation_config.stop_sequences", "at most 5 stop sequences are allowed")
    count = _get(config, "candidateCount")
    if count is not None and (not _int(count) or not 1 <= count <= 8):
        return _invalid("generation_config.candidate_count", "must be between 1 and 8")
    limit = _get(config, "maxOutputTokens")
    if limit is not None and (not _int(limit) or limit < 1):
        return _invalid("generation_config.max_output_tokens", "must be a positive integer")
    temperature = _get(config, "temperature")
    if temperature is not None and (not _number(temperature) or not 0 <= temperature <= 2):
        return _invalid("generation_config.temperature", "must be between 0 and 2")
    schema = _get(config, "responseSchema")
    if schema is not None and (bad := _check_schema(schema, "generation_config.response_schema")) is not None:
        return bad
    return None


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _lowered(schema: Any) -> Any:
    """A Gemini schema with its ``type`` names in the lower case ``text.sample_schema`` reads."""
    if isinstance(schema, dict):
        out = {k: _lowered(v) for k, v in schema.items()}
        if isinstance(out.get("type"), str):
            out["type"] = out["type"].lower()
        return out
    if isinstance(schema, list):
        return [_lowered(v) for v in schema]
    return schema
