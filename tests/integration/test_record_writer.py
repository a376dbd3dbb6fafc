"""RecordWriter: batched inserts, and no record lost or doubled across a database outage."""

from __future__ import annotations

import asyncio
import inspect
import stat
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.fixtures.private_postgres import PrivatePostgres, private_postgres  # noqa: F401
from turnout.records import RecordWriter
from turnout.records.journal import JournalReader, encode, is_transient, to_row
from turnout.store.db import make_engine, make_sessionmaker
from turnout.store.messages import Message
from turnout.store.migrate import upgrade
from turnout.store.models import utcnow

# The writer's own 5 s bound, in tests that are about what is stored rather than about outages: a
# CI machine busy with fsyncs once held a 46-row insert past 5 s, and the records, kept in the
# journal as designed, were missing from the assertion that read the table.
STEADY_DB_S = 60.0


def make_record(**overrides: Any) -> dict[str, Any]:
    """A Message record as the gateway submits it."""
    record: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "tenant_id": "t1",
        "agent_id": "agent-1",
        "user_id": "alice",
        "model": "openai/gpt-4o-mini",
        "provider": "openai",
        "dialect": "openai",
        "endpoint": "chat",
        "stream": False,
        "status": "ok",
        "http_status": 200,
        "latency_ms": 12,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost_usd": 0.00012345,
        "task_type": "chat",
        "tools_used": ["search"],
        "attempts": 1,
        "fallback_used": False,
        "metadata_": {"task_id": "task-1"},
        "created_at": utcnow(),
    }
    record.update(overrides)
    return record


def submit_many(writer: RecordWriter, count: int, ids: list[str]) -> None:
    """Plain synchronous code: submit never needs an event loop turn."""
    for _ in range(count):
        record = make_record()
        ids.append(record["id"])
        writer.submit(record)


async def stored_ids(engine: AsyncEngine) -> list[str]:
    async with make_sessionmaker(engine)() as session:
        return list(await session.scalars(select(Message.id)))


