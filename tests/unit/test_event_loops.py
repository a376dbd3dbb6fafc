"""The events loops. The outbox copier and the NATS publisher stop when asked, even when a wake-up
lands in the same turn as the stop: on Python 3.11 ``asyncio.wait_for`` swallowed a cancellation
that arrived as the awaited event was set, and a loop waiting on its wake-up event with it never
ended (a gateway's shutdown hung; the NATS commands test timed out after 120 s about one run in
three). And the copier leaves the database alone while no one can receive events: with no NATS and
no active webhook, an idle gateway used to run a transaction on the messages table five times a
second, forever; it still copies what was flagged before events went off (and, at start, what a
previous run left flagged) for a drain window, and every round while events are on. Likewise the
webhook dispatcher, with no active webhook anywhere, polls at its idle pace, not five times a second."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from tests.live_server import free_port
from turnout.events.hub import EventHub
from turnout.events.nats import NatsEvents
from turnout.events.outbox import Outbox
from turnout.events.webhook_delivery import WebhookDispatcher
from turnout.secrets.local import LocalSecretStore
from turnout.store.db import make_engine, make_sessionmaker
from turnout.store.schema import Base
from turnout.store.sqlite.gate import engine_of


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


def _reads(engine: AsyncEngine, column: str) -> list[str]:
    """The SELECTs naming ``column`` that ``engine`` runs from now on: ``event_pending``, the outbox
    copier's reads of flagged call records; ``hooks_pending``, the webhook dispatcher's fan-outs."""
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if column in statement and statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    return seen


async def test_with_events_off_the_copier_stops_reading_after_its_drain_window(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    engine = engine_of(sessions)
    assert engine is not None
    copies = _reads(engine, "event_pending")
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


async def test_with_no_active_webhook_the_dispatcher_polls_at_its_idle_pace(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """An idle gateway's dispatcher used to fan out and claim deliveries five times a second, with no
    webhook anywhere to deliver to; now it looks once per idle interval until a webhook is active
    (or something wakes it: the copier, a test event, a retry by hand)."""
    engine = engine_of(sessions)
    assert engine is not None
    reads = _reads(engine, "hooks_pending")
    active = False
    dispatcher = WebhookDispatcher(
        sessions,
        LocalSecretStore(sessions, b"k" * 32),
        aiohttp.ClientSession,
        allow_private=True,
        interval_s=0.05,
        idle_interval_s=0.5,
        hooks_active=lambda: active,
    )
    await dispatcher.start()
    try:
        await asyncio.sleep(1.1)  # 22 rounds at the busy pace; 3 at the idle one
        assert 1 <= len(reads) <= 3, f"{len(reads)} fan-out reads in 1.1 s with no active webhook"
        idle = len(reads)
        active = True
        dispatcher.wake()  # the hub wakes its sinks when it finds an active webhook
        await asyncio.sleep(0.5)
        assert len(reads) >= idle + 6, "with a webhook active the dispatcher polls at its busy pace"
    finally:
        await dispatcher.stop()
