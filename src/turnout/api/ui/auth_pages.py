"""Sign-in and sign-out pages of the UI."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from turnout.api.deps import container_of
from turnout.api.ui.render import page, posted_form, read_form
from turnout.api.ui.session import (
    COOKIE,
    SESSION_TTL_S,
    UsedLinks,
    consume_login_token,
    pasted_token,
    session_cookie,
    signed_in,
)
from turnout.auth.principal import Principal
from turnout.errors import TurnoutError

router = APIRouter(prefix="/ui", include_in_schema=False)


def home_of(principal: Principal) -> str:
    """Where a user lands after signing in: the screen their role starts from."""
    if "platform_admin" in principal.roles:
        return "/ui/providers"
    if "tenant_admin" in principal.roles:
        return "/ui/agents"
    return "/ui/playground"


def _signed_in_as(request: Request, principal: Principal) -> Response:
    response = RedirectResponse(home_of(principal), status_code=303)
    response.set_cookie(
        COOKIE,
        session_cookie(container_of(request).jwt, principal),
        max_age=SESSION_TTL_S,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.get("")
async def home(request: Request) -> Response:
    return RedirectResponse(home_of(signed_in(request, container_of(request).jwt).principal), status_code=303)


@router.get("/login")
async def login_page(request: Request, token: str | None = None) -> Response:
    """The sign-in form; with ``?token=`` (a login link) it signs in at once."""
    container = container_of(request)
    if token:
        try:
            principal = consume_login_token(container.jwt, request.app.state.ui_links, token)
        except TurnoutError as exc:
            return page(request, None, "login.html", status_code=401, error=exc.message)
        return _signed_in_as(request, principal)
    return page(request, None, "login.html", reason=request.query_params.get("reason"))


@router.post("/login")
async def login_with_token(request: Request) -> Response:
    """Sign in with a pasted JWT (``turnout token ...``, or one from the identity provider)."""
    form = await read_form(request)
    token = str(form.get("token") or "")
    if not token.strip():
        return page(request, None, "login.html", status_code=400, errors={"token": "paste a token"})
    try:
        principal = pasted_token(container_of(request).jwt, token)
    except TurnoutError as exc:
        return page(request, None, "login.html", status_code=exc.status_code, errors={"token": exc.message})
    return _signed_in_as(request, principal)


@router.post("/logout")
async def logout(request: Request) -> Response:
    user = signed_in(request, container_of(request).jwt)
    await posted_form(request, user)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return response


def links_store() -> UsedLinks:
    return UsedLinks()
