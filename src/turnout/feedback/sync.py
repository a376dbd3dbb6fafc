"""Keeps this replica's experience aggregates in step with ratings given anywhere.

At start-up every stored rating is replayed into the aggregates, but those a stored performance
reset forgot; afterwards the ``feedback`` table is polled by ``updated_at`` (an index range scan,
never a GROUP BY) and ratings given through other replicas are applied within ``interval_s``, as
are their resets (``feedback.resets``): a reset forgets what it covered and keeps what was rated
after it, here as on the replica that made it. Imported evaluations
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

from turnout.feedback.resets import Reset, Scope, stored_resets
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
        self._scopes: dict[str, Scope] = {}  # message -> what its applied rating rated
        self._resets: list[Reset] = []  # the resets applied here (or before the replay began)
        self._resets_seen: datetime | None = None  # when the stored resets last changed, as read
        self._cursor: datetime | None = None
        self._task: asyncio.Task[None] | None = None

    def applied(self, message_id: str, rating: float, at: float, scope: Scope) -> tuple[float, float] | None:
        """Note a rating applied by this replica; returns the one it replaces, if any."""
        previous = self._applied.get(message_id)
        self._applied[message_id] = (rating, at)
        self._scopes[message_id] = scope
        return previous

    def apply_reset(self, reset: Reset) -> None:
        """Forget the ratings ``reset`` covers, here: the aggregates of its scope restart from the
        prior, then the ratings given after it (the reset zeroed them too) are counted again."""
        if reset in self._resets:
            return
        self._resets.append(reset)
        for task in reset.task_types or (None,):
            self._experience.reset(
                model_id=reset.model_id, task=task, agent_id=reset.agent_id, tenant_id=reset.tenant_id
            )
        after = reset.at.timestamp()
        for message_id, scope in list(self._scopes.items()):
            rating, at = self._applied[message_id]
            if not reset.reaches(scope):
                continue
            if at < after:  # forgotten: a later rating of it is a first rating
                del self._applied[message_id], self._scopes[message_id]
            else:
                self._experience.record(*scope, rating, at)

    def _forgotten(self, scope: Scope, at: float) -> bool:
        return any(reset.covers(scope, at) for reset in self._resets)

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
        await self._read_resets()
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

    async def _read_resets(self) -> None:
        """Apply the resets made on other replicas since the last read. At start-up (nothing
        replayed yet) they are only noted: the replay leaves out what they forgot."""
        async with self._sessions() as session:
            changed, resets = await stored_resets(session)
        if changed is None or changed == self._resets_seen:
            return
        self._resets_seen = changed
        for reset in resets:
            if self._cursor is None:
                if reset not in self._resets:
                    self._resets.append(reset)
            else:
                self.apply_reset(reset)

    def _apply(self, row: Any) -> int:
        at = row.updated_at.timestamp()
        previous = self._applied.get(row.message_id)
        if previous == (row.rating, at):
            return 0
        scope: Scope = (row.tenant_id, row.agent_id, row.task_type, row.model)
        if self._forgotten(scope, at):  # a reset forgot it (replayed at start-up, or arriving late)
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
        self._scopes[row.message_id] = scope
        return 1

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.poll()
            except Exception as exc:  # keep the aggregates we have while the database is away
                log.warning("feedback_sync_failed", error_type=type(exc).__name__)
