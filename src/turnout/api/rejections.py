"""Requests refused before they became calls: a wrong or missing key, a malformed body, an unknown
path. They leave no call record, so without this an operator saw nothing of a client sending a
revoked key all day, or of someone trying keys.

Each refusal is counted in ``turnout_rejected_requests`` (by API, status and error code: bounded
labels, the codes are Turnout's own) and logged as ``request.rejected``: the first refusal of each
(API, status, code) at once, then at most one line per ``LOG_EVERY_S`` for that kind, saying how
many like it were left unlogged since the previous line, so a flood of refusals is a line every few
seconds and never the logs' volume. Authentication and permission refusals log at warning (a key
being tried is a security matter), the rest at info. The line names the path and the client's
address, never the credential. A refusal costs this only on the refusal path."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog
from starlette.requests import Request
from starlette.responses import Response

from turnout.api.dialects import Dialect
from turnout.errors import TurnoutError
from turnout.metrics import GatewayMetrics

log = structlog.get_logger(__name__)

LOG_EVERY_S = 10.0
DATA_PLANE, CONTROL_PLANE = "data_plane", "control_plane"
_WARN = frozenset({401, 403})
_MESSAGE_CHARS = 200


@dataclass(slots=True)
class _Kind:
    logged_at: float
    unlogged: int = 0


@dataclass
class Rejections:
    """Counts and logs refused requests (see the module docstring)."""

    metrics: GatewayMetrics | None = None
    clock: Callable[[], float] = time.monotonic
    _kinds: dict[tuple[str, int, str], _Kind] = field(default_factory=dict)

    def note(self, request: Request, api: str, status: int, code: str | None, message: str) -> None:
        """One refused request: ``status`` and ``code`` as its answer said, ``message`` the
        answer's (Turnout's own words, never the credential)."""
        code = code or "none"
        if self.metrics is not None:
            self.metrics.on_rejected(api, status, code)
        key = (api, status, code)
        now = self.clock()
        kind = self._kinds.get(key)
        if kind is not None and now - kind.logged_at < LOG_EVERY_S:
            kind.unlogged += 1
            return
        unlogged = 0 if kind is None else kind.unlogged
        self._kinds[key] = _Kind(now)
        client = request.client
        emit = log.warning if status in _WARN else log.info
        emit(
            "request.rejected",
            api=api,
            method=request.method,
            path=request.url.path[:200],
            status=status,
            code=code,
            message=message[:_MESSAGE_CHARS],
            client=None if client is None else client.host,
            unlogged_since_last=unlogged,
        )


def note_rejection(request: Request, api: str, status: int, code: str | None, message: str) -> None:
    """``Rejections.note`` on the app's (``app.state.rejections``, set by ``create_app``; an app
    built without it, in a test, counts nothing), for a 4xx only: a 5xx is Turnout's failure, not
    a refusal, and a 3xx (the UI's sign-in redirect) neither."""
    rejections: Rejections | None = getattr(request.app.state, "rejections", None)
    if rejections is not None and 400 <= status < 500:
        rejections.note(request, api, status, code, message)


def refused(request: Request, dialect: Dialect, exc: TurnoutError) -> Response:
    """A data-plane request's answer when it is refused before it became a call (it leaves no
    record): counted and logged, then answered in the caller's dialect."""
    note_rejection(request, DATA_PLANE, exc.status_code, exc.code, exc.message)
    return dialect.error_response(exc)
