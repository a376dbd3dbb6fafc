"""Change events over PostgreSQL LISTEN/NOTIFY, for replicas on one PostgreSQL and no Redis."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import structlog
from sqlalchemy.engine import make_url

from turnout.cluster.bus import QueuedBus, pause
from turnout.tasks import wait_event

HEALTH_CHECK_S = 5.0  # a silent dead connection is noticed within this (a closed one at once)

log = structlog.get_logger(__name__)


def asyncpg_dsn(database_url: str) -> str:
    """The libpq-style DSN asyncpg takes, from the SQLAlchemy URL (``postgresql+asyncpg://``)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresBus(QueuedBus):
    """Listens on one dedicated connection (outside SQLAlchemy's pool, which would reuse it) and
    sends ``pg_notify`` on the same one; a lost connection is replaced, then ``RESYNC``."""

    def __init__(self, dsn: str, channel: str, *, ready_timeout_s: float = 2.0) -> None:
        super().__init__(ready_timeout_s=ready_timeout_s)
        self._dsn = dsn
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
                conn = await asyncpg.connect(self._dsn, timeout=5)
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
