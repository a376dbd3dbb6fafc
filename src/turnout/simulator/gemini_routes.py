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
import secrets
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from turnout.simulator import text
from turnout.simulator.gemini_checks import (
    _NO_KEY,
    _check_request,
    _get,
    _int,
    _invalid,
    _lowered,
    gemini_error,
)
from turnout.simulator.respond import (
    JSON_HEADERS,
    Plan,
    begin,
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
