"""Ollama wire format: ``POST /api/chat`` (NDJSON stream by default, or one JSON object with
``"stream": false``), ``POST /api/embed``, ``POST /api/embeddings`` (legacy), ``GET /api/tags``,
``GET /api/version``; errors as ``{"error": "<message>"}``. No authentication, like a local
Ollama."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from turnout.simulator import text
from turnout.simulator.config import DEFAULT_OLLAMA_MODELS
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

NDJSON_HEADERS = {"Content-Type": "application/x-ndjson"}
VERSION = "0.12.6"
_LOAD_NS = 1_250_000
_MESSAGES = {400: "invalid request", 404: "not found", 429: "too many requests", 500: "internal server error"}


def ollama_error(status: int, message: str | None = None, retry_after: float | None = None) -> web.Response:
    """An error in Ollama's shape."""
    headers = dict(JSON_HEADERS)
    if status == 429 or retry_after is not None:
        headers["Retry-After"] = format_seconds(1.0 if retry_after is None else retry_after)
    body = {"error": message or _MESSAGES.get(status, f"simulated error (HTTP {status})")}
    return web.Response(body=orjson.dumps(body), status=status, headers=headers)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _bare(name: str) -> str:
    return name.removesuffix(":latest")


def _pick_tool(body: dict[str, Any], messages: list[Any]) -> dict[str, Any] | None:
    tools, last = body.get("tools"), messages[-1]
    if not isinstance(tools, list) or not isinstance(last, dict) or last.get("role") != "user":
        return None
    for tool in tools:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            return function
    return None


