"""Background database work (record inserts, WAL checkpoints) yields the CPU to requests, and
catches up at normal priority when it falls behind."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from pathlib import Path

import pytest

from tests.integration.test_record_writer import assert_exactly_once, submit_many
from turnout.records import RecordWriter
from turnout.store.db import make_engine, make_sessionmaker
from turnout.store.migrate import upgrade
from turnout.store.sqlite.checkpoint import URGENT_FRAMES, WalCheckpointer
from turnout.store.sqlite.polite import POLITE_NICE, PoliteWorker

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="per-thread niceness is Linux-only")


def thread_nice() -> int:
    """The calling thread's own niceness."""
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@linux_only
async def test_polite_work_runs_at_the_lowest_priority_urgent_work_at_normal() -> None:
    worker = PoliteWorker("test")
    process_nice = os.getpriority(os.PRIO_PROCESS, 0)
    try:
        assert await worker.run(thread_nice) == POLITE_NICE
        assert await worker.run(thread_nice, urgent=True) == process_nice
        assert thread_nice() == process_nice  # the event loop's thread keeps its priority
        with pytest.raises(ZeroDivisionError):
            await worker.run(lambda: 1 / 0)
        assert worker.runs == {"polite": 2, "urgent": 1}
    finally:
        await worker.close()
    assert await worker.run(thread_nice) == POLITE_NICE  # closed: a new run starts a new thread
    await worker.close()


async def test_record_inserts_are_polite_until_the_queue_falls_behind(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'records.db'}")
    await upgrade(engine)
    sessions, journal = make_sessionmaker(engine), tmp_path / "journal"
    writer = RecordWriter(sessions, journal, batch_size=50, flush_interval_s=0.02, catch_up_rows=200)
    runs = writer.insert_worker.runs
    await writer.start()
    ids: list[str] = []
    try:
        submit_many(writer, 30, ids)  # a trickle: stored by the polite thread
        for _ in range(250):
            if writer.written == 30:
                break
            await asyncio.sleep(0.02)
        assert writer.written == 30 and runs["polite"] >= 1 and runs["urgent"] == 0

        submit_many(writer, 2000, ids)  # a backlog 10x the catch-up bound: normal priority
        for _ in range(500):
            if writer.written == 2030:
                break
            await asyncio.sleep(0.02)
        assert writer.written == 2030 and runs["urgent"] >= 1
    finally:
        await writer.stop()
        await engine.dispose()
    await assert_exactly_once(engine, ids)


async def test_checkpoints_turn_urgent_when_the_wal_grows(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'wal.db'}")
    await upgrade(engine)
    checkpoints = WalCheckpointer(engine, interval_s=0)  # no background loop: checkpoints on demand
    writer = RecordWriter(make_sessionmaker(engine), tmp_path / "journal", batch_size=5000)
    await writer.start()
    try:
        assert (await checkpoints.checkpoint()) is not None
        assert checkpoints.worker.runs == {"polite": 1}
        ids: list[str] = []
        submit_many(writer, 20_000, ids)  # ~tens of thousands of WAL pages written before the next one
        await writer.stop()
        first = await checkpoints.checkpoint()  # finds a long WAL: still polite, but the next is urgent
        assert first is not None and first.log_frames >= URGENT_FRAMES
        await checkpoints.checkpoint()
        assert checkpoints.worker.runs == {"polite": 2, "urgent": 1}
    finally:
        await writer.stop()
        await checkpoints.worker.close()
        await engine.dispose()
