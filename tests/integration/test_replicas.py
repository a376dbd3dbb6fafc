"""Two replicas on one database: ratings and control-plane changes reach the other within seconds."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from turnout.auth.principal import Principal
from turnout.config import Settings
from turnout.container import Container
from turnout.feedback.service import FeedbackIn
from turnout.store.messages import Message
from turnout.store.migrate import upgrade
from turnout.store.models import utcnow


@pytest.fixture
async def replicas(settings: Settings) -> AsyncIterator[tuple[Container, Container]]:
    fast = settings.model_copy(update={"feedback_sync_interval_s": 0.2, "snapshot_interval_s": 0.2})
    first, second = Container.build(fast), Container.build(fast)
    await upgrade(first.engine)
    await first.start()
    await second.start()
    try:
        yield first, second
    finally:
        await second.aclose()
        await first.aclose()


async def _until(check: object, timeout_s: float = 5.0) -> float:
    started = time.monotonic()
    while not check():  # type: ignore[operator]
        assert time.monotonic() - started < timeout_s, "the other replica never caught up"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def test_ratings_reach_the_other_replica(replicas: tuple[Container, Container]) -> None:
    first, second = replicas
    message_id = str(uuid.uuid4())
    async with first.sessions.begin() as session:
        session.add(
            Message(
                id=message_id,
                tenant_id="acme",
                agent_id=None,
                model="p/m",
                dialect="openai",
                endpoint="chat",
                status="ok",
                http_status=200,
                task_type="code",
                created_at=utcnow(),
            )
        )
    user = Principal("uma", "acme", frozenset({"user"}))

    def seen(store: Container, value: float) -> bool:
        """The replica's posterior for p/m on code has moved toward ``value`` from its 0.5 prior."""
        estimate = store.experience.estimate("acme", None, "code", "p/m")
        if estimate.mean is None or estimate.evidence <= 0:
            return False
        return estimate.mean > 0.5 if value > 0.5 else estimate.mean < 0.5

    await first.feedback.rate(message_id, FeedbackIn(rating=1.0), user)
    assert seen(first, 1.0)
    waited = await _until(lambda: seen(second, 1.0))
    assert waited < 3.0
    await first.feedback.rate(message_id, FeedbackIn(rating=0.0), user)
    await _until(lambda: seen(second, 0.0))
    second_view = second.experience.estimate("acme", None, "code", "p/m")
    first_view = first.experience.estimate("acme", None, "code", "p/m")
    assert second_view.evidence == pytest.approx(first_view.evidence, rel=0.05), (
        "the replacement was applied, not added"
    )


async def test_control_plane_changes_reach_the_other_replica(replicas: tuple[Container, Container]) -> None:
    from turnout.agents.schemas import AgentCreate

    first, second = replicas
    admin = Principal("ann", "acme", frozenset({"tenant_admin"}))
    await first.agents.create(AgentCreate(id="helper", name="Helper"), admin)
    key = await first.agents.issue_key("helper", None, admin)
    await _until(lambda: ("acme", "helper") in second.snapshots.current.agents)
    await _until(lambda: key.id in second.snapshots.current.keys)
    await first.agents.revoke_key("helper", key.id, admin)
    await _until(lambda: second.snapshots.current.keys[key.id].revoked)


