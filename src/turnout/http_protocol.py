"""uvicorn's httptools protocol with the guards a server facing untrusted clients needs
(``GuardedHttpToolsProtocol``): a header timeout, a connection limit and idle eviction.

It subclasses uvicorn internals, so ``pyproject.toml`` pins uvicorn to the range tested here.
An earlier version also held each response's header block back to send it with the body in one
write. Measured alone with ``bench/gateway_ab.py --rounds 16`` (2-core sandbox, 2026-12-04), the
stock transport's CPU per request was 0.934x the coalescing one's (rounds 0.80-1.33; the A/A floor
that day was 1.016, rounds 0.77-1.36): no gain above noise, so it went.
"""

from __future__ import annotations

import asyncio
import resource
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from turnout.config import Settings
from turnout.errors import error_body

PROTOCOL = "turnout.http_protocol:GuardedHttpToolsProtocol"  # uvicorn's ``http`` setting


def raise_fd_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit (workers inherit it); returns the
    soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft == resource.RLIM_INFINITY or soft >= hard:
        return int(soft)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (OSError, ValueError):
        return int(soft)
    return int(hard)


def connection_limit(max_connections: int, fd_reserve: int) -> int:
    """Client connections a worker accepts: ``max_connections``, but always ``fd_reserve``
    descriptors below the soft file-descriptor limit, so upstream calls, the database and the
    journal still open theirs when clients hold every connection they may."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        return max_connections
    room = soft - fd_reserve if soft - fd_reserve >= 64 else soft // 2
    return max(1, min(max_connections, room))


_REFUSAL_BODY = orjson.dumps(
    error_body("too many open connections; retry shortly", "api_error", None, "connection_limit")
)
REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
    b"content-length: " + str(len(_REFUSAL_BODY)).encode() + b"\r\nretry-after: 1\r\n"
    b"connection: close\r\n\r\n" + _REFUSAL_BODY
)
REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
REFUSAL_LINGER_S = 1.0  # a refused client's request is read (and dropped) this long: no RST


class ConnectionGuard:
    """What the protocol instances of one server share: the connection limit, the header
    timeout, and the idle connections, oldest first (the ones evicted for a new one)."""

    def __init__(self, limit: int, header_timeout_s: float) -> None:
        self.limit = limit
        self.header_timeout_s = header_timeout_s
        self.idle: dict[GuardedHttpToolsProtocol, None] = {}  # insertion order: oldest first
        self.refusing = 0
        self.max_refusing = max(16, limit // 16)

    @classmethod
    def of(cls, state: ServerState) -> ConnectionGuard:
        """The guard of ``state``'s server, made from ``TURNOUT_*`` settings on first use."""
        guard: ConnectionGuard | None = getattr(state, "turnout_guard", None)
        if guard is None:
            settings = Settings()
            limit = connection_limit(settings.max_connections, settings.fd_reserve)
            guard = cls(limit, settings.header_timeout_s)
            state.turnout_guard = guard  # type: ignore[attr-defined]
        return guard

    def make_room(self, connections: set[Any]) -> bool:
        """True when one more connection fits, closing the oldest idle one if it must."""
        if len(connections) < self.limit:
            return True
        if not self.idle:
            return False
        victim = next(iter(self.idle))
        self.idle.pop(victim)
        connections.discard(victim)  # counted out now; its connection_lost comes a turn later
        victim.transport.close()
        return True


class _Refusal(asyncio.Protocol):
    """A connection over the limit with nothing idle to close: answered 503 at once, its request
    read and dropped for ``REFUSAL_LINGER_S`` (closing on unread data would reset the connection
    before the client reads the answer), then closed. Lingering refusals hold descriptors too:
    past ``max_refusing`` of them, a connection is reset at once instead."""

    def __init__(self, transport: asyncio.Transport, guard: ConnectionGuard) -> None:
        self.guard = guard
        self.timer: asyncio.TimerHandle | None = None
        if guard.refusing >= guard.max_refusing:
            transport.abort()
            return
        guard.refusing += 1
        transport.write(REFUSAL)
        self.timer = asyncio.get_running_loop().call_later(REFUSAL_LINGER_S, transport.close)

    def data_received(self, data: bytes) -> None:
        pass

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.guard.refusing -= 1


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """Header timeout, connection limit and idle eviction, so idle sockets cannot take the server
    down (nor its file descriptors, which upstream calls need too).

    * A connection must complete each request's header block within ``TURNOUT_HEADER_TIMEOUT_S``
      of connecting, or of the first bytes of a header block that a read left incomplete; then it
      is closed (with a 408 if it sent part of one). Between requests uvicorn's keep-alive timeout
      (``TURNOUT_KEEP_ALIVE_TIMEOUT_S``) applies.
    * At most ``connection_limit()`` connections are open; a new one over it closes the oldest idle
      one (no request in progress), or, when every one is busy, is answered 503 with
      ``Retry-After`` and closed.
    A request whose header block arrives in one read (the common case) costs two dictionary
    operations and no timer.
    """

    guard: ConnectionGuard
    header_timer: asyncio.TimerHandle | None
    header_bytes: bool  # bytes of a header block not yet complete have come

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        guard = self.guard = ConnectionGuard.of(self.server_state)
        if not guard.make_room(self.connections):
            transport.set_protocol(_Refusal(transport, guard))  # this protocol never sees it again
            return
        super().connection_made(transport)
        guard.idle[self] = None
        self.header_bytes = False
        self.header_timer = self.loop.call_later(guard.header_timeout_s, self._header_timeout)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        cycle = self.cycle
        if cycle is None or cycle.response_complete:  # no request in progress: part of a header block
            self.header_bytes = True
            if self.header_timer is None and not self.transport.is_closing():
                self.header_timer = self.loop.call_later(self.guard.header_timeout_s, self._header_timeout)

    def on_headers_complete(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None
        self.header_bytes = False
        self.guard.idle.pop(self, None)
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.pipeline and not self.transport.is_closing():
            self.guard.idle[self] = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None
        self.guard.idle.pop(self, None)
        super().connection_lost(exc)

    def _header_timeout(self) -> None:
        self.header_timer = None
        if self.transport.is_closing():
            return
        self.guard.idle.pop(self, None)
        self.connections.discard(self)
        if self.header_bytes:  # say why to a client that sent part of a header block
            self.transport.write(REQUEST_TIMEOUT)
        self.transport.close()
