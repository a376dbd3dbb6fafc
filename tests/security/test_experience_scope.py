"""Issue 15, item 6: experience is per tenant unless tenants opt in to sharing. Another tenant's
ratings must not move this tenant's routing (they once switched it to a model ~17x the price); the
global level holds only platform priors."""

from __future__ import annotations

from typing import Any

import pytest

from tests.security import agents_env
from tests.security.agents_env import BIG, CHAT, MINI, World, key_headers, until
from turnout.routing.experience import ExperienceStore

world = agents_env.world  # the fixture: two replicas, the simulator, one database

SHARING = "/api/v2/routing/experience-sharing"
NO_EXPLORE = {"routing": {"explore": False}}
T0 = 1_700_000_000.0


async def _rate_many(env: World, key: str, model: str, rating: float, count: int) -> None:
    for _ in range(count):
        answer = await env.http[0].post(
            "/v1/chat/completions", json={"model": model, "messages": CHAT}, headers=key_headers(key)
        )
        assert answer.status_code == 200, answer.text
        rated = await env.http[0].post(
            f"/api/v2/chat/messages/{answer.headers['x-turnout-message-id']}/feedback",
            json={"rating": rating},
            headers=key_headers(key),
        )
        assert rated.status_code == 200, rated.text


async def _ranked(env: World, replica: int, key: str) -> list[dict[str, Any]]:
    """How the key's agent would be routed now (no model called): the ranked candidates."""
    resp = await env.http[replica].post(
        "/api/v2/routing/explain", json={"messages": CHAT}, headers=key_headers(key)
    )
    assert resp.status_code == 200, resp.text
    ranked: list[dict[str, Any]] = resp.json()["ranked"]
    return ranked


async def _pick(env: World, replica: int, key: str) -> dict[str, Any]:
    return (await _ranked(env, replica, key))[0]


async def _learned_nothing(env: World, replica: int, key: str) -> bool:
    """No candidate has any experience (ratings at any level) behind its score."""
    return all(r["level"] == "prior" and r["experience"] is None for r in await _ranked(env, replica, key))


async def _share(env: World, tenant: str, shared: bool) -> None:
    resp = await env.http[0].put(SHARING, json={"shared": shared}, headers=env.admin(tenant))
    assert resp.status_code == 200 and resp.json() == {"tenant_id": tenant, "shared": shared}, resp.text


async def test_another_tenants_ratings_do_not_move_routing(world: World) -> None:
    key_a = await world.agent("acme", "alpha", [MINI, BIG], NO_EXPLORE)
    key_b = await world.agent("globex", "beta", [MINI, BIG], NO_EXPLORE)
    await world.settle()
    assert (await _pick(world, 0, key_a))["model"] == MINI  # no experience: priority, then the cheaper
    await _rate_many(world, key_b, BIG, 1.0, 60)  # tenant B loves the pricey model...
    await _rate_many(world, key_b, MINI, 0.0, 60)  # ...and hates the cheap one
    assert (await _pick(world, 0, key_b))["model"] == BIG  # B learns from its own ratings

    for replica in (0, 1):  # once B's ratings reached the replica, A still has learned nothing from them
        await until(lambda r=replica: _pick_is(world, r, key_b, BIG), timeout_s=5)
        assert await _learned_nothing(world, replica, key_a), await _ranked(world, replica, key_a)

    # sharing needs both sides to opt in: A alone sees nothing of B's
    assert (await world.http[0].get(SHARING, headers=world.admin("acme"))).json() == {
        "tenant_id": "acme",
        "shared": False,
    }
    await _share(world, "acme", True)
    assert await _learned_nothing(world, 0, key_a)
    await _share(world, "globex", True)
    for replica in (0, 1):  # the setting lives in the database and reaches the other replica's snapshot

        async def pooled(r: int = replica) -> bool:
            picked = await _pick(world, r, key_a)
            return bool(picked["model"] == BIG and picked["level"] == "global")

        await until(pooled, timeout_s=5)
    await _share(world, "globex", False)  # and withdrawing takes B's ratings out again
    for replica in (0, 1):
        await until(lambda r=replica: _learned_nothing(world, r, key_a), timeout_s=5)


async def _pick_is(env: World, replica: int, key: str, model: str) -> bool:
    return bool((await _pick(env, replica, key))["model"] == model)


