"""Ratings are written in small group commits: each caller waits for the commit that holds its
rating (so an answered request is durable), but one transaction carries many ratings."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.dml import Insert

from turnout.store.dml import conflict_insert
from turnout.store.gate import write_gate
from turnout.store.routing import Feedback

UPDATED = ("rating", "feedback_type", "comment", "corrections", "given_by", "origin", "updated_at")


@functools.cache
def _upsert(dialect: str) -> Insert:
    """INSERT ... ON CONFLICT (message_id) DO UPDATE, built once per dialect (``excluded`` is costly)."""
    stmt = conflict_insert(cast(Table, Feedback.__table__), dialect)
    assert isinstance(stmt, PgInsert | SqliteInsert), f"feedback upserts need ON CONFLICT ({dialect})"
    updates = {c: stmt.excluded[c] for c in UPDATED}
    return stmt.on_conflict_do_update(index_elements=["message_id"], set_=updates)


class FeedbackBatcher:
    """Group commit of feedback upserts: wait ``window_s`` for company, then one transaction."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, window_s: float = 0.001, max_rows: int = 500
    ) -> None:
        self._sessions = sessions
        self._window_s = window_s
        self._max_rows = max_rows
        self._pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def put(self, row: dict[str, Any]) -> None:
        """Queue one feedback row (Feedback attribute names) and wait until it is committed."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name="feedback-batcher")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((row, future))
        self._wake.set()
        await future

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._pending:
            await self._flush()

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if len(self._pending) < self._max_rows:
                await asyncio.sleep(self._window_s)
            await self._flush()

    async def _flush(self) -> None:
        async with write_gate(self._sessions):  # ratings that come while it waits join this commit
            batch, self._pending = self._pending[: self._max_rows], self._pending[self._max_rows :]
            if self._pending:
                self._wake.set()
            if not batch:
                return
            latest: dict[str, dict[str, Any]] = {}
            for row, _ in batch:  # the same message rated twice in one batch: the later rating wins
                latest[row["message_id"]] = row
            try:
                async with self._sessions.begin() as session:
                    await session.execute(_upsert(session.get_bind().dialect.name), list(latest.values()))
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                return
        for _, future in batch:
            if not future.done():
                future.set_result(None)
