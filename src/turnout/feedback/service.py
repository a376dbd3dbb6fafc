"""Feedback: store the rating (replacing any earlier one) and update experience at once.

Aggregates live in memory (``ExperienceStore``); the router never queries messages per request.
Other replicas pick ratings up by polling the ``feedback`` table by ``updated_at`` (see ``sync``).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from turnout.auth.principal import Principal
from turnout.errors import NotFound
from turnout.feedback.recent import RatedTarget, RecentMessages
from turnout.feedback.sync import FeedbackSync
from turnout.jsontypes import JsonObject
from turnout.routing.experience import ExperienceStore
from turnout.store.messages import Message
from turnout.store.models import utcnow
from turnout.store.routing import Feedback

IMPLICIT_EVENTS = {"regenerate": 0.0, "copy": 1.0, "continue": 0.5}
GENERAL = "general"


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rating: float = Field(ge=0.0, le=1.0)
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
    recorded_at: datetime


class FeedbackService:
    """Records ratings for messages of the caller's tenant."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        experience: ExperienceStore,
        recent: RecentMessages,
        sync: FeedbackSync,
    ) -> None:
        self._sessions = sessions
        self._experience = experience
        self._recent = recent
        self._sync = sync
        self._pending: set[asyncio.Task[None]] = set()

    async def rate(self, message_id: str, body: FeedbackIn, principal: Principal) -> FeedbackOut:
        """Store (or replace) the rating and update the aggregates incrementally."""
        now = utcnow()
        async with self._sessions.begin() as session:
            target = await self._target(session, message_id, principal)
            previous = await session.get(Feedback, message_id)
            old_rating = previous.rating if previous is not None else None
            if previous is None:
                session.add(
                    Feedback(
                        message_id=message_id,
                        tenant_id=target.tenant_id,
                        agent_id=target.agent_id,
                        model=target.model,
                        task_type=target.task_type,
                        rating=body.rating,
                        feedback_type=body.feedback_type,
                        comment=body.comment,
                        corrections=body.corrections,
                        given_by=principal.subject,
                        message_created_at=target.created_at,
                        updated_at=now,
                    )
                )
            else:
                previous.rating, previous.feedback_type = body.rating, body.feedback_type
                previous.comment, previous.corrections = body.comment, body.corrections
                previous.given_by, previous.updated_at = principal.subject, now
            mirrored = await session.execute(
                update(Message)
                .where(Message.id == message_id)
                .values(rating=body.rating, feedback_type=body.feedback_type, feedback_at=now)
            )
        if not getattr(mirrored, "rowcount", 1):  # the batch writer has not stored the message yet
            self._later(message_id)
        replaced = self._sync.applied(message_id, body.rating, now.timestamp())
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
        return FeedbackOut(
            message_id=message_id,
            rating=body.rating,
            feedback_type=body.feedback_type,
            model=target.model,
            task_type=target.task_type,
            replaced=old_rating,
            recorded_at=now,
        )

    def _later(self, message_id: str) -> None:
        task = asyncio.create_task(self._mirror(message_id))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _mirror(self, message_id: str, attempts: int = 60, delay_s: float = 0.25) -> None:
        """Copy the current rating onto the Message row once the writer has stored it."""
        for _ in range(attempts):
            await asyncio.sleep(delay_s)
            async with self._sessions.begin() as session:
                current = await session.get(Feedback, message_id)
                if current is None:
                    return
                done = await session.execute(
                    update(Message)
                    .where(Message.id == message_id)
                    .values(
                        rating=current.rating,
                        feedback_type=current.feedback_type,
                        feedback_at=current.updated_at,
                    )
                )
            if getattr(done, "rowcount", 1):
                return

    async def event(self, message_id: str, body: EventIn, principal: Principal) -> FeedbackOut:
        """An implicit signal: regenerate = 0.0, copy = 1.0, continue = 0.5."""
        rating = IMPLICIT_EVENTS[body.event]
        return await self.rate(message_id, FeedbackIn(rating=rating, feedback_type="implicit"), principal)

    async def _target(self, session: AsyncSession, message_id: str, principal: Principal) -> RatedTarget:
        target = self._recent.get(message_id)
        if target is None:
            row = (
                await session.execute(
                    select(
                        Message.tenant_id,
                        Message.agent_id,
                        Message.model,
                        Message.task_type,
                        Message.created_at,
                        Message.status,
                    ).where(Message.id == message_id)
                )
            ).one_or_none()
            if row is not None and row.model is not None:
                target = RatedTarget(
                    message_id,
                    row.tenant_id,
                    row.agent_id,
                    row.model,
                    row.task_type or GENERAL,
                    row.created_at,
                )
        if target is None or target.tenant_id != principal.tenant_id:
            raise NotFound(f"message '{message_id}' not found", param="message_id")
        if principal.agent_id is not None and target.agent_id not in (None, principal.agent_id):
            raise NotFound(f"message '{message_id}' not found", param="message_id")
        return target
