"""Failover, retries, breakers, rate limits and broken streams, injected at the provider simulator."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.gateway_env import ANTHROPIC_MODEL, OPENAI_MODEL, OPENAI_MODEL_2, GatewayEnv, gw  # noqa: F401

HELLO: Any = [{"role": "user", "content": "hello"}]


def _policy(env: GatewayEnv, **changes: Any) -> None:
    caller = env.container.gateway.caller
    caller.policy = dataclasses.replace(caller.policy, **changes)


async def test_429_with_retry_after_is_retried(gw: GatewayEnv) -> None:  # noqa: F811
    gw.sim.inject("429:1")
    started = time.monotonic()
    done = await gw.openai().chat.completions.create(model=OPENAI_MODEL, messages=HELLO)
    assert done.choices[0].message.content
    assert time.monotonic() - started >= 0.9, "Retry-After was honoured"
    assert gw.upstream_calls() == 2
    assert (await gw.records(1))[-1].attempts == 2


async def test_a_rate_limited_upstream_tells_the_client_when_to_retry(gw: GatewayEnv) -> None:  # noqa: F811
    """An upstream 429 whose Retry-After is longer than Turnout waits (``max_retry_after_s``) is
    passed on with that Retry-After, in either dialect, so the client's SDK waits as long as the
    provider asked; it used to get the 429 without one and retried at once."""
    gw.sim.inject("429:30", count=None)
    with pytest.raises(openai.RateLimitError) as info:
        await (
            gw.openai()
            .with_options(max_retries=0)
            .chat.completions.create(model=OPENAI_MODEL, messages=HELLO)
        )
    assert info.value.response.headers.get("retry-after") == "30", dict(info.value.response.headers)
    with pytest.raises(anthropic.RateLimitError) as claude:
        await (
            gw.anthropic()
            .with_options(max_retries=0)
            .messages.create(model=ANTHROPIC_MODEL, max_tokens=20, messages=HELLO)
        )
    assert claude.value.response.headers.get("retry-after") == "30", dict(claude.value.response.headers)
    assert gw.upstream_calls() + gw.upstream_calls("POST /v1/messages") == 2, "no wait past max_retry_after_s"


async def test_5xx_and_resets_are_retried_before_the_first_byte(gw: GatewayEnv) -> None:  # noqa: F811
    gw.sim.inject("status:503", count=1)
    gw.sim.inject("reset_before", count=1)
    done = await gw.openai().chat.completions.create(model=OPENAI_MODEL, messages=HELLO)
    assert done.choices[0].message.content and gw.upstream_calls() >= 2


async def test_fallbacks_serve_when_a_model_keeps_failing(gw: GatewayEnv) -> None:  # noqa: F811
    gw.sim.inject("status:500", count=None, model="gpt-4o-mini")
    raw = await gw.openai().chat.completions.with_raw_response.create(
        model=OPENAI_MODEL, messages=HELLO, extra_body={"fallbacks": [OPENAI_MODEL_2, ANTHROPIC_MODEL]}
    )
    assert raw.headers["x-turnout-model"] == OPENAI_MODEL_2
    assert raw.parse().model == OPENAI_MODEL_2
    row = (await gw.records(1))[-1]
    assert row.fallback_used and row.model == OPENAI_MODEL_2 and row.attempts == 4


async def test_all_models_failing_gives_the_provider_error(gw: GatewayEnv) -> None:  # noqa: F811
    gw.sim.inject("status:502", count=None)
    with pytest.raises(openai.APIStatusError) as info:
        await gw.openai().chat.completions.create(
            model=OPENAI_MODEL, messages=HELLO, extra_body={"fallbacks": [OPENAI_MODEL_2]}
        )
    assert info.value.status_code == 502 and "bad gateway" in str(info.value.message).lower()
    assert (await gw.records(1))[-1].status == "error"


async def test_client_errors_are_not_retried(gw: GatewayEnv) -> None:  # noqa: F811
    gw.sim.inject("status:400", count=None)
    with pytest.raises(openai.BadRequestError):
        await gw.openai().chat.completions.create(
            model=OPENAI_MODEL, messages=HELLO, extra_body={"fallbacks": [OPENAI_MODEL_2]}
        )
    assert gw.upstream_calls() == 1


async def test_stall_before_first_byte_times_out_and_falls_back(gw: GatewayEnv) -> None:  # noqa: F811
    _policy(gw, whole_body_timeout_s=0.3, max_retries=0)
    gw.sim.inject("stall:5", count=None, model="gpt-4o-mini")
    started = time.monotonic()
    raw = await gw.openai().chat.completions.with_raw_response.create(
        model=OPENAI_MODEL, messages=HELLO, extra_body={"fallbacks": [ANTHROPIC_MODEL]}
    )
    assert raw.headers["x-turnout-model"] == ANTHROPIC_MODEL and time.monotonic() - started < 3


async def _raw_events(env: GatewayEnv, path: str, body: dict[str, Any], headers: dict[str, str]) -> str:
    async with env.http.stream("POST", path, json=body, headers=headers) as resp:
        assert resp.status_code == 200
        return "".join([part async for part in resp.aiter_text()])


@pytest.mark.parametrize("fault", ["reset_after:3", "stall_after:3:10"])
async def test_openai_stream_broken_after_first_byte_ends_with_error(gw: GatewayEnv, fault: str) -> None:  # noqa: F811
    gw.sim.inject(fault)
    body = {"model": OPENAI_MODEL, "messages": HELLO, "stream": True}
    text = await _raw_events(gw, "/v1/chat/completions", body, {"Authorization": f"Bearer {gw.key}"})
    assert '"error"' in text.strip().splitlines()[-1] and "[DONE]" not in text
    gw.sim.inject(fault)
    stream = await gw.openai().chat.completions.create(model=OPENAI_MODEL, messages=HELLO, stream=True)
    with pytest.raises(openai.APIError):
        async for _ in stream:
            pass
    rows = await gw.records(2)
    assert all(r.status == "error" and r.stream for r in rows[-2:])


async def test_anthropic_stream_broken_after_first_byte_ends_with_error_event(gw: GatewayEnv) -> None:  # noqa: F811
    gw.sim.inject("reset_after:3")
    body = {"model": ANTHROPIC_MODEL, "max_tokens": 50, "messages": HELLO, "stream": True}
    headers = {"x-api-key": gw.key, "anthropic-version": "2023-06-01"}
    text = await _raw_events(gw, "/v1/messages", body, headers)
    assert "event: error" in text and "message_stop" not in text
    gw.sim.inject("reset_after:3")
    client = gw.anthropic()
    with pytest.raises(anthropic.APIError):
        async with client.messages.stream(model=ANTHROPIC_MODEL, max_tokens=50, messages=HELLO) as stream:
            async for _ in stream.text_stream:
                pass


async def test_circuit_breaker_skips_then_probes(gw: GatewayEnv) -> None:  # noqa: F811
    _policy(gw, max_retries=0)
    gw.sim.inject("status:500", count=None, model="gpt-4o-mini")
    client = gw.openai()
    extra = {"fallbacks": [OPENAI_MODEL_2]}
    for _ in range(3):
        await client.chat.completions.create(model=OPENAI_MODEL, messages=HELLO, extra_body=extra)
    failing = gw.sim.stats.models["gpt-4o-mini"]
    assert failing == 3
    for _ in range(3):
        await client.chat.completions.create(model=OPENAI_MODEL, messages=HELLO, extra_body=extra)
    assert gw.sim.stats.models["gpt-4o-mini"] == failing, "open breaker: the failing model is skipped"
    with pytest.raises(openai.APIStatusError) as info:
        await client.chat.completions.create(model=OPENAI_MODEL, messages=HELLO)
    assert info.value.status_code == 503
    await asyncio.sleep(1.1)
    gw.sim.clear_faults()
    raw = await client.chat.completions.with_raw_response.create(
        model=OPENAI_MODEL, messages=HELLO, extra_body=extra
    )
    assert raw.headers["x-turnout-model"] == OPENAI_MODEL, (
        "after the cool-down one probe goes through and closes it"
    )
    assert gw.sim.stats.models["gpt-4o-mini"] == failing + 1


async def test_provider_rpm_limit(gw: GatewayEnv) -> None:  # noqa: F811
    resp = await gw.http.patch("/api/v2/admin/providers/oai", json={"rate_limit_rpm": 2}, headers=gw.admin)
    assert resp.status_code == 200
    await gw.container.snapshots.reload()
    client = gw.openai()
    for _ in range(2):
        await client.chat.completions.create(model=OPENAI_MODEL, messages=HELLO)
    with pytest.raises(openai.RateLimitError) as info:
        await client.chat.completions.create(model=OPENAI_MODEL, messages=HELLO)
    assert 0 < int(info.value.response.headers["retry-after"]) <= 60
    raw = await client.chat.completions.with_raw_response.create(
        model=OPENAI_MODEL, messages=HELLO, extra_body={"fallbacks": [ANTHROPIC_MODEL]}
    )
    assert raw.headers["x-turnout-model"] == ANTHROPIC_MODEL
    assert gw.upstream_calls() == 2


async def test_client_disconnect_cancels_the_upstream_call(gw: GatewayEnv) -> None:  # noqa: F811
    gw.sim.inject("slow:5")
    with pytest.raises(httpx.ReadTimeout):
        await gw.http.post(
            "/v1/chat/completions",
            json={"model": OPENAI_MODEL, "messages": HELLO},
            headers={"Authorization": f"Bearer {gw.key}"},
            timeout=0.5,
        )
    row = (await gw.records(1))[-1]
    assert row.status == "cancelled"
    # the upstream had the prompt: priced, estimated (a client could spend by leaving, unrecorded)
    assert row.prompt_tokens and row.cost_usd and row.usage_estimated, (row.prompt_tokens, row.cost_usd)
    gw.sim.config.tokens_per_second = 5
    async with gw.http.stream(
        "POST",
        "/v1/chat/completions",
        json={"model": OPENAI_MODEL, "messages": HELLO, "stream": True},
        headers={"Authorization": f"Bearer {gw.key}"},
    ) as resp:
        async for _ in resp.aiter_bytes():
            break
    rows = await gw.records(2)
    assert rows[-1].status == "cancelled" and rows[-1].stream
    assert rows[-1].prompt_tokens and rows[-1].cost_usd and rows[-1].usage_estimated
