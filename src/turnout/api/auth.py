"""Who is calling: one ``authenticate`` for every route (the lean data-plane handlers and the
FastAPI control plane), and the FastAPI dependencies that demand roles."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from turnout.auth.api_keys import KEY_PREFIX, secret_matches, split_key
from turnout.auth.principal import Principal
from turnout.container import Container
from turnout.errors import Forbidden, Unauthenticated


def authenticate(request: Request, container: Container, *, agent_keys: bool = True) -> Principal:
    """The caller: an agent API key (Bearer or ``x-api-key``; refused when ``agent_keys`` is false,
    as on the admin API) or a JWT, checked against in-memory state only.

    The agent a key belongs to (or a JWT's ``agent_id`` claim names) must exist in the caller's
    tenant and be active: a deactivated agent gets 403 ``agent_inactive`` on every route."""
    header = request.headers.get("authorization")
    token = None
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            token = value.strip()
    token = token or request.headers.get("x-api-key")
    if not token:
        raise Unauthenticated("missing API key or bearer token", code="missing_token")
    parts = split_key(token)
    snapshot = container.snapshots.current
    if parts is not None and not agent_keys:
        raise Unauthenticated(
            "an agent API key is not accepted here: use a bearer token (JWT)", code="wrong_credential"
        )
    if parts is None:
        if token.startswith(KEY_PREFIX):
            raise Unauthenticated(
                "malformed API key: Turnout keys look like tk-<id>.<secret> (was it cut short?)",
                code="invalid_api_key",
            )
        if token.count(".") != 2:  # neither a Turnout key nor a JWT: another service's key, a typo
            raise Unauthenticated(
                "unknown API key: use an agent key (tk-...) issued by this gateway, or a bearer token",
                code="invalid_api_key",
            )
        principal = container.jwt.verify(token)
        if principal.agent_id is not None:
            snapshot.acting_agent(principal.tenant_id, principal.agent_id, param="agent_id")
        return principal
    entry = snapshot.keys.get(parts[0])
    if entry is None:
        raise Unauthenticated("unknown API key", code="invalid_api_key")
    if entry.revoked:
        raise Unauthenticated("API key revoked: issue a new one", code="revoked_api_key")
    verified = container.verified_keys  # key value -> the hash it matched; revocation still checked
    if verified.get(token) != entry.secret_hash:  # hash once per key value, not once per request
        if not secret_matches(entry.salt, entry.secret_hash, parts[1]):
            raise Unauthenticated("unknown API key", code="invalid_api_key")
        if len(verified) > 10_000:
            verified.clear()
        verified[token] = entry.secret_hash
    snapshot.acting_agent(entry.tenant_id, entry.agent_id)
    return Principal(
        subject=f"agent:{entry.agent_id}",
        tenant_id=entry.tenant_id,
        roles=frozenset({"agent"}),
        agent_id=entry.agent_id,
        key_id=entry.key_id,
    )


def require_roles(*roles: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency that authenticates with a JWT and demands one of ``roles`` (403 otherwise)."""

    async def dependency(request: Request) -> Principal:
        principal = authenticate(request, request.app.state.container, agent_keys=False)
        if not principal.has_any(*roles):
            raise Forbidden(f"requires role {' or '.join(roles)}")
        return principal

    return dependency


require_platform_admin = require_roles("platform_admin")


async def any_caller(request: Request) -> Principal:
    """Users (JWT) and agents (API key) alike: for the routes both may call, such as feedback."""
    return authenticate(request, request.app.state.container)


AnyCaller = Annotated[Principal, Depends(any_caller)]
