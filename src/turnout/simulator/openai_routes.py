"""OpenAI wire format: ``POST /v1/chat/completions`` (JSON and SSE), ``POST /v1/embeddings``,
``GET /v1/models``; errors as ``{"error": {"message", "type", "param", "code"}}``.

OpenRouter and Azure OpenAI speak the same format at other URLs with other auth and model lists;
their routes (``openrouter_routes``, ``azure_routes``) answer with :meth:`OpenAIRoutes.serve_chat`
and :meth:`OpenAIRoutes.serve_embeddings`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from turnout.simulator import text
from turnout.simulator.config import DEFAULT_OPENAI_MODELS
from turnout.simulator.respond import (
    JSON_HEADERS,
    ErrorFactory,
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

SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
FINGERPRINT = "fp_sim0000000"
DONE = b"data: [DONE]\n\n"
_CREATED = 1_715_367_049
LLAMA_CPP_NULL_CONTENT = "Expected 'content' to be a string or an array"
_MESSAGES = {
    400: "Invalid request.",
    401: "Incorrect API key provided.",
    403: "You are not allowed to sample from this model.",
    404: "The requested resource was not found.",
    409: "The request conflicted with another request.",
    422: "The request could not be processed.",
    500: "The server had an error while processing your request. Sorry about that!",
    502: "Bad gateway.",
    503: "The engine is currently overloaded, please try again later.",
    504: "The server timed out while processing your request.",
}
_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using "
    "Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)


def openai_error(
    status: int,
    message: str | None = None,
    retry_after: float | None = None,
    *,
    etype: str | None = None,
    param: str | None = None,
    code: str | None = None,
) -> web.Response:
    """An error in OpenAI's shape; 429 carries ``Retry-After`` and the ``x-ratelimit-*`` headers."""
    headers = {"Content-Type": "application/json", "x-request-id": random_id("req_", 32)}
    if status == 429:
        wait = 1.0 if retry_after is None else retry_after
        message = message or f"Rate limit reached for requests. Please try again in {format_seconds(wait)}s."
        etype, code = etype or "requests", code or "rate_limit_exceeded"
        headers.update(
            {
                "retry-after": format_seconds(wait),
                "x-ratelimit-limit-requests": "60",
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": f"{format_seconds(wait)}s",
                "x-ratelimit-limit-tokens": "150000",
                "x-ratelimit-remaining-tokens": "0",
                "x-ratelimit-reset-tokens": f"{format_seconds(wait)}s",
            }
        )
    elif retry_after is not None:
        headers["retry-after"] = format_seconds(retry_after)
    etype = etype or ("server_error" if status >= 500 else "invalid_request_error")
    message = message or _MESSAGES.get(status, f"Simulated error (HTTP {status}).")
    body = {"error": {"message": message, "type": etype, "param": param, "code": code}}
    return web.Response(body=orjson.dumps(body), status=status, headers=headers)


def _mask(key: str) -> str:
    return key[:3] + "*" * max(0, len(key) - 7) + key[-4:] if len(key) > 8 else "*" * len(key)


def usage(prompt: int, completion: int, cached: int = 0, reasoning: int = 0) -> dict[str, Any]:
    """OpenAI's ``usage`` object (``cached`` of the prompt tokens, ``reasoning`` of the completion's)."""
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": min(cached, prompt), "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": min(reasoning, completion),
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _pick_tool(body: dict[str, Any], messages: list[Any]) -> dict[str, Any] | None:
    """The function to call: tools given, the last message from the user, ``tool_choice`` not none."""
    tools, choice = body.get("tools"), body.get("tool_choice")
    last = messages[-1]
    if not isinstance(tools, list) or not tools or choice == "none":
        return None
    if not isinstance(last, dict) or last.get("role") != "user":
        return None
    functions = [
        t["function"]
        for t in tools
        if isinstance(t, dict)
        and isinstance(t.get("function"), dict)
        and isinstance(t["function"].get("name"), str)
    ]
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        wanted = choice["function"].get("name")
        functions = [f for f in functions if f["name"] == wanted] or functions
    return functions[0] if functions else None


def _max_tokens(body: dict[str, Any]) -> int | None:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


Auth = Callable[[web.Request], "web.Response | None"]


