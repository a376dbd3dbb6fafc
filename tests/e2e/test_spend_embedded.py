"""Spend control on the embedded default (SQLite, the ledger in process, no Redis): a daily budget
resets at midnight UTC, alerts are stored once, refusals speak the caller's dialect, budgets are
tenant-scoped, and with Redis configured but down the Redis-down settings decide."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.gateway_env import ANTHROPIC_MODEL, OPENAI_MODEL, GatewayEnv, gateway


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[GatewayEnv]:
    async with gateway(tmp_path) as made:
        yield made


def tenant_admin(env: GatewayEnv, tenant: str = "acme") -> dict[str, str]:
    return {"Authorization": f"Bearer {env.container.jwt.mint('ann', tenant, ('tenant_admin',))}"}


def reservation(env: GatewayEnv, max_tokens: int) -> float:
    model = env.container.snapshots.current.models[OPENAI_MODEL]
    return (8 * (model.pricing_input or 0) + max_tokens * (model.pricing_output or 0)) / 1e6


async def budget(env: GatewayEnv, **fields: Any) -> dict[str, Any]:
    body = {"name": "acme daily", "scope": "tenant", "period": "daily", **fields}
    made = await env.http.post("/api/v2/budgets", json=body, headers=tenant_admin(env))
    assert made.status_code == 201, made.text
    return dict(made.json())


async def call(env: GatewayEnv, *, stream: bool = False) -> httpx.Response:
    body = {
        "model": OPENAI_MODEL,
        "max_tokens": 16,
        "stream": stream,
        "messages": [{"role": "user", "content": "hi"}],
    }
    return await env.http.post(
        "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {env.key}"}
    )


PREMIUM = "oai/gpt-4o"


async def make_premium(env: GatewayEnv) -> None:
    """Pin gpt-4o to the premium tier, at the top priority: with no ratings, routing picks it."""
    edited = await env.http.patch(
        f"/api/v2/admin/models/{PREMIUM}", json={"cost_tier": "premium", "priority": 95}, headers=env.admin
    )
    assert edited.status_code == 200, edited.text
    await env.container.snapshots.reload()


async def _auto(env: GatewayEnv, max_tokens: int | None = 16) -> httpx.Response:
    body: dict[str, Any] = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    answer = await env.http.post(
        "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {env.key}"}
    )
    assert answer.status_code == 200, answer.text
    await env.container.spend.drain()
    return answer


async def _reason(env: GatewayEnv, answer: httpx.Response) -> str:
    decision = await env.http.get(
        f"/api/v2/routing/decisions/{answer.headers['x-turnout-message-id']}", headers=tenant_admin(env)
    )
    assert decision.status_code == 200, decision.text
    return str(decision.json()["reason"])


async def test_a_daily_budget_resets_at_midnight_utc(env: GatewayEnv) -> None:
    clock = Clock(datetime(2030, 1, 1, 23, 59, 58, tzinfo=UTC))
    env.container.spend.clock = clock
    await budget(env, amount_usd=round(reservation(env, 16) * 1.5, 8))
    assert (await call(env, stream=True)).status_code == 200  # a stream is reserved and settled too
    await env.container.spend.drain()
    refused = await call(env)
    assert refused.status_code == 429
    assert "resets at 2030-01-02T00:00:00Z" in refused.json()["error"]["message"]
    assert refused.headers["retry-after"] == "2"
    clock.now += timedelta(seconds=3)  # 00:00:01 the next day: a new period
    assert (await call(env)).status_code == 200


async def test_alerts_are_stored_once_per_budget_kind_and_period(env: GatewayEnv) -> None:
    made = await budget(env, amount_usd=round(reservation(env, 16) * 2.5, 8), alert_threshold=0.3)
    answered = 0
    for _ in range(6):
        answered += (await call(env)).status_code == 200
        await env.container.spend.drain()
    assert 1 <= answered < 6
    alerts = (await env.http.get("/api/v2/budgets/alerts", headers=tenant_admin(env))).json()["items"]
    kinds = sorted(a["kind"] for a in alerts if a["budget_id"] == made["id"])
    assert kinds == ["exhausted", "threshold"], alerts
    assert all(a["budget_name"] == "acme daily" for a in alerts)
    other = (await env.http.get("/api/v2/budgets/alerts", headers=tenant_admin(env, "globex"))).json()
    assert other["items"] == [], "another tenant sees none of acme's alerts"


async def test_one_call_too_large_for_what_is_left_is_not_a_budget_used_up(env: GatewayEnv) -> None:
    """A call whose worst case (no max_tokens: 4,096 output tokens) does not fit a budget that has
    spent nothing is refused with what is left and what to change, and raises no "exhausted" alert
    (it did, and alerts come once a period, so the real exhaustion later went unreported). Once the
    budget refuses past its alert threshold, it is exhausted."""
    made = await budget(env, amount_usd=round(reservation(env, 16) * 2.5, 8), alert_threshold=0.5)
    headers = {"Authorization": f"Bearer {env.key}"}
    oversize = await env.http.post(
        "/v1/chat/completions",
        json={"model": OPENAI_MODEL, "messages": [{"role": "user", "content": "hi"}]},
        headers=headers,
    )
    assert oversize.status_code == 429
    message = oversize.json()["error"]["message"]
    assert "left ($0.00 spent)" in message and "max_tokens" in message and "4096 when unset" in message, (
        message
    )

    async def alerts() -> list[str]:
        got = (await env.http.get("/api/v2/budgets/alerts", headers=tenant_admin(env))).json()["items"]
        return sorted(a["kind"] for a in got if a["budget_id"] == made["id"])

    assert await alerts() == []
    (refused,) = await env.records(1)
    assert (refused.model, refused.provider, refused.attempts) == (OPENAI_MODEL, "oai", 0), (
        "a refusal is recorded against the model the caller named, which was never called"
    )
    answered = 0
    for _ in range(4):
        answered += (await call(env)).status_code == 200
        await env.container.spend.drain()
    assert answered == 2, "two calls fit 2.5 worst cases"
    assert await alerts() == ["exhausted", "threshold"]


async def test_a_stream_the_client_leaves_is_charged_what_its_record_says(env: GatewayEnv) -> None:
    """Leaving a stream after its first bytes recorded it cancelled with no tokens and no cost, so
    a client could spend past a budget by disconnecting. It is priced (estimated: the prompt and
    what had streamed), and the budget is charged what the record says."""
    made = await budget(env, amount_usd=1)
    env.sim.config.tokens_per_second = 5
    async with env.http.stream(
        "POST",
        "/v1/chat/completions",
        json={
            "model": OPENAI_MODEL,
            "max_tokens": 50,
            "stream": True,
            "messages": [{"role": "user", "content": "hi"}],
        },
        headers={"Authorization": f"Bearer {env.key}"},
    ) as resp:
        async for _ in resp.aiter_bytes():
            break
    (row,) = await env.records(1)
    assert row.status == "cancelled" and row.usage_estimated and row.cost_usd, row.cost_usd
    await env.container.spend.drain()
    shown = (await env.http.get(f"/api/v2/budgets/{made['id']}", headers=tenant_admin(env))).json()
    assert shown["spent_usd"] == float(row.cost_usd) and shown["reserved_usd"] == 0, shown


async def test_a_refusal_speaks_the_anthropic_dialect(env: GatewayEnv) -> None:
    await budget(env, amount_usd=0.00000001)
    refused = await env.http.post(
        "/v1/messages",
        json={"model": OPENAI_MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]},
        headers={"x-api-key": env.key, "anthropic-version": "2023-06-01"},
    )
    assert refused.status_code == 429
    body = refused.json()
    assert body["type"] == "error" and "acme daily" in body["error"]["message"]
    assert env.upstream_calls() == 0


async def test_sdks_with_their_default_retries_are_told_at_once_and_not_to_retry(env: GatewayEnv) -> None:
    """A block budget's Retry-After is the period's end, hours away: the Anthropic SDK sleeps
    through any Retry-After before its retries (it waited until midnight). The refusal says
    ``x-should-retry: false``, which both official SDKs obey."""
    await budget(env, amount_usd=0.00000001)
    sdk = anthropic.AsyncAnthropic(base_url=env.url, api_key=env.key)  # default retries: 2
    env.clients.append(sdk)
    with pytest.raises(anthropic.RateLimitError) as refused:
        await asyncio.wait_for(
            sdk.messages.create(
                model=OPENAI_MODEL, max_tokens=16, messages=[{"role": "user", "content": "hi"}]
            ),
            timeout=10,
        )
    assert "acme daily" in refused.value.message
    assert refused.value.response.headers["x-should-retry"] == "false"
    assert int(refused.value.response.headers["retry-after"]) >= 1
    oai = openai.AsyncOpenAI(base_url=f"{env.url}/v1", api_key=env.key)
    env.clients.append(oai)
    with pytest.raises(openai.RateLimitError) as told:
        await asyncio.wait_for(
            oai.chat.completions.create(model=OPENAI_MODEL, messages=[{"role": "user", "content": "hi"}]),
            timeout=10,
        )
    assert told.value.code == "budget_exceeded"
    assert env.upstream_calls() == 0


async def test_budgets_are_tenant_scoped(env: GatewayEnv) -> None:
    made = await budget(env, amount_usd=10)
    theirs = tenant_admin(env, "globex")
    assert (await env.http.get(f"/api/v2/budgets/{made['id']}", headers=theirs)).status_code == 404
    assert (
        await env.http.patch(f"/api/v2/budgets/{made['id']}", json={"amount_usd": 1}, headers=theirs)
    ).status_code == 404
    assert (await env.http.delete(f"/api/v2/budgets/{made['id']}", headers=theirs)).status_code == 404
    assert (await env.http.get("/api/v2/budgets", headers=theirs)).json()["items"] == []
    mine = (await env.http.get(f"/api/v2/budgets/{made['id']}", headers=tenant_admin(env))).json()
    assert mine["amount_usd"] == 10 and mine["spent_usd"] == 0 and mine["remaining_usd"] == 10
    changed = await env.http.patch(
        f"/api/v2/budgets/{made['id']}", json={"amount_usd": 20}, headers=tenant_admin(env)
    )
    assert changed.json()["amount_usd"] == 20
    assert (
        await env.http.delete(f"/api/v2/budgets/{made['id']}", headers=tenant_admin(env))
    ).status_code == 204


async def test_a_pause_expensive_budget_takes_premium_models_out_of_routing(env: GatewayEnv) -> None:
    await make_premium(env)
    first = await _auto(env)
    assert first.headers["x-turnout-model"] == PREMIUM
    await env.records(1)  # what the budget below is seeded from: spent past its amount at once
    await budget(env, amount_usd=0.00000001, action="pause_expensive")
    for _ in range(5):
        assert (await _auto(env)).headers["x-turnout-model"] != PREMIUM


@pytest.mark.parametrize(
    ("overrides", "status"),
    [({}, 503), ({"redis_down_budgets": "open"}, 200)],
)
async def test_with_redis_down_block_budgets_fail_closed_by_default(
    tmp_path: Path, overrides: dict[str, Any], status: int
) -> None:
    async with gateway(tmp_path, redis_url="redis://127.0.0.1:1/0", redis_timeout_s=0.2, **overrides) as down:
        await budget(down, amount_usd=10)
        answer = await call(down)
        assert answer.status_code == status, answer.text
        if status == 503:
            assert (
                "Redis" in answer.json()["error"]["message"]
                and "acme daily" in answer.json()["error"]["message"]
            )
            assert int(answer.headers["retry-after"]) >= 1, "a client can tell when to try again"


async def test_with_redis_down_rate_limits_fail_open(tmp_path: Path) -> None:
    async with gateway(tmp_path, redis_url="redis://127.0.0.1:1/0", redis_timeout_s=0.2) as down:
        made = await down.http.post(
            "/api/v2/limits", json={"scope": "tenant", "rpm": 1}, headers=tenant_admin(down)
        )
        assert made.status_code == 201, made.text
        assert [(await call(down)).status_code for _ in range(3)] == [200, 200, 200]


async def test_counters_that_missed_a_settle_are_rebuilt_from_the_records(tmp_path: Path) -> None:
    """Redis stops taking writes while a call is in flight: its settle fails. Once Redis is back,
    the budget's counters are seeded again from the records, so the spend of that call is not lost
    and its reservation does not linger."""
    import redis.asyncio as aioredis

    from tests.integration.test_redis_restart import own_redis

    async with (  # a Redis of the test's own: a pause of the shared one stalls every other test's calls
        own_redis(tmp_path) as server,
        gateway(tmp_path, redis_url=server.url, redis_timeout_s=0.3) as env,
    ):
        url = server.url
        made = await budget(env, amount_usd=10)
        assert (await call(env)).status_code == 200
        env.sim.config.latency_ms = 800
        in_flight = asyncio.create_task(call(env))
        await asyncio.sleep(0.3)  # reserved, waiting for the upstream
        admin = aioredis.Redis.from_url(url)
        try:
            await admin.execute_command("CLIENT", "PAUSE", "1500", "WRITE")  # its settle times out
            answer = await in_flight
            await env.container.spend.drain()
        finally:
            await admin.execute_command("CLIENT", "UNPAUSE")
            await admin.aclose()
        assert answer.status_code == 200
        env.sim.config.latency_ms = 0
        await env.records(2)
        assert (await call(env)).status_code == 200  # Redis is back: the counters are rebuilt first
        await env.container.spend.drain()
        rows = await env.records(3)
        recorded = sum(float(r.cost_usd or 0) for r in rows)
        shown = (await env.http.get(f"/api/v2/budgets/{made['id']}", headers=tenant_admin(env))).json()
        assert shown["reserved_usd"] == 0
        assert shown["spent_usd"] == pytest.approx(recorded, abs=1e-6)


async def test_spend_let_through_while_redis_is_down_is_counted_once_it_is_back(tmp_path: Path) -> None:
    """With budgets failing open, a call made while Redis does not answer goes through unreserved;
    once Redis is back its budget is seeded again from the records, so that spend is not lost."""
    import redis.asyncio as aioredis

    from tests.integration.test_redis_restart import own_redis

    async with (  # a Redis of the test's own: a pause of the shared one stalls every other test's calls
        own_redis(tmp_path) as server,
        gateway(tmp_path, redis_url=server.url, redis_timeout_s=0.3, redis_down_budgets="open") as env,
    ):
        url = server.url
        made = await budget(env, amount_usd=10)
        assert (await call(env)).status_code == 200
        await env.container.spend.drain()
        admin = aioredis.Redis.from_url(url)
        try:
            await admin.execute_command("CLIENT", "PAUSE", "1500", "ALL")  # the reservation times out
            assert (await call(env)).status_code == 200, "let through: budgets fail open"
        finally:
            await admin.execute_command("CLIENT", "UNPAUSE")
            await admin.aclose()
        await env.records(2)
        assert (await call(env)).status_code == 200  # Redis is back: the budget is seeded again first
        await env.container.spend.drain()
        recorded = sum(float(r.cost_usd or 0) for r in await env.records(3))
        shown = (await env.http.get(f"/api/v2/budgets/{made['id']}", headers=tenant_admin(env))).json()
        assert shown["spent_usd"] == pytest.approx(recorded, abs=1e-8), (
            "the let-through call's spend was lost"
        )


async def test_a_downgrade_budget_ahead_of_its_pace_makes_routing_weigh_cost(env: GatewayEnv) -> None:
    """Spending faster than an even pace through the day, a downgrade budget raises the price routing
    puts on cost before it runs out; back on pace, routing goes back to the policy's own trade-off."""
    admin = tenant_admin(env)
    strong, cheap = "oai/gpt-4o", "oai/gpt-4o-mini"
    made = await env.http.post(
        "/api/v2/agents",
        json={"id": "thrift", "name": "Thrift", "capsule": {"routing": {"explore": False}}},
        headers=admin,
    )
    assert made.status_code == 201, made.text
    await env.http.post("/api/v2/agents/thrift/models", json={"model_ids": [strong, cheap]}, headers=admin)
    key = (await env.http.post("/api/v2/agents/thrift/keys", json={}, headers=admin)).json()["key"]
    agent = {"Authorization": f"Bearer {key}"}
    user = {"Authorization": f"Bearer {env.container.jwt.mint('uma', 'acme', ('user',))}"}
    prompt = [{"role": "user", "content": "Write a python function that reverses a string"}]
    for model, rating in ((strong, 1.0), (cheap, 0.3)):  # the strong model answers far better
        for _ in range(12):
            answer = await env.http.post(
                "/v1/chat/completions", json={"model": model, "messages": prompt}, headers=agent
            )
            assert answer.status_code == 200, answer.text
            feedback = f"/api/v2/chat/messages/{answer.headers['x-turnout-message-id']}/feedback"
            assert (await env.http.post(feedback, json={"rating": rating}, headers=user)).status_code == 200

    clock = Clock(datetime(2030, 1, 1, 1, 12, tzinfo=UTC))  # 5% of the day gone
    env.container.spend.clock = clock
    thrift = await env.http.post(
        "/api/v2/budgets",
        json={
            "name": "thrift pace",
            "scope": "agent",
            "scope_id": "thrift",
            "period": "daily",
            "amount_usd": 1000,
            "action": "downgrade",
        },
        headers=admin,
    )
    assert thrift.status_code == 201, thrift.text
    budget_url = f"/api/v2/budgets/{thrift.json()['id']}"

    async def auto() -> httpx.Response:
        answer = await env.http.post(
            "/v1/chat/completions",
            json={"model": "auto", "max_tokens": 20, "messages": prompt},
            headers=agent,
        )
        assert answer.status_code == 200, answer.text
        await env.container.spend.drain()
        return answer

    assert (await auto()).headers["x-turnout-model"] == strong  # far under its pace: quality wins
    spent = (await env.http.get(budget_url, headers=admin)).json()["spent_usd"]
    assert spent > 0
    # a quarter of it spent, with 5% of the day gone: 5x the pace, cost weighs 25x. (At 4x, 16x, the
    # prompt's "code" policy, 0.01 a doubling, left gpt-4o ahead by less than the latency penalty a
    # loaded CI machine can put on gpt-4o-mini's earlier calls: 1 full run in ~6 failed.) What is
    # left still fits a gpt-4o call's worst case, so only the pace steers.
    lowered = await env.http.patch(budget_url, json={"amount_usd": round(spent * 4, 8)}, headers=admin)
    assert lowered.status_code == 200, lowered.text
    thrifty = await auto()
    assert thrifty.headers["x-turnout-model"] == cheap, "ahead of its pace, cost must weigh more"
    decision = await env.http.get(
        f"/api/v2/routing/decisions/{thrifty.headers['x-turnout-message-id']}", headers=admin
    )
    assert "budget 'thrift pace' spent 25%" in decision.text and "5.0x its even pace" in decision.text

    clock.now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)  # half the day gone: under its pace again
    assert (await auto()).headers["x-turnout-model"] == strong


