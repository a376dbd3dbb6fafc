"""Deployment groups at request time: member order per strategy, skipped members, cooled-down
members and their probes, and the breaker that trips at a member's first provider fault."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from turnout.auth.principal import Principal
from turnout.domain.groups import GroupEntry, GroupMember, snapshot_parts
from turnout.domain.snapshot import AgentEntry, ModelEntry, Snapshot
from turnout.errors import Forbidden, InvalidRequest
from turnout.gateway.guards import BREAKER_EVENT, CircuitBreakers
from turnout.routing.deployments import DeploymentLoad, plan_group

A, B, C = "oai/gpt-4o-mini", "az/gpt-4o-mini", "vllm/gpt-4o-mini"
CALLER = Principal("agent:bot", "acme", frozenset({"agent"}), agent_id="bot")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _model(model_id: str, *, usable: bool = True, model_type: str = "chat") -> ModelEntry:
    provider, external = model_id.split("/", 1)
    return ModelEntry(
        model_id,
        provider,
        external,
        external,
        model_type,
        frozenset({"text"}),
        50,
        "low",
        None,
        0.1,
        0.2,
        usable,
    )


def _snapshot(
    strategy: str = "weighted",
    weights: dict[str, float] | None = None,
    *,
    enabled: tuple[str, ...] = (A, B, C),
    models: tuple[ModelEntry, ...] | None = None,
    capsule: dict[str, object] | None = None,
) -> tuple[Snapshot, GroupEntry]:
    weights = weights or {A: 1.0, B: 1.0}
    group = GroupEntry("mini", strategy, tuple(GroupMember(m, w) for m, w in weights.items()))  # type: ignore[arg-type]
    entries = models or tuple(_model(m) for m in (A, B, C))
    snapshot = Snapshot(
        models={m.id: m for m in entries},
        agents={("acme", "bot"): AgentEntry("bot", "acme", "Bot", capsule or {}, True)},
        agent_models={("acme", "bot"): dict.fromkeys(enabled)},
        **snapshot_parts({"mini": group}),
    )
    return snapshot, group


def _plan(
    snapshot: Snapshot,
    group: GroupEntry,
    breakers: CircuitBreakers | None = None,
    load: DeploymentLoad | None = None,
    rng: random.Random | None = None,
) -> list[str]:
    chosen = plan_group(
        snapshot,
        CALLER,
        "bot",
        group,
        "chat",
        breakers or CircuitBreakers(),
        load or DeploymentLoad(),
        rng or random.Random(7),
    )
    return [m.id for m in chosen.members]


def test_weighted_first_choices_follow_the_weights_and_the_rest_follow_in_turn() -> None:
    snapshot, group = _snapshot(weights={A: 3.0, B: 1.0})
    rng = random.Random(1)
    plans = [_plan(snapshot, group, rng=rng) for _ in range(20_000)]
    firsts = Counter(plan[0] for plan in plans)
    assert abs(firsts[A] / 20_000 - 0.75) < 0.015, firsts
    assert all(sorted(plan) == sorted([A, B]) for plan in plans), "every member stays in the plan"


def test_least_busy_prefers_fewest_in_flight_and_breaks_ties_by_weight() -> None:
    snapshot, group = _snapshot("least-busy", {A: 9.0, B: 1.0})
    load = DeploymentLoad()
    load.begin(A)
    assert all(_plan(snapshot, group, load=load, rng=random.Random(i))[0] == B for i in range(50))
    load.begin(B)
    load.begin(B)
    assert _plan(snapshot, group, load=load) == [A, B]
    load.end(B)
    load.end(B)
    load.end(A)
    firsts = Counter(_plan(snapshot, group, load=load, rng=random.Random(i))[0] for i in range(2000))
    assert firsts[A] > 0.85 * 2000 and firsts[B] > 0, "idle ties are drawn by weight"


def test_lowest_latency_measures_new_members_then_prefers_the_fastest() -> None:
    clock = Clock()
    snapshot, group = _snapshot("lowest-latency", {A: 1.0, B: 1.0})
    load = DeploymentLoad(clock=clock, stale_s=60)
    load.observe(A, 50.0)
    assert _plan(snapshot, group, load=load) == [B, A], "the unmeasured member goes first"
    load.begin(B)
    assert _plan(snapshot, group, load=load) == [A, B], "but not while it is being measured"
    load.end(B)
    load.observe(B, 20.0)
    assert _plan(snapshot, group, load=load) == [B, A]
    for _ in range(3):
        load.observe(B, 200.0)
    assert _plan(snapshot, group, load=load) == [A, B], "the EWMA follows B getting slow"
    clock.now += 30
    load.observe(B, 200.0)
    clock.now += 31
    assert _plan(snapshot, group, load=load) == [A, B], "A's measure is stale: A is measured again"
    assert load.latency_ms(A) == 50.0


def test_members_the_agent_may_not_use_are_skipped() -> None:
    snapshot, group = _snapshot(weights={A: 1.0, B: 100.0}, enabled=(A,))
    chosen = plan_group(
        snapshot, CALLER, "bot", group, "chat", CircuitBreakers(), DeploymentLoad(), random.Random(3)
    )
    assert [m.id for m in chosen.members] == [A]
    assert chosen.filtered == [(B, "not enabled for agent 'bot'")]
    capsule = {"allowed_models": [B]}
    snapshot, group = _snapshot(weights={A: 1.0, B: 1.0}, capsule=capsule)
    assert _plan(snapshot, group) == [B], "the capsule holds for members as for named models"
    snapshot, group = _snapshot(weights={A: 1.0, B: 1.0}, enabled=(C,))
    with pytest.raises(Forbidden) as info:
        _plan(snapshot, group)
    assert info.value.param == "model" and "mini" in info.value.message


def test_unusable_or_other_type_members_are_skipped_and_none_left_is_a_400() -> None:
    models = (_model(A, usable=False), _model(B), _model(C, model_type="embedding"))
    snapshot, group = _snapshot(weights={A: 1.0, B: 1.0, C: 1.0}, models=models)
    assert _plan(snapshot, group) == [B]
    snapshot, group = _snapshot(weights={A: 1.0}, models=models)
    with pytest.raises(InvalidRequest) as info:
        _plan(snapshot, group)
    assert info.value.code == "model_disabled"


def test_a_cooling_member_is_skipped_then_probed_first() -> None:
    clock = Clock()
    breakers = CircuitBreakers(threshold=5, cooldown_s=10, clock=clock)
    snapshot, group = _snapshot(weights={A: 1000.0, B: 1.0})
    breakers.failure(A, "acme", trip=True)
    chosen = plan_group(snapshot, CALLER, "bot", group, "chat", breakers, DeploymentLoad(), random.Random(0))
    assert [m.id for m in chosen.members] == [B]
    assert chosen.filtered == [(A, "cooling down after a failure (circuit open)")]
    clock.now += 10.5
    assert all(_plan(snapshot, group, breakers, rng=random.Random(i))[0] == A for i in range(20))
    assert breakers.allow(A, "acme"), "the request that probes it"
    assert _plan(snapshot, group, breakers) == [B], "one probe at a time"
    breakers.success(A, "acme")
    assert not breakers.probe_due(A, "acme") and set(_plan(snapshot, group, breakers)) == {A, B}


def test_every_member_cooling_down_keeps_them_for_failover_to_answer_503() -> None:
    breakers = CircuitBreakers(threshold=5, cooldown_s=10, clock=Clock())
    snapshot, group = _snapshot()
    breakers.failure(A, trip=True)
    breakers.failure(B, trip=True)
    chosen = plan_group(snapshot, CALLER, "bot", group, "chat", breakers, DeploymentLoad(), random.Random(0))
    assert {m.id for m in chosen.members} == {A, B}
    assert {s.health for s in chosen.route.members} == {"down"}


def test_trip_opens_the_breaker_at_the_first_failure_and_publishes_it() -> None:
    events: list[dict[str, object]] = []
    clock = Clock()
    breakers = CircuitBreakers(threshold=5, cooldown_s=10, clock=clock, publish=events.append)
    breakers.failure(A, "acme")
    assert not breakers.is_open(A), "an ordinary failure counts toward the threshold"
    breakers.failure(A, "acme", trip=True)
    assert breakers.is_open(A) and not breakers.probe_due(A)
    assert events == [{"type": BREAKER_EVENT, "model": A, "tenant": None, "open": True, "for_s": 10}]
    replica = CircuitBreakers(threshold=5, cooldown_s=10, clock=clock)
    replica.on_event(events[0])
    assert replica.is_open(A, "other"), "the other replicas skip it too"
    clock.now += 10.1
    assert breakers.probe_due(A, "acme") and replica.probe_due(A)


def test_load_counts_requests_in_flight_per_member() -> None:
    load = DeploymentLoad()
    load.begin(A)
    load.begin(A)
    load.end(A)
    assert load.in_flight(A) == 1 and load.in_flight(B) == 0
    load.end(A)
    load.end(A)
    assert load.in_flight(A) == 0, "never negative"
