"""Issue 15, item 7: agent ids are per tenant. Two tenants own an agent "bot" each, independently; a
409 is only ever about the caller's own tenant (it once revealed, and reserved, other tenants' ids)."""

from __future__ import annotations

from tests.security import agents_env
from tests.security.agents_env import BIG, CHAT, MINI, World, key_headers

world = agents_env.world  # the fixture: two replicas, the simulator, one database

AGENT = "/api/v2/agents/bot"


async def test_two_tenants_each_own_an_agent_named_bot(world: World) -> None:
    key_a = await world.agent("acme", "bot", [MINI])
    key_b = await world.agent("globex", "bot", [BIG])  # the same id in another tenant: its own agent
    acme, globex = world.admin("acme"), world.admin("globex")
    again = await world.http[0].post("/api/v2/agents", json={"id": "bot", "name": "twice"}, headers=acme)
    assert again.status_code == 409  # a 409 only within one tenant
    await world.settle()

    for replica in world.http:
        mine = (await replica.get(AGENT, headers=acme)).json()
        theirs = (await replica.get(AGENT, headers=globex)).json()
        assert (mine["tenant_id"], theirs["tenant_id"]) == ("acme", "globex")
        models_a = (await replica.get(f"{AGENT}/models", headers=acme)).json()["models"]
        models_b = (await replica.get(f"{AGENT}/models", headers=globex)).json()["models"]
        assert [m["model_id"] for m in models_a] == [MINI] and [m["model_id"] for m in models_b] == [BIG]
        keys_a = (await replica.get(f"{AGENT}/keys", headers=acme)).json()["items"]
        keys_b = (await replica.get(f"{AGENT}/keys", headers=globex)).json()["items"]
        assert len(keys_a) == len(keys_b) == 1 and keys_a[0]["id"] != keys_b[0]["id"]

        # each key reaches only its own agent's models, named or routed
        for key, own, other in ((key_a, MINI, BIG), (key_b, BIG, MINI)):
            named = await replica.post(
                "/v1/chat/completions", json={"model": own, "messages": CHAT}, headers=key_headers(key)
            )
            assert named.status_code == 200 and named.headers["x-turnout-model"] == own, named.text
            routed = await replica.post(
                "/v1/chat/completions", json={"messages": CHAT}, headers=key_headers(key)
            )
            assert routed.status_code == 200 and routed.headers["x-turnout-model"] == own, routed.text
            refused = await replica.post(
                "/v1/chat/completions", json={"model": other, "messages": CHAT}, headers=key_headers(key)
            )
            assert refused.status_code == 403, refused.text
            listed = await replica.get("/v1/models", headers=key_headers(key))
            assert [m["id"] for m in listed.json()["data"]] == [own]

    rows = [r for r in await world.records(12) if r.status == "ok"]
    assert len(rows) == 8
    owners = {(r.tenant_id, r.agent_id, r.model) for r in rows}
    assert owners == {("acme", "bot", MINI), ("globex", "bot", BIG)}

    # a rating only for one's own tenant's answer, though the agent ids are equal
    b_message = next(r.id for r in rows if r.tenant_id == "globex")
    crossed = await world.http[0].post(
        f"/api/v2/chat/messages/{b_message}/feedback", json={"rating": 0.0}, headers=key_headers(key_a)
    )
    assert crossed.status_code == 404
    own_rating = await world.http[0].post(
        f"/api/v2/chat/messages/{b_message}/feedback", json={"rating": 1.0}, headers=key_headers(key_b)
    )
    assert own_rating.status_code == 200, own_rating.text

    # the audit log, capsule and deactivation of one tenant's "bot" leave the other's alone
    audit_a = (await world.http[0].get(f"{AGENT}/audit", headers=acme)).json()["entries"]
    assert [e["entity"] for e in audit_a] == [MINI]
    capsule = {"allowed_models": {"agent": []}}
    assert (
        await world.http[0].patch(AGENT, json={"capsule": capsule, "is_active": False}, headers=acme)
    ).status_code == 200
    assert (await world.http[0].get(AGENT, headers=globex)).json()["capsule"] == {}
    still = await world.http[0].post(
        "/v1/chat/completions", json={"model": BIG, "messages": CHAT}, headers=key_headers(key_b)
    )
    assert still.status_code == 200, still.text
    stopped = await world.http[0].post(
        "/v1/chat/completions", json={"model": MINI, "messages": CHAT}, headers=key_headers(key_a)
    )
    assert stopped.status_code == 403
