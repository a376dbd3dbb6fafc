"""The outbox copier and the NATS publisher stop when asked, even when a wake-up lands in the same
turn as the stop. On Python 3.11 ``asyncio.wait_for`` swallowed a cancellation that arrived as the
awaited event was set, and a loop waiting on its wake-up event with it never ended: a gateway's
shutdown hung (the NATS commands test timed out after 120 s about one run in three)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.live_server import free_port
from turnout.events.hub import EventHub
from turnout.events.nats import NatsEvents
from turnout.events.outbox import Outbox
from turnout.store.db import make_engine, make_sessionmaker
from turnout.store.schema import Base


@pytest.fixture
async def sessions(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/events.db")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def test_a_wake_up_in_the_turn_of_the_stop_does_not_keep_the_loops_running(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    outbox = Outbox(sessions, retention=timedelta(days=1))
    for _ in range(20):
        hub = EventHub(sessions, outbox, nats=False, interval_s=0.05)
        publisher = NatsEvents(f"nats://127.0.0.1:{free_port()}", sessions, outbox, interval_s=0.05)
        hub.start()
        publisher.start()
        await asyncio.sleep(0.12)  # both waiting for their next round (the publisher: NATS is down)
        hub.wake()
        publisher.wake()
        await asyncio.wait_for(asyncio.gather(hub.stop(), publisher.stop()), 5)
