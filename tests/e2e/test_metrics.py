"""``/metrics``: a Prometheus scrape of a live gateway, parsed with ``prometheus_client.parser``,
agrees with the stored call records (requests, tokens, cost, latency counts, retries, fallbacks,
routing choices); gauges show an open breaker, the writer's backlog and a budget's spend; the
endpoint wants the metrics token or a platform admin; a metrics port serves it without one; with
two workers a scrape sums both."""

from __future__ import annotations

import asyncio
import math
import secrets
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from tests.gateway_env import ANTHROPIC_MODEL, OPENAI_MODEL, OPENAI_MODEL_2, GatewayEnv, gateway, provision
from tests.live_server import free_port
from tests.security.test_records_crash import _env, _kill, _serve, _until_every_worker_knows, sim  # noqa: F401
from turnout.auth.jwt_tokens import JwtCodec
from turnout.config import Settings

HELLO: Any = [{"role": "user", "content": "hello"}]
TOKEN = "scrape-" + secrets.token_hex(8)
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of a scrape: (name, sorted labels) -> value."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def total(samples: Samples, metric: str, /, **labels: str) -> float:
    """The sum of ``metric``'s samples whose labels include ``labels``."""
    return sum(
        value
        for (sample, have), value in samples.items()
        if sample == metric and set(labels.items()) <= set(have)
    )


async def scrape(gw: GatewayEnv, token: str = TOKEN) -> Samples:
    resp = await gw.http.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain")
    return parse(resp.text)


async def test_the_counters_agree_with_the_records(tmp_path: Path) -> None:
    async with gateway(tmp_path, metrics_token=SecretStr(TOKEN)) as gw:
        client = gw.openai()
        for _ in range(3):
            await client.chat.completions.create(model=OPENAI_MODEL, messages=HELLO)
        for _ in range(2):  # streamed, in the Anthropic dialect
            async with gw.anthropic().messages.stream(
                model=ANTHROPIC_MODEL, max_tokens=50, messages=HELLO
            ) as stream:
                await stream.get_final_message()
        for _ in range(2):  # the router chooses
            await client.chat.completions.create(model="auto", messages=HELLO)
        gw.sim.inject("status:503", count=None, model="gpt-4o-mini")  # served by the fallback
        await client.chat.completions.create(
            model=OPENAI_MODEL, messages=HELLO, extra_body={"fallbacks": [OPENAI_MODEL_2]}
        )
        gw.sim.inject("status:502", count=None)  # every model fails: an error record
        with pytest.raises(openai.APIStatusError):
            await client.chat.completions.create(model=OPENAI_MODEL_2, messages=HELLO)
        gw.sim.clear_faults()
        rows = await gw.records(9)
        assert len(rows) == 9
        samples = await scrape(gw)

    by_labels = Counter(
        (r.model, r.provider, r.dialect, r.status, "hit" if r.cache_hit else "miss") for r in rows
    )
    assert len(by_labels) >= 4, by_labels
    for (model, provider, dialect, status, cache), count in by_labels.items():
        labels = {"model": model, "provider": provider, "dialect": dialect, "status": status, "cache": cache}
        assert total(samples, "turnout_requests_total", **labels) == count, labels
    assert total(samples, "turnout_requests_total") == len(rows)
    assert total(samples, "turnout_requests_total", status="error") == 1
    for model in {r.model for r in rows}:
        mine = [r for r in rows if r.model == model]
        prompt = sum(r.prompt_tokens or 0 for r in mine)
        completion = sum(r.completion_tokens or 0 for r in mine)
        assert total(samples, "turnout_tokens_total", model=model, direction="input") == prompt
        assert total(samples, "turnout_tokens_total", model=model, direction="output") == completion
        cost = sum(float(r.cost_usd or 0) for r in mine)
        assert math.isclose(total(samples, "turnout_cost_usd_total", model=model), cost, abs_tol=1e-9)
        count = total(samples, "turnout_request_duration_seconds_count", model=model)
        assert count == len(mine), model
        assert total(samples, "turnout_request_duration_seconds_bucket", model=model, le="+Inf") == len(mine)
    streamed = [r for r in rows if r.stream and r.ttft_ms is not None]
    assert len(streamed) == 2 and total(samples, "turnout_time_to_first_token_seconds_count") == 2
    assert total(samples, "turnout_retries_total") == sum(r.attempts - 1 for r in rows if r.attempts)
    assert total(samples, "turnout_fallbacks_total", model=OPENAI_MODEL_2) == 1
    routed = Counter((r.task_type, r.model) for r in rows if r.policy is not None)
    assert sum(routed.values()) == 2
    for (task, model), count in routed.items():
        assert total(samples, "turnout_routing_decisions_total", task=task, model=model) == count
    assert ("turnout_record_queue_depth", ()) in samples  # sampled at the scrape
    assert not any("api_key" in dict(labels) for _, labels in samples), "no per-key labels by default"


