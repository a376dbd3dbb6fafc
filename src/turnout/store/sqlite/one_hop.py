"""Short units of database work in one hop: the whole transaction runs in one worker-thread call.

aiosqlite sends every DBAPI call (cursor, execute, fetch, close, commit) to its thread and its
answer back through the event loop, so a small transaction costs 5-8 hops; on a busy loop each
hop waits for a loop iteration, and a one-row SELECT took about 2.5 ms at 500 ratings/s. For an
SQLite file, the same Core work runs on a blocking twin engine in ``asyncio.to_thread``: one hop.
PostgreSQL keeps the async engine (asyncpg talks to the server from the loop, without threads).
Work is written once, against a sync ``Connection``; on the async engine it runs via ``run_sync``.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from turnout.store.db import make_blocking_engine
from turnout.store.sqlite.polite import PoliteWorker

T = TypeVar("T")
_twins: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()


def blocking_twin(engine: AsyncEngine) -> Engine | None:
    """The blocking engine on the same SQLite file (None for other databases and in-memory SQLite).

    One per async engine, shared by its users (feedback commits, record inserts, WAL checkpoints):
    one connection pool per file, not one each. Disposing it only closes the pooled connections; a
    later user opens new ones."""
    url = engine.url
    if engine.dialect.name != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    if url.query.get("mode") == "memory":
        return None
    twin = _twins.get(engine.sync_engine)
    if twin is None:
        twin = _twins[engine.sync_engine] = make_blocking_engine(
            url.set(drivername="sqlite").render_as_string(hide_password=False)
        )
    return twin


class OneHop:
    """Runs ``work(connection)`` in one transaction: one thread hop on SQLite files."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._twin = blocking_twin(engine)

    @property
    def twin(self) -> Engine | None:
        """The blocking engine used on SQLite files (None: work runs on the async engine)."""
        return self._twin

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    async def transaction(
        self, work: Callable[[Connection], T], *, via: PoliteWorker | None = None, urgent: bool = False
    ) -> T:
        """Run ``work`` inside BEGIN ... COMMIT (rolled back if it raises) and return its result.

        On an SQLite file it runs in a default worker thread, or on ``via`` (background work that
        yields the CPU to the loop; ``urgent`` when it has fallen behind)."""
        if self._twin is not None:
            if via is not None:
                return await via.run(functools.partial(self._blocking, self._twin, work), urgent=urgent)
            return await asyncio.to_thread(self._blocking, self._twin, work)
        async with self._engine.begin() as connection:
            return await connection.run_sync(work)

    @staticmethod
    def _blocking(twin: Engine, work: Callable[[Connection], T]) -> T:
        with twin.begin() as connection:
            return work(connection)

    async def dispose(self) -> None:
        """Close the twin's connections (the async engine belongs to its owner)."""
        if self._twin is not None:
            await asyncio.to_thread(self._twin.dispose)
