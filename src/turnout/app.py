"""App factory: builds the container, mounts the routers, runs start-up and shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline

from turnout import __version__, tracing
from turnout.api import (
    admin_deployment_groups,
    admin_models,
    admin_provider_templates,
    admin_providers,
    agent_models,
    agents,
    budgets,
    feedback,
    messages,
    performance,
    routing,
    spend,
    webhooks,
)
from turnout.api import metrics as metrics_api
from turnout.api.body_guard import BodyGuard
from turnout.api.body_size import BodySizeLimit
from turnout.api.data_plane import PATTERNS as DATA_PLANE_PATTERNS
from turnout.api.data_plane import ROUTES as DATA_PLANE_ROUTES
from turnout.api.errors import install_error_handlers
from turnout.api.hot_path import HotPath
from turnout.api.openapi import install_openapi
from turnout.api.rejections import Rejections
from turnout.api.ui import install_ui
from turnout.config import Settings
from turnout.container import Container
from turnout.logs import configure_logging
from turnout.metrics import multiprocess


def create_app(
    settings: Settings | None = None,
    container: Container | None = None,
    on_started: Callable[[], None] | None = None,
) -> HotPath:
    """Build the ASGI app. Pass a container to share one with tests or the CLI; ``on_started`` runs
    once the container has started (``turnout serve`` tunes the process's GC there)."""
    settings = settings or (container.settings if container else Settings())
    configure_logging(settings.log_level, json=settings.log_json)
    owned = container is None
    the_container = container or Container.build(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tracing.setup()  # exports spans only when OTEL_EXPORTER_OTLP_ENDPOINT is set
        await the_container.start()
        if on_started is not None:
            on_started()
        port = None  # with several workers the `turnout serve` parent serves the metrics port
        if the_container.metrics is not None and settings.metrics_port and not multiprocess():
            port = metrics_api.serve_port(the_container.metrics, settings.metrics_host, settings.metrics_port)
        try:
            yield
        finally:
            if port is not None:
                port[0].shutdown()
            if owned:
                await the_container.aclose()
            await tracing.shutdown()  # flushes the batched spans

    app = FastAPIOffline(  # /docs and /redoc from assets shipped in the package: no CDN, works offline
        title="Turnout",
        version=__version__,
        description="LLM gateway and intelligent model router",
        lifespan=lifespan,
        static_url="/docs-assets",
    )
    app.state.container = the_container
    app.state.rejections = Rejections(the_container.metrics)
    install_error_handlers(app)
    app.add_middleware(BodyGuard)  # inside the size limit: it reads bodies whole
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.include_router(admin_providers.router)
    app.include_router(admin_provider_templates.router)
    app.include_router(performance.router)  # before admin_models: its /{model_id:path} would match
    app.include_router(admin_models.router)
    app.include_router(admin_deployment_groups.router)
    app.include_router(agents.router)
    app.include_router(agent_models.router)
    app.include_router(feedback.router)
    app.include_router(routing.router)
    app.include_router(messages.router)
    app.include_router(budgets.router)
    app.include_router(spend.router)
    app.include_router(webhooks.router)
    app.include_router(metrics_api.router)
    install_ui(app)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz() -> JSONResponse:
        """Readiness: the database, and Redis when configured, answer now (503 naming what does
        not: a load balancer takes the replica out of rotation instead of sending it calls)."""
        checks = await the_container.readiness()
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse(
            {"status": "ok" if ready else "unavailable", "checks": checks}, 200 if ready else 503
        )

    install_openapi(app)  # the data plane's operations join FastAPI's document

    return HotPath(
        app, DATA_PLANE_ROUTES, max_body_bytes=settings.max_body_bytes, patterns=DATA_PLANE_PATTERNS
    )
