"""Inserting Message rows: idempotent, in slices short enough not to hold up requests."""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import Callable
from itertools import chain
from typing import Any, cast

from sqlalchemy import Connection, Dialect, Table, bindparam
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.dml import Insert

from turnout.records.journal import COLUMN_PLANS, to_row
from turnout.store.dml import conflict_insert
from turnout.store.messages import Message
from turnout.store.sqlite.gate import engine_of, write_gate
from turnout.store.sqlite.one_hop import OneHop
from turnout.store.sqlite.polite import PoliteWorker

# Rows per transaction: each commit rewrites the b-trees' right edges into the WAL, so 50-row
# slices cost ~35 us of CPU per row and 100-row ones ~23 (200: ~21); a slice of 100 still holds
# the write lock for only ~2 ms, so a rating's commit waits little.
INSERT_SLICE = 100
# Multi-row VALUES sizes a slice is cut into, largest first. The driver binds a statement's
# parameters holding the GIL: 20 rows take ~65 us to bind and step; 100 rows ~860 us (a long
# hold for the loop, and slower per row).
ROWS_PER_STATEMENT = (20, 5, 1)


@functools.cache
def _statement(dialect: str) -> Insert:
    """``INSERT ... ON CONFLICT (id) DO NOTHING``: a replayed record is stored once."""
    return _idempotent(conflict_insert(cast(Table, Message.__table__), dialect))


def _idempotent(stmt: Insert) -> Insert:
    if isinstance(stmt, PgInsert | SqliteInsert):
        return stmt.on_conflict_do_nothing(index_elements=["id"])
    return stmt


def _multi_row_sql(dialect: Dialect, keys: list[str], rows: int) -> str:
    """SQLAlchemy's compilation of the upsert with ``rows`` VALUES tuples, each parameter bound;
    checked to take its parameters row after row, each row in ``keys`` order."""
    names = [[f"r{row}_{key}" for key in keys] for row in range(rows)]
    values: list[dict[str, Any]] = [
        {key: bindparam(name) for key, name in zip(keys, row, strict=True)} for row in names
    ]
    stmt = _idempotent(conflict_insert(cast(Table, Message.__table__), "sqlite").values(values))
    compiled = stmt.compile(dialect=dialect)
    if list(compiled.positiontup or ()) != [name for row in names for name in row]:
        raise RuntimeError("unexpected parameter order in the multi-row insert")
    return compiled.string


class SqliteBoundInsert:
    """The SQLite upsert compiled once by SQLAlchemy, with its parameters' order and SQLAlchemy's
    own bind processor per column (datetimes to text, JSON through the engine's serializer).

    A submitted record becomes the driver's parameter tuple in one pass: ``to_row``'s defaults and
    types, then the bind processor, each only on the few columns that have one; the driver binds
    the tuples in C. SQLAlchemy's generic executemany spends ~15 us of Python per row on the same
    work. The statements are SQLAlchemy's compilations of the mapped table's
    insert: every value is a bound parameter, nothing is built from strings.

    A slice is inserted by multi-row statements (``VALUES (...), (...), ...`` of
    ``ROWS_PER_STATEMENT`` rows, as this SQLite build's parameter limit allows), not by
    ``executemany``: the driver lets go of the GIL around every statement it steps, and taking it
    back from the busy event loop costs futex calls and thread switches each time (``strace -c``
    under load: 4.4 futex calls per stored row with ``executemany``, 2.3 with 50-row statements)."""

    def __init__(self, dialect: Dialect) -> None:
        compiled = _statement("sqlite").compile(dialect=dialect)
        by_column = {plan.column: plan for plan in COLUMN_PLANS.values()}
        plans = [by_column[name] for name in compiled.positiontup or ()]
        self._keys = [plan.key for plan in plans]
        columns = [plan.column for plan in plans]
        with contextlib.closing(sqlite3.connect(":memory:")) as probe:  # this SQLite build's limit
            most = probe.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // len(columns)
        sizes = [size for size in ROWS_PER_STATEMENT if size <= most] or [1]
        self._multi = [(size, _multi_row_sql(dialect, columns, size)) for size in sizes]
        self._defaults = [  # only columns whose default is not NULL need a presence check
            (index, plan.key, plan.default) for index, plan in enumerate(plans) if plan.default() is not None
        ]
        self._converters: list[tuple[int, Callable[[Any], Any]]] = []
        for index, plan in enumerate(plans):
            process = compiled.binds[plan.column].type.dialect_impl(dialect).bind_processor(dialect)
            if plan.typed is not None or process is not None:
                self._converters.append((index, _converter(plan.typed, process)))

    def row_tuple(self, record: dict[str, Any]) -> tuple[Any, ...]:
        """A submitted or journaled record (Message attribute names) as the driver's parameters."""
        get = record.get
        values = [get(key) for key in self._keys]
        for index, key, default in self._defaults:
            if key not in record:
                values[index] = default()
        for index, convert in self._converters:
            values[index] = convert(values[index])
        return tuple(values)

    def execute(self, tuples: list[tuple[Any, ...]], connection: Connection) -> None:
        """Insert the rows in ``connection``'s transaction (a blocking SQLite connection, in a worker
        thread), as few statements as the multi-row sizes allow, through the driver's cursor: this
        thread then runs little Python (SQLAlchemy's per-statement work is ~30 us of it) to hold
        the GIL against the event loop."""
        start, count = 0, len(tuples)
        cursor = connection.connection.cursor()
        try:
            for size, sql in self._multi:
                while count - start >= size:
                    cursor.execute(sql, tuple(chain.from_iterable(tuples[start : start + size])))
                    start += size
        finally:
            cursor.close()


