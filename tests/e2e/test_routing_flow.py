"""SRS 8.3 end to end: provider -> sync -> enable models for an agent -> chat with model "auto"
through the official SDK -> rate -> routing shifts toward the better-rated model."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest

from tests.gateway_env import GatewayEnv, gw  # noqa: F401
from tests.live_server import serve  # noqa: F401

CODE_PROMPT: Any = [{"role": "user", "content": "Write a python function that reverses a string"}]


async def _tenant_admin(env: GatewayEnv) -> dict[str, str]:
    return {"Authorization": f"Bearer {env.container.jwt.mint('ann', 'acme', ['tenant_admin'])}"}


async def test_routing_learns_from_ratings(gw: GatewayEnv) -> None:  # noqa: F811
    admin = await _tenant_admin(gw)
    # a fresh agent with exactly two chat models enabled
    agent = (
        await gw.http.post("/api/v2/agents", json={"id": "coder", "name": "Coder"}, headers=admin)
    ).json()
    enabled = await gw.http.post(
        f"/api/v2/agents/{agent['id']}/models",
        json={"model_ids": ["oai/gpt-4o-mini", "oai/gpt-4o"]},
        headers=admin,
    )
    assert enabled.json()["enabled_count"] == 2
    key = (await gw.http.post(f"/api/v2/agents/{agent['id']}/keys", json={}, headers=admin)).json()["key"]
    listed = (await gw.http.get(f"/api/v2/agents/{agent['id']}/models", headers=admin)).json()
    assert listed["total_enabled"] == 2
    import openai

    client = openai.AsyncOpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0)
    gw.clients.append(client)
    user = {"Authorization": f"Bearer {gw.container.jwt.mint('uma', 'acme', ['user'])}"}
    picks: list[str] = []
    for _ in range(40):
        raw = await client.chat.completions.with_raw_response.create(model="auto", messages=CODE_PROMPT)
        model = raw.headers["x-turnout-model"]
        picks.append(model)
        rating = 1.0 if model == "oai/gpt-4o" else 0.0
        rated = await gw.http.post(
            f"/api/v2/chat/messages/{raw.headers['x-turnout-message-id']}/feedback",
            json={"rating": rating},
            headers=user,
        )
        assert rated.status_code == 200, rated.text
        assert rated.json()["task_type"] == "code"
    assert set(picks) <= {"oai/gpt-4o-mini", "oai/gpt-4o"}
    late = Counter(picks[-10:])
    assert late["oai/gpt-4o"] >= 8, f"routing did not shift toward the better-rated model: {picks}"

    decision = await gw.http.get(
        f"/api/v2/routing/decisions/{raw.headers['x-turnout-message-id']}", headers=user
    )
    assert decision.status_code == 200
    body = decision.json()
    assert body["task_type"] == "code" and body["detection"]["source"] == "keyword"
    assert {r["model"] for r in body["ranked"]} == {"oai/gpt-4o-mini", "oai/gpt-4o"}

    calls_before = gw.sim.stats.total
    explained = await gw.http.post(
        "/api/v2/routing/explain",
        json={"model": "auto", "messages": CODE_PROMPT, "metadata": {"agent_id": "coder"}},
        headers=user,
    )
    assert explained.status_code == 200 and explained.json()["ranked"][0]["model"] == "oai/gpt-4o"
    assert gw.sim.stats.total == calls_before, "explain calls no model"
    await gw.records(40)

    perf = await gw.http.get("/api/v2/admin/models/performance?task_type=code&agent_id=coder", headers=admin)
    rows = {r["model"]: r for r in perf.json()["performance"]}
    assert rows["oai/gpt-4o"]["avg_rating"] == 1.0
    assert (
        rows["oai/gpt-4o"]["usage_count"] + rows.get("oai/gpt-4o-mini", {"usage_count": 0})["usage_count"]
        == 40
    )


async def test_capsule_roles_restrict_choice(gw: GatewayEnv) -> None:  # noqa: F811
    admin = await _tenant_admin(gw)
    capsule = {"allowed_models": {"user": ["oai/gpt-4o-mini"], "tenant_admin": ["oai/gpt-4o"]}}
    resp = await gw.http.patch(f"/api/v2/agents/{gw.agent_id}", json={"capsule": capsule}, headers=admin)
    assert resp.status_code == 200
    user = {"Authorization": f"Bearer {gw.container.jwt.mint('uma', 'acme', ['user'])}"}
    body: dict[str, Any] = {"model": "auto", "messages": CODE_PROMPT, "metadata": {"agent_id": gw.agent_id}}
    for _ in range(5):
        answer = await gw.http.post("/v1/chat/completions", json=body, headers=user)
        assert answer.status_code == 200 and answer.headers["x-turnout-model"] == "oai/gpt-4o-mini"
    denied = await gw.http.post("/v1/chat/completions", json={**body, "model": "oai/gpt-4o"}, headers=user)
    assert denied.status_code == 403
    other = await gw.http.post(
        "/v1/chat/completions", json={**body, "metadata": {"agent_id": "someone-elses"}}, headers=user
    )
    assert other.status_code == 404


async def test_implicit_signals_and_rerating(gw: GatewayEnv) -> None:  # noqa: F811
    user = {"Authorization": f"Bearer {gw.container.jwt.mint('uma', 'acme', ['user'])}"}
    raw = await gw.http.post(
        "/v1/chat/completions",
        json={"model": "oai/gpt-4o", "messages": CODE_PROMPT},
        headers={"Authorization": f"Bearer {gw.key}"},
    )
    message_id = raw.headers["x-turnout-message-id"]
    first = await gw.http.post(
        f"/api/v2/chat/messages/{message_id}/events", json={"event": "regenerate"}, headers=user
    )
    assert first.json()["rating"] == 0.0 and first.json()["feedback_type"] == "implicit"
    again = await gw.http.post(
        f"/api/v2/chat/messages/{message_id}/feedback", json={"rating": 0.8}, headers=user
    )
    assert again.json()["replaced"] == 0.0
    rows = await gw.records(1)
    await _until_rated(gw, message_id, 0.8)
    assert rows


async def _until_rated(env: GatewayEnv, message_id: str, rating: float) -> None:
    import asyncio

    from turnout.store.messages import Message

    for _ in range(50):
        async with env.container.sessions() as session:
            row = await session.get(Message, message_id)
        if row is not None and row.rating == rating:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the rating never reached the message row")


def _unused(_: httpx.Response) -> None:
    return None


async def test_embeddings_need_the_model_enabled_for_the_agent(gw: GatewayEnv) -> None:  # noqa: F811
    import openai

    admin = await _tenant_admin(gw)
    await gw.http.post("/api/v2/agents", json={"id": "embedder", "name": "Embedder"}, headers=admin)
    enable = "/api/v2/agents/embedder/models"
    await gw.http.post(enable, json={"model_ids": ["oai/gpt-4o-mini"]}, headers=admin)
    key = (await gw.http.post("/api/v2/agents/embedder/keys", json={}, headers=admin)).json()["key"]
    await gw.container.snapshots.reload()
    client = openai.AsyncOpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0)
    gw.clients.append(client)
    before = gw.upstream_calls("POST /v1/embeddings")
    with pytest.raises(openai.PermissionDeniedError) as refused:
        await client.embeddings.create(model="oai/text-embedding-3-small", input="hello")
    assert refused.value.code == "model_not_allowed"
    assert gw.upstream_calls("POST /v1/embeddings") == before, "nothing was forwarded upstream"
    await gw.http.post(enable, json={"model_ids": ["oai/text-embedding-3-small"]}, headers=admin)
    await gw.container.snapshots.reload()
    answer = await client.embeddings.create(model="oai/text-embedding-3-small", input="hello")
    assert len(answer.data[0].embedding) > 0
    row = (await gw.records(2))[-1]
    assert row.agent_id == "embedder" and row.endpoint == "embeddings" and row.status == "ok"
