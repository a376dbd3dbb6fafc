"""SQLite WAL checkpoints run in the background, so no commit (a rating, a record batch) pays for one."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import Column, Integer, MetaData, String, Table, insert
from structlog.testing import capture_logs

from turnout.container import Container
from turnout.store.db import make_engine
from turnout.store.sqlite.checkpoint import WalCheckpointer
from turnout.store.sqlite.one_hop import OneHop

ROWS = Table("rows", MetaData(), Column("id", Integer, primary_key=True), Column("v", String))


async def wal_sizes(tmp_path: Path, checkpointer: bool) -> tuple[int, int]:
    """The WAL file's size after one burst of writes, and after a second burst of the same size."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/wal.db")
    async with engine.begin() as connection:
        await connection.run_sync(ROWS.metadata.create_all)
    hop, checkpoints = OneHop(engine), WalCheckpointer(engine, interval_s=0.02)
    if checkpointer:
        await checkpoints.start()
    sizes = []
    try:
        for _ in range(2):
            for _ in range(20):  # 20 commits of ~40 pages each
                await hop.transaction(lambda c: c.execute(insert(ROWS), [{"v": "x" * 400}] * 400))
            while checkpointer and not checkpoints.caught_up():  # one full checkpoint after the burst
                await asyncio.sleep(0.01)
            sizes.append((tmp_path / "wal.db-wal").stat().st_size)
    finally:
        await checkpoints.stop()
        await hop.dispose()
        await engine.dispose()
    return sizes[0], sizes[1]


async def test_background_checkpoints_keep_the_wal_bounded(tmp_path: Path) -> None:
    (tmp_path / "on").mkdir()
    (tmp_path / "off").mkdir()
    first, second = await wal_sizes(tmp_path / "on", checkpointer=True)
    assert second <= first * 1.2  # the second burst reused the checkpointed WAL
    # without them, no commit checkpoints either (until the 10,000-page cap): the WAL only grows
    first_off, second_off = await wal_sizes(tmp_path / "off", checkpointer=False)
    assert second_off >= first_off * 1.8


async def test_the_container_checkpoints_sqlite_files_only(container: Container) -> None:
    assert container.checkpoints is not None
    assert container.checkpoints.active == (container.engine.dialect.name == "sqlite")
    result = await container.checkpoints.checkpoint()
    if container.engine.dialect.name == "sqlite":
        assert result is not None and result.busy == 0 and result.checkpointed == result.log_frames
    else:
        assert result is None


async def test_a_failing_checkpoint_is_logged_once_not_every_interval(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/a-file/turnout.db")  # cannot be opened
    checkpoints = WalCheckpointer(engine, interval_s=0.005)
    with capture_logs() as logs:
        await checkpoints.start()
        await asyncio.sleep(0.3)  # dozens of failed attempts
        assert checkpoints.active
        await checkpoints.stop()
    await engine.dispose()
    failures = [entry for entry in logs if entry["event"] == "wal_checkpoint_failed"]
    assert len(failures) == 2  # the loop's first failure, then the final one at stop
    assert failures[0]["error_type"] == "OperationalError"


async def test_an_idle_database_is_not_checkpointed_every_interval(tmp_path: Path) -> None:
    """A checkpoint runs when the WAL has changed since the last complete one: an idle gateway used
    to hop to a thread and run ``PRAGMA wal_checkpoint`` ten times a second, forever."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/idle.db")
    async with engine.begin() as connection:
        await connection.run_sync(ROWS.metadata.create_all)
    hop, checkpoints = OneHop(engine), WalCheckpointer(engine, interval_s=0.01)
    await checkpoints.start()
    try:
        await hop.transaction(lambda c: c.execute(insert(ROWS), [{"v": "x"}]))
        await asyncio.sleep(0.1)
        assert checkpoints.caught_up()
        settled = checkpoints.runs
        await asyncio.sleep(0.3)  # 30 intervals, nothing written
        assert checkpoints.runs == settled, f"{checkpoints.runs - settled} checkpoints of an unchanged WAL"
        await hop.transaction(lambda c: c.execute(insert(ROWS), [{"v": "y"}]))
        assert not checkpoints.caught_up()
        await asyncio.sleep(0.1)
        assert checkpoints.runs > settled and checkpoints.caught_up(), "a write is checkpointed again"
    finally:
        await checkpoints.stop()
        await hop.dispose()
        await engine.dispose()
