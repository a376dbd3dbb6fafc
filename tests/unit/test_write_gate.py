"""The SQLite write gate: writers of one process queue in asyncio, one at a time."""

from __future__ import annotations

import asyncio
from pathlib import Path

from turnout.store.db import make_engine, make_sessionmaker
from turnout.store.sqlite.gate import write_gate


async def _overlap(url: str) -> int:
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    inside = most = 0

    async def writer() -> None:
        nonlocal inside, most
        async with write_gate(sessions):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(writer() for _ in range(5)))
    await engine.dispose()
    return most


async def test_sqlite_writers_take_turns(tmp_path: Path) -> None:
    assert await _overlap(f"sqlite+aiosqlite:///{tmp_path}/gate.db") == 1


async def test_other_databases_have_no_gate() -> None:
    # PostgreSQL locks rows itself; the gate never serialises its writers (no connection is made here)
    assert await _overlap("postgresql+asyncpg://nobody@127.0.0.1:1/none") == 5
