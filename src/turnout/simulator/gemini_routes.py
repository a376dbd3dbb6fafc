"""Google Gemini wire format (``/v1beta``): ``POST /v1beta/models/{model}:generateContent``,
``:streamGenerateContent`` (SSE with ``alt=sse``, else a JSON array), ``:batchEmbedContents``,
``:embedContent``; ``GET /v1beta/models`` (``pageSize``/``pageToken``) and
``GET /v1beta/models/{model}``. Errors as ``{"error": {"code", "message", "status", "details"}}``.

Like the real API: the key goes in ``x-goog-api-key`` (none: 403 ``PERMISSION_DENIED``; a wrong
one: 400 ``API_KEY_INVALID``); requests are checked field by field (unknown fields, empty parts,
roles other than ``user``/``model``, function calls answered by as many function responses in the
next turn, JSON-Schema keywords Gemini's Schema lacks) and refused with 400 ``INVALID_ARGUMENT``.
Unlike it: a ``key=`` query parameter is refused (Turnout must never put keys in URLs), and pages
of the model list hold at most ``PAGE_LIMIT`` models, so every sync crosses pages.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from turnout.simulator import text
from turnout.simulator.respond import (
    JSON_HEADERS,
    Plan,
    begin,
    format_seconds,
    random_id,
    read_json,
    send_body,
    send_stream,
)

if TYPE_CHECKING:
    from turnout.simulator.server import Simulator

DEFAULT_GEMINI_MODELS = (
    "gemini-2.5-flash",
    "gemini-2.5-pro",
    "gemini-2.0-flash-lite",
    "gemini-embedding-001",
)
PAGE_LIMIT = 2  # the real API's is 1000; pages this small make every client follow nextPageToken
SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
CHAT_METHODS = ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"]
EMBED_METHODS = ["embedContent", "batchEmbedContents", "asyncBatchEmbedContent"]
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


def _part_texts(parts: Any) -> list[str]:
    out: list[str] = []
    for part in parts if isinstance(parts, list) else ():
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("text"), str):
            out.append(part["text"])
        for key in ("functionCall", "functionResponse"):
            if isinstance(part.get(key), dict):
                out.append(orjson.dumps(part[key]).decode())
    return out


def _prompt(contents: list[Any]) -> str:
    """The text of the last user turn that holds text (function responses alone do not count)."""
    for content in reversed(contents):
        if (content.get("role") or "user") == "user":
            texts = [p["text"] for p in content["parts"] if isinstance(p.get("text"), str)]
            if texts:
                return " ".join(texts)
    return ""


def _pick_tool(body: dict[str, Any], contents: list[Any]) -> dict[str, Any] | None:
    """The function to call: declarations given, mode not NONE, the last turn the user's own words
    (not function responses)."""
    declarations = [
        d
        for tool in _get(body, "tools") or ()
        if isinstance(tool, dict)
        for d in _get(tool, "functionDeclarations") or ()
        if isinstance(d, dict) and isinstance(d.get("name"), str)
    ]
    last = contents[-1]
    if not declarations or (last.get("role") or "user") != "user":
        return None
    if any(
        isinstance(p, dict) and ("functionResponse" in p or "function_response" in p) for p in last["parts"]
    ):
        return None
    config = _get(body, "toolConfig")
    calling = _get(config, "functionCallingConfig") if isinstance(config, dict) else None
    calling = calling if isinstance(calling, dict) else {}
    if calling.get("mode") == "NONE":
        return None
    allowed = _get(calling, "allowedFunctionNames")
    if isinstance(allowed, list) and allowed:
        declarations = [d for d in declarations if d["name"] in allowed] or declarations
    return declarations[0]


def _model_entry(model: str) -> dict[str, Any]:
    embedding = "embed" in model
    return {
        "name": f"models/{model}",
        "version": "001",
        "displayName": model.replace("-", " ").title(),
        "description": f"Simulated {model}",
        "inputTokenLimit": 2048 if embedding else 1_048_576,
        "outputTokenLimit": 1 if embedding else 65_536,
        "supportedGenerationMethods": EMBED_METHODS if embedding else CHAT_METHODS,
        **(
            {}
            if embedding
            else {"temperature": 1, "topP": 0.95, "topK": 64, "maxTemperature": 2, "thinking": True}
        ),
    }


def _page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"sim-page:{offset}".encode()).decode()


def _page_offset(token: str) -> int | None:
    try:
        prefix, _, number = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        return int(number) if prefix == "sim-page" and int(number) >= 0 else None
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


class GeminiRoutes:
    """The Gemini routes of one simulator."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def register(self, router: web.UrlDispatcher) -> None:
        """Add the routes (all under ``/v1beta``, which no other provider uses)."""
        router.add_get("/v1beta/models", self.list_models)
        model = router.add_resource("/v1beta/models/{model}")  # {model} is "<id>:<method>" for a POST
        model.add_route("GET", self.get_model)
        model.add_route("POST", self.model_action)

    def models(self) -> tuple[str, ...]:
        """The model ids listed (without ``models/``)."""
        return self.sim.config.model_list(DEFAULT_GEMINI_MODELS)

    def _auth(self, request: web.Request) -> web.Response | None:
        if "key" in request.query:
            return gemini_error(
                400, "The simulator refuses API keys in the URL (?key=): send x-goog-api-key."
            )
        key = self.sim.config.api_key
        if key is None:
            return None
        given = request.headers.get("x-goog-api-key")
        if not given:
            return gemini_error(403, _NO_KEY)
        if not secrets.compare_digest(given.encode(), key.encode()):
            return gemini_error(
                400, "API key not valid. Please pass a valid API key.", reason="API_KEY_INVALID"
            )
        return None

    def _unknown_model(self, model: str, method: str) -> web.Response | None:
        if not self.sim.config.strict_models or model in self.models():
            return None
        message = (
            f"models/{model} is not found for API version v1beta, or is not supported for {method}. "
            "Call ListModels to see the list of available models and their supported methods."
        )
        return gemini_error(404, message)

    async def list_models(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1beta/models``: ``{"models": [...], "nextPageToken"}``, ``pageSize`` (default
        50, capped at ``PAGE_LIMIT``) models from ``pageToken`` on."""
        self.sim.hit("gemini", "GET /v1beta/models")
        if (denied := self._auth(request)) is not None:
            return denied
        plan = await begin(self.sim, request, None, gemini_error)
        if not isinstance(plan, Plan):
            return plan
        try:
            size = int(request.query.get("pageSize", "50"))
        except ValueError:
            return gemini_error(400, "Invalid value at 'page_size' (TYPE_INT32)")
        size = min(PAGE_LIMIT, size if size > 0 else 50)
        token = request.query.get("pageToken")
        offset = _page_offset(token) if token else 0
        if offset is None:
            return gemini_error(400, "Invalid page token.")
        ids = self.models()
        page = ids[offset : offset + size]
        answer: dict[str, Any] = {"models": [_model_entry(m) for m in page]} if page else {}
        if offset + size < len(ids):
            answer["nextPageToken"] = _page_token(offset + size)
        return await send_body(request, plan, orjson.dumps(answer), JSON_HEADERS)

    async def get_model(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1beta/models/{model}``."""
        self.sim.hit("gemini", "GET /v1beta/models/{model}")
        if (denied := self._auth(request)) is not None:
            return denied
        model = request.match_info["model"]
        if model not in self.models():
            return gemini_error(404, f"models/{model} is not found for API version v1beta")
        return web.Response(body=orjson.dumps(_model_entry(model)), headers=JSON_HEADERS)

    async def model_action(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1beta/models/{model}:{method}``."""
        model, _, method = request.match_info["model"].rpartition(":")
        handler = {
            "generateContent": self.generate,
            "streamGenerateContent": self.generate,
            "batchEmbedContents": self.embed,
            "embedContent": self.embed,
        }.get(method)
        self.sim.hit("gemini", f"POST /v1beta/models/{{model}}:{method}")
        if (denied := self._auth(request)) is not None:
            return denied
        if handler is None or not model:
            return gemini_error(404, f"Method {method!r} of models/{model} was not found.")
        return await handler(request, model, method)

    async def generate(self, request: web.Request, model: str, method: str) -> web.StreamResponse:
        """``generateContent`` and ``streamGenerateContent``."""
        sim = self.sim
        body = await read_json(request)
        if (invalid := _check_request(body)) is not None:
            return invalid
        stream = method == "streamGenerateContent"
        sim.record("gemini", request, model, body, stream)
        if (missing := self._unknown_model(model, method)) is not None:
            return missing
        plan = await begin(sim, request, model, gemini_error)
        if not isinstance(plan, Plan):
            return plan
        config = sim.config
        contents = body["contents"]
        generation = _get(body, "generationConfig") or {}
        prompt = _prompt(contents)
        system = _get(body, "systemInstruction")
        texts = _part_texts(system.get("parts")) if isinstance(system, dict) else []
        for content in contents:
            texts.extend(_part_texts(content["parts"]))
        prompt_tokens = text.count_prompt_tokens(texts)
        tool = _pick_tool(body, contents)
        finish = "STOP"
        if tool is not None:
            schema = _lowered(tool.get("parameters") or tool.get("parametersJsonSchema"))
            arguments = text.tool_arguments(schema, prompt)
            call = {"name": tool["name"], "args": arguments}
            signature = base64.b64encode(secrets.token_bytes(24)).decode()
            pieces: tuple[str, ...] = ()
            parts_out: list[dict[str, Any]] = [{"functionCall": call, "thoughtSignature": signature}]
            output_tokens = max(1, (len(orjson.dumps(arguments)) + 3) // 4)
        else:
            if _get(generation, "responseMimeType") == "application/json":
                schema = _lowered(
                    _get(generation, "responseSchema") or _get(generation, "responseJsonSchema")
                )
                reply = text.json_reply(prompt, config.reply_tokens, config.reply_text, schema)
                pieces = text.split_pieces(reply)
            else:
                pieces = text.text_pieces(prompt, config.reply_tokens, config.reply_text)
            limit = _get(generation, "maxOutputTokens")
            if _int(limit) and limit < len(pieces):
                pieces, finish = pieces[:limit], "MAX_TOKENS"
            parts_out = [{"text": "".join(pieces)}]
            output_tokens = len(pieces)
        count = _get(generation, "candidateCount") or 1
        usage = self._usage(prompt_tokens, output_tokens * count)
        head = {"modelVersion": model, "responseId": random_id("", 22)}
        if not stream:
            candidates = [
                {"content": {"parts": parts_out, "role": "model"}, "finishReason": finish, "index": i}
                for i in range(count)
            ]
            answer = {"candidates": candidates, "usageMetadata": usage, **head}
            return await send_body(request, plan, orjson.dumps(answer), JSON_HEADERS, output_tokens)
        events = _stream_events(pieces, parts_out, finish, count, usage, prompt_tokens, head)
        if request.query.get("alt") == "sse":
            chunks = [b"data: " + orjson.dumps(e) + b"\r\n\r\n" for e in events]
            return await send_stream(request, plan, chunks, SSE_HEADERS)
        array = [(b"[" if i == 0 else b",\r\n") + orjson.dumps(e) for i, e in enumerate(events)]
        array[-1] += b"]"
        return await send_stream(request, plan, array, JSON_HEADERS)

    def _usage(self, prompt_tokens: int, output_tokens: int) -> dict[str, Any]:
        """``usageMetadata``: thinking (``reasoning_tokens``) is counted apart from the answer, and
        the cached part (``cached_tokens``) inside the prompt, as Gemini counts them."""
        config = self.sim.config
        thoughts, cached = config.reasoning_tokens, min(config.cached_tokens, prompt_tokens)
        usage: dict[str, Any] = {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": output_tokens,
            "totalTokenCount": prompt_tokens + output_tokens + thoughts,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}],
        }
        if cached:
            usage["cachedContentTokenCount"] = cached
        if thoughts:
            usage["thoughtsTokenCount"] = thoughts
        return usage

    async def embed(self, request: web.Request, model: str, method: str) -> web.StreamResponse:
        """``batchEmbedContents`` (``{"requests": [...]}``) and ``embedContent`` (one request)."""
        sim = self.sim
        body = await read_json(request)
        if not isinstance(body, dict):
            return gemini_error(400, "Invalid JSON payload received. Expected an object.")
        batch = method == "batchEmbedContents"
        requests = body.get("requests") if batch else [{"model": f"models/{model}", **body}]
        if not isinstance(requests, list) or not requests:
            return _invalid("requests", "requests must not be empty")
        inputs: list[str] = []
        dims = sim.config.embedding_dimensions
        for i, item in enumerate(requests):
            where = f"requests[{i}]"
            if not isinstance(item, dict) or item.get("model") != f"models/{model}":
                return gemini_error(
                    400, f"* BatchEmbedContentsRequest.{where}.model: model must be models/{model}\n"
                )
            content = item.get("content")
            parts = content.get("parts") if isinstance(content, dict) else None
            if not isinstance(parts, list) or not parts:
                return _invalid(f"{where}.content.parts", "contents.parts must not be empty.")
            inputs.append(" ".join(_part_texts(parts)))
            wanted = _get(item, "outputDimensionality")
            if wanted is not None:
                if not _int(wanted) or not 1 <= wanted <= 3072:
                    return _invalid(f"{where}.output_dimensionality", "must be between 1 and 3072")
                dims = wanted
        sim.record("gemini", request, model, body, False)
        if (missing := self._unknown_model(model, method)) is not None:
            return missing
        plan = await begin(sim, request, model, gemini_error)
        if not isinstance(plan, Plan):
            return plan
        vectors = [{"values": text.embedding(t, dims)} for t in inputs]
        answer = {"embeddings": vectors} if batch else {"embedding": vectors[0]}
        return await send_body(request, plan, orjson.dumps(answer), JSON_HEADERS)


def _stream_events(
    pieces: tuple[str, ...],
    parts: list[dict[str, Any]],
    finish: str,
    count: int,
    usage: dict[str, Any],
    prompt_tokens: int,
    head: dict[str, Any],
) -> list[dict[str, Any]]:
    """One event per text piece (a function call comes whole, in one); each carries the running
    usage, the last one ``finishReason`` and the final usage."""
    steps: list[list[dict[str, Any]]] = [[{"text": piece}] for piece in pieces] if pieces else [parts]
    events = []
    for n, step in enumerate(steps, 1):
        last = n == len(steps)
        candidates = []
        for i in range(count):
            candidate: dict[str, Any] = {"content": {"parts": step, "role": "model"}, "index": i}
            if last:
                candidate["finishReason"] = finish
            candidates.append(candidate)
        running = {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": n * count,
            "totalTokenCount": prompt_tokens + n * count,
        }
        events.append({"candidates": candidates, "usageMetadata": usage if last else running, **head})
    return events
