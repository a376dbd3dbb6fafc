"""A local fake of provider models endpoints, in each provider's real wire format.

Routes: ``GET /v1/models`` (OpenAI shape; Anthropic shape when ``x-api-key`` or
``anthropic-version`` is sent), ``GET /anthropic/v1/models``, ``GET /openai/models`` (Azure),
``GET /api/v1/models`` (OpenRouter) and ``GET /api/tags`` (Ollama). The model lists are plain
attributes a test may replace or edit between syncs (generated OpenRouter entries share their
nested objects: replace an entry rather than editing those). Auth failures echo the key that was
sent, so tests can prove it never reaches our error messages.

Run standalone for benchmarks: ``python -m tests.upstreams.models_server --port 8100 --count 50000``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

_VENDORS = ("openai", "anthropic", "google", "meta-llama", "mistralai", "qwen", "deepseek", "cohere")
_CTX = (8192, 32768, 65536, 128000, 200000, 1048576)
_TEXT = {"modality": "text->text", "input_modalities": ["text"], "output_modalities": ["text"]}
_VISION = {**_TEXT, "modality": "text+image->text", "input_modalities": ["text", "image"]}
_ARCHS = [{**a, "tokenizer": "Other", "instruct_type": None} for a in (_TEXT, _VISION)]
_BASIC = ["max_tokens", "temperature", "top_p", "stop", "seed"]
_PARAMS = (_BASIC, [*_BASIC, "tools", "tool_choice", "response_format"])
_OR_KEYS = "id canonical_slug name created description context_length architecture pricing".split()
_OR_KEYS += ["top_provider", "per_request_limits", "supported_parameters"]
# id, name, context, "prompt/completion" USD per token, vision, tools
_OR_SAMPLES = (
    ("openai/gpt-4o", "OpenAI: GPT-4o", 128000, "0.0000025/0.00001", True, True),
    ("anthropic/claude-3.5-sonnet", "Anthropic: Claude 3.5 Sonnet", 200000, "0.000003/0.000015", True, True),
    ("meta-llama/llama-3.3-70b-instruct:free", "Meta: Llama 3.3 70B (free)", 131072, "0/0", False, True),
    ("mistralai/codestral-2501", "Mistral: Codestral 2501", 262144, "0.0000003/0.0000009", False, True),
    ("openrouter/auto", "Auto Router", 2000000, "-1/-1", False, False),
    ("openai/o1-pro", "OpenAI: o1-pro", 200000, "0.00015/0.0006", True, True),
)


def _or_entry(
    mid: str, name: str, ctx: int, pricing: Any, arch: Any, params: Any, top: Any
) -> dict[str, Any]:
    values = (mid, mid, name, 1_715_367_049, f"{name}.", ctx, arch, pricing, top, None, params)
    return dict(zip(_OR_KEYS, values, strict=True))


def _pricing(prices: str) -> dict[str, str]:
    prompt, completion = prices.split("/")
    return {"prompt": prompt, "completion": completion, "request": "0", "image": "0", "web_search": "0"}


def _top(ctx: int) -> dict[str, Any]:
    return {"context_length": ctx, "max_completion_tokens": 16384, "is_moderated": False}


def make_openrouter_models(count: int) -> list[dict[str, Any]]:
    """``count`` deterministic entries: the samples, then a mix of free/paid, vision/tools, context sizes."""
    out = [
        _or_entry(mid, name, ctx, _pricing(prices), _ARCHS[vision], _PARAMS[tools], _top(ctx))
        for mid, name, ctx, prices, vision, tools in _OR_SAMPLES[:count]
    ]
    prices = [_pricing(f"0.000000{p}/0.00000{p}") for p in range(1, 10)]
    free, tops = _pricing("0/0"), {ctx: _top(ctx) for ctx in _CTX}
    for i in range(len(out), count):
        vendor, kind, ctx = _VENDORS[i % 8], "coder" if i % 11 == 0 else "chat", _CTX[i % len(_CTX)]
        mid = f"{vendor}/synthetic-{kind}-{i}" + (":free" if i % 5 == 0 else "")
        pricing = free if i % 5 == 0 else prices[i % 9]
        name = f"{vendor.title()}: Synthetic {kind} {i}"
        out.append(_or_entry(mid, name, ctx, pricing, _ARCHS[i % 3 == 0], _PARAMS[i % 2 == 0], tops[ctx]))
    return out


def make_openai_models() -> list[dict[str, Any]]:
    ids = "gpt-4o gpt-4o-mini gpt-4.1 o3-mini text-embedding-3-small dall-e-3 whisper-1 tts-1".split()
    return [{"id": m, "object": "model", "created": 1_715_367_049, "owned_by": "system"} for m in ids]


def make_azure_models() -> list[dict[str, Any]]:
    kinds = {"gpt-4o-2024-08-06": (True, False), "text-embedding-3-large": (False, True)}
    kinds["dall-e-3"] = (False, False)
    keys = ("fine_tune", "inference", "completion", "chat_completion", "embeddings")
    return [
        {"status": "succeeded", "capabilities": dict(zip(keys, (False, True, False, *kind), strict=True)),
         "lifecycle_status": "generally-available", "deprecation": {"inference": 1_767_225_600},
         "id": mid, "created_at": 1_715_558_400, "object": "model"}
        for mid, kind in kinds.items()
    ]  # fmt: skip


_CLAUDES = (
    ("claude-opus-4-1-20250805", "Claude Opus 4.1", "2025-08-05"),
    ("claude-sonnet-4-20250514", "Claude Sonnet 4", "2025-05-22"),
    ("claude-3-7-sonnet-20250219", "Claude Sonnet 3.7", "2025-02-24"),
    ("claude-3-5-haiku-20241022", "Claude Haiku 3.5", "2024-10-22"),
    ("claude-3-haiku-20240307", "Claude Haiku 3", "2024-03-07"),
)


def make_anthropic_models(count: int | None = None) -> list[dict[str, Any]]:
    """The real-looking Claude list, or ``count`` generated ones (for pagination)."""
    rows = (
        _CLAUDES
        if count is None
        else [(f"claude-test-{i:05d}", f"Test {i}", "2025-01-01") for i in range(count)]
    )
    return [{"type": "model", "id": m, "display_name": n, "created_at": f"{d}T00:00:00Z"} for m, n, d in rows]


def make_ollama_models() -> list[dict[str, Any]]:
    tags = {"llama3.1:8b": ["llama"], "llava:7b": ["llama", "clip"], "qwen2.5-coder:7b": ["qwen2"]}
    tags["nomic-embed-text:latest"] = ["nomic-bert"]
    details = {"parent_model": "", "format": "gguf", "parameter_size": "7.6B", "quantization_level": "Q4_K_M"}
    return [
        {"name": name, "model": name, "modified_at": "2025-05-01T12:00:00.000000000Z", "size": 4_920_753_328,
         "digest": hashlib.sha256(name.encode()).hexdigest(),
         "details": {**details, "family": fams[0], "families": fams}}
        for name, fams in tags.items()
    ]  # fmt: skip


@dataclass(slots=True)
class Fault:
    kind: str  # "status" | "garbage" | "hang" | "close"
    remaining: int
    status: int = 500


@dataclass(slots=True)
class ModelsUpstream:
    """The fake server; ``api_key`` set means every authenticated route requires it."""

    count: int = len(_OR_SAMPLES)
    api_key: str | None = None
    hang_s: float = 60.0
    anthropic_page_cap: int = 1000  # the server's own page-size ceiling
    openai_models: list[dict[str, Any]] = field(default_factory=make_openai_models)
    azure_models: list[dict[str, Any]] = field(default_factory=make_azure_models)
    anthropic_models: list[dict[str, Any]] = field(default_factory=make_anthropic_models)
    ollama_models: list[dict[str, Any]] = field(default_factory=make_ollama_models)
    openrouter_models: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    base_url: str = ""
    _runner: web.AppRunner | None = None
    _stopping: asyncio.Event | None = None

    def __post_init__(self) -> None:
        self.openrouter_models = make_openrouter_models(self.count)

    def inject(self, kind: str, times: int = 1, status: int = 500) -> None:
        """Next ``times`` requests: answer ``status`` ("status"), HTML ("garbage"), never ("hang"), or
        drop the connection ("close"; aiohttp clients retry a dropped keep-alive request once)."""
        assert kind in ("status", "garbage", "hang", "close")
        self.faults.append(Fault(kind, times, status))

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/v1/models", self._v1_models)
        app.router.add_get("/anthropic/v1/models", self._anthropic)
        app.router.add_get("/openai/models", self._azure)
        app.router.add_get("/api/v1/models", self._openrouter)
        app.router.add_get("/api/tags", self._ollama)
        self._stopping = asyncio.Event()
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self.base_url = f"http://{host}:{self._runner.addresses[0][1]}"
        return self.base_url

    async def stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append({"path": request.path, "query": dict(request.query), "headers": request.headers})
        fault = self.faults[0] if self.faults else None
        if fault is None:
            return await handler(request)
        fault.remaining -= 1
        if fault.remaining <= 0:
            self.faults.pop(0)
        if fault.kind == "hang":
            assert self._stopping is not None
            try:
                await asyncio.wait_for(self._stopping.wait(), self.hang_s)
            except TimeoutError:
                pass
            return _json({"error": {"message": "gave up hanging"}}, 504)
        if fault.kind == "garbage":
            return web.Response(text="<html><body>502 Bad Gateway</body></html>", content_type="text/html")
        if fault.kind == "close" and request.transport is not None:
            request.transport.close()
            return web.Response()
        return self._error(request, fault.status, "injected failure", "api_error")

    def _error(self, request: web.Request, status: int, message: str, kind: str) -> web.Response:
        if request.path == "/api/tags":
            return _json({"error": message}, status)
        if _is_anthropic(request):
            return _json({"type": "error", "error": {"type": kind, "message": message}}, status)
        if request.path == "/openai/models":
            return _json({"error": {"code": str(status), "message": message}}, status)
        return _json({"error": {"message": message, "type": kind, "param": None, "code": kind}}, status)

    def _bearer_ok(self, request: web.Request) -> bool:
        return self.api_key is None or request.headers.get("Authorization") == f"Bearer {self.api_key}"

    async def _v1_models(self, request: web.Request) -> web.Response:
        if _is_anthropic(request):
            return await self._anthropic(request)
        if not self._bearer_ok(request):
            sent = request.headers.get("Authorization", "").removeprefix("Bearer ")
            msg = f"Incorrect API key provided: {sent}." if sent else "You didn't provide an API key."
            return self._error(request, 401, msg, "invalid_request_error")
        return _json({"object": "list", "data": self.openai_models})

    async def _azure(self, request: web.Request) -> web.Response:
        if "api-version" not in request.query:
            return _json({"error": {"code": "MissingApiVersionParameter", "message": "The api-version query "
                          "parameter (?api-version=) is required for all requests."}}, 400)  # fmt: skip
        if self.api_key is not None and request.headers.get("api-key") != self.api_key:
            msg = f"Access denied due to invalid subscription key {request.headers.get('api-key', '')}."
            return self._error(request, 401, msg, "unauthorized")
        return _json({"data": self.azure_models, "object": "list"})

    async def _openrouter(self, request: web.Request) -> web.Response:
        if not self._bearer_ok(request):
            return _json({"error": {"message": "No auth credentials found", "code": 401}}, 401)
        return _json({"data": self.openrouter_models})

    async def _ollama(self, request: web.Request) -> web.Response:
        return _json({"models": self.ollama_models})

    async def _anthropic(self, request: web.Request) -> web.Response:
        if "anthropic-version" not in request.headers:
            return self._error(request, 400, "anthropic-version: header is required", "invalid_request_error")
        sent = request.headers.get("x-api-key")
        if self.api_key is not None and sent != self.api_key:
            return self._error(request, 401, f"invalid x-api-key {sent or ''}", "authentication_error")
        limit = int(request.query.get("limit", "20")) if request.query.get("limit", "20").isdigit() else 0
        if not 1 <= limit <= 1000:
            return self._error(request, 400, "limit: must be between 1 and 1000", "invalid_request_error")
        models, after = self.anthropic_models, request.query.get("after_id")
        start = 0
        if after is not None:
            ids = [m["id"] for m in models]
            if after not in ids:
                return self._error(request, 400, f"after_id: unknown {after!r}", "invalid_request_error")
            start = ids.index(after) + 1
        page = models[start : start + min(limit, self.anthropic_page_cap)]
        return _json({
            "data": page, "has_more": start + len(page) < len(models),
            "first_id": page[0]["id"] if page else None, "last_id": page[-1]["id"] if page else None,
        })  # fmt: skip


def _is_anthropic(request: web.Request) -> bool:
    return request.path.startswith("/anthropic/") or (
        request.path == "/v1/models"
        and ("anthropic-version" in request.headers or "x-api-key" in request.headers)
    )


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json")


async def serve_forever(host: str, port: int, count: int, api_key: str | None) -> None:
    upstream = ModelsUpstream(count=count, api_key=api_key)
    print(f"models upstream on {await upstream.start(host, port)} ({count} OpenRouter models)", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await upstream.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--count", type=int, default=len(_OR_SAMPLES), help="OpenRouter models")
    parser.add_argument("--api-key", default=None)
    args = parser.parse_args()
    try:
        asyncio.run(serve_forever(args.host, args.port, args.count, args.api_key))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
