"""The web UI at ``/ui``: server-rendered pages (Jinja2, htmx vendored under ``static/vendor`` with
its licence) that call the same services as the JSON API. No Node at run time, no CDN."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from turnout.api.errors import turnout_error_response
from turnout.api.rejections import CONTROL_PLANE, note_rejection
from turnout.api.ui import agents, auth_pages, catalog, playground, providers, reports, routing_pages
from turnout.api.ui.render import page
from turnout.api.ui.session import LoginRequired, UsedLinks
from turnout.errors import TurnoutError

STATIC = Path(__file__).parent / "static"
ROUTERS = (
    auth_pages.router,
    providers.router,
    catalog.router,
    agents.router,
    playground.router,
    reports.router,
    routing_pages.router,
)


def install_ui(app: FastAPI) -> None:
    """Mount the pages and their static files, and answer UI errors as pages, not JSON."""
    app.state.ui_links = UsedLinks()
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
    for router in ROUTERS:
        app.include_router(router)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        if request.headers.get("hx-request"):  # htmx: a whole-page redirect, not a fragment
            return Response(status_code=401, headers={"hx-redirect": "/ui/login"})
        return RedirectResponse("/ui/login", status_code=303)

    @app.exception_handler(TurnoutError)
    async def _error(request: Request, exc: TurnoutError) -> Response:
        if request.url.path.startswith("/ui/") and not request.url.path.startswith("/ui/playground/"):
            note_rejection(request, CONTROL_PLANE, exc.status_code, exc.code, exc.message)
            return page(request, None, "error.html", status_code=exc.status_code, error=exc)
        return turnout_error_response(request, exc)  # the API's handler, which this one replaces
