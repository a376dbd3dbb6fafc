"""The response cache as clients meet it: the official SDKs against a live Turnout in front of the
simulator, on the embedded store (SQLite) and on Redis. A hit never reaches the upstream (its call
counters stay put), says ``x-turnout-cache: hit``, costs nothing and is recorded as a hit."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.gateway_env import (  # noqa: F401
    ANTHROPIC_MODEL,
    OPENAI_MODEL,
    OPENAI_MODEL_2,
    SIM_KEY,
    GatewayEnv,
    gateway,
    gw,
)

CACHED = {"ttl_s": 300}
ASK: Any = [{"role": "user", "content": "What is a turnout on a railway?"}]
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def tenant_admin(env: GatewayEnv, tenant: str = "acme") -> dict[str, str]:
    token = env.container.jwt.mint("ann", tenant, ("tenant_admin",))
    return {"Authorization": f"Bearer {token}"}


async def agent_cache(env: GatewayEnv, setting: dict[str, Any] | None, agent: str = "bot") -> dict[str, Any]:
    """Set the agent's ``response_cache`` through the agents API (PATCH), as an admin would."""
    resp = await env.http.patch(
        f"/api/v2/agents/{agent}", json={"response_cache": setting}, headers=tenant_admin(env)
    )
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


async def ask(env: GatewayEnv, **changes: Any) -> Any:
    """One chat call through the OpenAI SDK (temperature 0 unless told), with its raw response."""
    body: dict[str, Any] = {"model": OPENAI_MODEL, "messages": ASK, "temperature": 0, **changes}
    body = {k: v for k, v in body.items() if v is not None}
    return await env.openai().chat.completions.with_raw_response.create(**body)


async def message(env: GatewayEnv, message_id: str) -> dict[str, Any]:
    """The call's record through ``GET /api/v2/messages/{id}`` (after the batch writer stored it)."""
    for _ in range(100):
        resp = await env.http.get(f"/api/v2/messages/{message_id}", headers=tenant_admin(env))
        if resp.status_code == 200:
            return resp.json()  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError(f"message {message_id} never stored: {resp.text}")


async def test_a_second_identical_request_is_a_hit_recorded_at_no_cost(gw: GatewayEnv) -> None:  # noqa: F811
    shown = await agent_cache(gw, CACHED)
    assert shown["response_cache"] == {"enabled": True, "ttl_s": 300, "include_sampled": False}
    first = await ask(gw)
    assert first.headers["x-turnout-cache"] == "miss" and gw.upstream_calls() == 1
    second = await ask(gw)
    assert second.headers["x-turnout-cache"] == "hit"
    assert gw.upstream_calls() == 1  # answered without the provider
    one, two = first.parse(), second.parse()
    assert two.choices[0].message.content == one.choices[0].message.content
    assert two.usage is not None and two.usage.completion_tokens == one.usage.completion_tokens
    assert two.model == OPENAI_MODEL and second.headers["x-turnout-model"] == OPENAI_MODEL
    assert float(second.headers["x-turnout-cost-usd"]) == 0
    assert float(first.headers["x-turnout-cost-usd"]) > 0
    hit = await message(gw, second.headers["x-turnout-message-id"])
    assert hit["cache_hit"] is True and float(hit["cost_usd"]) == 0 and hit["status"] == "ok"
    assert hit["model"] == OPENAI_MODEL and hit["attempts"] == 0
    miss = await message(gw, first.headers["x-turnout-message-id"])
    assert miss["cache_hit"] is False and float(miss["cost_usd"]) > 0