class OllamaRoutes:
    """The Ollama routes of one simulator."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self._tags: tuple[tuple[str, ...], bytes] | None = None

    def register(self, router: web.UrlDispatcher) -> None:
        """Add the routes."""
        router.add_get("/api/tags", self.tags)
        router.add_get("/api/version", self.version)
        router.add_post("/api/chat", self.chat)
        router.add_post("/api/embed", self.embed)
        router.add_post("/api/embeddings", self.embeddings_legacy)

    def models(self) -> tuple[str, ...]:
        """The model names listed."""
        return self.sim.config.model_list(DEFAULT_OLLAMA_MODELS)

    def _unknown_model(self, model: str) -> web.Response | None:
        if not self.sim.config.strict_models or _bare(model) in {_bare(m) for m in self.models()}:
            return None
        return ollama_error(404, f'model "{model}" not found, try pulling it first')

    async def version(self, request: web.Request) -> web.StreamResponse:
        """``GET /api/version``."""
        self.sim.hit("ollama", "GET /api/version")
        return web.Response(body=orjson.dumps({"version": VERSION}), headers=JSON_HEADERS)

    async def tags(self, request: web.Request) -> web.StreamResponse:
        """``GET /api/tags``: the local models."""
        self.sim.hit("ollama", "GET /api/tags")
        plan = await begin(self.sim, request, None, ollama_error)
        if not isinstance(plan, Plan):
            return plan
        names = self.models()
        if self._tags is None or self._tags[0] != names:
            details = {"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"]}
            details |= {"parameter_size": "3.2B", "quantization_level": "Q4_K_M"}
            models = [
                {
                    "name": name if ":" in name else f"{name}:latest",
                    "model": name if ":" in name else f"{name}:latest",
                    "modified_at": "2025-05-01T12:00:00.000000000Z",
                    "size": 2_019_393_189,
                    "digest": hashlib.sha256(name.encode()).hexdigest(),
                    "details": details,
                }
                for name in names
            ]
            self._tags = (names, orjson.dumps({"models": models}))
        return await send_body(request, plan, self._tags[1], JSON_HEADERS)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        """``POST /api/chat``."""
        sim = self.sim
        sim.hit("ollama", "POST /api/chat")
        body = await read_json(request)
        if not isinstance(body, dict):
            return ollama_error(400, "invalid character in request body")
        model, messages = body.get("model"), body.get("messages")
        if not isinstance(model, str) or not model:
            return ollama_error(400, "model is required")
        if messages is not None and not isinstance(messages, list):
            return ollama_error(400, "messages must be an array")
        stream = body.get("stream") is not False  # Ollama streams unless told not to
        sim.record("ollama", request, model, body, stream)
        if (missing := self._unknown_model(model)) is not None:
            return missing
        plan = await begin(sim, request, model, ollama_error)
        if not isinstance(plan, Plan):
            return plan
        if not messages:  # an empty chat loads the model
            loaded: dict[str, Any] = {"model": model, "created_at": _now()}
            loaded["message"] = {"role": "assistant", "content": ""}
            loaded |= {"done_reason": "load", "done": True}
            return await send_body(request, plan, orjson.dumps(loaded), JSON_HEADERS)
        config = sim.config
        prompt = text.last_user_text(messages)
        prompt_tokens = text.count_prompt_tokens(text.messages_texts(messages))
        tool, done_reason = _pick_tool(body, messages), "stop"
        calls: list[dict[str, Any]] | None = None
        if tool is not None:
            arguments = text.tool_arguments(tool.get("parameters"), prompt)
            function = {"index": 0, "name": tool["name"], "arguments": arguments}
            calls = [{"id": random_id("call_", 8), "function": function}]
            pieces: tuple[str, ...] = ("",)
            eval_count = max(1, (len(orjson.dumps(arguments)) + 3) // 4)
        else:
            fmt = body.get("format")
            if fmt == "json" or isinstance(fmt, dict):
                schema = fmt if isinstance(fmt, dict) else None
                pieces = text.split_pieces(
                    text.json_reply(prompt, config.reply_tokens, config.reply_text, schema)
                )
            else:
                pieces = text.text_pieces(prompt, config.reply_tokens, config.reply_text)
            options = body.get("options")
            limit = options.get("num_predict") if isinstance(options, dict) else None
            if isinstance(limit, int) and not isinstance(limit, bool) and 0 < limit < len(pieces):
                pieces, done_reason = pieces[:limit], "length"
            eval_count = len(pieces)
        created = _now()
        final: dict[str, Any] = {"model": model, "created_at": created}
        final["message"] = {"role": "assistant", "content": ""}
        final |= {"done_reason": done_reason, "done": True, **self._metrics(plan, prompt_tokens, eval_count)}
        if not stream:
            message: dict[str, Any] = {"role": "assistant", "content": "".join(pieces)}
            if calls is not None:
                message["tool_calls"] = calls
            final["message"] = message
            return await send_body(request, plan, orjson.dumps(final), JSON_HEADERS, eval_count)
        chunks: list[bytes] = []
        if calls is not None:
            message = {"role": "assistant", "content": "", "tool_calls": calls}
            chunks.append(
                orjson.dumps({"model": model, "created_at": created, "message": message, "done": False})
            )
        else:
            for piece in pieces:
                message = {"role": "assistant", "content": piece}
                chunks.append(
                    orjson.dumps({"model": model, "created_at": created, "message": message, "done": False})
                )
        chunks.append(orjson.dumps(final))
        return await send_stream(request, plan, [c + b"\n" for c in chunks], NDJSON_HEADERS)

    @staticmethod
    def _metrics(plan: Plan, prompt_tokens: int, eval_count: int) -> dict[str, int]:
        """Ollama's timing fields (nanoseconds): elapsed so far plus the paced generation time."""
        elapsed = int((asyncio.get_running_loop().time() - plan.started) * 1e9)
        eval_ns = int(eval_count / plan.tps * 1e9) if plan.tps > 0 else eval_count * 1000
        prompt_ns = prompt_tokens * 1000
        return {
            "total_duration": elapsed + _LOAD_NS + prompt_ns + eval_ns,
            "load_duration": _LOAD_NS,
            "prompt_eval_count": prompt_tokens,
            "prompt_eval_duration": prompt_ns,
            "eval_count": eval_count,
            "eval_duration": eval_ns,
        }

    async def _embed_request(self, request: web.Request, route: str) -> tuple[Any, Plan | web.StreamResponse]:
        self.sim.hit("ollama", route)
        body = await read_json(request)
        if not isinstance(body, dict):
            return None, ollama_error(400, "invalid character in request body")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return None, ollama_error(400, "model is required")
        self.sim.record("ollama", request, model, body, False)
        if (missing := self._unknown_model(model)) is not None:
            return None, missing
        return body, await begin(self.sim, request, model, ollama_error)

    async def embed(self, request: web.Request) -> web.StreamResponse:
        """``POST /api/embed``: ``{"model", "embeddings": [[...]], ...}``."""
        body, plan = await self._embed_request(request, "POST /api/embed")
        if not isinstance(plan, Plan):
            return plan
        inputs = text.embedding_inputs(body.get("input"))
        if inputs is None:
            return ollama_error(400, "invalid input type")
        dims = body.get("dimensions") or self.sim.config.embedding_dimensions
        if not isinstance(dims, int) or isinstance(dims, bool) or not 1 <= dims <= 8192:
            return ollama_error(400, "dimensions must be an integer from 1 to 8192")
        tokens = text.count_prompt_tokens(inputs)
        answer = {
            "model": body["model"],
            "embeddings": [text.embedding(t, dims) for t in inputs],
            "total_duration": _LOAD_NS + tokens * 1000,
            "load_duration": _LOAD_NS,
            "prompt_eval_count": tokens,
        }
        return await send_body(request, plan, orjson.dumps(answer), JSON_HEADERS)

    async def embeddings_legacy(self, request: web.Request) -> web.StreamResponse:
        """``POST /api/embeddings`` (deprecated by Ollama): ``{"embedding": [...]}``."""
        body, plan = await self._embed_request(request, "POST /api/embeddings")
        if not isinstance(plan, Plan):
            return plan
        prompt = body.get("prompt")
        vector = (
            text.embedding(prompt, self.sim.config.embedding_dimensions) if isinstance(prompt, str) else ()
        )
        return await send_body(request, plan, orjson.dumps({"embedding": vector}), JSON_HEADERS)
