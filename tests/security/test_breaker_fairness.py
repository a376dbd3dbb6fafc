"""No tenant can take a model away from the others through the circuit breaker or the timeouts.

Tenant acme (the ``gw`` fixture's agent) misbehaves; tenant globex uses the same model and must not
notice. The breaker counts requests, not retry attempts; failures a request may have caused (a 500
on that input, a long generation running out of time) count for the caller's tenant only; local
faults count for nobody; a cancelled probe lets the next one through; an open circuit says when to
come back.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import resource
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.gateway_env import OPENAI_MODEL, GatewayEnv, gw  # noqa: F401

HELLO: Any = [{"role": "user", "content": "hello"}]
UPSTREAM_MODEL = OPENAI_MODEL.split("/", 1)[1]


def _policy(env: GatewayEnv, **changes: Any) -> None:
    caller = env.container.gateway.caller
    caller.policy = dataclasses.replace(caller.policy, **changes)


async def _other_tenant(env: GatewayEnv) -> openai.AsyncOpenAI:
    """Tenant globex with its own agent, allowed the same model, and an SDK client on its key."""
    token = env.container.jwt.mint("gus", "globex", ["tenant_admin"])
    owner = {"Authorization": f"Bearer {token}"}
    made = await env.http.post("/api/v2/agents", json={"id": "globex-bot", "name": "G"}, headers=owner)
    assert made.status_code == 201, made.text
    enabled = await env.http.post(
        "/api/v2/agents/globex-bot/models", json={"model_ids": [OPENAI_MODEL]}, headers=owner
    )
    assert enabled.status_code == 200, enabled.text
    key = (await env.http.post("/api/v2/agents/globex-bot/keys", json={}, headers=owner)).json()["key"]
    client = openai.AsyncOpenAI(base_url=f"{env.url}/v1", api_key=key, max_retries=0)
    env.clients.append(client)
    return client


async def test_slow_generations_are_sent_once_and_trip_nothing_for_others(gw: GatewayEnv) -> None:  # noqa: F811
    globex = await _other_tenant(gw)
    _policy(gw, whole_body_timeout_s=0.3)
    gw.sim.inject("stall:2", count=None, model=UPSTREAM_MODEL)
    acme = gw.openai()
    for _ in range(4):  # more than the breaker's threshold (3 in the test settings)
        with pytest.raises(openai.APIStatusError) as info:
            await acme.chat.completions.create(model=OPENAI_MODEL, messages=HELLO)
        assert info.value.status_code in (503, 504)
    assert gw.upstream_calls() <= 3, "a slow generation is not sent again, and stops after the threshold"
    gw.sim.clear_faults()
    done = await globex.chat.completions.create(model=OPENAI_MODEL, messages=HELLO)
    assert done.choices[0].message.content, "another tenant still gets the model"


async def test_request_caused_500s_count_per_request_and_only_for_their_tenant(gw: GatewayEnv) -> None:  # noqa: F811
    globex = await _other_tenant(gw)
    gw.sim.inject("status:500", count=None, model=UPSTREAM_MODEL)  # as llama.cpp does for some inputs
    acme = gw.openai()
    for _ in range(2):
        with pytest.raises(openai.APIStatusError) as info:
            await acme.chat.completions.create(model=OPENAI_MODEL, messages=HELLO)
        assert info.value.status_code == 502
    assert gw.upstream_calls() == 6, "each request is retried (3 attempts) ..."
    with pytest.raises(openai.APIStatusError):
        await acme.chat.completions.create(model=OPENAI_MODEL, messages=HELLO)
    assert gw.upstream_calls() == 9, "... but the breaker counts requests: the third still goes upstream"
    with pytest.raises(openai.APIStatusError) as info:
        await acme.chat.completions.create(model=OPENAI_MODEL, messages=HELLO)
    assert info.value.status_code == 503 and gw.upstream_calls() == 9, "now open for acme"
    assert 1 <= int(info.value.response.headers["retry-after"]) <= 1, "the 503 says when to come back"
    gw.sim.clear_faults()
    done = await globex.chat.completions.create(model=OPENAI_MODEL, messages=HELLO)
    assert done.choices[0].message.content, "the breaker opened for acme only"


async def test_provider_faults_still_open_the_breaker_for_everyone(gw: GatewayEnv) -> None:  # noqa: F811
    globex = await _other_tenant(gw)
    _policy(gw, max_retries=0)
    gw.sim.inject("status:503", count=None, model=UPSTREAM_MODEL)
    acme = gw.openai()
    for _ in range(3):
        with pytest.raises(openai.APIStatusError):
            await acme.chat.completions.create(model=OPENAI_MODEL, messages=HELLO)
    with pytest.raises(openai.APIStatusError) as info:
        await globex.chat.completions.create(model=OPENAI_MODEL, messages=HELLO)
    assert info.value.status_code == 503 and "circuit open" in info.value.message
    assert gw.upstream_calls() == 3, "a provider that is down is skipped for every tenant"


async def test_a_cancelled_probe_lets_the_next_request_probe(gw: GatewayEnv) -> None:  # noqa: F811
    _policy(gw, max_retries=0)
    gw.sim.inject("status:503", count=3, model=UPSTREAM_MODEL)
    acme = gw.openai()
    for _ in range(3):
        with pytest.raises(openai.APIStatusError):
            await acme.chat.completions.create(model=OPENAI_MODEL, messages=HELLO)
    await asyncio.sleep(1.1)  # the cool-down (1 s in the test settings)
    gw.sim.inject("slow:5", count=1, model=UPSTREAM_MODEL)
    with pytest.raises(httpx.ReadTimeout):  # the probe: its client goes away
        await gw.http.post(
            "/v1/chat/completions",
            json={"model": OPENAI_MODEL, "messages": HELLO},
            headers={"Authorization": f"Bearer {gw.key}"},
            timeout=0.5,
        )
    await asyncio.sleep(0.1)
    done = await acme.chat.completions.create(model=OPENAI_MODEL, messages=HELLO)
    assert done.choices[0].message.content, "the cancelled probe released its slot"


@contextlib.contextmanager
def _no_free_descriptors() -> Iterator[None]:
    """Exhaust this process's file descriptors (EMFILE on the next socket), then give them back."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    held: list[int] = []
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 64, hard))
    try:
        with contextlib.suppress(OSError):
            while True:
                held.append(os.open(os.devnull, os.O_RDONLY))
        yield
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_local_faults_do_not_count_against_the_provider(gw: GatewayEnv) -> None:  # noqa: F811
    _policy(gw, max_retries=0)
    body = {"model": OPENAI_MODEL, "messages": HELLO}
    headers = {"Authorization": f"Bearer {gw.key}"}
    async with httpx.AsyncClient(base_url=gw.url, timeout=10) as http:
        # a call first: the client's own connection, and the provider's key read from the secret
        # store (cached), exist before the descriptors run out; only the upstream connect fails
        assert (await http.post("/v1/chat/completions", json=body, headers=headers)).status_code == 200
        await gw.container.http.close()  # no pooled upstream connection: the next call must open one
        with _no_free_descriptors():
            answers = [await http.post("/v1/chat/completions", json=body, headers=headers) for _ in range(5)]
        assert {a.status_code for a in answers} == {503}, [a.text for a in answers]
        assert all("local resources" in a.json()["error"]["message"] for a in answers)
        assert not gw.container.gateway.caller.breakers.is_open(OPENAI_MODEL, "acme")
        ok = await http.post("/v1/chat/completions", json=body, headers=headers)
    assert ok.status_code == 200, ok.text
