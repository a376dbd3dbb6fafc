"""Ratings are written in small group commits: each caller waits for the commit that holds its
rating (so an answered request is durable), but one transaction carries many ratings and copies
them onto their Message rows (SRS FR-04.1). The rated messages are read the same way: one
``SELECT ... WHERE id IN`` per batch of ratings. Each batch is one ``OneHop`` transaction."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Connection, Table, select, update
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.dml import Insert

from turnout.coalesce import Coalescer
from turnout.feedback.recent import RatedTarget
from turnout.store.dml import conflict_insert
from turnout.store.gate import write_gate
from turnout.store.messages import Message
from turnout.store.one_hop import OneHop
from turnout.store.routing import Feedback

UPDATED = ("rating", "feedback_type", "comment", "corrections", "given_by", "origin", "updated_at")
GENERAL = "general"


@functools.cache
def _upsert(dialect: str) -> Insert:
    """INSERT ... ON CONFLICT (message_id) DO UPDATE, built once per dialect (``excluded`` is costly)."""
    stmt = conflict_insert(cast(Table, Feedback.__table__), dialect)
    assert isinstance(stmt, PgInsert | SqliteInsert), f"feedback upserts need ON CONFLICT ({dialect})"
    updates = {c: stmt.excluded[c] for c in UPDATED}
    newer = Feedback.updated_at <= stmt.excluded.updated_at  # commits may land out of order: latest wins
    return stmt.on_conflict_do_update(index_elements=["message_id"], set_=updates, where=newer)


def mirror_ratings(connection: Connection, message_ids: Sequence[str]) -> set[str]:
    """Copy the stored ratings of ``message_ids`` onto their Message rows (one UPDATE ... FROM);
    returns the ids whose Message row exists (the others are not written by the records writer yet)."""
    stmt = (
        update(Message)
        .where(Message.id == Feedback.message_id, Feedback.message_id.in_(message_ids))
        .values(rating=Feedback.rating, feedback_type=Feedback.feedback_type, feedback_at=Feedback.updated_at)
        .returning(Message.id)
    )
    return set(connection.execute(stmt).scalars().all())


class FeedbackBatcher:
    """Group commit of feedback upserts: wait ``window_s`` for company, then one transaction.

    ``put`` answers whether the rating also reached its Message row in that transaction."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        hop: OneHop,
        *,
        window_s: float = 0.0,
        max_rows: int = 500,
    ) -> None:
        self._hop = hop
        self._group: Coalescer[dict[str, Any], bool] = Coalescer(
            self._commit,
            window_s=window_s,
            max_items=max_rows,
            name="feedback-batcher",
            guard=lambda: write_gate(sessions),  # ratings that come while it waits join this commit
        )

    async def put(self, row: dict[str, Any]) -> bool:
        """Queue one feedback row (Feedback attribute names) and wait until it is committed;
        True if its Message row carries the rating too (False: the message is not stored yet)."""
        return await self._group.submit(row)

    async def stop(self) -> None:
        await self._group.stop()

    async def _commit(self, rows: list[dict[str, Any]]) -> Sequence[bool]:
        latest: dict[str, dict[str, Any]] = {}
        for row in rows:  # the same message rated twice in one batch: the later rating wins
            latest[row["message_id"]] = row
        upsert = _upsert(self._hop.dialect)

        def write(connection: Connection) -> set[str]:
            connection.execute(upsert, list(latest.values()))
            return mirror_ratings(connection, list(latest))

        mirrored = await self._hop.transaction(write)
        return [row["message_id"] in mirrored for row in rows]


class TargetLookup:
    """The rated messages as stored, read in batches."""

    def __init__(self, hop: OneHop, *, max_ids: int = 500) -> None:
        self._hop = hop
        self._group: Coalescer[str, RatedTarget | None] = Coalescer(
            self._fetch, max_items=max_ids, name="feedback-lookup"
        )

    async def get(self, message_id: str) -> RatedTarget | None:
        """The message's tenant, agent, model and task, or None if it is unknown or unanswered."""
        return await self._group.submit(message_id)

    async def stop(self) -> None:
        await self._group.stop()

    async def _fetch(self, message_ids: list[str]) -> Sequence[RatedTarget | None]:
        columns = (Message.tenant_id, Message.agent_id, Message.model, Message.task_type, Message.created_at)
        query = select(Message.id, *columns).where(Message.id.in_(set(message_ids)))
        rows = await self._hop.read(lambda connection: connection.execute(query).all())
        found = {
            row.id: RatedTarget(
                row.id, row.tenant_id, row.agent_id, row.model, row.task_type or GENERAL, row.created_at
            )
            for row in rows
            if row.model is not None
        }
        return [found.get(message_id) for message_id in message_ids]
