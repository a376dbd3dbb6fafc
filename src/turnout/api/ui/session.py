"""Signing in to the web UI: one-time login links, a pasted JWT, and the session cookie.

A login link carries a short-lived JWT minted for the purpose ``ui-login`` (``turnout login-link``,
or the line ``turnout serve`` prints); it works once. Signing in sets a session cookie holding a
JWT minted for ``ui-session``: HttpOnly (page scripts never see it), SameSite=Strict (other sites'
pages never send it) and scoped to ``/ui``. Neither kind of token is accepted as an API bearer
token (``JwtCodec.verify``), so a link that leaks into a browser history opens no API.

Every form and every script call that changes something sends the session's CSRF token (a form
field ``csrf``, or the ``x-csrf-token`` header htmx and the playground add); a request without
the matching token is refused."""

from __future__ import annotations

import hmac
import secrets
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import quote

from starlette.requests import Request

from turnout.auth.jwt_tokens import JwtCodec
from turnout.auth.principal import Principal
from turnout.errors import Forbidden, TurnoutError, Unauthenticated

COOKIE = "turnout_ui"
LOGIN_PURPOSE, SESSION_PURPOSE = "ui-login", "ui-session"
LOGIN_TTL_S = 15 * 60
SESSION_TTL_S = 12 * 3600


def login_link(jwt: JwtCodec, base_url: str, subject: str, tenant: str, roles: list[str]) -> str:
    """A one-time sign-in URL (valid ``LOGIN_TTL_S``) for the UI at ``base_url``."""
    token = jwt.mint(subject, tenant, roles, ttl_s=LOGIN_TTL_S, purpose=LOGIN_PURPOSE, jti=str(uuid.uuid4()))
    return f"{base_url.rstrip('/')}/ui/login?token={quote(token)}"


@dataclass
class UsedLinks:
    """Login links already used in this process (until they expire): a link works once."""

    used: dict[str, float] = field(default_factory=dict)

    def take(self, jti: str, expires_at: float) -> bool:
        now = time.time()
        if len(self.used) > 10_000:
            self.used = {k: v for k, v in self.used.items() if v > now}
        if jti in self.used:
            return False
        self.used[jti] = expires_at
        return True


@dataclass(frozen=True)
class UiUser:
    """Who is signed in, and the CSRF token of their session."""

    principal: Principal
    csrf: str

    @property
    def role(self) -> str:
        for role in ("platform_admin", "tenant_admin", "user"):
            if role in self.principal.roles:
                return role
        return "user"

    @property
    def is_platform_admin(self) -> bool:
        return "platform_admin" in self.principal.roles

    @property
    def is_admin(self) -> bool:
        return self.principal.has_any("platform_admin", "tenant_admin")


class LoginRequired(Exception):
    """No valid session: the page answers with a redirect to the sign-in page."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason


def consume_login_token(jwt: JwtCodec, links: UsedLinks, token: str) -> Principal:
    """The principal a login link signs in; raise when it is invalid, expired or already used."""
    principal, claims = jwt.verify_for(token, LOGIN_PURPOSE)
    jti = claims.get("jti")
    if not isinstance(jti, str) or not links.take(jti, float(claims["exp"])):
        raise Unauthenticated("this login link was already used: ask for a new one", code="link_used")
    return principal


def pasted_token(jwt: JwtCodec, token: str) -> Principal:
    """A bearer JWT pasted into the sign-in form (the same tokens the API takes)."""
    token = token.strip()
    if token.startswith("tk-"):
        raise Unauthenticated("an agent API key cannot sign in to the UI: paste a JWT")
    principal = jwt.verify(token)
    if not principal.has_any("platform_admin", "tenant_admin", "user"):
        raise Forbidden("the UI is for platform admins, tenant admins and users")
    return principal


def session_cookie(jwt: JwtCodec, principal: Principal) -> str:
    """The session cookie's value: a ``ui-session`` JWT with a fresh CSRF token."""
    return jwt.mint(
        principal.subject,
        principal.tenant_id,
        principal.roles,
        ttl_s=SESSION_TTL_S,
        purpose=SESSION_PURPOSE,
        csrf=secrets.token_urlsafe(24),
    )


def signed_in(request: Request, jwt: JwtCodec) -> UiUser:
    """The signed-in user, or ``LoginRequired``."""
    value = request.cookies.get(COOKIE)
    if not value:
        raise LoginRequired()
    try:
        principal, claims = jwt.verify_for(value, SESSION_PURPOSE)
    except TurnoutError as exc:
        raise LoginRequired(exc.message) from exc
    return UiUser(principal, str(claims.get("csrf") or ""))


def require(request: Request, jwt: JwtCodec, *roles: str, what: str) -> UiUser:
    """The signed-in user if they hold one of ``roles``; else a 403 naming the role ``what`` needs."""
    user = signed_in(request, jwt)
    if not user.principal.has_any(*roles):
        raise Forbidden(f"{what} needs the {' or '.join(roles)} role")
    return user


def check_csrf(user: UiUser, sent: str | None) -> None:
    """Refuse a change whose CSRF token is missing or not this session's."""
    if not sent or not user.csrf or not hmac.compare_digest(sent.encode(), user.csrf.encode()):
        raise Forbidden("the form's CSRF token is missing or stale: reload the page", code="csrf_failed")
