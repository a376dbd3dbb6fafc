"""App factory: builds the container, mounts the routers, runs start-up and shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from turnout import __version__
from turnout.api import admin_models, admin_providers, agent_models, agents, feedback, performance, routing
from turnout.api.data_plane import PATTERNS as DATA_PLANE_PATTERNS
from turnout.api.data_plane import ROUTES as DATA_PLANE_ROUTES
from turnout.api.errors import install_error_handlers
from turnout.api.hot_path import HotPath
from turnout.api.limits import BodySizeLimit
from turnout.config import Settings
from turnout.container import Container
from turnout.logs import configure_logging


def create_app(settings: Settings | None = None, container: Container | None = None) -> HotPath:
    """Build the ASGI app. Pass a container to share one with tests or the CLI."""
    settings = settings or (container.settings if container else Settings())
    configure_logging(settings.log_level, json=settings.log_json)
    owned = container is None
    the_container = container or Container.build(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await the_container.start()
        try:
            yield
        finally:
            if owned:
                await the_container.aclose()

    app = FastAPI(
        title="Turnout",
        version=__version__,
        description="LLM gateway and intelligent model router",
        lifespan=lifespan,
    )
    app.state.container = the_container
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.include_router(admin_providers.router)
    app.include_router(performance.router)  # before admin_models: its /{model_id:path} would match
    app.include_router(admin_models.router)
    app.include_router(agents.router)
    app.include_router(agent_models.router)
    app.include_router(feedback.router)
    app.include_router(routing.router)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return HotPath(
        app, DATA_PLANE_ROUTES, max_body_bytes=settings.max_body_bytes, patterns=DATA_PLANE_PATTERNS
    )