class OpenAIRoutes:
    """The OpenAI routes of one simulator."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self._models: tuple[tuple[str, ...], bytes] | None = None

    def register(self, router: web.UrlDispatcher) -> None:
        """Add the routes (``GET /v1/models`` is dispatched by the server)."""
        router.add_post("/v1/chat/completions", self.chat)
        router.add_post("/v1/embeddings", self.embeddings)

    def models(self) -> tuple[str, ...]:
        """The model ids listed."""
        return self.sim.config.model_list(DEFAULT_OPENAI_MODELS)

    def _auth(self, request: web.Request) -> web.Response | None:
        """``Authorization: Bearer <key>`` (OpenAI and OpenRouter)."""
        key = self.sim.config.api_key
        if key is None:
            return None
        header = request.headers.get("Authorization", "")
        if not header:
            return openai_error(401, _NO_KEY)
        token = header[7:].strip() if header[:7].lower() == "bearer " else header
        if not secrets.compare_digest(token.encode(), key.encode()):
            message = f"Incorrect API key provided: {_mask(token)}. You can find your API key at https://platform.openai.com/account/api-keys."
            return openai_error(401, message, code="invalid_api_key")
        return None

    def _unknown_model(self, model: str, listed: tuple[str, ...] | None) -> web.Response | None:
        if not self.sim.config.strict_models or model in (listed or self.models()):
            return None
        message = f"The model `{model}` does not exist or you do not have access to it."
        return openai_error(404, message, code="model_not_found")

    async def list_models(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/models``: ``{"object": "list", "data": [...]}``."""
        self.sim.hit("openai", "GET /v1/models")
        if (denied := self._auth(request)) is not None:
            return denied
        plan = await begin(self.sim, request, None, openai_error)
        if not isinstance(plan, Plan):
            return plan
        ids = self.models()
        if self._models is None or self._models[0] != ids:
            data = [{"id": m, "object": "model", "created": _CREATED, "owned_by": "simulator"} for m in ids]
            self._models = (ids, orjson.dumps({"object": "list", "data": data}))
        return await send_body(request, plan, self._models[1], JSON_HEADERS)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/chat/completions``."""
        return await self.serve_chat(request, "openai", "POST /v1/chat/completions", self._auth)

    async def serve_chat(
        self,
        request: web.Request,
        provider: str,
        route: str,
        auth: Auth,
        error: ErrorFactory = openai_error,
        deployment: str | None = None,
        listed: tuple[str, ...] | None = None,
    ) -> web.StreamResponse:
        """A chat completion for ``provider`` (counted under ``route``); ``deployment`` names the
        model when the URL does (Azure), else the body's ``model`` does; ``listed``: the models
        ``strict_models`` accepts (default: the OpenAI list)."""
        sim = self.sim
        sim.hit(provider, route)
        if (denied := auth(request)) is not None:
            return denied
        body = await read_json(request)
        if not isinstance(body, dict):
            return openai_error(400, "We could not parse the JSON body of your request.")
        model, messages = deployment or body.get("model"), body.get("messages")
        if not isinstance(model, str) or not model:
            return openai_error(400, "you must provide a model parameter")
        if messages is None:
            return openai_error(
                400,
                "Missing required parameter: 'messages'.",
                param="messages",
                code="missing_required_parameter",
            )
        if not isinstance(messages, list) or not messages:
            problem = "Invalid 'messages': empty array. Expected an array with minimum length 1."
            return openai_error(400, problem, param="messages", code="empty_array")
        llama_cpp = sim.config.flavor == "llama.cpp"
        if llama_cpp and any(
            isinstance(m, dict) and "content" in m and m["content"] is None for m in messages
        ):
            return web.json_response(
                {"error": {"code": 500, "message": LLAMA_CPP_NULL_CONTENT, "type": "server_error"}},
                status=500,
            )
        if body.get("n") not in (None, 1):
            return openai_error(400, "The simulator supports only n=1.", param="n", code="unsupported_value")
        stream = body.get("stream") is True
        sim.record(provider, request, model, body, stream)
        if (missing := self._unknown_model(model, listed)) is not None:
            return missing
        plan = await begin(sim, request, model, error)
        if not isinstance(plan, Plan):
            return plan
        config = sim.config
        prompt = text.last_user_text(messages)
        prompt_texts = text.messages_texts(messages)
        if body.get("tools"):  # OpenAI bills the tool definitions as prompt tokens
            prompt_texts.append(orjson.dumps(body["tools"]).decode())
        prompt_tokens = text.count_prompt_tokens(prompt_texts)
        cid, created = random_id("chatcmpl-", 29), int(time.time())
        tool = _pick_tool(body, messages)
        if tool is not None:
            arguments = orjson.dumps(text.tool_arguments(tool.get("parameters"), prompt)).decode()
            call = {
                "id": random_id("call_"),
                "type": "function",
                "name": tool["name"],
                "arguments": arguments,
            }
            pieces, finish = text.split_pieces(arguments, 8), "tool_calls"
            completion_tokens = max(1, (len(arguments) + 3) // 4)
        else:
            call, finish = None, "stop"
            fmt = body.get("response_format")
            kind = fmt.get("type") if isinstance(fmt, dict) else None
            if kind in ("json_object", "json_schema"):
                assert isinstance(fmt, dict)
                spec = fmt.get("json_schema")
                schema = spec.get("schema") if isinstance(spec, dict) else None
                reply = text.json_reply(prompt, config.reply_tokens, config.reply_text, schema)
                pieces = text.split_pieces(reply)
            else:
                pieces = text.text_pieces(prompt, config.reply_tokens, config.reply_text)
            limit = _max_tokens(body)
            if limit is not None and limit < len(pieces):
                pieces, finish = pieces[:limit], "length"
            completion_tokens = len(pieces)
        head = {"id": cid, "created": created, "model": model, "service_tier": "default"}
        counts = (prompt_tokens, completion_tokens, config.cached_tokens, config.reasoning_tokens)
        if stream:
            options = body.get("stream_options")
            include_usage = (
                not llama_cpp and isinstance(options, dict) and options.get("include_usage") is True
            )
            chunks = _stream_chunks(head, pieces, call, finish, include_usage, counts)
            return await send_stream(request, plan, chunks, SSE_HEADERS)
        message: dict[str, Any] = {
            "role": "assistant",
            "content": "".join(pieces),
            "refusal": None,
            "annotations": [],
        }
        if call is not None:
            function = {"name": call["name"], "arguments": call["arguments"]}
            message["content"] = None
            message["tool_calls"] = [{"id": call["id"], "type": "function", "function": function}]
        answer = {
            "id": cid,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": usage(*counts),
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
        }
        headers = {"Content-Type": "application/json", "x-request-id": random_id("req_", 32)}
        return await send_body(request, plan, orjson.dumps(answer), headers, completion_tokens)

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/embeddings``: deterministic unit vectors, ``float`` or ``base64``."""
        return await self.serve_embeddings(request, "openai", "POST /v1/embeddings", self._auth)

    async def serve_embeddings(
        self,
        request: web.Request,
        provider: str,
        route: str,
        auth: Auth,
        error: ErrorFactory = openai_error,
        deployment: str | None = None,
        listed: tuple[str, ...] | None = None,
    ) -> web.StreamResponse:
        """Embeddings for ``provider`` (see :meth:`serve_chat`)."""
        sim = self.sim
        sim.hit(provider, route)
        if (denied := auth(request)) is not None:
            return denied
        body = await read_json(request)
        if not isinstance(body, dict):
            return openai_error(400, "We could not parse the JSON body of your request.")
        model = deployment or body.get("model")
        if not isinstance(model, str) or not model:
            return openai_error(400, "you must provide a model parameter")
        if "input" not in body:
            return openai_error(
                400, "Missing required parameter: 'input'.", param="input", code="missing_required_parameter"
            )
        inputs = text.embedding_inputs(body["input"])
        if inputs is None:
            return openai_error(
                400, "Invalid 'input': expected a string or an array of strings.", param="input"
            )
        dims = body.get("dimensions") or sim.config.embedding_dimensions
        if not isinstance(dims, int) or isinstance(dims, bool) or not 1 <= dims <= 8192:
            return openai_error(
                400, "Invalid 'dimensions': expected an integer from 1 to 8192.", param="dimensions"
            )
        fmt = body.get("encoding_format") or "float"
        if fmt not in ("float", "base64"):
            return openai_error(
                400, "Invalid 'encoding_format': expected 'float' or 'base64'.", param="encoding_format"
            )
        sim.record(provider, request, model, body, False)
        if (missing := self._unknown_model(model, listed)) is not None:
            return missing
        plan = await begin(sim, request, model, error)
        if not isinstance(plan, Plan):
            return plan
        vector = text.embedding if fmt == "float" else text.embedding_base64
        data = [
            {"object": "embedding", "index": i, "embedding": vector(t, dims)} for i, t in enumerate(inputs)
        ]
        tokens = text.count_prompt_tokens(inputs)
        answer = {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return await send_body(request, plan, orjson.dumps(answer), JSON_HEADERS)


def _stream_chunks(
    head: dict[str, Any],
    pieces: tuple[str, ...],
    call: dict[str, str] | None,
    finish: str,
    include_usage: bool,
    tokens: tuple[int, int, int, int],
) -> list[bytes]:
    """The SSE events of a streamed completion, ``data: [DONE]`` last."""
    base = {**head, "object": "chat.completion.chunk", "system_fingerprint": FINGERPRINT}
    extra = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return b"data: " + orjson.dumps({**base, "choices": [choice], **extra}) + b"\n\n"

    if call is None:
        out = [chunk({"role": "assistant", "content": "", "refusal": None})]
        out.extend(chunk({"content": piece}) for piece in pieces)
    else:
        function = {"name": call["name"], "arguments": ""}
        first = {"index": 0, "id": call["id"], "type": "function", "function": function}
        out = [chunk({"role": "assistant", "content": None, "tool_calls": [first], "refusal": None})]
        out.extend(
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}) for piece in pieces
        )
    out.append(chunk({}, finish))
    if include_usage:
        out.append(b"data: " + orjson.dumps({**base, "choices": [], "usage": usage(*tokens)}) + b"\n\n")
    out.append(DONE)
    return out
