"""Spend control across two replicas (live servers on one PostgreSQL database and one Redis, in
front of the provider simulator): budgets hold under a race, a per-key rate limit holds in total,
downgrade budgets steer routing, and bad input is refused naming the field."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cluster_env import two_replicas, until
from tests.gateway_env import FAST, OPENAI_MODEL, SIM_KEY, provision
from turnout.auth.principal import Principal
from turnout.container import Container
from turnout.simulator import Simulator, SimulatorConfig

pytestmark = pytest.mark.postgres


# FAST's 2 s timeouts and 3-failure breaker turn a loaded CI machine's slow answers into 503s; these
# tests race budgets, not upstream faults
PATIENT = {**FAST, "first_byte_timeout_s": 30.0, "http_read_timeout_s": 30.0, "http_total_timeout_s": 60.0}


@dataclass
class Pair:
    a: httpx.AsyncClient
    b: httpx.AsyncClient
    containers: tuple[Container, Container]
    sim: Simulator
    key: str
    agent_id: str
    admin: dict[str, str]  # the tenant admin of acme

    def agent(self, client: httpx.AsyncClient) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    sim = Simulator(SimulatorConfig(api_key=SIM_KEY))
    sim_url = await sim.start()
    try:
        async with two_replicas(tmp_path, with_redis=True, **PATIENT) as (first, second):
            containers = (first.container, second.container)
            mint: Callable[..., str] = lambda sub, tenant, roles: first.container.jwt.mint(sub, tenant, roles)  # noqa: E731
            _, agent_id, key = await provision(first.http, mint, sim_url)
            admin = {"Authorization": f"Bearer {mint('ann', 'acme', ('tenant_admin',))}"}
            await until(
                lambda: all(
                    key.removeprefix("tk-").split(".")[0] in c.snapshots.current.keys for c in containers
                )
            )
            sim.reset_stats()
            yield Pair(first.http, second.http, containers, sim, key, agent_id, admin)
    finally:
        await sim.stop()


def chat(max_tokens: int = 1000, model: str = OPENAI_MODEL) -> dict[str, Any]:
    return {"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": "Say hi"}]}


async def test_a_budget_race_across_replicas_never_overspends(pair: Pair) -> None:
    model = pair.containers[0].snapshots.current.models[OPENAI_MODEL]
    assert model.pricing_output, "the simulator's models are priced"
    # the simulator answers 16 tokens: asking for at most 16 makes each call cost about its reservation
    reservation = (
        8 * (model.pricing_input or 0) + 16 * model.pricing_output
    ) / 1e6  # the prompt is ~8 tokens
    amount = round(reservation * 50, 8)  # fits about 50 reservations
    made = await pair.a.post(
        "/api/v2/budgets",
        json={"name": "acme daily", "scope": "tenant", "period": "daily", "amount_usd": amount},
        headers=pair.admin,
    )
    assert made.status_code == 201, made.text
    budget_id = made.json()["id"]
    await until(lambda: all(c.snapshots.current.budgets for c in pair.containers))

    async def one(n: int) -> httpx.Response:
        client = pair.a if n % 2 else pair.b
        return await client.post("/v1/chat/completions", json=chat(16), headers=pair.agent(client))

    answers = await asyncio.gather(*(one(n) for n in range(200)))
    ok = [r for r in answers if r.status_code == 200]
    refused = [r for r in answers if r.status_code == 429]
    assert len(ok) + len(refused) == 200, [r.text for r in answers if r.status_code not in (200, 429)][:3]
    assert refused, "a budget that fits 50 refused nothing of 200"
    error = refused[0].json()["error"]
    assert (
        error["code"] == "budget_exceeded"
        and "acme daily" in error["message"]
        and "resets at" in error["message"]
    )
    assert int(refused[0].headers["retry-after"]) > 0
    assert pair.sim.stats.routes["POST /v1/chat/completions"] == len(ok), (
        "a refused call reached the upstream"
    )
    spent = sum(Decimal(r.headers["x-turnout-cost-usd"]) for r in ok)
    print(f"\nbudget race: {len(ok)} answered, {len(refused)} refused; spent ${spent} of ${amount}")
    assert float(spent) <= amount + reservation, "overspent by more than one reservation"
    assert len(ok) <= 60, "answered far more calls than the budget fits"
    for container in pair.containers:
        await container.spend.drain()
    shown = (await pair.b.get(f"/api/v2/budgets/{budget_id}", headers=pair.admin)).json()
    assert shown["spent_usd"] == pytest.approx(float(spent), abs=2e-6 * len(ok))
    assert shown["reserved_usd"] == 0 and shown["period_end"].endswith("T00:00:00+00:00")
    assert shown["remaining_usd"] == pytest.approx(amount - shown["spent_usd"], abs=1e-6)


async def test_a_per_key_rate_limit_holds_in_total_across_replicas(pair: Pair) -> None:
    key_id = pair.key.split(".")[0].removeprefix("tk-")
    made = await pair.a.post(
        "/api/v2/limits", json={"scope": "api_key", "scope_id": key_id, "rpm": 60}, headers=pair.admin
    )
    assert made.status_code == 201, made.text
    await until(lambda: all(c.snapshots.current.limits for c in pair.containers))

    async def one(n: int) -> httpx.Response:
        client = pair.a if n % 2 else pair.b
        return await client.post("/v1/chat/completions", json=chat(16), headers=pair.agent(client))

    answers = []
    for wave in range(4):  # 100 calls in four waves of 25, within a few seconds
        answers += await asyncio.gather(*(one(25 * wave + n) for n in range(25)))
    ok = [r for r in answers if r.status_code == 200]
    refused = [r for r in answers if r.status_code == 429]
    print(f"\nper-key 60 rpm over two replicas: {len(ok)} answered, {len(refused)} refused of 100")
    assert abs(len(ok) - 60) <= 1 and len(refused) == 100 - len(ok)
    assert refused[0].json()["error"]["code"] == "rate_limit_exceeded"
    assert int(refused[0].headers["retry-after"]) >= 1
    assert ok[0].headers["x-ratelimit-limit-requests"] == "60"
    remaining = sorted(int(r.headers["x-ratelimit-remaining-requests"]) for r in ok)
    assert remaining[0] == 0 and remaining[-1] >= 58


async def test_an_exhausted_downgrade_budget_routes_to_cheaper_tiers_and_says_why(pair: Pair) -> None:
    made = await pair.a.post(
        "/api/v2/budgets",
        json={
            "name": "bot thrift",
            "scope": "agent",
            "scope_id": pair.agent_id,
            "period": "monthly",
            "amount_usd": 0.000001,
            "action": "downgrade",
        },
        headers=pair.admin,
    )
    assert made.status_code == 201, made.text
    await until(lambda: all(c.snapshots.current.budgets for c in pair.containers))
    auto = {"model": "auto", "max_tokens": 50, "messages": [{"role": "user", "content": "Write a haiku"}]}
    first = await pair.a.post("/v1/chat/completions", json=chat(50), headers=pair.agent(pair.a))
    assert first.status_code == 200, first.text  # a downgrade budget never refuses
    assert float(first.headers["x-turnout-cost-usd"]) >= 0.000001, "the call spends the budget: A learns it"
    bot = Principal(f"agent:{pair.agent_id}", "acme", frozenset({"agent"}), agent_id=pair.agent_id)

    def steered(c: Container) -> bool:
        return c.spend.steering(c.snapshots.current, bot, pair.agent_id, None) is not None

    await until(lambda: all(steered(c) for c in pair.containers))  # and tells B, which reserved nothing
    snapshot = pair.containers[0].snapshots.current
    for n in range(10):
        client = pair.a if n % 2 else pair.b
        answer = await client.post("/v1/chat/completions", json=auto, headers=pair.agent(client))
        assert answer.status_code == 200, answer.text
        tier = snapshot.models[answer.headers["x-turnout-model"]].cost_tier
        assert tier in ("free", "low"), f"served by a {tier} model under an exhausted downgrade budget"
    explained = await client.get(  # the replica that served it remembers its decision
        f"/api/v2/routing/decisions/{answer.headers['x-turnout-message-id']}", headers=pair.admin
    )
    assert explained.status_code == 200, explained.text
    assert "bot thrift" in explained.text and "downgrade" in explained.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "scope": "tenant", "period": "daily", "amount_usd": -5}, "amount_usd"),
        ({"name": "x", "scope": "galaxy", "period": "daily", "amount_usd": 5}, "scope"),
        ({"name": "x", "scope": "tenant", "period": "dayly", "amount_usd": 5}, "period"),
        ({"name": "x", "scope": "tenant", "period": "daily", "amount_usd": 5, "action": "nuke"}, "action"),
        (
            {"name": "x", "scope": "agent", "scope_id": "their-bot", "period": "daily", "amount_usd": 5},
            "scope_id",
        ),
        ({"name": "x", "scope": "global", "period": "daily", "amount_usd": 5}, "scope"),
    ],
)
async def test_bad_budgets_are_refused_naming_the_field(pair: Pair, body: dict[str, Any], field: str) -> None:
    other = {"Authorization": f"Bearer {pair.containers[0].jwt.mint('eve', 'globex', ('tenant_admin',))}"}
    await pair.a.post("/api/v2/agents", json={"id": "their-bot", "name": "Theirs"}, headers=other)
    answer = await pair.a.post("/api/v2/budgets", json=body, headers=pair.admin)
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.json()["error"]["param"] == field, answer.text