async def test_a_budget_spent_before_it_was_made_steers_the_first_call_until_it_is_raised(
    env: GatewayEnv,
) -> None:
    """A pause_expensive budget set below what the tenant already spent today is used up at once:
    the very first call routed after it leaves out the premium models, and the decision's reason
    names the model it chose. Raising the amount above the spend lets them back in."""
    for _ in range(2):
        assert (await call(env)).status_code == 200
    await env.container.spend.drain()
    spent = sum(float(r.cost_usd or 0) for r in await env.records(2))
    assert spent > 0
    made = await budget(env, amount_usd=round(spent / 2, 8), action="pause_expensive")
    assert made["remaining_usd"] == 0
    await make_premium(env)
    first = await _auto(env)
    chosen = first.headers["x-turnout-model"]
    assert chosen != PREMIUM, "the first call after the budget is already steered"
    reason = await _reason(env, first)
    assert f"{chosen} first" in reason and "used up" in reason
    assert PREMIUM not in reason.split("used up")[0], reason
    raised = await env.http.patch(
        f"/api/v2/budgets/{made['id']}", json={"amount_usd": 100}, headers=tenant_admin(env)
    )
    assert raised.status_code == 200, raised.text
    assert "used up" not in await _reason(env, await _auto(env)), "raised above its spend: no longer used up"


