"""The simulator: an aiohttp server speaking the OpenAI, OpenRouter, Azure OpenAI, Anthropic,
Ollama and Gemini wire formats (where each lives: :mod:`.mounts`).

In-process (pytest)::

    sim = Simulator(SimulatorConfig(api_key="sk-test"))
    url = await sim.start()            # http://127.0.0.1:<free port>
    sim.inject("status:503", count=2)  # or Fault(...), or the x-sim-fault header
    ...
    assert sim.stats.routes["POST /v1/chat/completions"] == 3
    await sim.stop()

Control routes (no auth): ``GET /_sim/health``; ``GET|POST|DELETE /_sim/faults`` (POST takes
``{"fault": "<spec>", "count": 1, "model": null, "path": null}`` or a list of them);
``GET|DELETE /_sim/stats``; ``GET|POST /_sim/config`` (POST: fields of
:class:`SimulatorConfig` to change); ``GET /_sim/requests?limit=N``.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiohttp import web
from multidict import CIMultiDictProxy

from turnout.simulator.anthropic_routes import AnthropicRoutes
from turnout.simulator.azure_routes import AzureRoutes
from turnout.simulator.bedrock_routes import BedrockRoutes
from turnout.simulator.completions_routes import CompletionsRoutes
from turnout.simulator.config import SimulatorConfig
from turnout.simulator.faults import Fault, FaultBook
from turnout.simulator.gemini_routes import GeminiRoutes
from turnout.simulator.mounts import MOUNTS
from turnout.simulator.ollama_routes import OllamaRoutes
from turnout.simulator.openai_routes import OpenAIRoutes
from turnout.simulator.openrouter_routes import OpenRouterRoutes
from turnout.simulator.respond import json_response, read_json
from turnout.simulator.responses_routes import ResponsesRoutes
from turnout.tasks import wait_event

MAX_BODY = 64 * 1024 * 1024
RECENT = 1000  # requests kept in ``Simulator.requests``


@dataclass(slots=True)
class SimRequest:
    """One request that reached a model route (after auth and validation)."""

    provider: str
    method: str
    path: str
    model: str | None
    stream: bool
    headers: CIMultiDictProxy[str]
    body: dict[str, Any]
    raw: bytes = b""  # the body's bytes as they arrived, where the route kept them


class Stats:
    """Request counters: per route (``"POST /v1/chat/completions"``), provider, model and fault kind."""

    __slots__ = ("faults", "models", "providers", "routes")

    def __init__(self) -> None:
        self.routes: Counter[str] = Counter()
        self.providers: Counter[str] = Counter()
        self.models: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()

    @property
    def total(self) -> int:
        """Requests to model routes (control routes are not counted)."""
        return sum(self.routes.values())

    def reset(self) -> None:
        """Zero every counter."""
        for counter in (self.routes, self.providers, self.models, self.faults):
            counter.clear()

    def snapshot(self) -> dict[str, Any]:
        """The counters as JSON."""
        return {
            "total": self.total,
            "routes": dict(self.routes),
            "providers": dict(self.providers),
            "models": dict(self.models),
            "faults": dict(self.faults),
        }


class Simulator:
    """A local fake upstream for OpenAI, OpenRouter, Azure, Anthropic, Ollama and Gemini clients, with
    injectable faults."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self.faults = FaultBook()
        self.stats = Stats()
        self.requests: deque[SimRequest] = deque(maxlen=RECENT)
        self.base_url = ""
        self.openai = OpenAIRoutes(self)
        self.openrouter = OpenRouterRoutes(self)
        self.responses = ResponsesRoutes(self)
        self.completions = CompletionsRoutes(self)
        self.azure = AzureRoutes(self)
        self.anthropic = AnthropicRoutes(self)
        self.ollama = OllamaRoutes(self)
        self.gemini = GeminiRoutes(self)
        self.bedrock = BedrockRoutes(self)
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        """The aiohttp application (``start`` serves it; usable with other runners too)."""
        app = web.Application(client_max_size=MAX_BODY)
        router = app.router
        router.add_get("/v1/models", self._v1_models)
        self.openai.register(router)
        self.openrouter.register(router)
        self.responses.register(router)
        self.completions.register(router)
        self.azure.register(router)
        self.anthropic.register(router)
        self.ollama.register(router)
        self.gemini.register(router)
        self.bedrock.register(router)
        router.add_get("/_sim/health", self._health)
        router.add_get("/_sim/faults", self._list_faults)
        router.add_post("/_sim/faults", self._add_faults)
        router.add_delete("/_sim/faults", self._clear_faults)
        router.add_get("/_sim/stats", self._stats)
        router.add_delete("/_sim/stats", self._reset_stats)
        router.add_get("/_sim/config", self._get_config)
        router.add_post("/_sim/config", self._set_config)
        router.add_get("/_sim/requests", self._recent)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0: a free port); returns the base URL."""
        if self._runner is not None:
            raise RuntimeError("the simulator is already running")
        self._stopping = asyncio.Event()
        runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port, backlog=1024, reuse_address=True).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        bound = runner.addresses[0][1]
        url_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        url_host = f"[{url_host}]" if ":" in url_host else url_host
        self.base_url = f"http://{url_host}:{bound}"
        return self.base_url

    async def stop(self) -> None:
        """Stop serving; stalled requests end at once."""
        if self._stopping is not None:
            self._stopping.set()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> Simulator:
        if self._runner is None:
            await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def api_base(self, provider_type: str) -> str:
        """The ``api_base`` a Turnout provider of ``provider_type`` uses to reach this simulator
        (``KeyError`` for a type it does not speak)."""
        return self.base_url + MOUNTS[provider_type].path

    def listed_models(self, provider_type: str) -> tuple[str, ...]:
        """The model ids a provider of ``provider_type`` finds listed here."""
        routes: Any = getattr(self, MOUNTS[provider_type].routes)
        return tuple(routes.models())

    # -- faults, stats ---------------------------------------------------------------------------

    def inject(
        self, fault: Fault | str, *, count: int | None = 1, model: str | None = None, path: str | None = None
    ) -> Fault:
        """Arm a fault: a :class:`Fault` as is, or a spec string with ``count``/``model``/``path``."""
        if isinstance(fault, str):
            fault = Fault.parse(fault, count=count, model=model, path=path)
        return self.faults.add(fault)

    def clear_faults(self) -> None:
        """Disarm every registered fault."""
        self.faults.clear()

    def reset_stats(self) -> None:
        """Zero the counters and forget the recorded requests."""
        self.stats.reset()
        self.requests.clear()

    async def sleep(self, seconds: float) -> None:
        """Sleep, but wake up when the simulator stops."""
        if seconds <= 0:
            return
        if self._stopping is None:
            await asyncio.sleep(seconds)
            return
        await wait_event(self._stopping, seconds)

    def hit(self, provider: str, route: str) -> None:
        """Count a request to a model route."""
        self.stats.routes[route] += 1
        self.stats.providers[provider] += 1

    def record(
        self,
        provider: str,
        request: web.Request,
        model: str,
        body: dict[str, Any],
        stream: bool,
        raw: bytes = b"",
    ) -> None:
        """Remember a validated request (and, given, its raw bytes) and count its model."""
        self.stats.models[model] += 1
        self.requests.append(
            SimRequest(provider, request.method, request.path, model, stream, request.headers, body, raw)
        )

    # -- routes ----------------------------------------------------------------------------------

    async def _v1_models(self, request: web.Request) -> web.StreamResponse:
        """OpenAI and Anthropic share the path: Anthropic's headers pick its shape."""
        headers = request.headers
        if "anthropic-version" in headers or "x-api-key" in headers:
            return await self.anthropic.list_models(request)
        return await self.openai.list_models(request)

    async def _health(self, request: web.Request) -> web.StreamResponse:
        return json_response({"status": "ok"})

    async def _list_faults(self, request: web.Request) -> web.StreamResponse:
        return json_response({"faults": self.faults.describe()})

    async def _add_faults(self, request: web.Request) -> web.StreamResponse:
        data = await read_json(request)
        items = data if isinstance(data, list) else [data]
        try:
            faults = [Fault.from_json(item) for item in items]
        except ValueError as exc:
            return json_response({"error": str(exc)}, status=400)
        for fault in faults:
            self.faults.add(fault)
        return json_response({"faults": self.faults.describe()}, status=201)

    async def _clear_faults(self, request: web.Request) -> web.StreamResponse:
        self.faults.clear()
        return json_response({"faults": []})

    async def _stats(self, request: web.Request) -> web.StreamResponse:
        return json_response(self.stats.snapshot())

    async def _reset_stats(self, request: web.Request) -> web.StreamResponse:
        self.reset_stats()
        return json_response(self.stats.snapshot())

    async def _get_config(self, request: web.Request) -> web.StreamResponse:
        return json_response(self.config.public())

    async def _set_config(self, request: web.Request) -> web.StreamResponse:
        data = await read_json(request)
        if not isinstance(data, dict):
            return json_response({"error": "expected a JSON object of config fields"}, status=400)
        try:
            self.config.update(data)
        except ValueError as exc:
            return json_response({"error": str(exc)}, status=400)
        return json_response(self.config.public())

    async def _recent(self, request: web.Request) -> web.StreamResponse:
        try:
            limit = max(0, int(request.query.get("limit", "50")))
        except ValueError:
            return json_response({"error": "limit must be an integer"}, status=400)
        recent = list(self.requests)[-limit:] if limit else []
        rows = [
            {
                "provider": r.provider,
                "method": r.method,
                "path": r.path,
                "model": r.model,
                "stream": r.stream,
                "body": r.body,
            }
            for r in recent
        ]
        return json_response({"requests": rows})
