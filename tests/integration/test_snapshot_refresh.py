"""The snapshot refresh loop: it stops when asked, whatever it was doing, and polls the database
with one statement a round."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event

from turnout.domain.snapshot import SnapshotStore
from turnout.store.db import make_engine, make_sessionmaker
from turnout.store.migrate import upgrade
from turnout.store.models import Provider


async def test_stop_right_after_a_trigger_ends_the_refresh_loop(tmp_path: Path) -> None:
    """A control-plane write triggers a refresh as the gateway shuts down: stop must still return.
    (Through ``asyncio.wait_for`` on Python 3.11 the cancel was swallowed and the loop ran on: a
    test container once hung 70 s in teardown.)"""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'snapshot.db'}")
    await upgrade(engine)
    store = SnapshotStore(make_sessionmaker(engine), interval_s=30.0)
    try:
        await store.start()
        await asyncio.sleep(0.05)  # the loop waits for a trigger
        for _ in range(3):
            store.trigger()  # the refresh is due in the same loop turn as the cancel
            started = time.monotonic()
            await asyncio.wait_for(store.stop(), 5)
            assert time.monotonic() - started < 2
            await store.start()
            await asyncio.sleep(0.05)
    finally:
        await asyncio.wait_for(store.stop(), 5)
        await engine.dispose()


async def test_the_poll_asks_the_database_one_question_a_round_and_sees_other_writers(tmp_path: Path) -> None:
    """Each poll is one statement, whatever the number of tables it watches (it was twelve, one per
    table, every 2 s on every replica), and a change another replica made is still seen by the next."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'snapshot.db'}")
    await upgrade(engine)
    sessions = make_sessionmaker(engine)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    store = SnapshotStore(sessions, interval_s=0.1)
    try:
        await store.start()
        event.listen(engine.sync_engine, "before_cursor_execute", seen)
        await asyncio.sleep(1.05)  # ten rounds
        assert 8 <= len(statements) <= 12, f"{len(statements)} statements in ten polls"
        async with sessions.begin() as session:  # another replica's write: no trigger here
            session.add(
                Provider(id="elsewhere", display_name="E", provider_type="openai", api_base="http://x")
            )
        deadline = time.monotonic() + 2
        while "elsewhere" not in store.current.providers:
            assert time.monotonic() < deadline, "the poll missed another writer's provider"
            await asyncio.sleep(0.02)
    finally:
        await asyncio.wait_for(store.stop(), 5)
        await engine.dispose()
