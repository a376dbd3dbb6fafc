"""Feedback: store the rating (replacing any earlier one) and update experience at once.

Aggregates live in memory (``ExperienceStore``); the router never queries messages per request.
Other replicas pick ratings up by polling the ``feedback`` table by ``updated_at`` (see ``sync``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import datetime
from typing import Any, Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from turnout.auth.principal import Principal
from turnout.errors import NotFound
from turnout.feedback.batch import FeedbackBatcher, may_rate, mirror_ratings
from turnout.feedback.recent import RatedTarget, RecentMessages
from turnout.feedback.sync import FeedbackSync
from turnout.jsontypes import JsonObject
from turnout.routing.experience import ExperienceStore
from turnout.routing.prompt_memory import PromptMemory, remember_rating
from turnout.store.models import utcnow
from turnout.store.sqlite.gate import engine_of, write_gate
from turnout.store.sqlite.one_hop import OneHop
from turnout.tasks import cancel_and_wait

IMPLICIT_EVENTS = {"regenerate": 0.0, "copy": 1.0, "continue": 0.5}
MIRROR_INTERVAL_S = 0.25
MIRROR_RETRY_S = 30.0
log = structlog.get_logger(__name__)


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rating: float = Field(ge=0.0, le=1.0, strict=True)  # true is no rating of 1.0
    feedback_type: Literal["explicit", "implicit", "self_eval"] = "explicit"
    comment: str | None = Field(default=None, max_length=2000)
    corrections: JsonObject = Field(default_factory=dict)


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event: Literal["regenerate", "copy", "continue"]


class FeedbackOut(BaseModel):
    message_id: str
    rating: float
    feedback_type: str
    model: str
    task_type: str
    replaced: float | None = None
    applied: bool = Field(
        default=True, description="false when an implicit signal met an explicit rating, which stands"
    )
    recorded_at: datetime


class FeedbackService:
    """Records ratings for messages of the caller's tenant."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        experience: ExperienceStore,
        recent: RecentMessages,
        sync: FeedbackSync,
        memory: PromptMemory | None = None,
    ) -> None:
        self._sessions = sessions
        self._memory = memory  # the router's prompt memory, when on: rated prompts join it
        engine = engine_of(sessions)
        assert engine is not None, "feedback needs a session factory bound to an engine"
        self._hop = OneHop(engine)
        self._experience = experience
        self._recent = recent
        self._sync = sync
        self._batcher = FeedbackBatcher(sessions, self._hop)
        self._to_mirror: dict[str, float] = {}  # message id -> first time it waited for its copy
        self._task: asyncio.Task[None] | None = None

    async def rate(self, message_id: str, body: FeedbackIn, principal: Principal) -> FeedbackOut:
        """Store (or replace) the rating and update the aggregates incrementally.

        The rating, and its copy onto the Message row, go into the next group commit."""
        now = utcnow()
        row: dict[str, Any] = {
            "message_id": message_id,
            "rating": body.rating,
            "feedback_type": body.feedback_type,
            "comment": body.comment,
            "corrections": body.corrections,
            "given_by": principal.subject,
            "origin": self._sync.replica_id,
            "updated_at": now,
        }
        known = self._recent.get(message_id)  # answered here recently; else the commit looks it up
        if known is not None:
            self._check_tenant(known, message_id, principal)  # refused at once, without a commit
        outcome = await self._batcher.put(row, principal, known)
        target = self._check_tenant(outcome.target, message_id, principal)
        if outcome.kept_explicit is not None:  # an implicit signal after an explicit rating: ignored
            return FeedbackOut(
                message_id=message_id,
                rating=outcome.kept_explicit,
                feedback_type="explicit",
                model=target.model,
                task_type=target.task_type,
                applied=False,
                recorded_at=now,
            )
        scope = (target.tenant_id, target.agent_id, target.task_type, target.model)
        replaced = self._sync.applied(message_id, body.rating, now.timestamp(), scope)
        if self._memory is not None and known is not None and known.prompt_vector and not replaced:
            rated = (known.tenant_id, known.agent_id, known.task_type, known.model)
            remember_rating(
                self._memory, self._experience, rated, known.prompt_vector, body.rating, now.timestamp()
            )
        self._experience.record(
            target.tenant_id,
            target.agent_id,
            target.task_type,
            target.model,
            body.rating,
            now.timestamp(),
            previous_rating=replaced[0] if replaced else None,
            previous_at=replaced[1] if replaced else None,
        )
        if not outcome.mirrored:  # answered but not stored yet: the mirror loop copies it once it is
            self._to_mirror.setdefault(message_id, time.monotonic())
        return FeedbackOut(
            message_id=message_id,
            rating=body.rating,
            feedback_type=body.feedback_type,
            model=target.model,
            task_type=target.task_type,
            replaced=replaced[0] if replaced else None,
            recorded_at=now,
        )

    async def start(self) -> None:
        self._task = asyncio.create_task(self._mirror_loop(), name="feedback-mirror")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        await self._batcher.stop()
        with contextlib.suppress(Exception):
            await self.mirror_pending()
        await self._hop.dispose()

    async def mirror_pending(self) -> None:
        """Copy the ratings whose Message row was not stored at commit time onto their rows.

        A message the records writer has not stored yet is retried for ``MIRROR_RETRY_S``."""
        if not self._to_mirror:
            return
        ids = list(self._to_mirror)
        async with write_gate(self._sessions):
            stored = await self._hop.transaction(lambda connection: mirror_ratings(connection, ids))
        cutoff = time.monotonic() - MIRROR_RETRY_S
        for message_id in ids:
            if message_id in stored or self._to_mirror.get(message_id, 0.0) < cutoff:
                self._to_mirror.pop(message_id, None)

    async def _mirror_loop(self) -> None:
        while True:
            await asyncio.sleep(MIRROR_INTERVAL_S)
            try:
                await self.mirror_pending()
            except Exception as exc:  # the feedback table holds the truth; the copy catches up later
                log.warning("feedback_mirror_failed", error_type=type(exc).__name__)

    async def event(self, message_id: str, body: EventIn, principal: Principal) -> FeedbackOut:
        """An implicit signal: regenerate = 0.0, copy = 1.0, continue = 0.5."""
        rating = IMPLICIT_EVENTS[body.event]
        return await self.rate(message_id, FeedbackIn(rating=rating, feedback_type="implicit"), principal)

    @staticmethod
    def _check_tenant(target: RatedTarget | None, message_id: str, principal: Principal) -> RatedTarget:
        """Only the message's tenant (and, for agent keys, its agent) may rate it; others see 404."""
        if target is None or not may_rate(target, principal):
            raise NotFound(f"message '{message_id}' not found", param="message_id")
        return target
