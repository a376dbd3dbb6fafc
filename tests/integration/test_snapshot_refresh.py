"""The snapshot refresh loop stops when asked, whatever it was doing."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from turnout.domain.snapshot import SnapshotStore
from turnout.store.db import make_engine, make_sessionmaker
from turnout.store.migrate import upgrade


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