async def assert_exactly_once(engine: AsyncEngine, ids: list[str]) -> None:
    stored = await stored_ids(engine)
    assert len(stored) == len(set(stored)) == len(ids) == len(set(ids))
    assert set(stored) == set(ids)


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated database (SQLite and PostgreSQL)."""
    built = make_engine(db_url)
    await upgrade(built)
    try:
        yield built
    finally:
        await built.dispose()


async def test_many_producers_all_rows_exactly_once(engine: AsyncEngine, tmp_path: Path) -> None:
    assert not inspect.iscoroutinefunction(RecordWriter.submit)
    writer = RecordWriter(
        make_sessionmaker(engine),
        tmp_path / "journal",
        batch_size=100,
        flush_interval_s=0.05,
        db_timeout_s=STEADY_DB_S,
    )
    await writer.start()
    ids: list[str] = []

    async def producer() -> None:
        for _ in range(10):
            submit_many(writer, 25, ids)
            await asyncio.sleep(0.001)

    await asyncio.gather(*(producer() for _ in range(40)))
    await writer.stop()

    assert writer.pending == 0
    assert writer.written == len(ids) == writer.journaled == 10_000
    assert writer.sanitised == writer.refused == writer.left_to_journal == 0
    await assert_exactly_once(engine, ids)
    async with make_sessionmaker(engine)() as session:
        row = await session.get(Message, ids[0])
    assert row is not None
    assert row.cost_usd == Decimal("0.00012345")
    assert row.metadata_ == {"task_id": "task-1"} and row.tools_used == ["search"]
    assert row.created_at.tzinfo is not None and row.role == "assistant"


async def test_over_bound_is_left_to_the_journal_then_replayed(engine: AsyncEngine, tmp_path: Path) -> None:
    writer = RecordWriter(
        make_sessionmaker(engine),
        tmp_path / "journal",
        batch_size=200,
        max_pending=1000,
        db_timeout_s=STEADY_DB_S,
    )
    await writer.start()
    ids: list[str] = []
    submit_many(writer, 5000, ids)  # no await in between: far more than memory keeps
    assert await _wait_until(lambda: writer.left_to_journal > 0, 5)
    assert writer.pending <= 1000
    await writer.stop()
    assert writer.replayed >= writer.left_to_journal > 0
    assert writer.journal_bytes == 0 and not list((tmp_path / "journal").iterdir())
    await assert_exactly_once(engine, ids)


async def test_bad_record_is_stored_cleaned_not_blocking(engine: AsyncEngine, tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    writer = RecordWriter(make_sessionmaker(engine), journal, batch_size=50, db_timeout_s=STEADY_DB_S)
    await writer.start()
    ids: list[str] = []
    submit_many(writer, 20, ids)
    bad = make_record(tenant_id=None)  # NOT NULL
    writer.submit(bad)
    submit_many(writer, 20, ids)
    await writer.stop()
    assert writer.sanitised == 1 and writer.refused == 0 and writer.left_to_journal == 0
    await assert_exactly_once(engine, [*ids, bad["id"]])
    async with make_sessionmaker(engine)() as session:
        row = await session.get(Message, bad["id"])
    assert row is not None and row.tenant_id == "unknown" and row.metadata_["sanitised"] == ["tenant_id"]


async def test_each_record_is_journaled_before_its_future_is_done(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    writer = RecordWriter(make_sessionmaker(engine), journal, flush_interval_s=30.0)  # no insert meanwhile
    await writer.start()
    records = [make_record() for _ in range(3)]
    waiters = [asyncio.ensure_future(_durable(writer, record)) for record in records]
    await asyncio.sleep(0)
    waiters[0].cancel()  # one caller leaves: the others' shared group is not cancelled with it
    done = await asyncio.gather(*waiters, return_exceptions=True)
    assert isinstance(done[0], asyncio.CancelledError) and done[1:] == [None, None]
    lines = b"".join(path.read_bytes() for path in journal.glob("wal-*.jsonl")).splitlines()
    assert {orjson.loads(line)["id"] for line in lines} == {record["id"] for record in records}
    assert writer.written == 0
    await writer.stop()
    await assert_exactly_once(engine, [record["id"] for record in records])


async def _durable(writer: RecordWriter, record: dict[str, Any]) -> None:
    waiter = writer.submit(record)
    assert waiter is not None
    await waiter


def test_journal_round_trip_restores_types(tmp_path: Path) -> None:
    record = make_record(cost_usd=Decimal("1.5"), feedback_at=utcnow())
    path = tmp_path / "wal-1.jsonl"
    path.write_bytes(encode([record]) + b'{"id": "torn')  # a crash mid-write leaves half a line
    reader = JournalReader(path)
    (restored,) = reader.next_batch(10)
    reader.close()
    row = to_row(restored)
    assert row["cost_usd"] == Decimal("1.5")
    assert isinstance(row["created_at"], datetime) and row["created_at"] == record["created_at"]
    assert row["feedback_at"] == record["feedback_at"] and row["metadata"] == {"task_id": "task-1"}
    assert row["rating"] is None and row["role"] == "assistant"


def _wrapped(cls: type[sa_exc.DBAPIError], orig: Exception) -> sa_exc.DBAPIError:
    try:
        raise cls("INSERT", {}, orig) from orig
    except sa_exc.DBAPIError as exc:
        return exc


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (ConnectionRefusedError(111, "refused"), True),
        (TimeoutError("slow"), True),
        (_wrapped(sa_exc.OperationalError, Exception("database is locked")), True),
        (_wrapped(sa_exc.DBAPIError, asyncpg.exceptions.AdminShutdownError("shutting down")), True),
        (_wrapped(sa_exc.InterfaceError, asyncpg.exceptions.ConnectionDoesNotExistError("closed")), True),
        (_wrapped(sa_exc.IntegrityError, Exception("NOT NULL constraint failed")), False),
        (_wrapped(sa_exc.DBAPIError, asyncpg.exceptions.StringDataRightTruncationError("too long")), False),
        (_wrapped(sa_exc.InterfaceError, asyncpg.exceptions.DataError("invalid input for $1")), False),
        (TypeError("not serializable"), False),
    ],
)
def test_outage_errors_are_told_from_bad_data(error: Exception, transient: bool) -> None:
    assert is_transient(error) is transient


# -- a real outage: a private PostgreSQL that the tests crash and restart ---------------------------


async def _wait_until(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return bool(predicate())


@pytest.fixture
async def pg_engine(private_postgres: PrivatePostgres) -> AsyncIterator[AsyncEngine]:  # noqa: F811
    built = make_engine(private_postgres.url)
    await upgrade(built)
    try:
        yield built
    finally:
        await built.dispose()


def _outage_writer(engine: AsyncEngine, journal: Path) -> RecordWriter:
    return RecordWriter(
        make_sessionmaker(engine),
        journal,
        batch_size=200,
        flush_interval_s=0.05,
        replay_interval_s=0.2,
        max_backoff_s=1.0,
        db_timeout_s=2.0,
    )


@pytest.mark.postgres
async def test_database_crash_mid_load_loses_nothing(
    private_postgres: PrivatePostgres,  # noqa: F811
    pg_engine: AsyncEngine,
    tmp_path: Path,
) -> None:
    writer = _outage_writer(pg_engine, tmp_path / "journal")
    await writer.start()
    ids: list[str] = []
    load_done = asyncio.Event()

    async def load() -> None:  # 20 records every 10 ms for the whole test
        while not load_done.is_set():
            submit_many(writer, 20, ids)
            await asyncio.sleep(0.01)

    load_task = asyncio.create_task(load())
    # stored under load before the crash (a busy CI machine may take longer than a second)
    assert await _wait_until(lambda: writer.written > 0, 30), writer.stats
    await asyncio.sleep(0.5)
    written_before = writer.written
    await asyncio.to_thread(private_postgres.stop, "immediate")
    down_at = len(ids)
    await asyncio.sleep(1.0)
    assert len(ids) > down_at  # the load went on during the outage
    assert not writer.db_available
    assert writer.left_to_journal > 0 and writer.journal_bytes > 0
    await asyncio.to_thread(private_postgres.restart)
    await asyncio.sleep(1.0)
    load_done.set()
    await load_task

    # the replay loop (not only stop()) brings the journal back once the database answers
    assert await _wait_until(lambda: writer.journal_bytes == 0 and writer.db_available, 20), writer.stats
    await writer.stop()
    assert writer.pending == 0 and writer.refused == 0
    assert writer.replayed > 0 and writer.written > written_before
    await assert_exactly_once(pg_engine, ids)


@pytest.mark.postgres
async def test_stop_while_down_journals_then_next_start_replays(
    private_postgres: PrivatePostgres,  # noqa: F811
    pg_engine: AsyncEngine,
    tmp_path: Path,
) -> None:
    journal = tmp_path / "journal"
    first = _outage_writer(pg_engine, journal)
    await first.start()
    ids: list[str] = []
    submit_many(first, 300, ids)
    assert await _wait_until(lambda: first.written == 300, 10)
    await asyncio.to_thread(private_postgres.stop, "immediate")
    submit_many(first, 700, ids)
    await first.stop()  # database down: what is not stored stays in the journal
    submit_many(first, 5, ids)  # after stop: straight to a journal file
    assert first.pending == 0 and first.left_to_journal == 700 and first.journaled == 1005
    assert first.journal_bytes > 0
    assert stat.S_IMODE(journal.stat().st_mode) == 0o700
    for path in journal.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path

    await asyncio.to_thread(private_postgres.restart)
    second = _outage_writer(pg_engine, journal)
    await second.start()  # replays what the previous run left, in the background
    assert await _wait_until(lambda: second.journal_bytes == 0, 20), second.stats
    assert second.replayed >= 705
    await second.stop()
    await assert_exactly_once(pg_engine, ids)