async def test_a_downgrade_budget_is_used_up_by_what_was_spent_not_by_a_worst_case(env: GatewayEnv) -> None:
    """Without max_tokens a premium model's worst case (4,096 output tokens) is far more than a
    call costs: a budget it does not fit is not used up until its spend reaches the amount."""
    await make_premium(env)
    worst = 4096 * (env.container.snapshots.current.models[PREMIUM].pricing_output or 0) / 1e6
    made = await budget(env, amount_usd=round(worst / 2, 8), action="downgrade")
    answer = await _auto(env, max_tokens=None)
    assert answer.headers["x-turnout-model"] == PREMIUM
    assert "used up" not in await _reason(env, answer)
    alerts = (await env.http.get("/api/v2/budgets/alerts", headers=tenant_admin(env))).json()["items"]
    assert [a for a in alerts if a["budget_id"] == made["id"] and a["kind"] == "exhausted"] == []
    shown = (await env.http.get(f"/api/v2/budgets/{made['id']}", headers=tenant_admin(env))).json()
    assert 0 < shown["spent_usd"] < shown["amount_usd"]


async def test_a_budget_counts_what_its_records_cost_to_the_last_digit(env: GatewayEnv) -> None:
    """Each call's cost is a fraction of a micro-dollar's multiple: the budget's spent is the sum of
    the records' costs exactly, not each rounded up to a whole micro-dollar."""
    made = await budget(env, amount_usd=10)
    for _ in range(5):
        assert (await call(env)).status_code == 200
    await env.container.spend.drain()
    recorded = sum(Decimal(str(r.cost_usd or 0)) for r in await env.records(5))
    shown = (await env.http.get(f"/api/v2/budgets/{made['id']}", headers=tenant_admin(env))).json()
    assert Decimal(str(shown["spent_usd"])) == recorded
    assert Decimal(str(shown["remaining_usd"])) == Decimal(10) - recorded


