"""Issue 15, item 4: a deactivated or deleted agent is refused everywhere, on every replica."""

from __future__ import annotations

from typing import Any

import httpx

from tests.security import agents_env
from tests.security.agents_env import CHAT, EMBED, MINI, World, key_headers, until

world = agents_env.world  # the fixture: two replicas, the simulator, one database

AGENT = "/api/v2/agents/bot"


async def _calls(env: World, http: httpx.AsyncClient, key: str, message_id: str) -> dict[str, httpx.Response]:
    """Every way the agent (its key, or a JWT naming it) reaches the data plane and the feedback path."""
    by_key = key_headers(key)
    user = env.bearer("uma", "acme")
    claimed = env.bearer("uma", "acme", agent_id="bot")
    chat = {"model": MINI, "messages": CHAT}
    return {
        "openai chat, key": await http.post("/v1/chat/completions", json=chat, headers=by_key),
        "openai chat, auto": await http.post("/v1/chat/completions", json={"messages": CHAT}, headers=by_key),
        "anthropic messages, x-api-key": await http.post(
            "/v1/messages",
            json={"model": MINI, "max_tokens": 20, "messages": CHAT},
            headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
        ),
        "embeddings": await http.post("/v1/embeddings", json={"model": EMBED, "input": "hi"}, headers=by_key),
        "native chat": await http.post(
            "/api/models/chat", json={"messages": CHAT, "model_id": MINI}, headers=by_key
        ),
        "openai models": await http.get("/v1/models", headers=by_key),
        "native models": await http.get("/api/models", headers=by_key),
        "feedback (hot path)": await http.post(
            f"/api/v2/chat/messages/{message_id}/feedback", json={"rating": 1.0}, headers=by_key
        ),
        "feedback event": await http.post(
            f"/api/v2/chat/messages/{message_id}/events", json={"event": "copy"}, headers=by_key
        ),
        "jwt metadata.agent_id": await http.post(
            "/v1/chat/completions", json={**chat, "metadata": {"agent_id": "bot"}}, headers=user
        ),
        "jwt agent_id claim": await http.post("/v1/chat/completions", json=chat, headers=claimed),
    }


def _refused(responses: dict[str, httpx.Response], status: int) -> list[str]:
    """The calls that did NOT get ``status``."""
    return [
        f"{name}: {r.status_code} {r.text[:120]}" for name, r in responses.items() if r.status_code != status
    ]


async def _answered(env: World) -> tuple[str, str]:
    """Tenant acme's agent "bot" with a key, and a message it was answered (to rate later)."""
    key = await env.agent("acme", "bot", [MINI, EMBED])
    await env.settle()
    answered = await env.http[0].post(
        "/v1/chat/completions", json={"model": MINI, "messages": CHAT}, headers=key_headers(key)
    )
    assert answered.status_code == 200, answered.text
    await env.records(1, timeout_s=30)  # stored: the other replica, which did not answer it, may rate it
    return key, answered.headers["x-turnout-message-id"]


async def test_deactivated_agent_is_refused_everywhere_on_both_replicas(world: World) -> None:
    key, message_id = await _answered(world)
    admin = world.admin("acme")
    for http in world.http:  # everything works while the agent is active
        working = await _calls(world, http, key, message_id)
        assert _refused(working, 200) == []

    off = await world.http[0].patch(AGENT, json={"is_active": False}, headers=admin)
    assert off.status_code == 200 and off.json()["is_active"] is False

    refused = await _calls(world, world.http[0], key, message_id)  # this replica: at once
    assert _refused(refused, 403) == []
    assert all(
        r.json()["error"]["type"] == "permission_error" for n, r in refused.items() if "anthropic" not in n
    )
    assert refused["anthropic messages, x-api-key"].json()["type"] == "error"  # the Anthropic shape
    assert refused["openai chat, key"].json()["error"]["code"] == "agent_inactive"

    async def other_replica_refuses() -> bool:
        return _refused(await _calls(world, world.http[1], key, message_id), 403) == []

    await until(other_replica_refuses, timeout_s=5.0)  # the other replica: within its refresh interval
    upstream_before = world.sim.stats.total
    for http in world.http:
        assert _refused(await _calls(world, http, key, message_id), 403) == []
    assert world.sim.stats.total == upstream_before, "a refused call reached the upstream"

    new_key = await world.http[0].post(f"{AGENT}/keys", json={}, headers=admin)  # no new keys either
    assert new_key.status_code == 409 and new_key.json()["error"]["code"] == "agent_inactive", new_key.text

    on = await world.http[1].patch(
        AGENT, json={"is_active": True}, headers=admin
    )  # deactivation is reversible
    assert on.status_code == 200
    back = await world.http[1].post(
        "/v1/chat/completions", json={"model": MINI, "messages": CHAT}, headers=key_headers(key)
    )
    assert back.status_code == 200, back.text


async def test_deleted_agent_is_gone_everywhere_and_its_id_stays_reserved(world: World) -> None:
    key, message_id = await _answered(world)
    admin = world.admin("acme")

    assert (
        await world.http[0].delete(AGENT, headers=world.admin("globex"))
    ).status_code == 404  # tenant-scoped
    deleted = await world.http[0].delete(AGENT, headers=admin)
    assert deleted.status_code == 204, deleted.text

    async def gone(http: httpx.AsyncClient) -> bool:
        calls = await _calls(world, http, key, message_id)
        by_key = {n: r for n, r in calls.items() if "jwt" not in n}
        by_jwt = {n: r for n, r in calls.items() if "jwt" in n}
        return _refused(by_key, 401) == [] and all(r.status_code in (401, 403, 404) for r in by_jwt.values())

    assert await gone(world.http[0])
    await until(lambda: gone(world.http[1]), timeout_s=5.0)
    assert (await world.http[1].get(AGENT, headers=admin)).status_code == 404
    assert (await world.http[1].get("/api/v2/agents", headers=admin)).json()["total"] == 0
    assert (await world.http[0].post(f"{AGENT}/keys", json={}, headers=admin)).status_code == 404
    assert (await world.http[0].patch(AGENT, json={"is_active": True}, headers=admin)).status_code == 404
    again = await world.http[0].post("/api/v2/agents", json={"id": "bot", "name": "Bot 2"}, headers=admin)
    assert again.status_code == 409 and "deleted" in again.json()["error"]["message"]
    # another tenant may still use the id: ids are per tenant
    other = await world.http[0].post(
        "/api/v2/agents", json={"id": "bot", "name": "Theirs"}, headers=world.admin("globex")
    )
    assert other.status_code == 201, other.text


async def test_agent_update_accepts_is_active_and_rejects_junk(world: World) -> None:
    await world.agent("acme", "bot", [MINI])
    admin = world.admin("acme")
    bad: list[dict[str, Any]] = [{"is_active": "maybe"}, {"is_active": None}]
    for body in bad:
        resp = await world.http[0].patch(AGENT, json=body, headers=admin)
        assert resp.status_code == 400 and resp.json()["error"]["param"] == "is_active", resp.text
    assert (await world.http[0].get(AGENT, headers=admin)).json()["is_active"] is True
