"""One writer at a time per SQLite database, queued in asyncio instead of in SQLite's busy handler.

SQLite takes one write transaction at a time. A second writer that finds the lock taken sleeps in
SQLite's busy handler (1, 2, 5, 10 ... 100 ms steps), so the background writers (message records,
feedback group commits, their copy onto messages) used to stall each other, and a rating waited
tens of milliseconds for its commit. Writers of one process now take this gate first: they queue
on an ``asyncio.Lock`` and each starts the moment the previous one commits. PostgreSQL has row
locks and needs no gate.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator

from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

_Gates = weakref.WeakKeyDictionary[Engine, asyncio.Lock]
_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Gates] = weakref.WeakKeyDictionary()


def engine_of(sessions: async_sessionmaker[AsyncSession]) -> AsyncEngine | None:
    """The engine a session factory is bound to (None when it has no engine bind)."""
    bind = sessions.kw.get("bind")
    return bind if isinstance(bind, AsyncEngine) else None


@contextlib.asynccontextmanager
async def write_gate(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[None]:
    """Hold the database's in-process write gate (SQLite only) for the ``async with`` body."""
    engine = engine_of(sessions)
    if engine is None or engine.dialect.name != "sqlite":
        yield
        return
    gates = _by_loop.setdefault(asyncio.get_running_loop(), weakref.WeakKeyDictionary())
    gate = gates.get(engine.sync_engine)
    if gate is None:
        gate = gates[engine.sync_engine] = asyncio.Lock()
    async with gate:
        yield
