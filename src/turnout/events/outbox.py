"""The outbox's request events: each call's ``model.request.completed`` or ``model.request.failed``,
copied from its Message row into the outbox (``store.events.Event``) by the delivery loop.

A call's event is not written on the request path: its record is flagged ``event_pending`` when it
is stored (in the same insert, so it is as durable as the record), and the copy clears the flag in
the transaction that adds the event. The event's id is the record's (``evt_<message id>``), so a
copy made twice (two replicas racing on SQLite-less setups) is stored once."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from turnout.store.dml import conflict_insert
from turnout.store.events import Event
from turnout.store.messages import Message
from turnout.store.models import utcnow

COMPLETED = "model.request.completed"
FAILED = "model.request.failed"
CANCELLED = "model.request.cancelled"
FEEDBACK = "model.feedback.received"
BUDGET_THRESHOLD = "budget.threshold_crossed"
BUDGET_EXHAUSTED = "budget.exhausted"
SYNC_COMPLETED = "provider.sync.completed"
SYNC_FAILED = "provider.sync.failed"
EVENT_TYPES = (
    COMPLETED,
    FAILED,
    CANCELLED,
    FEEDBACK,
    BUDGET_THRESHOLD,
    BUDGET_EXHAUSTED,
    SYNC_COMPLETED,
    SYNC_FAILED,
)

_COLUMNS = (
    Message.id,
    Message.tenant_id,
    Message.agent_id,
    Message.user_id,
    Message.model,
    Message.provider,
    Message.status,
    Message.http_status,
    Message.error,
    Message.latency_ms,
    Message.ttft_ms,
    Message.prompt_tokens,
    Message.completion_tokens,
    Message.cost_usd,
    Message.task_type,
    Message.attempts,
    Message.fallback_used,
    Message.rating,
    Message.metadata_,
    Message.created_at,
    Message.endpoint,
    Message.api_key_id,
)


def _iso(when: datetime) -> str:
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).isoformat().replace("+00:00", "Z")


def request_event(row: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """A call record's event type and payload (the orchestration API's fields, and Turnout's)."""
    meta = row["metadata_"] or {}
    base: dict[str, Any] = {
        "request_id": row["id"],
        "model_id": row["model"],
        "provider_id": row["provider"],
        "tenant_id": row["tenant_id"],
        "agent_id": row["agent_id"],
        "api_key_id": row["api_key_id"],
        "user_id": row["user_id"],
        "project_id": meta.get("project_id"),
        "task_id": meta.get("task_id"),
        "client_request_id": meta.get("client_request_id"),
        "task_type": row["task_type"],
        "endpoint": row["endpoint"],
        "timestamp": _iso(row["created_at"]),
    }
    if row["status"] == "ok":
        prompt, completion = row["prompt_tokens"], row["completion_tokens"]
        base["metrics"] = {
            "latency_ms": row["latency_ms"],
            "ttft_ms": row["ttft_ms"],
            "tokens": {
                "prompt": prompt,
                "completion": completion,
                "total": (prompt or 0) + (completion or 0)
                if prompt is not None or completion is not None
                else None,
            },
            "cost": float(row["cost_usd"]) if row["cost_usd"] is not None else None,
            "performance": {"quality_score": row["rating"], "confidence": None},
        }
        base["attempts"] = row["attempts"]
        base["fallback_used"] = bool(row["fallback_used"])
        return COMPLETED, base
    attempts = row["attempts"] or 0
    base["error"] = {
        "code": row["http_status"],
        "message": row["error"],
        "details": {"status": row["status"], "http_status": row["http_status"], "attempts": attempts},
    }
    base["fallback_attempted"] = bool(row["fallback_used"]) or (meta.get("models_tried") or 1) > 1
    base["fallback_succeeded"] = False
    return (CANCELLED if row["status"] == "cancelled" else FAILED), base


class Outbox:
    """Copies flagged call records into the outbox, and keeps the outbox from growing forever."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, retention: timedelta) -> None:
        self._sessions = sessions
        self._retention = retention

    async def copy_requests(self, limit: int = 500) -> int:
        """Move up to ``limit`` flagged records' events into the outbox; how many moved."""
        async with self._sessions() as session, session.begin():
            query = (
                select(*_COLUMNS)
                .where(Message.event_pending.is_(True))
                .order_by(Message.created_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            rows = [dict(r._mapping) for r in (await session.execute(query)).all()]
            if not rows:
                return 0
            events = []
            for row in rows:
                kind, payload = request_event(row)
                events.append(
                    {
                        "id": f"evt_{row['id']}",
                        "type": kind,
                        "tenant_id": row["tenant_id"],
                        "payload": payload,
                        "created_at": row["created_at"],
                        "nats_pending": True,
                        "hooks_pending": True,
                    }
                )
            dialect = session.get_bind().dialect.name
            stmt = conflict_insert(cast(Table, Event.__table__), dialect)
            if hasattr(stmt, "on_conflict_do_nothing"):
                stmt = stmt.on_conflict_do_nothing(index_elements=["id"])
            await session.execute(stmt, events)
            await session.execute(
                update(Message)
                .where(Message.id.in_([r["id"] for r in rows]))
                .values(event_pending=False)
                .execution_options(synchronize_session=False)
            )
        return len(rows)

    async def backlog(self, *, nats: bool) -> tuple[int, int]:
        """Events not yet on NATS (0 without NATS configured), and not yet fanned out to webhooks."""
        async with self._sessions() as session:
            on_nats = (
                await session.scalar(select(func.count()).select_from(Event).where(Event.nats_pending))
                if nats
                else 0
            )
            hooks = await session.scalar(select(func.count()).select_from(Event).where(Event.hooks_pending))
        return int(on_nats or 0), int(hooks or 0)

    async def purge(self, *, nats: bool) -> int:
        """Drop events older than the retention that no sink still waits for (without NATS
        configured, nobody waits for ``nats_pending``)."""
        cutoff = utcnow() - self._retention
        done = [Event.created_at < cutoff, Event.hooks_pending.is_(False)]
        if nats:
            done.append(Event.nats_pending.is_(False))
        async with self._sessions() as session, session.begin():
            result = await session.execute(delete(Event).where(*done))
        return int(getattr(result, "rowcount", 0) or 0)
