"""Inserting Message rows: idempotent, in slices short enough not to hold up requests."""

from __future__ import annotations

import functools
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.dml import Insert

from turnout.store.dml import conflict_insert
from turnout.store.gate import write_gate
from turnout.store.messages import Message

INSERT_SLICE = 50  # rows per INSERT, each in its own short transaction (about 1 ms of binding)


@functools.cache
def _statement(dialect: str) -> Insert:
    """``INSERT ... ON CONFLICT (id) DO NOTHING``: a replayed record is stored once."""
    stmt = conflict_insert(cast(Table, Message.__table__), dialect)
    if isinstance(stmt, PgInsert | SqliteInsert):
        return stmt.on_conflict_do_nothing(index_elements=["id"])
    return stmt


async def insert_rows(sessions: async_sessionmaker[AsyncSession], rows: list[dict[str, Any]]) -> None:
    """Core executemany of column-keyed rows (no ORM bookkeeping), one transaction per slice.

    Binding a slice's parameters runs on the event loop, and the SQLite write gate is free for a
    rating's commit between slices; a retried batch skips the rows already stored."""
    for start in range(0, len(rows), INSERT_SLICE):
        async with write_gate(sessions), sessions() as session, session.begin():
            connection = await session.connection()
            await connection.execute(_statement(connection.dialect.name), rows[start : start + INSERT_SLICE])