async def test_a_call_larger_than_a_tokens_per_minute_limit_is_told_it_can_never_fit(env: GatewayEnv) -> None:
    made = await env.http.post(
        "/api/v2/limits", json={"scope": "tenant", "tpm": 100}, headers=tenant_admin(env)
    )
    assert made.status_code == 201, made.text
    body = {"model": OPENAI_MODEL, "messages": [{"role": "user", "content": "hi"}]}  # no max_tokens
    refused = await env.http.post(
        "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {env.key}"}
    )
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert "never fit" in error["message"] and error["param"] == "max_tokens"
    assert "retry-after" not in refused.headers, "waiting cannot help"
    assert refused.headers["x-should-retry"] == "false", "nor can an SDK's retries"
    assert refused.headers["x-ratelimit-limit-tokens"] == "100"
    assert (await call(env)).status_code == 200, "with max_tokens 16 it fits"


async def test_a_rate_limit_refusal_carries_openais_rate_limit_headers(env: GatewayEnv) -> None:
    made = await env.http.post(
        "/api/v2/limits", json={"scope": "tenant", "rpm": 1}, headers=tenant_admin(env)
    )
    assert made.status_code == 201, made.text
    assert (await call(env)).status_code == 200
    refused = await call(env)
    assert refused.status_code == 429
    assert refused.headers["x-ratelimit-limit-requests"] == "1"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.headers["x-ratelimit-reset-requests"].endswith("s")
    assert int(refused.headers["retry-after"]) >= 1


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("budgets", {"amount_usd": True}, "amount_usd"),
        ("budgets", {"amount_usd": "5"}, "amount_usd"),
        ("budgets", {"amount_usd": 5, "alert_threshold": "0.5"}, "alert_threshold"),
        ("limits", {"rpm": True}, "rpm"),
        ("limits", {"tpm": "100"}, "tpm"),
    ],
)
async def test_a_wrong_type_is_refused_not_coerced(
    env: GatewayEnv, path: str, body: dict[str, Any], field: str
) -> None:
    base = {"name": "x", "scope": "tenant", "period": "daily"} if path == "budgets" else {"scope": "tenant"}
    answer = await env.http.post(f"/api/v2/{path}", json={**base, **body}, headers=tenant_admin(env))
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == field