async def test_a_stream_after_a_whole_answer_hits_and_streams(gw: GatewayEnv) -> None:  # noqa: F811
    await agent_cache(gw, CACHED)
    whole = (await ask(gw)).parse()
    client = gw.openai()
    raw = await client.chat.completions.with_raw_response.create(
        model=OPENAI_MODEL,
        messages=ASK,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    assert raw.headers["x-turnout-cache"] == "hit"
    text, usage, finish = [], None, None
    async for chunk in raw.parse():
        usage = chunk.usage or usage
        for choice in chunk.choices:
            text.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert "".join(text) == whole.choices[0].message.content
    assert finish == "stop" and usage is not None and usage.completion_tokens == whole.usage.completion_tokens
    assert gw.upstream_calls() == 1
    hit = await message(gw, raw.headers["x-turnout-message-id"])
    assert hit["cache_hit"] is True and hit["stream"] is True


async def test_tool_calls_are_cached_and_streamed_back(gw: GatewayEnv) -> None:  # noqa: F811
    await agent_cache(gw, CACHED)
    client = gw.openai()
    messages: Any = [{"role": "user", "content": "What is the weather in Paris?"}]
    whole = await client.chat.completions.create(
        model=OPENAI_MODEL, messages=messages, tools=[WEATHER], temperature=0
    )
    call = whole.choices[0].message.tool_calls[0]
    async with client.chat.completions.stream(
        model=OPENAI_MODEL, messages=messages, tools=[WEATHER], temperature=0
    ) as stream:
        final = await stream.get_final_completion()
    streamed = final.choices[0].message.tool_calls[0]
    assert (streamed.id, streamed.function.name, streamed.function.arguments) == (
        call.id,
        call.function.name,
        call.function.arguments,
    )
    assert final.choices[0].finish_reason == "tool_calls" and gw.upstream_calls() == 1


async def test_a_streamed_miss_is_kept_for_the_next_call(gw: GatewayEnv) -> None:  # noqa: F811
    await agent_cache(gw, CACHED)
    client = gw.openai()
    raw = await client.chat.completions.with_raw_response.create(
        model=OPENAI_MODEL, messages=ASK, temperature=0, stream=True
    )
    assert raw.headers["x-turnout-cache"] == "miss"
    text = "".join([c.choices[0].delta.content or "" async for c in raw.parse() if c.choices])
    again = await ask(gw)
    assert again.headers["x-turnout-cache"] == "hit" and gw.upstream_calls() == 1
    answer = again.parse()
    assert answer.choices[0].message.content == text
    assert answer.usage is not None and answer.usage.completion_tokens > 0


async def test_answers_expire_after_their_ttl(gw: GatewayEnv) -> None:  # noqa: F811
    await agent_cache(gw, {"ttl_s": 1})
    await ask(gw)
    assert (await ask(gw)).headers["x-turnout-cache"] == "hit"
    await asyncio.sleep(1.1)
    later = await ask(gw)
    assert later.headers["x-turnout-cache"] == "miss" and gw.upstream_calls() == 2
    assert (await ask(gw)).headers["x-turnout-cache"] == "hit" and gw.upstream_calls() == 2


async def test_sampled_requests_are_cached_only_when_included(gw: GatewayEnv) -> None:  # noqa: F811
    await agent_cache(gw, CACHED)
    for temperature in (None, 0.7):  # absent: OpenAI's default of 1, sampled
        for _ in range(2):
            raw = await ask(gw, temperature=temperature)
            assert "x-turnout-cache" not in raw.headers
    assert gw.upstream_calls() == 4
    await agent_cache(gw, {"ttl_s": 300, "include_sampled": True})
    await ask(gw, temperature=0.7)
    assert (await ask(gw, temperature=0.7)).headers["x-turnout-cache"] == "hit"
    assert gw.upstream_calls() == 5


async def test_a_different_model_temperature_or_prompt_is_a_miss(gw: GatewayEnv) -> None:  # noqa: F811
    await agent_cache(gw, {"ttl_s": 300, "include_sampled": True})
    await ask(gw)
    variants: list[dict[str, Any]] = [
        {"model": OPENAI_MODEL_2},
        {"temperature": 0.5},
        {"messages": [{"role": "user", "content": "What is a turnout in an election?"}]},
        {"max_tokens": 10},
        {"tools": [WEATHER]},
        {"seed": 7},
    ]
    for count, variant in enumerate(variants, start=2):
        raw = await ask(gw, **variant)
        assert raw.headers["x-turnout-cache"] == "miss", variant
        assert gw.upstream_calls() == count, variant
    # what never reaches the model does not split the key: metadata, user, stream options
    same = await ask(gw, user="someone", extra_body={"metadata": {"conversation_id": "c-9"}})
    assert same.headers["x-turnout-cache"] == "hit" and gw.upstream_calls() == len(variants) + 1


async def test_a_cached_answer_never_crosses_tenants(gw: GatewayEnv) -> None:  # noqa: F811
    await agent_cache(gw, CACHED)
    globex = tenant_admin(gw, "globex")
    created = await gw.http.post(
        "/api/v2/agents", json={"id": "bot", "name": "Bot", "response_cache": CACHED}, headers=globex
    )
    assert created.status_code == 201, created.text
    key = (await gw.http.post("/api/v2/agents/bot/keys", json={}, headers=globex)).json()["key"]
    enabled = await gw.http.post(
        "/api/v2/agents/bot/models", json={"model_ids": [OPENAI_MODEL]}, headers=globex
    )
    assert enabled.status_code < 300, enabled.text
    await ask(gw)
    assert (await ask(gw)).headers["x-turnout-cache"] == "hit" and gw.upstream_calls() == 1
    other = openai.AsyncOpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0)
    try:
        first = await other.chat.completions.with_raw_response.create(
            model=OPENAI_MODEL, messages=ASK, temperature=0
        )
        assert first.headers["x-turnout-cache"] == "miss"
        assert gw.upstream_calls() == 2  # the same request from another tenant reached the upstream
        again = await other.chat.completions.with_raw_response.create(
            model=OPENAI_MODEL, messages=ASK, temperature=0
        )
        assert again.headers["x-turnout-cache"] == "hit" and gw.upstream_calls() == 2
    finally:
        await other.close()


