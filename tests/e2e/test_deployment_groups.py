"""Deployment groups end to end: one name for a model served at OpenAI and at Azure (both the
simulator, told apart by their paths), weighted, least-busy and lowest-latency spreads, a dead
member cooled down at its first failure and probed back, records and decision logs naming the
member, the admin API's checks, and agents that may use only some members."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.gateway_env import OPENAI_MODEL, OPENAI_MODEL_2, SIM_KEY, GatewayEnv, gw  # noqa: F401

OAI, AZ = OPENAI_MODEL, "az/gpt-4o-mini"
OAI_PATH, AZ_PATH = "/v1/chat/completions", "/openai/deployments/"  # where faults aim at one member
OAI_ROUTE = "POST /v1/chat/completions"
GROUPS = "/api/v2/admin/deployment-groups"
HELLO: Any = [{"role": "user", "content": "hello"}]


def _tenant_admin(env: GatewayEnv) -> dict[str, str]:
    return {"Authorization": f"Bearer {env.container.jwt.mint('ann', 'acme', ['tenant_admin'])}"}


async def _with_azure(env: GatewayEnv) -> None:
    """The simulator as a second provider, Azure OpenAI, whose models agent `bot` may use."""
    spec = {
        "id": "az",
        "display_name": "Azure",
        "provider_type": "azure",
        "api_base": env.sim.base_url,
        "api_version": "2024-10-21",
        "api_key": SIM_KEY,
        "self_hosted": False,
    }
    assert (await env.http.post("/api/v2/admin/providers", json=spec, headers=env.admin)).status_code == 201
    synced = await env.http.post("/api/v2/admin/providers/az/sync", headers=env.admin)
    assert synced.status_code == 200, synced.text
    enabled = await env.http.post(
        f"/api/v2/agents/{env.agent_id}/models",
        json={"bulk_filter": {"provider": "az"}},
        headers=_tenant_admin(env),
    )
    assert enabled.status_code == 200, enabled.text
    await env.container.snapshots.reload()  # a sync rebuilds the snapshot soon; the tests go on now
    env.sim.reset_stats()


async def _group(
    env: GatewayEnv, strategy: str, weights: dict[str, float], name: str = "mini"
) -> dict[str, Any]:
    members = [{"model_id": model, "weight": weight} for model, weight in weights.items()]
    resp = await env.http.post(
        GROUPS, json={"name": name, "strategy": strategy, "members": members}, headers=env.admin
    )
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


async def _chat(env: GatewayEnv, model: str = "mini", key: str | None = None) -> httpx.Response:
    resp = await env.http.post(
        "/v1/chat/completions",
        json={"model": model, "messages": HELLO},
        headers={"Authorization": f"Bearer {key or env.key}"},
    )
    assert resp.status_code == 200, resp.text
    return resp


async def _served(env: GatewayEnv, model: str = "mini") -> str:
    return (await _chat(env, model)).headers["x-turnout-model"]


async def test_weighted_spread_follows_the_weights_and_records_name_the_member(gw: GatewayEnv) -> None:  # noqa: F811
    await _with_azure(gw)
    await _group(gw, "weighted", {OAI: 3, AZ: 1})
    served: Counter[str] = Counter()
    for _ in range(50):  # 1,000 requests, 20 at a time
        answers = await asyncio.gather(*(_chat(gw) for _ in range(20)))
        served.update(resp.headers["x-turnout-model"] for resp in answers)
    assert set(served) == {OAI, AZ}
    assert abs(served[OAI] / 1000 - 0.75) <= 0.05, served
    rows = await gw.records(1000, timeout_s=20)
    assert Counter(row.model for row in rows) == served, "each record names the member that served"
    assert {row.provider for row in rows} == {"oai", "az"}
    decision = rows[-1].metadata_["decision"]
    assert decision["group"] == "mini" and decision["strategy"] == "weighted"
    assert decision["member"] == rows[-1].model and {m["model"] for m in decision["members"]} == {OAI, AZ}


async def test_every_dialect_reaches_a_group(gw: GatewayEnv) -> None:  # noqa: F811
    await _with_azure(gw)
    await _group(gw, "weighted", {OAI: 1, AZ: 1})
    claude = await gw.anthropic().messages.with_raw_response.create(
        model="mini", max_tokens=50, messages=HELLO
    )
    assert claude.headers["x-turnout-model"] in (OAI, AZ) and (await claude.parse()).content
    response = await gw.openai().responses.with_raw_response.create(model="mini", input="hello")
    assert response.headers["x-turnout-model"] in (OAI, AZ) and response.parse().output_text
    stream = await gw.openai().chat.completions.create(model="mini", messages=HELLO, stream=True)
    assert [chunk async for chunk in stream]
    load = gw.container.routing.load
    assert load.in_flight(OAI) == load.in_flight(AZ) == 0, "a finished stream is no longer in flight"
    explained = await gw.http.post(
        "/api/v2/routing/explain",
        json={"model": "mini", "messages": HELLO, "agent_id": gw.agent_id},
        headers=_tenant_admin(gw),
    )
    body = explained.json()
    assert body["group"] == "mini" and body["member"] in (OAI, AZ) and body["strategy"] == "weighted"


async def test_least_busy_prefers_the_idle_member(gw: GatewayEnv) -> None:  # noqa: F811
    await _with_azure(gw)
    await _group(gw, "least-busy", {OAI: 9, AZ: 1})
    gw.sim.inject("slow:2", count=None, path=OAI_PATH)  # OpenAI answers in 2 s, Azure at once

    async def spaced(count: int, every_s: float) -> Counter[str]:
        tasks = []
        for _ in range(count):
            tasks.append(asyncio.create_task(_served(gw)))
            await asyncio.sleep(every_s)
        return Counter(await asyncio.gather(*tasks))

    served = await spaced(10, 0.1)  # all within the slow answer's 2 s
    assert served[OAI] <= 2 and served[AZ] >= 8, f"weights say 9:1, load says Azure: {served}"
    gw.sim.clear_faults()
    gw.sim.inject("slow:1", count=None)  # both slow: in-flight counts stay level, whatever the weights
    assert await spaced(8, 0.02) == Counter({OAI: 4, AZ: 4})


async def test_lowest_latency_moves_traffic_to_the_faster_member(gw: GatewayEnv) -> None:  # noqa: F811
    await _with_azure(gw)
    await _group(gw, "lowest-latency", {OAI: 1, AZ: 1})
    # Azure's deployment answers 50 ms later: a gap no scheduling noise of a loaded machine reverses
    # (two equally fast members swapped places on one slow answer)
    gw.sim.inject("slow:0.05", count=None, path=AZ_PATH)
    assert {await _served(gw), await _served(gw)} == {OAI, AZ}, "each member is measured first"
    assert await _served(gw) == OAI, "then the faster one serves"
    gw.sim.inject("slow:0.5", count=None, path=OAI_PATH)
    assert await _served(gw) == OAI, "still the fastest on record: it answers slowly"
    assert [await _served(gw) for _ in range(6)] == [AZ] * 6, "traffic moved to the faster member"


@pytest.mark.parametrize("fault", ["status:503", "reset_before"])
async def test_a_dead_member_is_cooled_down_at_once_then_probed_back(gw: GatewayEnv, fault: str) -> None:  # noqa: F811
    await _with_azure(gw)
    await _group(gw, "weighted", {OAI: 3, AZ: 1})
    gw.sim.inject(fault, count=None, path=OAI_PATH)
    served = [await _chat(gw) for _ in range(20)]
    assert {resp.headers["x-turnout-model"] for resp in served} == {AZ}, "every request is answered"
    assert gw.upstream_calls(OAI_ROUTE) == 1, "the dead member got its first failure, no retry, nothing more"
    rows = await gw.records(20)
    failed_over = [row for row in rows if row.fallback_used]
    assert len(failed_over) == 1 and failed_over[0].attempts == 2 and failed_over[0].model == AZ
    user = {"Authorization": f"Bearer {gw.container.jwt.mint('uma', 'acme', ['user'])}"}
    log = (await gw.http.get(f"/api/v2/routing/decisions/{failed_over[0].id}", headers=user)).json()
    assert log["group"] == "mini" and log["member"] == OAI, "routing picked the member that died"
    assert log["outcome"]["served_by"] == AZ and log["outcome"]["attempts"] == 2
    later = (await gw.http.get(f"/api/v2/routing/decisions/{rows[-1].id}", headers=user)).json()
    assert [m["model"] for m in later["members"]] == [AZ], "cooling down: not in the plan"
    assert {"model": OAI, "reason": "cooling down after a failure (circuit open)"} in later["filtered"]

    await asyncio.sleep(1.1)  # the cooldown (breaker_cooldown_s in tests/gateway_env.FAST)
    gw.sim.clear_faults()
    assert await _served(gw) == OAI, "after the cooldown the next request probes it"
    assert gw.upstream_calls(OAI_ROUTE) == 2
    assert OAI in {await _served(gw) for _ in range(20)}, "it is back in the spread"


async def test_a_member_failing_again_on_its_probe_cools_down_again(gw: GatewayEnv) -> None:  # noqa: F811
    await _with_azure(gw)
    await _group(gw, "weighted", {OAI: 1000, AZ: 1})
    gw.sim.inject("status:502", count=None, path=OAI_PATH)
    assert await _served(gw) == AZ
    await asyncio.sleep(1.1)
    assert await _served(gw) == AZ, "the probe failed over too"
    assert gw.upstream_calls(OAI_ROUTE) == 2
    assert [await _served(gw) for _ in range(5)] == [AZ] * 5 and gw.upstream_calls(OAI_ROUTE) == 2


async def test_an_agent_gets_only_the_members_it_may_use(gw: GatewayEnv) -> None:  # noqa: F811
    await _with_azure(gw)
    await _group(gw, "weighted", {OAI: 100, AZ: 1})
    admin = _tenant_admin(gw)
    for agent_id, models in (("solo", [AZ]), ("other", [OPENAI_MODEL_2])):
        made = await gw.http.post("/api/v2/agents", json={"id": agent_id, "name": agent_id}, headers=admin)
        assert made.status_code == 201, made.text
        enabled = await gw.http.post(
            f"/api/v2/agents/{agent_id}/models", json={"model_ids": models}, headers=admin
        )
        assert enabled.status_code == 200, enabled.text
    solo = (await gw.http.post("/api/v2/agents/solo/keys", json={}, headers=admin)).json()["key"]
    served = {(await _chat(gw, key=solo)).headers["x-turnout-model"] for _ in range(20)}
    assert served == {AZ}
    other = (await gw.http.post("/api/v2/agents/other/keys", json={}, headers=admin)).json()["key"]
    denied = await gw.http.post(
        "/v1/chat/completions",
        json={"model": "mini", "messages": HELLO},
        headers={"Authorization": f"Bearer {other}"},
    )
    assert denied.status_code == 403 and denied.json()["error"]["param"] == "model"


async def test_admin_crud_takes_effect_at_once(gw: GatewayEnv) -> None:  # noqa: F811
    await _with_azure(gw)
    group = await _group(gw, "weighted", {OAI: 1, AZ: 1}, name="gpt-4o-mini")
    assert group["members"] == [{"model_id": OAI, "weight": 1.0}, {"model_id": AZ, "weight": 1.0}]
    assert group["created_by"] == "root"
    assert {await _served(gw, "gpt-4o-mini") for _ in range(30)} == {OAI, AZ}, (
        "a group named like a provider's own model id wins over that implicit alias"
    )
    listed = (await gw.http.get(GROUPS, headers=gw.admin)).json()
    assert listed["total"] == 1 and listed["items"][0]["name"] == "gpt-4o-mini"
    patched = await gw.http.patch(
        f"{GROUPS}/gpt-4o-mini",
        json={"members": [{"model_id": AZ}], "strategy": "least-busy", "description": "Azure only"},
        headers=gw.admin,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["strategy"] == "least-busy" and patched.json()["members"] == [
        {"model_id": AZ, "weight": 1.0}
    ]
    assert {await _served(gw, "gpt-4o-mini") for _ in range(10)} == {AZ}
    assert (await gw.http.get(f"{GROUPS}/gpt-4o-mini", headers=gw.admin)).json()[
        "description"
    ] == "Azure only"
    assert (await gw.http.delete(f"{GROUPS}/gpt-4o-mini", headers=gw.admin)).status_code == 204
    # gone: the name is a provider's own model id again (the lowest catalog id of equal priority)
    assert await _served(gw, "gpt-4o-mini") == AZ
    assert (await gw.http.get(f"{GROUPS}/gpt-4o-mini", headers=gw.admin)).status_code == 404


async def test_admin_api_refuses_bad_input_naming_the_field(gw: GatewayEnv) -> None:  # noqa: F811
    good = {"name": "mini", "strategy": "weighted", "members": [{"model_id": OAI, "weight": 2}]}
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({**good, "strategy": "round-robin"}, 400, "strategy"),
        ({**good, "members": []}, 400, "members"),
        ({**good, "members": [{"model_id": "oai/nope"}]}, 400, "members.0.model_id"),
        ({**good, "members": [{"model_id": OAI, "weight": 0}]}, 400, "members.0.weight"),
        ({**good, "members": [{"model_id": OAI, "weight": -1}]}, 400, "members.0.weight"),
        ({**good, "members": [{"model_id": OAI}, {"model_id": OAI}]}, 400, "members.1.model_id"),
        (
            {**good, "members": [{"model_id": OAI}, {"model_id": "oai/text-embedding-3-small"}]},
            400,
            "members",
        ),
        ({**good, "name": OAI}, 400, "name"),  # a catalog id (ids have a "/", names may not)
        ({**good, "name": "auto"}, 400, "name"),
        ({**good, "extra": 1}, 400, "extra"),
    ]
    for body, status, param in cases:
        resp = await gw.http.post(GROUPS, json=body, headers=gw.admin)
        assert resp.status_code == status, (body, resp.text)
        assert resp.json()["error"]["param"] == param, (body, resp.text)
    alias = await gw.http.patch(
        f"/api/v2/admin/models/{OPENAI_MODEL_2}", json={"alias": "big"}, headers=gw.admin
    )
    assert alias.status_code == 200
    taken = await gw.http.post(GROUPS, json={**good, "name": "big"}, headers=gw.admin)
    assert taken.status_code == 409 and taken.json()["error"]["param"] == "name"
    assert OPENAI_MODEL_2 in taken.json()["error"]["message"]
    assert (await gw.http.post(GROUPS, json=good, headers=gw.admin)).status_code == 201
    again = await gw.http.post(GROUPS, json=good, headers=gw.admin)
    assert again.status_code == 409 and again.json()["error"]["param"] == "name"
    clash = await gw.http.patch(
        f"/api/v2/admin/models/{OPENAI_MODEL_2}", json={"alias": "mini"}, headers=gw.admin
    )
    assert clash.status_code == 409 and clash.json()["error"]["param"] == "alias"
    nulled = await gw.http.patch(f"{GROUPS}/mini", json={"strategy": None}, headers=gw.admin)
    assert nulled.status_code == 400 and nulled.json()["error"]["param"] == "strategy"
    assert (await gw.http.patch(f"{GROUPS}/nope", json={}, headers=gw.admin)).status_code == 404
    tenant_admin = await gw.http.get(GROUPS, headers=_tenant_admin(gw))
    assert tenant_admin.status_code == 403, "platform admins only"


async def test_an_embedding_group_spreads_embeddings(gw: GatewayEnv) -> None:  # noqa: F811
    await _with_azure(gw)
    members = {"oai/text-embedding-3-small": 1.0, "az/text-embedding-3-small": 1.0}
    await _group(gw, "weighted", members, name="embed")
    client = gw.openai()
    served = set()
    for _ in range(20):
        raw = await client.embeddings.with_raw_response.create(model="embed", input="hello")
        served.add(raw.headers["x-turnout-model"])
    assert served == set(members)
    chat = await gw.http.post(
        "/v1/chat/completions",
        json={"model": "embed", "messages": HELLO},
        headers={"Authorization": f"Bearer {gw.key}"},
    )
    assert chat.status_code == 400 and chat.json()["error"]["code"] == "wrong_model_type"