async def test_limit_errors_speak_of_limits(env: GatewayEnv) -> None:
    other = await env.http.post(
        "/api/v2/limits", json={"scope": "tenant", "scope_id": "globex", "rpm": 5}, headers=tenant_admin(env)
    )
    assert other.status_code == 403 and "rate limits" in other.json()["error"]["message"]
    empty = await env.http.post("/api/v2/limits", json={"scope": "tenant"}, headers=tenant_admin(env))
    assert empty.status_code == 400
    assert empty.json()["error"]["message"].startswith("set at least one of rpm, tpm, max_concurrent")


async def test_a_budget_may_name_an_agent_the_snapshot_does_not_show_yet(env: GatewayEnv) -> None:
    """An agent made a moment ago through another replica is in the database before this one's
    snapshot: a budget or limit naming it was a 400 'no agent' for up to ~200 ms."""
    from turnout.store.agents import Agent

    async with env.container.sessions.begin() as session:  # as another replica would have made it
        session.add(Agent(tenant_id="acme", id="fresh", name="Fresh"))
    assert ("acme", "fresh") not in env.container.snapshots.current.agents
    await budget(env, name="fresh daily", scope="agent", scope_id="fresh", amount_usd=1)  # 201
    limit = await env.http.post(
        "/api/v2/limits", json={"scope": "agent", "scope_id": "fresh", "rpm": 5}, headers=tenant_admin(env)
    )
    assert limit.status_code == 201, limit.text
    theirs = await env.http.post(  # another tenant's agent is still no one's to budget
        "/api/v2/budgets",
        json={"name": "x", "scope": "agent", "scope_id": "fresh", "period": "daily", "amount_usd": 1},
        headers=tenant_admin(env, "globex"),
    )
    assert theirs.status_code == 400 and theirs.json()["error"]["param"] == "scope_id"


