"""Issue 15, item 6: per-role ``allowed_models`` fail closed. A role the capsule does not list (the
agent's own key carries role ``agent``; a JWT may carry none) gets no model unless the capsule has a
``"*"`` entry for every other role."""

from __future__ import annotations

from typing import Any

from tests.security import agents_env
from tests.security.agents_env import BIG, CHAT, MINI, World, key_headers

world = agents_env.world  # the fixture: two replicas, the simulator, one database

AGENT = "/api/v2/agents/bot"


async def _chat(env: World, headers: dict[str, str], model: str | None) -> tuple[int, str | None]:
    body: dict[str, Any] = {"messages": CHAT, "metadata": {"agent_id": "bot"}}
    if model is not None:
        body["model"] = model
    resp = await env.http[0].post("/v1/chat/completions", json=body, headers=headers)
    return resp.status_code, resp.headers.get("x-turnout-model")


async def _listed(env: World, headers: dict[str, str]) -> set[str]:
    resp = await env.http[0].get("/v1/models", headers=headers)
    assert resp.status_code == 200, resp.text
    return {m["id"] for m in resp.json()["data"]}


async def test_unlisted_roles_get_no_model(world: World) -> None:
    capsule = {"allowed_models": {"user": [MINI], "tenant_admin": [MINI]}}
    key = key_headers(await world.agent("acme", "bot", [MINI, BIG], capsule))
    no_roles = world.bearer("svc", "acme", roles=())
    user = world.bearer("uma", "acme", roles=("user",))
    await world.settle()

    assert await _chat(world, user, MINI) == (200, MINI)
    assert (await _chat(world, user, BIG))[0] == 403
    for who in (key, no_roles):  # the agent's own key (role "agent") and a JWT without roles
        assert (await _chat(world, who, BIG))[0] == 403
        assert (await _chat(world, who, MINI))[0] == 403
        assert (await _chat(world, who, None))[0] == 400  # auto: no candidate left for this role
    assert await _listed(world, key) == set()


async def test_the_agent_role_and_the_star_entry_can_be_named(world: World) -> None:
    capsule: dict[str, Any] = {"allowed_models": {"user": [MINI], "agent": [BIG]}}
    key = key_headers(await world.agent("acme", "bot", [MINI, BIG], capsule))
    no_roles = world.bearer("svc", "acme", roles=())
    await world.settle()
    assert (await _chat(world, key, BIG)) == (200, BIG)
    assert (await _chat(world, key, MINI))[0] == 403
    assert [await _chat(world, key, None) for _ in range(3)] == [(200, BIG)] * 3
    assert (await _chat(world, no_roles, BIG))[0] == 403

    capsule = {"allowed_models": {"user": [MINI], "*": [BIG]}}  # every other role: BIG only
    admin = world.admin("acme")
    assert (await world.http[0].patch(AGENT, json={"capsule": capsule}, headers=admin)).status_code == 200
    assert (await _chat(world, no_roles, BIG)) == (200, BIG)
    assert (await _chat(world, key, MINI))[0] == 403
    assert await _listed(world, key) == {BIG}

    capsule = {"allowed_models": {"user": [MINI], "*": ["*"]}}  # every other role: any enabled model
    assert (await world.http[0].patch(AGENT, json={"capsule": capsule}, headers=admin)).status_code == 200
    assert (await _chat(world, key, MINI)) == (200, MINI)
    assert await _listed(world, key) == {MINI, BIG}


async def test_malformed_allowed_models_are_refused_naming_the_field(world: World) -> None:
    await world.agent("acme", "bot", [MINI])
    admin = world.admin("acme")
    for allowed in ({"usr": [MINI]}, {"user": MINI}, {"user": [5]}, "everything", [7]):
        resp = await world.http[0].patch(AGENT, json={"capsule": {"allowed_models": allowed}}, headers=admin)
        assert resp.status_code == 400, (allowed, resp.text)
        assert resp.json()["error"]["param"] == "capsule.allowed_models", resp.text
