"""FastAPI dependencies that authenticate the caller and check roles."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request

from turnout.auth.principal import Principal
from turnout.errors import Forbidden, Unauthenticated


def bearer_token(request: Request) -> str:
    """The token of an ``Authorization: Bearer`` header, or 401."""
    header = request.headers.get("authorization")
    if not header:
        raise Unauthenticated("missing Authorization header", code="missing_token")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Authorization header must be 'Bearer <token>'", code="missing_token")
    return token.strip()


async def current_principal(request: Request) -> Principal:
    """Authenticate the request with the app's JWT codec."""
    return request.app.state.container.jwt.verify(bearer_token(request))


def require_roles(*roles: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency that authenticates and demands one of ``roles`` (403 otherwise)."""

    async def dependency(request: Request) -> Principal:
        principal = await current_principal(request)
        if not principal.has_any(*roles):
            raise Forbidden(f"requires role {' or '.join(roles)}")
        return principal

    return dependency


require_platform_admin = require_roles("platform_admin")