async def test_callers_task_types_cannot_grow_the_label_set(tmp_path: Path) -> None:
    """task_type is the caller's free text: 70 names give 64 task labels and ``other``, not 70."""
    async with gateway(tmp_path, metrics_token=SecretStr(TOKEN)) as gw:
        for n in range(70):
            answer = await gw.http.post(
                "/v1/chat/completions",
                json={"model": "auto", "task_type": f"made-up-{n}", "messages": HELLO},
                headers={"Authorization": f"Bearer {gw.key}"},
            )
            assert answer.status_code == 200, answer.text
        await gw.records(70)
        samples = await scrape(gw)
    tasks = {dict(labels)["task"] for name, labels in samples if name == "turnout_routing_decisions_total"}
    assert len(tasks) == 65 and "other" in tasks, sorted(tasks)
    assert total(samples, "turnout_routing_decisions_total") == 70
    assert total(samples, "turnout_routing_decisions_total", task="other") == 6


async def test_gauges_show_an_open_breaker_and_a_budgets_spend(tmp_path: Path) -> None:
    # the breaker stays open past the scrape: with the test settings' 1 s cooldown, waiting for the
    # records on a loaded CI machine outlasted it and the gauge read the half-open breaker's 0
    async with gateway(
        tmp_path, metrics_token=SecretStr(TOKEN), metrics_key_labels=True, breaker_cooldown_s=60.0
    ) as gw:
        tenant_admin = {"Authorization": f"Bearer {gw.container.jwt.mint('ann', 'acme', ['tenant_admin'])}"}
        budget = await gw.http.post(
            "/api/v2/budgets",
            json={"name": "bot-daily", "scope": "agent", "scope_id": gw.agent_id, "period": "daily",
                  "amount_usd": 5, "action": "block"},
            headers=tenant_admin,
        )  # fmt: skip
        assert budget.status_code == 201, budget.text
        await gw.container.snapshots.reload()
        client = gw.openai()
        await client.chat.completions.create(model=OPENAI_MODEL, messages=HELLO)
        gw.sim.inject("status:503", count=None, model="gpt-4o")
        for _ in range(3):  # the breaker threshold of these settings
            with pytest.raises(openai.APIStatusError):
                await client.chat.completions.create(model=OPENAI_MODEL_2, messages=HELLO)
        rows = await gw.records(4)
        await gw.container.spend.drain()
        samples = await scrape(gw)
        spent = sum(float(r.cost_usd or 0) for r in rows)
        labels = {"name": "bot-daily", "scope": "agent", "period": "daily"}
        assert spent > 0
        assert math.isclose(total(samples, "turnout_budget_spent_usd", **labels), spent, abs_tol=2e-6)
        assert total(samples, "turnout_budget_amount_usd", **labels) == 5
        assert total(samples, "turnout_budget_reserved_usd", **labels) == 0
        assert total(samples, "turnout_breaker_open", model=OPENAI_MODEL_2) == 1
        assert total(samples, "turnout_breaker_open", model=OPENAI_MODEL) == 0
        key_id = rows[0].api_key_id
        assert key_id and total(samples, "turnout_requests_total", api_key=key_id) == 4  # configured on