async def test_a_rated_prompt_joins_every_replicas_prompt_memory_and_survives_a_restart(
    settings: Settings,
) -> None:
    """With the prompt memory on, a rating taken by the replica that answered stores the prompt's
    features with it: the other replica adds the rated prompt to its memory on its next poll, and a
    replica started later reads it back from the database."""
    from turnout.routing.classifier import TaskClassifier
    from turnout.routing.prompt_memory import prompt_features

    encoder = TaskClassifier.if_available()
    if encoder is None:
        pytest.skip("needs the 'classifier' extra (wordllama)")
    fast = settings.model_copy(update={"feedback_sync_interval_s": 0.2, "prompt_memory": True})
    first, second = Container.build(fast), Container.build(fast)
    await upgrade(first.engine)
    await first.start()
    await second.start()
    later: Container | None = None
    try:
        vector = prompt_features(["What is the capital of country number 1?"], encoder)[0]
        message_id = str(uuid.uuid4())
        async with first.sessions.begin() as session:
            session.add(
                Message(
                    id=message_id, tenant_id="acme", agent_id=None, model="p/m", dialect="openai",
                    endpoint="chat", status="ok", http_status=200, task_type="qa", created_at=utcnow(),
                )
            )  # fmt: skip
        # as the gateway does for an answer it routed with the memory on
        first.gateway.recent.remember(message_id, "acme", None, "p/m", "qa", time.time(), vector.tobytes())
        await first.feedback.rate(
            message_id, FeedbackIn(rating=1.0), Principal("uma", "acme", frozenset({"user"}))
        )

        def lifted(replica: Container) -> bool:
            memory = replica.routing.router.memory
            assert memory is not None
            got = memory.adjustment("acme", "qa", vector, ["p/m"])
            return got is not None and got[0] > 0.0

        assert lifted(first)
        await _until(lambda: lifted(second))
        later = Container.build(fast)
        await later.start()
        assert lifted(later), "a restarted replica lost the rated prompts"
        memory = later.routing.router.memory
        assert memory is not None and memory.adjustment("other-tenant", "qa", vector, ["p/m"]) is None
    finally:
        for replica in (later, second, first):
            if replica is not None:
                await replica.aclose()


async def test_a_performance_reset_holds_on_every_replica_and_after_a_restart(
    replicas: tuple[Container, Container], settings: Settings
) -> None:
    """A reset made through one replica forgets the same ratings on the other within a poll and on
    a replica started later (its replay skips them: before, every rating came back); a rating
    given after the reset counts everywhere; and a reset of one tenant's agent leaves another
    tenant's experience and performance report alone."""
    from turnout.feedback.performance import ResetIn

    first, second = replicas
    user = {t: Principal("uma", t, frozenset({"user"})) for t in ("acme", "globex")}

    async def rated(tenant: str, rating: float) -> None:
        message_id = str(uuid.uuid4())
        async with first.sessions.begin() as session:
            session.add(
                Message(
                    id=message_id, tenant_id=tenant, agent_id="bot", model="p/m", dialect="openai",
                    endpoint="chat", status="ok", http_status=200, task_type="math", created_at=utcnow(),
                )
            )  # fmt: skip
        await first.feedback.rate(message_id, FeedbackIn(rating=rating), user[tenant])

    def ratings(replica: Container, tenant: str) -> float:
        return replica.experience.estimate(tenant, "bot", "math", "p/m").evidence

    for _ in range(4):
        await rated("acme", 1.0)
    await rated("globex", 0.0)
    await _until(lambda: ratings(second, "acme") >= 3.9 and ratings(second, "globex") >= 0.9)
    admin = Principal("root", "platform", frozenset({"platform_admin"}))
    body = ResetIn(model_id="p/m", task_types=["math"], agent_id="bot", tenant_id="acme")
    await first.performance.reset(body, admin)
    assert ratings(first, "acme") == 0
    await _until(lambda: ratings(second, "acme") == 0)
    assert ratings(second, "globex") >= 0.9, "another tenant's agent was not reset"
    await rated("acme", 0.2)  # after the reset: it counts
    await _until(lambda: 0.9 <= ratings(second, "acme") <= 1.1)
    later = Container.build(settings.model_copy(update={"feedback_sync_interval_s": 0.2}))
    await later.start()
    try:
        assert 0.9 <= ratings(later, "acme") <= 1.1, "a restarted replica replayed the forgotten ratings"
        assert ratings(later, "globex") >= 0.9
    finally:
        await later.aclose()
    globex_admin = Principal("gil", "globex", frozenset({"tenant_admin"}))
    report = await first.performance.report(
        globex_admin, task_type="math", agent_id=None, model_id=None, time_range=None
    )
    assert [(r["model"], r["rated_count"]) for r in report["performance"]] == [("p/m", 1)], (
        "acme's reset hid globex's records"
    )