async def test_an_embeddings_call_larger_than_what_is_left_is_refused(env: GatewayEnv) -> None:
    """An embeddings call's worst case is its input: it was reserved at nothing (its prompt was
    counted from chat messages, which it has none of), so a budget let any batch through and
    concurrent ones overspent it. Now its input is counted: a call whose input costs more than
    what is left is refused before its upstream is called; a small one fits and is charged."""
    embedding = "oai/text-embedding-3-small"
    price = env.container.snapshots.current.models[embedding].pricing_input or 0
    assert price > 0
    big = ["word " * 20_000] * 4  # 100,000 characters each: ~100,000 tokens in all
    made = await budget(env, amount_usd=round(price * 50_000 / 1e6, 8))  # half of them
    client = env.openai().with_options(max_retries=0)
    before = env.upstream_calls("POST /v1/embeddings")
    with pytest.raises(openai.RateLimitError) as refused:
        await client.embeddings.create(model=embedding, input=big)
    message = refused.value.message
    assert "budget" in message and "its input" in message and "max_tokens" not in message, message
    assert env.upstream_calls("POST /v1/embeddings") == before, "a refused call reached its upstream"
    small = await client.embeddings.create(model=embedding, input=["hello"])
    assert len(small.data) == 1
    await env.container.spend.drain()
    shown = (await env.http.get(f"/api/v2/budgets/{made['id']}", headers=tenant_admin(env))).json()
    assert 0 < shown["spent_usd"] < shown["amount_usd"] and shown["reserved_usd"] == 0, shown


