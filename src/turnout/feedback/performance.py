"""Per-model, per-task performance from the message records (an admin report, not the hot path)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import and_, case, func, not_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from turnout.auth.principal import Principal
from turnout.errors import InvalidRequest, NotFound
from turnout.feedback.resets import Reset, store_reset, stored_resets
from turnout.feedback.sync import FeedbackSync
from turnout.store.messages import Message
from turnout.store.models import Model, utcnow

RANGE = re.compile(r"^(\d{1,4})([hdw])$")
MAX_LATENCY_ROWS = 200_000


class ResetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_id: str = Field(min_length=1, max_length=512)
    task_types: list[str] = Field(default_factory=list, max_length=100)
    agent_id: str | None = Field(default=None, max_length=64)
    tenant_id: str | None = Field(
        default=None, max_length=64, description="the agent's tenant (ids are per tenant)"
    )


def parse_range(value: str | None) -> timedelta | None:
    """``24h``, ``7d``, ``4w``; None means all time."""
    if value is None:
        return None
    match = RANGE.match(value)
    if match is None:
        raise InvalidRequest("time_range must look like 24h, 7d or 4w", param="time_range")
    amount, unit = int(match.group(1)), match.group(2)
    return {"h": timedelta(hours=amount), "d": timedelta(days=amount), "w": timedelta(weeks=amount)}[unit]


class PerformanceService:
    """Builds the performance report and resets learned experience."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], sync: FeedbackSync) -> None:
        self._sessions = sessions
        self._sync = sync  # applies a reset here at once (and every replica's sync, from the store)

    async def report(
        self,
        principal: Principal,
        *,
        task_type: str | None,
        agent_id: str | None,
        model_id: str | None,
        time_range: str | None,
    ) -> dict[str, Any]:
        span = parse_range(time_range)
        task = func.coalesce(Message.task_type, "general")
        clauses: list[Any] = [Message.model.is_not(None), Message.role == "assistant"]
        if "platform_admin" not in principal.roles:
            clauses.append(Message.tenant_id == principal.tenant_id)
        if span is not None:
            clauses.append(Message.created_at >= utcnow() - span)
        if task_type is not None:
            clauses.append(task == task_type)
        if agent_id is not None:
            clauses.append(Message.agent_id == agent_id)
        if model_id is not None:
            clauses.append(Message.model == model_id)
        async with self._sessions() as session:
            clauses += await self._reset_clauses(session, task)
            ok = func.sum(case((Message.status == "ok", 1), else_=0))
            rows = await session.execute(
                select(
                    Message.model,
                    task.label("task"),
                    func.count().label("n"),
                    func.avg(Message.rating).label("rating"),
                    func.count(Message.rating).label("rated"),
                    ok.label("ok"),
                    func.avg(Message.latency_ms).label("latency"),
                    func.avg(Message.cost_usd).label("cost"),
                )
                .where(*clauses)
                .group_by(Message.model, task)
            )
            groups = {(r.model, r.task): r for r in rows}
            latencies = await self._latencies(session, clauses, task)
            day = func.date(Message.created_at)
            trend_rows = await session.execute(
                select(
                    Message.model,
                    task.label("task"),
                    day.label("day"),
                    func.count().label("n"),
                    func.avg(Message.rating).label("rating"),
                    ok.label("ok"),
                )
                .where(*clauses)
                .group_by(Message.model, task, day)
                .order_by(day)
            )
            trends: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for r in trend_rows:
                trends.setdefault((r.model, r.task), []).append(
                    {
                        "day": str(r.day),
                        "usage_count": r.n,
                        "avg_rating": _f(r.rating),
                        "success_rate": _ratio(r.ok, r.n),
                    }
                )
        performance = []
        for (model, task_name), r in sorted(groups.items(), key=lambda kv: (-(kv[1].rating or -1), kv[0])):
            values = sorted(latencies.get((model, task_name), []))
            performance.append(
                {
                    "model": model,
                    "task_type": task_name,
                    "avg_rating": _f(r.rating),
                    "rated_count": r.rated,
                    "usage_count": r.n,
                    "success_rate": _ratio(r.ok, r.n),
                    "error_rate": _ratio(r.n - (r.ok or 0), r.n),
                    "avg_latency_ms": _f(r.latency),
                    "p95_latency_ms": _p95(values),
                    "avg_cost_usd": _f(r.cost),
                    "trend": trends.get((model, task_name), []),
                }
            )
        return {
            "task_type": task_type,
            "agent_id": agent_id,
            "model_id": model_id,
            "time_range": time_range,
            "performance": performance,
        }

    async def reset(self, body: ResetIn, principal: Principal) -> dict[str, Any]:
        """Forget what was learned about a model (for some task types, or all): aggregates restart
        from the prior and the report counts only what happens after the reset."""
        if body.agent_id is not None and body.tenant_id is None:
            raise InvalidRequest(
                "tenant_id is required with agent_id: agent ids are per tenant", param="tenant_id"
            )
        async with self._sessions() as session:  # a typo'd id must not "reset" nothing and say so
            known = (
                await session.get(Model, body.model_id) is not None
                or (await session.scalar(select(Message.id).where(Message.model == body.model_id).limit(1)))
                is not None
            )
        if not known:
            raise NotFound(f"no model '{body.model_id}' in the catalog or the records", param="model_id")
        reset = Reset(body.model_id, tuple(body.task_types), body.tenant_id, body.agent_id, utcnow())
        async with self._sessions.begin() as session:
            await store_reset(session, reset, principal.subject)
        self._sync.apply_reset(reset)
        return {"status": "reset", **reset.as_json(principal.subject)}

    async def _reset_clauses(self, session: AsyncSession, task: Any) -> list[Any]:
        """Leave out the records each reset forgot: its model's, before it, for its tasks, and for
        its tenant's agent when it named one (a reset of one agent hides no one else's records)."""
        clauses = []
        for reset in (await stored_resets(session))[1]:
            before = [Message.model == reset.model_id, Message.created_at < reset.at]
            if reset.task_types:
                before.append(task.in_(reset.task_types))
            if reset.agent_id is not None:
                before.append(Message.agent_id == reset.agent_id)
                if reset.tenant_id is not None:
                    before.append(Message.tenant_id == reset.tenant_id)
            clauses.append(not_(and_(*before)))
        return clauses

    async def _latencies(
        self, session: AsyncSession, clauses: list[Any], task: Any
    ) -> dict[tuple[str, str], list[int]]:
        rows = await session.execute(
            select(Message.model, task.label("task"), Message.latency_ms)
            .where(*clauses, Message.latency_ms.is_not(None))
            .order_by(Message.created_at.desc())
            .limit(MAX_LATENCY_ROWS)
        )
        out: dict[tuple[str, str], list[int]] = {}
        for r in rows:
            out.setdefault((r.model, r.task), []).append(r.latency_ms)
        return out


def _f(value: Any) -> float | None:
    return None if value is None else round(float(value), 6)


def _ratio(part: Any, whole: Any) -> float | None:
    return None if not whole else round(float(part or 0) / float(whole), 6)


def _p95(values: list[int]) -> float | None:
    if not values:
        return None
    return float(values[min(len(values) - 1, round(0.95 * (len(values) - 1)))])