async def test_an_agent_without_the_setting_never_caches(gw: GatewayEnv) -> None:  # noqa: F811
    shown = (await gw.http.get("/api/v2/agents/bot", headers=tenant_admin(gw))).json()
    assert shown["response_cache"] is None
    for _ in range(3):
        assert "x-turnout-cache" not in (await ask(gw)).headers
    assert gw.upstream_calls() == 3
    embeddings = gw.openai().embeddings  # embeddings are never cached, whatever the setting
    await agent_cache(gw, CACHED)
    for _ in range(2):
        await embeddings.create(model="oai/text-embedding-3-small", input="same")
    assert gw.upstream_calls("POST /v1/embeddings") == 2


async def test_a_policy_caches_the_calls_it_routes(gw: GatewayEnv) -> None:  # noqa: F811
    policy = await gw.http.put(
        "/api/v2/routing/policies/normal", json={"cache": {"ttl_s": 60}}, headers=gw.admin
    )
    assert policy.status_code == 200 and policy.json()["cache"]["ttl_s"] == 60, policy.text
    first = await ask(gw, model="auto")
    routed = first.headers["x-turnout-model"]
    calls = gw.sim.stats.total
    second = await ask(gw, model="auto")
    assert second.headers["x-turnout-cache"] == "hit" and gw.sim.stats.total == calls
    assert second.headers["x-turnout-model"] == routed
    record = await message(gw, second.headers["x-turnout-message-id"])
    assert record["policy"] == "normal" and record["cache_hit"] is True
    # a named model is not routed by the policy: its cache does not apply
    for _ in range(2):
        assert "x-turnout-cache" not in (await ask(gw)).headers
    # the agent's own setting wins: enabled false turns the policy's cache off for it
    await agent_cache(gw, {"enabled": False})
    assert "x-turnout-cache" not in (await ask(gw, model="auto")).headers