def _converter(
    typed: Callable[[Any], Any] | None, process: Callable[[Any], Any] | None
) -> Callable[[Any], Any]:
    """``to_row``'s typing of a non-None value, then SQLAlchemy's bind processor of any value."""
    if typed is None:
        assert process is not None
        return process
    if process is None:
        return lambda value: value if value is None else typed(value)
    return lambda value: process(value if value is None else typed(value))


def _insert(stmt: Insert, rows: list[dict[str, Any]], connection: Connection) -> None:
    connection.execute(stmt, rows)


class RowInserter:
    """Inserts column-keyed Message rows, one short transaction (one ``OneHop`` call) per slice.

    Through aiosqlite a slice took several thread hops (cursor, executemany, commit, close), and
    on a saturated loop a hop waits for the GIL's switch interval (cProfile: 4.9 ms per cursor):
    the writer stored about 750 records/s while the gateway served 1,900 requests/s. On an
    SQLite file a slice is now one hop: the rows become parameter tuples on the event loop, and the
    worker thread runs only the driver's multi-row statements, which let go of the GIL while SQLite
    writes. That thread is a ``PoliteWorker``'s: it yields the core to the event loop unless the
    caller says it is behind (``urgent``). Other databases take SQLAlchemy's Core executemany. The
    SQLite write gate is free for a rating's commit between slices; a retried batch skips the rows
    already stored."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        engine = engine_of(sessions)
        if engine is None:
            raise ValueError("the record writer needs a session factory bound to an engine")
        self._sessions = sessions
        self._hop = OneHop(engine)
        self.worker = PoliteWorker("records")
        twin = self._hop.twin
        self._bound = SqliteBoundInsert(twin.dialect) if twin is not None else None

    def prepare(self, record: dict[str, Any]) -> Any:
        """A submitted or journaled record as this inserter's row (raises on a value of the wrong
        type: the caller keeps that record apart)."""
        return self._bound.row_tuple(record) if self._bound is not None else to_row(record)

    async def insert(self, rows: list[Any], *, urgent: bool = False) -> None:
        """Store prepared ``rows`` (``ON CONFLICT (id) DO NOTHING``), committing every
        ``INSERT_SLICE``; ``urgent`` when the caller is behind (the slices then run at normal priority)."""
        for start in range(0, len(rows), INSERT_SLICE):
            chunk = rows[start : start + INSERT_SLICE]
            if self._bound is not None:
                work = functools.partial(self._bound.execute, chunk)
            else:
                work = functools.partial(_insert, _statement(self._hop.dialect), chunk)
            async with write_gate(self._sessions):
                await self._hop.transaction(work, via=self.worker, urgent=urgent)

    async def close(self) -> None:
        """End the worker threads and close the blocking engine's connections."""
        await self.worker.close()
        await self._hop.dispose()
