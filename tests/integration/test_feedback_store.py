"""Ratings on SQLite and PostgreSQL: batched lookups and group commits, copied onto the message
row in the same commit, latest rating wins even when commits land out of order."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from turnout.auth.principal import Principal
from turnout.container import Container
from turnout.errors import NotFound
from turnout.feedback.batch import FeedbackBatcher
from turnout.feedback.recent import RecentMessages
from turnout.feedback.service import FeedbackIn, FeedbackService
from turnout.store.messages import Message
from turnout.store.models import utcnow
from turnout.store.routing import Feedback
from turnout.store.sqlite.gate import engine_of
from turnout.store.sqlite.one_hop import OneHop

USER = Principal("uma", "acme", frozenset({"user"}))


def _message(tenant: str = "acme", model: str = "p/m") -> Message:
    return Message(
        id=str(uuid.uuid4()), tenant_id=tenant, agent_id=None, model=model, dialect="openai",
        endpoint="chat", status="ok", http_status=200, task_type="code", created_at=utcnow(),
    )  # fmt: skip


async def _stored(container: Container, *messages: Message) -> list[str]:
    async with container.sessions.begin() as session:
        session.add_all(messages)
    return [m.id for m in messages]


async def test_concurrent_ratings_are_stored_and_copied_onto_their_messages(container: Container) -> None:
    ids = await _stored(container, *(_message(model=f"p/m{i % 3}") for i in range(60)))
    ratings = [(i % 5) / 4 for i in range(60)]
    rate = container.feedback.rate
    answers = await asyncio.gather(
        *(rate(m, FeedbackIn(rating=r), USER) for m, r in zip(ids, ratings, strict=True))
    )
    assert [a.model for a in answers] == [f"p/m{i % 3}" for i in range(60)]
    async with container.sessions() as session:
        stored = {m: r for m, r in await session.execute(select(Feedback.message_id, Feedback.rating))}
        copied_rows = await session.execute(select(Message.id, Message.rating).where(Message.id.in_(ids)))
        copied = {m: r for m, r in copied_rows}
    assert stored == dict(zip(ids, ratings, strict=True))
    assert copied == stored, "each rating reached its message row in the commit that answered it"


async def test_unknown_and_foreign_messages_are_not_found(container: Container) -> None:
    (foreign,) = await _stored(container, _message(tenant="globex"))
    results = await asyncio.gather(
        container.feedback.rate(str(uuid.uuid4()), FeedbackIn(rating=1.0), USER),
        container.feedback.rate(foreign, FeedbackIn(rating=1.0), USER),
        return_exceptions=True,
    )
    assert all(isinstance(r, NotFound) for r in results)
    async with container.sessions() as session:
        assert (await session.scalars(select(Feedback))).all() == []


async def test_a_rating_for_an_unstored_answer_reaches_its_row_later(container: Container) -> None:
    message = _message()
    recent = RecentMessages()  # answered by this replica; the records writer has not stored it yet
    recent.remember(message.id, "acme", None, "p/m", "code", message.created_at.timestamp())
    service = FeedbackService(container.sessions, container.experience, recent, container.feedback_sync)
    try:
        await service.rate(message.id, FeedbackIn(rating=0.25), USER)
        await _stored(container, message)
        await service.mirror_pending()
    finally:
        await service.stop()
    async with container.sessions() as session:
        row = await session.get(Message, message.id)
    assert row is not None and row.rating == 0.25 and row.feedback_type == "explicit"


async def test_the_latest_rating_wins_when_commits_land_out_of_order(container: Container) -> None:
    (message_id,) = await _stored(container, _message())
    engine = engine_of(container.sessions)
    assert engine is not None
    hop = OneHop(engine)
    batcher = FeedbackBatcher(container.sessions, hop)
    now = utcnow()

    def row(rating: float, at: object) -> dict[str, object]:
        return {
            "message_id": message_id, "tenant_id": "acme", "agent_id": None, "model": "p/m",
            "task_type": "code", "message_created_at": now, "rating": rating,
            "feedback_type": "explicit", "comment": None, "corrections": {}, "given_by": "uma",
            "origin": "test", "updated_at": at,
        }  # fmt: skip

    try:
        await batcher.put(row(0.9, now), USER, None)
        await batcher.put(row(0.1, now - timedelta(seconds=1)), USER, None)  # older, committed later
    finally:
        await batcher.stop()
        await hop.dispose()
    async with container.sessions() as session:
        assert (await session.get(Feedback, message_id)).rating == 0.9  # type: ignore[union-attr]
        assert (await session.get(Message, message_id)).rating == 0.9  # type: ignore[union-attr]


async def test_one_hop_rolls_back_a_failed_transaction(container: Container) -> None:
    engine = engine_of(container.sessions)
    assert engine is not None
    hop = OneHop(engine)
    (message_id,) = await _stored(container, _message())

    def fail_midway(connection: object) -> None:
        connection.execute(  # type: ignore[attr-defined]
            Message.__table__.update().where(Message.id == message_id).values(rating=0.5)  # type: ignore[attr-defined]
        )
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await hop.transaction(fail_midway)
    assert await hop.transaction(lambda c: c.execute(text("SELECT 1")).scalar()) == 1  # still usable
    await hop.dispose()
    async with container.sessions() as session:
        assert (await session.get(Message, message_id)).rating is None  # type: ignore[union-attr]


async def test_a_foreign_rating_in_the_same_commit_neither_lands_nor_blocks(container: Container) -> None:
    (message_id,) = await _stored(container, _message())
    intruder = Principal("eve", "globex", frozenset({"user"}))
    results = await asyncio.gather(
        container.feedback.rate(message_id, FeedbackIn(rating=0.75), USER),
        container.feedback.rate(message_id, FeedbackIn(rating=0.0), intruder),
        return_exceptions=True,
    )
    assert not isinstance(results[0], BaseException) and results[0].rating == 0.75
    assert isinstance(results[1], NotFound)
    async with container.sessions() as session:
        assert (await session.get(Feedback, message_id)).rating == 0.75  # type: ignore[union-attr]
        assert (await session.get(Message, message_id)).rating == 0.75  # type: ignore[union-attr]
