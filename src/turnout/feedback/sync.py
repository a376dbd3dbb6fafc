"""Keeps this replica's experience aggregates in step with ratings given anywhere.

At start-up every stored rating is replayed into the aggregates; afterwards the ``feedback``
table is polled by ``updated_at`` (an index range scan, never a GROUP BY) and ratings given
through other replicas are applied within ``interval_s``. Imported evaluations
(``turnout eval import``, the ``routing_priors`` table) are the prior level, kept in step the same
way (one count-and-latest query a poll; re-read only when an import changed them).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from turnout.routing.experience import ExperienceStore
from turnout.routing.priors import PriorLoader
from turnout.routing.prompt_memory import PromptMemory, remember_rating
from turnout.store.routing import Feedback
from turnout.tasks import cancel_and_wait

log = structlog.get_logger(__name__)
BATCH = 5000
OVERLAP = timedelta(seconds=1)  # re-read a little behind the cursor: commits land out of order


class FeedbackSync:
    """Applies ratings to the aggregates exactly once per (message, rating time)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        experience: ExperienceStore,
        *,
        interval_s: float = 2.0,
        priors: PriorLoader | None = None,
        memory: PromptMemory | None = None,
    ) -> None:
        self._sessions = sessions
        self._experience = experience
        self._memory = memory  # the router's prompt memory, when on: rated prompts join it
        self._priors = priors or PriorLoader(experience)
        self._interval_s = interval_s
        self.replica_id = uuid.uuid4().hex  # ratings this replica took are applied locally, not re-read
        self._applied: dict[str, tuple[float, float]] = {}  # message -> (rating, at) in the aggregates
        self._cursor: datetime | None = None
        self._task: asyncio.Task[None] | None = None

    def applied(self, message_id: str, rating: float, at: float) -> tuple[float, float] | None:
        """Note a rating applied by this replica; returns the one it replaces, if any."""
        previous = self._applied.get(message_id)
        self._applied[message_id] = (rating, at)
        return previous

    async def start(self) -> None:
        await self.poll()
        if self._cursor is None:  # nothing rated yet: later polls start from now (minus the overlap)
            self._cursor = datetime.now(UTC)
        self._task = asyncio.create_task(self._loop(), name="feedback-sync")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def poll(self) -> int:
        """Apply every rating stored since the cursor that this replica has not applied yet (and
        the imported priors, when an import changed them)."""
        await self._priors.refresh(self._sessions)
        applied = 0
        after: tuple[datetime, str] | None = (
            (self._cursor - OVERLAP, "") if self._cursor is not None else None
        )
        while True:
            query = (
                select(
                    Feedback.message_id,
                    Feedback.tenant_id,
                    Feedback.agent_id,
                    Feedback.task_type,
                    Feedback.model,
                    Feedback.rating,
                    Feedback.updated_at,
                    Feedback.prompt_vector,
                )
                .order_by(Feedback.updated_at, Feedback.message_id)
                .limit(BATCH)
            )
            if self._cursor is not None:  # after start-up, skip what this replica applied itself
                query = query.where(Feedback.origin != self.replica_id)
            if after is not None:
                query = query.where(
                    or_(
                        Feedback.updated_at > after[0],
                        and_(Feedback.updated_at == after[0], Feedback.message_id > after[1]),
                    )
                )
            async with self._sessions() as session:
                rows = (await session.execute(query)).all()
            for row in rows:
                applied += self._apply(row)
            if rows:
                after = (rows[-1].updated_at, rows[-1].message_id)
                self._cursor = max(self._cursor or after[0], after[0])
            if len(rows) < BATCH:
                return applied

    def _apply(self, row: Any) -> int:
        at = row.updated_at.timestamp()
        previous = self._applied.get(row.message_id)
        if previous == (row.rating, at):
            return 0
        if self._memory is not None and row.prompt_vector and previous is None:  # its first rating
            rated = (row.tenant_id, row.agent_id, row.task_type, row.model)
            remember_rating(self._memory, self._experience, rated, row.prompt_vector, row.rating, at)
        self._experience.record(
            row.tenant_id,
            row.agent_id,
            row.task_type,
            row.model,
            row.rating,
            at,
            previous_rating=previous[0] if previous else None,
            previous_at=previous[1] if previous else None,
        )
        self._applied[row.message_id] = (row.rating, at)
        return 1

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.poll()
            except Exception as exc:  # keep the aggregates we have while the database is away
                log.warning("feedback_sync_failed", error_type=type(exc).__name__)