async def test_the_anthropic_dialect_gets_hits(gw: GatewayEnv) -> None:  # noqa: F811
    await agent_cache(gw, CACHED)
    client = gw.anthropic()
    for model, route in ((ANTHROPIC_MODEL, "POST /v1/messages"), (OPENAI_MODEL, "POST /v1/chat/completions")):
        # this SDK has no ``temperature`` argument any more; the API still takes it
        body: Any = {"model": model, "max_tokens": 64, "messages": ASK, "extra_body": {"temperature": 0}}
        first = await client.messages.with_raw_response.create(**body)
        assert first.headers["x-turnout-cache"] == "miss" and gw.upstream_calls(route) == 1
        second = await client.messages.with_raw_response.create(**body)
        assert second.headers["x-turnout-cache"] == "hit" and gw.upstream_calls(route) == 1
        whole, again = await first.parse(), await second.parse()
        assert again.content[0].text == whole.content[0].text and again.model == model
        assert again.stop_reason == "end_turn" and again.usage.output_tokens == whole.usage.output_tokens
        async with client.messages.stream(**body) as stream:
            text = [t async for t in stream.text_stream]
            final = await stream.get_final_message()
        assert "".join(text) == whole.content[0].text and gw.upstream_calls(route) == 1
        assert final.usage.output_tokens == whole.usage.output_tokens
    # a stream passed through untouched (Anthropic to Anthropic) is kept once it ends
    body = {"model": ANTHROPIC_MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "Stream"}]}
    body["extra_body"] = {"temperature": 0}
    async with client.messages.stream(**body) as stream:
        streamed = await stream.get_final_message()
    assert gw.upstream_calls("POST /v1/messages") == 2
    after = await client.messages.with_raw_response.create(**body)
    assert after.headers["x-turnout-cache"] == "hit" and gw.upstream_calls("POST /v1/messages") == 2
    assert (await after.parse()).content[0].text == streamed.content[0].text


async def test_the_responses_api_gets_hits(gw: GatewayEnv) -> None:  # noqa: F811
    """Whole and streamed, passed through to the simulator's ``/v1/responses`` or not: a hit is
    the canonical answer written as a Responses object (or its typed events)."""
    await agent_cache(gw, CACHED)
    responses = gw.openai().responses
    first = await responses.with_raw_response.create(model=OPENAI_MODEL, input="Hello there", temperature=0)
    second = await responses.with_raw_response.create(model=OPENAI_MODEL, input="Hello there", temperature=0)
    assert first.headers["x-turnout-cache"] == "miss" and second.headers["x-turnout-cache"] == "hit"
    assert gw.sim.stats.total == 1
    one, two = first.parse(), second.parse()
    assert two.output_text == one.output_text and two.id != one.id  # a new call, a new response
    async with responses.stream(model=OPENAI_MODEL, input="Hello there", temperature=0) as stream:
        done = await stream.get_final_response()
    assert done.output_text == one.output_text and gw.sim.stats.total == 1
    async with responses.stream(model=OPENAI_MODEL, input="Stream first", temperature=0) as stream:
        streamed = await stream.get_final_response()  # a streamed miss, kept at its end
    assert gw.sim.stats.total == 2
    whole = await responses.with_raw_response.create(model=OPENAI_MODEL, input="Stream first", temperature=0)
    assert whole.headers["x-turnout-cache"] == "hit" and gw.sim.stats.total == 2
    assert whole.parse().output_text == streamed.output_text


async def test_failed_calls_are_never_kept(gw: GatewayEnv) -> None:  # noqa: F811
    await agent_cache(gw, CACHED)
    gw.sim.inject("status:400")
    with pytest.raises(openai.BadRequestError):
        await ask(gw)
    assert (await ask(gw)).headers["x-turnout-cache"] == "miss" and gw.upstream_calls() == 2
    assert (await ask(gw)).headers["x-turnout-cache"] == "hit"