async def test_an_embeddings_call_counts_its_input_against_a_tokens_per_minute_limit(env: GatewayEnv) -> None:
    """An embeddings call has no output: it counted max_tokens' default of 4096 on top of its input,
    so a 5,000-token limit refused a 3,000-token input as "can never fit; lower max_tokens", which
    an embeddings caller cannot set. It counts its input; one larger than the limit is told so."""
    made = await env.http.post(
        "/api/v2/limits", json={"scope": "tenant", "tpm": 5000}, headers=tenant_admin(env)
    )
    assert made.status_code == 201, made.text
    client = env.openai().with_options(max_retries=0)
    fits = await client.embeddings.create(model="oai/text-embedding-3-small", input="word " * 2400)
    assert fits.usage.prompt_tokens > 0
    with pytest.raises(openai.RateLimitError) as refused:
        await client.embeddings.create(model="oai/text-embedding-3-small", input="word " * 5000)
    body = refused.value.body
    assert isinstance(body, dict) and body["param"] == "input", body
    assert "never fit" in body["message"] and "max_tokens" not in body["message"], body


def worst_case(env: GatewayEnv, model_id: str, prompt_tokens: int, max_tokens: int) -> float:
    model = env.container.snapshots.current.models[model_id]
    return (prompt_tokens * (model.pricing_input or 0) + max_tokens * (model.pricing_output or 0)) / 1e6


TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": f"tool_{i}",
            "description": "Look a record up by its id and return every field of it. " * 10,
            "parameters": {"type": "object", "properties": {"id": {"type": "string"}}},
        },
    }
    for i in range(4)
]  # ~2,700 characters of definitions: ~680 tokens
IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}


async def test_tool_definitions_and_images_count_in_a_calls_reservation(env: GatewayEnv) -> None:
    """A call's worst case counted its messages' text alone: tool definitions and images were
    reserved at nothing, so an agent with a large toolset, or a batch of screenshots, could
    overspend a budget under concurrency by far more than one reservation. They count now (an
    image at the most a provider bills one, 1,600 tokens): a call they make too large for what is
    left is refused before its upstream is called, and the same text without them fits."""
    text_only = reservation(env, 16)
    assert worst_case(env, OPENAI_MODEL, 600, 16) > 3 * text_only
    await budget(env, amount_usd=round(text_only * 2.5, 8))
    client = env.openai().with_options(max_retries=0)
    hi: Any = [{"role": "user", "content": "hi"}]
    with_image: Any = [{"role": "user", "content": [{"type": "text", "text": "hi"}, IMAGE]}]
    for extra in ({"messages": hi, "tools": TOOLS}, {"messages": with_image}):
        with pytest.raises(openai.RateLimitError) as refused:
            await client.chat.completions.create(model=OPENAI_MODEL, max_tokens=16, **extra)
        assert "acme daily" in refused.value.message, refused.value.message
    assert env.upstream_calls() == 0, "a refused call reached its upstream"
    answer = await client.chat.completions.create(model=OPENAI_MODEL, max_tokens=16, messages=hi)
    assert answer.choices[0].message.content


def pdf(pages: int) -> str:
    """A base64 PDF of ``pages`` page objects (enough for a page count; nothing renders it)."""
    objects = b"".join(b"%d 0 obj << /Type /Page /Parent 1 0 R >> endobj\n" % (n + 2) for n in range(pages))
    body = b"%PDF-1.4\n1 0 obj << /Type /Pages /Count " + str(pages).encode() + b" >> endobj\n" + objects
    return base64.b64encode(body + b"%%EOF\n").decode()


async def test_a_pdf_document_counts_its_pages_in_a_calls_reservation(env: GatewayEnv) -> None:
    """An Anthropic client's PDF ``document`` block goes to Claude untouched, but the canonical form
    the spend guard prices holds a placeholder for it, so a 40-page report was reserved as a word.
    Its pages count now (3,000 tokens a page): a budget with room for a few pages refuses the
    40-page call before Claude is called, and answers the same question with a 1-page PDF."""
    one_page = worst_case(env, ANTHROPIC_MODEL, 3_000, 16)
    await budget(env, amount_usd=round(one_page * 4, 8))
    client = env.anthropic()

    async def ask(pages: int) -> Any:
        document = {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": pdf(pages)},
        }
        return await client.messages.create(
            model=ANTHROPIC_MODEL,
            max_tokens=16,
            messages=[{"role": "user", "content": [document, {"type": "text", "text": "Summarise it."}]}],
        )

    with pytest.raises(anthropic.RateLimitError) as refused:
        await ask(40)
    assert "acme daily" in refused.value.message, refused.value.message
    assert env.upstream_calls() == 0, "a refused call reached Claude"
    answer = await ask(1)
    assert answer.content[0].type == "text"