async def test_only_tenant_admins_change_sharing(world: World) -> None:
    user = world.bearer("uma", "acme", roles=("user",))
    assert (await world.http[0].put(SHARING, json={"shared": True}, headers=user)).status_code == 403
    bad = await world.http[0].put(SHARING, json={"shared": "yes please"}, headers=world.admin("acme"))
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "shared"


def test_store_keeps_tenants_apart_and_pools_only_sharing_tenants() -> None:
    store = ExperienceStore()
    for i in range(40):
        store.record("globex", "bot", "code", "big", 1.0, T0 + i)
    alone = store.estimate("acme", "bot", "code", "big", now=T0 + 60)
    assert alone.mean is None and alone.evidence == 0.0 and alone.level == "prior"
    store.set_shared({"acme"})
    assert store.estimate("acme", "bot", "code", "big", now=T0 + 60).mean is None
    store.set_shared({"acme", "globex"})
    pooled = store.estimate("acme", "bot", "code", "big", now=T0 + 60)
    assert pooled.level == "global" and pooled.mean is not None and pooled.mean > 0.8
    store.record("globex", "bot", "code", "big", 1.0, T0 + 50)  # new ratings of a sharing tenant pool too
    assert store.estimate("acme", "bot", "code", "big", now=T0 + 60).evidence == pytest.approx(41, rel=1e-3)
    store.set_shared(set())
    assert store.estimate("acme", "bot", "code", "big", now=T0 + 60).mean is None


def test_platform_priors_reach_every_tenant_without_pooling_ratings() -> None:
    store = ExperienceStore()
    store.add_prior("code", "big", 10, 9.0, 8.2, T0)  # an imported evaluation: 10 ratings averaging 0.9
    for tenant in ("acme", "globex"):
        prior = store.estimate(tenant, "bot", "code", "big", now=T0)
        assert prior.level == "global" and prior.mean is not None and prior.mean > 0.7
    store.record("acme", "bot", "code", "big", 0.0, T0)
    assert store.estimate("globex", "bot", "code", "big", now=T0).evidence == pytest.approx(10, rel=1e-3)
    snapshot = store.snapshot()
    restored = ExperienceStore()
    restored.load(snapshot)
    assert restored.estimate("globex", "bot", "code", "big", now=T0) == store.estimate(
        "globex", "bot", "code", "big", now=T0
    )


def test_replicas_ship_ratings_and_derive_the_pool_themselves() -> None:
    primary, replica = ExperienceStore(track_delta=True), ExperienceStore()
    for store in (primary, replica):
        store.set_shared({"acme", "globex"})
    for i in range(5):
        primary.record("globex", "bot", "code", "big", 1.0, T0 + i)
    delta = primary.drain_delta()
    assert delta is not None and all(key[0] != "s" for key, _ in delta["cells"])
    replica.merge(delta)
    want = primary.estimate("acme", "bot", "code", "big", now=T0 + 10)
    got = replica.estimate("acme", "bot", "code", "big", now=T0 + 10)
    assert got.level == want.level == "global"
    assert got.evidence == pytest.approx(want.evidence) and got.evidence == pytest.approx(5, rel=1e-3)


def test_resetting_one_tenants_agent_leaves_the_same_id_in_another_tenant_alone() -> None:
    store = ExperienceStore()
    store.set_shared({"acme", "globex"})
    for i in range(10):
        store.record("acme", "bot", "code", "m", 1.0, T0 + i)
        store.record("globex", "bot", "code", "m", 0.0, T0 + i)
    store.reset(agent_id="bot", tenant_id="acme")
    assert store.estimate("globex", "bot", "code", "m", now=T0 + 20).evidence == pytest.approx(10, rel=1e-3)
    assert store.estimate("acme", "bot", "code", "m", now=T0 + 20).level == "global"  # only globex's now
    pooled = store.estimate("acme", "other", "code", "m", now=T0 + 20)
    assert pooled.evidence == pytest.approx(10, rel=1e-3) and pooled.mean is not None and pooled.mean < 0.2


async def test_resetting_an_agents_experience_names_its_tenant(world: World) -> None:
    platform = world.bearer("root", "platform", ("platform_admin",))
    url = "/api/v2/admin/models/performance/reset"
    vague = await world.http[0].post(url, json={"model_id": MINI, "agent_id": "bot"}, headers=platform)
    assert vague.status_code == 400 and vague.json()["error"]["param"] == "tenant_id", vague.text
    exact = {"model_id": MINI, "agent_id": "bot", "tenant_id": "acme"}
    assert (await world.http[0].post(url, json=exact, headers=platform)).status_code == 200