async def test_bad_cache_settings_are_refused_naming_the_field(gw: GatewayEnv) -> None:  # noqa: F811
    admin = tenant_admin(gw)
    for setting, param in [
        ({"ttl_s": -1}, "response_cache.ttl_s"),
        ({"ttl_s": 0}, "response_cache.ttl_s"),
        ({"ttl_s": "soon"}, "response_cache.ttl_s"),
        ({"ttl": 5}, "response_cache.ttl"),
        ({"include_sampled": "yes"}, "response_cache.include_sampled"),
    ]:
        resp = await gw.http.patch("/api/v2/agents/bot", json={"response_cache": setting}, headers=admin)
        assert resp.status_code in (400, 422) and resp.json()["error"]["param"] == param, resp.text
    created = await gw.http.post(
        "/api/v2/agents", json={"name": "x", "response_cache": {"ttl_s": -5}}, headers=admin
    )
    assert created.status_code in (400, 422), created.text
    assert created.json()["error"]["param"] == "response_cache.ttl_s"
    policy = await gw.http.put(
        "/api/v2/routing/policies/normal", json={"cache": {"ttl_s": -1}}, headers=gw.admin
    )
    assert policy.status_code in (400, 422) and policy.json()["error"]["param"] == "cache.ttl_s"
    unknown = await gw.http.put(
        "/api/v2/routing/policies/normal", json={"cache": {"ttl_s": 5, "shared": True}}, headers=gw.admin
    )
    assert unknown.status_code in (400, 422) and unknown.json()["error"]["param"] == "cache.shared"
    # null clears the agent's setting
    await agent_cache(gw, CACHED)
    assert (await agent_cache(gw, None))["response_cache"] is None


async def test_redis_holds_the_answers_for_every_replica(tmp_path: Path) -> None:
    """With ``TURNOUT_REDIS_URL`` the answers live in Redis (``SET ... EX``): a second gateway on
    another database but the same Redis answers the first one's request without its upstream."""
    from redis.asyncio import Redis

    from tests.services import drop_redis_keys, redis_prefix, redis_url

    url, prefix = await redis_url(), redis_prefix()
    try:
        async with gateway(tmp_path / "a", redis_url=url, redis_prefix=prefix) as one:
            await agent_cache(one, CACHED)
            assert (await ask(one)).headers["x-turnout-cache"] == "miss"
            assert (await ask(one)).headers["x-turnout-cache"] == "hit" and one.upstream_calls() == 1
            await one.container.gateway.cache.flush()  # type: ignore[union-attr]  # its write landed
            client = Redis.from_url(url)
            try:
                keys = [k async for k in client.scan_iter(match=f"{prefix}cache:acme:*")]
                assert len(keys) == 1 and 0 < await client.ttl(keys[0]) <= 300
            finally:
                await client.aclose()
            async with gateway(tmp_path / "b", redis_url=url, redis_prefix=prefix) as two:
                await agent_cache(two, CACHED)
                raw = await ask(two)
                assert raw.headers["x-turnout-cache"] == "hit" and two.upstream_calls() == 0
                record = await message(two, raw.headers["x-turnout-message-id"])
                assert record["cache_hit"] is True and float(record["cost_usd"]) == 0
    finally:
        await drop_redis_keys(prefix)


async def test_the_embedded_store_serves_hits_and_ignores_expired_rows(tmp_path: Path) -> None:
    """Without Redis the answers are rows of the database; with no memory in front (``0`` MB)
    every hit is read from there, and a row past its expiry is a miss."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from turnout.store.response_cache import ResponseCacheEntry

    async with gateway(tmp_path, response_cache_memory_mb=0) as env:
        await agent_cache(env, CACHED)
        assert (await ask(env)).headers["x-turnout-cache"] == "miss"
        await env.container.gateway.cache.flush()  # type: ignore[union-attr]  # its write landed
        assert (await ask(env)).headers["x-turnout-cache"] == "hit" and env.upstream_calls() == 1
        past = datetime.now(UTC) - timedelta(seconds=1)
        async with env.container.sessions.begin() as session:
            await session.execute(update(ResponseCacheEntry).values(expires_at=past))
        assert (await ask(env)).headers["x-turnout-cache"] == "miss" and env.upstream_calls() == 2
