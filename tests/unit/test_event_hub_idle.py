"""The outbox copier leaves the database alone while no one can receive events: with no NATS and
no active webhook, an idle gateway used to run a transaction on the messages table five times a
second, forever. It still copies what was flagged before events went off (and, at start, what a
previous run left flagged) for a drain window, and copies every round while events are on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from turnout.events.hub import EventHub
from turnout.events.outbox import Outbox
from turnout.store.db import make_engine, make_sessionmaker
from turnout.store.schema import Base


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/events.db")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield engine
    await engine.dispose()


def _copies(engine: AsyncEngine) -> list[str]:
    """The outbox copier's reads of flagged call records, as the engine runs them."""
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "event_pending" in statement and statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    return seen


async def test_with_events_off_the_copier_stops_reading_after_its_drain_window(engine: AsyncEngine) -> None:
    sessions: async_sessionmaker[AsyncSession] = make_sessionmaker(engine)
    copies = _copies(engine)
    hub = EventHub(
        sessions, Outbox(sessions, retention=timedelta(days=1)), nats=False, interval_s=0.05, drain_s=0.3
    )
    hub.start()
    try:
        await asyncio.sleep(0.45)
        assert copies, "a previous run's flagged records are copied at start"
        settled = len(copies)
        await asyncio.sleep(0.5)  # ten rounds with events off, past the drain window
        assert len(copies) == settled, "the copier kept reading the messages table with events off"
        hub.subscribed()  # a webhook was made here: events are on, the copier reads every round
        await asyncio.sleep(0.3)
        assert len(copies) >= settled + 3
    finally:
        await hub.stop()
