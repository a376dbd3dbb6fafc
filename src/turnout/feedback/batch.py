"""Ratings are written in small group commits: each caller waits for the commit that holds its
rating (so an answered request is durable), but one transaction carries many ratings and copies
them onto their Message rows (SRS FR-04.1). Ratings of messages this replica did not answer
recently are resolved in the same transaction (one ``SELECT ... WHERE id IN`` for the batch), so
a batch costs one ``OneHop`` call: one thread hop on SQLite, one pooled connection on PostgreSQL."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Table, and_, insert, not_, select, update
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.dml import Insert

from turnout.auth.principal import Principal
from turnout.coalesce import Coalescer
from turnout.feedback.recent import RatedTarget
from turnout.store.dml import conflict_insert
from turnout.store.events import Event, event_row
from turnout.store.messages import Message
from turnout.store.routing import Feedback
from turnout.store.sqlite.gate import write_gate
from turnout.store.sqlite.one_hop import OneHop

UPDATED = ("rating", "feedback_type", "comment", "corrections", "given_by", "origin", "updated_at")
EXPLICIT, IMPLICIT = "explicit", "implicit"
GENERAL = "general"


@functools.cache
def _upsert(dialect: str) -> Insert:
    """INSERT ... ON CONFLICT (message_id) DO UPDATE, built once per dialect (``excluded`` is costly)."""
    stmt = conflict_insert(cast(Table, Feedback.__table__), dialect)
    assert isinstance(stmt, PgInsert | SqliteInsert), f"feedback upserts need ON CONFLICT ({dialect})"
    updates = {c: stmt.excluded[c] for c in UPDATED}
    newer = Feedback.updated_at <= stmt.excluded.updated_at  # commits may land out of order: latest wins
    # an implicit signal (a copy, a regenerate) never replaces what a person said of the same answer
    kept = and_(Feedback.feedback_type == EXPLICIT, stmt.excluded.feedback_type == IMPLICIT)
    return stmt.on_conflict_do_update(
        index_elements=["message_id"], set_=updates, where=and_(newer, not_(kept))
    )


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


def feedback_event(row: dict[str, Any]) -> dict[str, Any]:
    """The outbox row of a stored rating (``model.feedback.received``), committed with it."""
    rating = float(row["rating"])
    payload = {
        "feedback_id": f"fb_{row['message_id']}_{int(row['updated_at'].timestamp() * 1000)}",
        "request_id": row["message_id"],
        "model_id": row.get("model"),
        "task_type": row.get("task_type"),
        "agent_id": row.get("agent_id"),
        "given_by": row.get("given_by"),
        "timestamp": row["updated_at"].isoformat().replace("+00:00", "Z"),
        "feedback": {
            "quality_rating": rating,
            "feedback_type": row["feedback_type"],
            "success": rating >= 0.5,
            "has_corrections": bool(row.get("corrections")),
        },
    }
    return event_row("model.feedback.received", row.get("tenant_id"), payload)


def may_rate(target: RatedTarget, principal: Principal) -> bool:
    """Only the message's tenant (and, for agent keys, its agent) may rate it."""
    if target.tenant_id != principal.tenant_id:
        return False
    return principal.agent_id is None or target.agent_id in (None, principal.agent_id)


def _target_columns(target: RatedTarget) -> dict[str, Any]:
    """The Feedback columns that say what a rating is about."""
    return {
        "tenant_id": target.tenant_id,
        "agent_id": target.agent_id,
        "model": target.model,
        "task_type": target.task_type,
        "message_created_at": target.created_at,
        "prompt_vector": target.prompt_vector,
    }


def fetch_targets(connection: Connection, message_ids: set[str]) -> dict[str, RatedTarget]:
    """The stored, answered messages among ``message_ids``."""
    columns = (Message.tenant_id, Message.agent_id, Message.model, Message.task_type, Message.created_at)
    rows = connection.execute(select(Message.id, *columns).where(Message.id.in_(message_ids))).all()
    return {
        row.id: RatedTarget(
            row.id, row.tenant_id, row.agent_id, row.model, row.task_type or GENERAL, row.created_at
        )
        for row in rows
        if row.model is not None
    }


@dataclass(slots=True)
class Pending:
    """One rating waiting for its commit; a ``target`` not yet known is looked up by the commit."""

    row: dict[str, Any]
    caller: Principal
    target: RatedTarget | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one rating: the rated message (None if refused), whether its Message row
    carries it, and the explicit rating that stands instead when an implicit signal was ignored."""

    target: RatedTarget | None
    mirrored: bool = False
    kept_explicit: float | None = None


def explicit_ratings(connection: Connection, message_ids: Sequence[str]) -> dict[str, float]:
    """The explicit ratings stored for ``message_ids``."""
    query = select(Feedback.message_id, Feedback.rating).where(
        Feedback.message_id.in_(message_ids), Feedback.feedback_type == EXPLICIT
    )
    return {message_id: rating for message_id, rating in connection.execute(query).all()}


class FeedbackBatcher:
    """Group commit of feedback upserts: the ratings that arrive while one commits share the next."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], hop: OneHop) -> None:
        self._hop = hop
        self._group: Coalescer[Pending, Outcome] = Coalescer(
            self._commit,
            name="feedback-batcher",
            guard=lambda: write_gate(sessions),  # ratings that come while it waits join this commit
        )

    async def put(self, row: dict[str, Any], caller: Principal, target: RatedTarget | None) -> Outcome:
        """Queue one feedback row (Feedback attribute names, without the target's) and wait until it
        is committed. An unknown ``target`` is read from the stored message. The outcome's target is
        None when there is no such answered message or ``caller`` may not rate it (then nothing is
        stored); the flag says whether the Message row carries the rating too."""
        return await self._group.submit(Pending(row, caller, target))

    async def stop(self) -> None:
        await self._group.stop()

    async def _commit(self, batch: list[Pending]) -> Sequence[Outcome]:
        upsert = _upsert(self._hop.dialect)

        def write(connection: Connection) -> list[Outcome]:
            unresolved = {p.row["message_id"] for p in batch if p.target is None}
            stored = fetch_targets(connection, unresolved) if unresolved else {}
            implicit = [p.row["message_id"] for p in batch if p.row["feedback_type"] == IMPLICIT]
            explicit = explicit_ratings(connection, implicit) if implicit else {}
            targets: list[RatedTarget | None] = []
            kept: list[float | None] = []
            latest: dict[str, dict[str, Any]] = {}
            for pending in batch:
                row = pending.row
                message_id = row["message_id"]
                target = pending.target or stored.get(message_id)
                if target is None or not may_rate(target, pending.caller):
                    targets.append(None)
                    kept.append(None)
                    continue
                targets.append(target)
                if row["feedback_type"] == IMPLICIT and message_id in explicit:
                    kept.append(explicit[message_id])  # a person's rating stands
                    continue
                kept.append(None)
                if row["feedback_type"] == EXPLICIT:
                    explicit[message_id] = row["rating"]  # later implicit signals in this batch yield
                latest[message_id] = row | _target_columns(target)  # rated twice: the later wins
            mirrored: set[str] = set()
            if latest:
                connection.execute(upsert, list(latest.values()))
                mirrored = mirror_ratings(connection, list(latest))
                connection.execute(insert(Event), [feedback_event(row) for row in latest.values()])
            return [
                Outcome(t, t is not None and t.message_id in mirrored, k)
                for t, k in zip(targets, kept, strict=True)
            ]

        return await self._hop.transaction(write)