async def test_metrics_want_the_token_or_a_platform_admin(tmp_path: Path) -> None:
    async with gateway(tmp_path, metrics_token=SecretStr(TOKEN)) as gw:
        assert (await gw.http.get("/metrics")).status_code == 401
        wrong = await gw.http.get("/metrics", headers={"Authorization": "Bearer scrape-wrong"})
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
        agent = await gw.http.get("/metrics", headers={"Authorization": f"Bearer {gw.key}"})
        assert agent.status_code == 401  # agent keys are not admin credentials
        tenant_admin = gw.container.jwt.mint("ann", "acme", ["tenant_admin"])
        assert (
            await gw.http.get("/metrics", headers={"Authorization": f"Bearer {tenant_admin}"})
        ).status_code == 403
        assert (await gw.http.get("/metrics", headers=gw.admin)).status_code == 200
    async with gateway(tmp_path / "off", metrics=False) as gw:
        off = await gw.http.get("/metrics", headers=gw.admin)
        assert off.status_code == 404 and off.json()["error"]["code"] == "metrics_off"


async def test_an_empty_metrics_token_opens_nothing(tmp_path: Path) -> None:
    """TURNOUT_METRICS_TOKEN= (a secret left unset) is no token: an empty bearer was let in."""
    assert Settings(metrics_token=SecretStr(""), _env_file=None).metrics_token is None  # type: ignore[call-arg]
    async with gateway(tmp_path, metrics_token=SecretStr("")) as gw:  # set past validation, as tests do
        for header in ("Bearer", "bearer"):  # what curl sends for "Bearer " (the space trimmed)
            resp = await gw.http.get("/metrics", headers={"Authorization": header})
            assert resp.status_code == 401, (header, resp.status_code)


async def test_a_metrics_port_serves_without_a_token(tmp_path: Path) -> None:
    port = free_port()
    async with gateway(tmp_path, metrics_port=port) as gw:
        await gw.openai().chat.completions.create(model=OPENAI_MODEL, messages=HELLO)
        await gw.records(1)
        deadline = asyncio.get_running_loop().time() + 5  # the port shows what was counted by the
        async with httpx.AsyncClient() as http:  # last flush (every second), not a flush of its own
            while True:
                resp = await http.get(f"http://127.0.0.1:{port}/metrics")
                assert resp.status_code == 200
                served = total(parse(resp.text), "turnout_requests_total", model=OPENAI_MODEL)
                if served or asyncio.get_running_loop().time() > deadline:
                    break
                await asyncio.sleep(0.1)
        assert served == 1
        assert (await gw.http.get("/metrics")).status_code == 401  # the main port still wants a token


async def test_two_workers_are_summed_in_one_scrape(tmp_path: Path, sim: str) -> None:  # noqa: F811
    port = free_port()
    env = _env(f"sqlite+aiosqlite:///{tmp_path}/gw.db", tmp_path, workers=2) | {
        "TURNOUT_METRICS_PORT": str(port),
        "TURNOUT_RECORD_FLUSH_INTERVAL_S": "0.05",
    }
    served = await _serve(env, tmp_path, "workers")
    try:
        jwt = JwtCodec(env["TURNOUT_JWT_SECRET"])
        make_token = lambda sub, tenant, roles: jwt.mint(sub, tenant, roles)  # noqa: E731
        async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
            _, _, key = await provision(http, make_token, sim)
        await _until_every_worker_knows(served.url, key)
        async with httpx.AsyncClient() as http:
            before = total(
                parse((await http.get(f"http://127.0.0.1:{port}/metrics")).text), "turnout_requests_total"
            )
        calls = 40

        async def call() -> None:
            async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:  # a new connection
                resp = await http.post(
                    "/v1/chat/completions",
                    json={"model": OPENAI_MODEL, "messages": HELLO},
                    headers={"Authorization": f"Bearer {key}"},
                )
                assert resp.status_code == 200, resp.text

        await asyncio.gather(*(call() for _ in range(calls)))
        deadline = asyncio.get_running_loop().time() + 10  # each worker counts at least every second
        async with httpx.AsyncClient() as http:
            while True:
                text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
                after = total(parse(text), "turnout_requests_total")
                if after - before >= calls or asyncio.get_running_loop().time() > deadline:
                    break
                await asyncio.sleep(0.2)
        assert after - before == calls, (before, after)  # whichever worker answered each
    finally:
        await _kill(served, signal.SIGTERM)
