"""Change events over PostgreSQL LISTEN/NOTIFY, for replicas on one PostgreSQL and no Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import asyncpg
import structlog
from sqlalchemy.engine import make_url

from turnout.cluster.bus import QueuedBus, pause
from turnout.database_url import asyncpg_connect_args
from turnout.tasks import wait_event

HEALTH_CHECK_S = 5.0  # a silent dead connection is noticed within this (a closed one at once)

log = structlog.get_logger(__name__)


def asyncpg_connect_kwargs(database_url: str) -> dict[str, Any]:
    """``asyncpg.connect``'s arguments for the SQLAlchemy URL (``postgresql+asyncpg://``), the
    engine's own: the URL as a DSN put its query (``ssl``, libpq's ``connect_timeout``...) into the
    server settings, which PostgreSQL refused, so the bus never connected with such a URL."""
    from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg

    url, connect_args = asyncpg_connect_args(database_url)
    _, kwargs = PGDialect_asyncpg().create_connect_args(make_url(url))
    kwargs.pop("prepared_statement_cache_size", None)  # SQLAlchemy's, not asyncpg's
    return {"timeout": 5, **kwargs, **connect_args}


class PostgresBus(QueuedBus):
    """Listens on one dedicated connection (outside SQLAlchemy's pool, which would reuse it) and
    sends ``pg_notify`` on the same one; a lost connection is replaced, then ``RESYNC``."""

    def __init__(
        self, connect_kwargs: Mapping[str, Any], channel: str, *, ready_timeout_s: float = 2.0
    ) -> None:
        super().__init__(ready_timeout_s=ready_timeout_s)
        self._connect_kwargs = dict(connect_kwargs)
        self._channel = channel
        self._conn: Any = None
        self._lock = asyncio.Lock()  # one statement at a time on the connection

    async def _send(self, payload: bytes) -> None:
        conn = self._conn
        if conn is None:
            raise ConnectionError("not connected")
        async with self._lock:
            await conn.execute("SELECT pg_notify($1, $2)", self._channel, payload.decode())

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self._accept(payload)

    async def _receive(self) -> None:
        attempt = 0
        while True:
            conn: Any = None
            try:
                conn = await asyncpg.connect(**self._connect_kwargs)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                await conn.add_listener(self._channel, self._notified)
                self._conn, attempt = conn, 0
                self._subscribed()
                while not await wait_event(lost, HEALTH_CHECK_S):
                    async with self._lock, asyncio.timeout(HEALTH_CHECK_S):
                        await conn.execute("SELECT 1")
                log.warning("cluster.bus_down", transport="postgres", error_type="connection closed")
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("cluster.bus_down", transport="postgres", error_type=type(exc).__name__)
            finally:
                self._conn = None
                if conn is not None:
                    conn.terminate()
            await pause(attempt)
            attempt += 1
