"""Agents and their API keys: tenant-scoped, keys shown once, stored hashed, revocable."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import select

from turnout.container import Container
from turnout.store.agents import ApiKey

AGENTS = "/api/v2/agents"


def _hdr(make_token: Callable[..., str], tenant: str, role: str = "tenant_admin") -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(sub=f'{tenant}-admin', tenant=tenant, roles=(role,))}"}


async def test_create_list_get_agent_in_own_tenant(
    client: httpx.AsyncClient, make_token: Callable[..., str]
) -> None:
    acme = _hdr(make_token, "acme")
    created = await client.post(AGENTS, json={"name": "Support bot"}, headers=acme)
    assert created.status_code == 201, created.text
    agent = created.json()
    assert agent["tenant_id"] == "acme" and agent["id"].startswith("agt_")
    named = await client.post(AGENTS, json={"id": "helpdesk", "name": "Helpdesk"}, headers=acme)
    assert named.status_code == 201
    assert (
        await client.post(AGENTS, json={"id": "helpdesk", "name": "Again"}, headers=acme)
    ).status_code == 409
    listed = (await client.get(AGENTS, headers=acme)).json()
    assert {a["id"] for a in listed["items"]} == {agent["id"], "helpdesk"}
    assert (await client.get(f"{AGENTS}/helpdesk", headers=acme)).json()["name"] == "Helpdesk"


async def test_other_tenant_sees_nothing(client: httpx.AsyncClient, make_token: Callable[..., str]) -> None:
    acme, globex = _hdr(make_token, "acme"), _hdr(make_token, "globex")
    await client.post(AGENTS, json={"id": "helpdesk", "name": "Helpdesk"}, headers=acme)
    key = (await client.post(f"{AGENTS}/helpdesk/keys", json={}, headers=acme)).json()
    assert (await client.get(AGENTS, headers=globex)).json() == {"items": [], "total": 0}
    for method, path in [
        ("GET", f"{AGENTS}/helpdesk"),
        ("POST", f"{AGENTS}/helpdesk/keys"),
        ("GET", f"{AGENTS}/helpdesk/keys"),
        ("DELETE", f"{AGENTS}/helpdesk/keys/{key['id']}"),
    ]:
        resp = await client.request(method, path, headers=globex, json={} if method == "POST" else None)
        assert resp.status_code == 404, (method, path, resp.text)
    keys = (await client.get(f"{AGENTS}/helpdesk/keys", headers=acme)).json()
    assert keys["items"][0]["revoked_at"] is None


@pytest.mark.parametrize("role", ["user", "agent"])
async def test_only_admins_manage_agents(
    client: httpx.AsyncClient, make_token: Callable[..., str], role: str
) -> None:
    resp = await client.post(AGENTS, json={"name": "x"}, headers=_hdr(make_token, "acme", role))
    assert resp.status_code == 403


async def test_key_is_shown_once_and_stored_hashed(
    client: httpx.AsyncClient, make_token: Callable[..., str], container: Container
) -> None:
    acme = _hdr(make_token, "acme")
    await client.post(AGENTS, json={"id": "helpdesk", "name": "Helpdesk"}, headers=acme)
    issued = await client.post(f"{AGENTS}/helpdesk/keys", json={"name": "prod"}, headers=acme)
    assert issued.status_code == 201
    key = issued.json()
    assert key["key"].startswith("tk-") and key["hint"] == "…" + key["key"][-4:]
    listed = await client.get(f"{AGENTS}/helpdesk/keys", headers=acme)
    assert key["key"] not in listed.text and listed.json()["items"][0]["name"] == "prod"
    async with container.sessions() as session:
        row = (await session.scalars(select(ApiKey))).one()
    secret = key["key"].split(".", 1)[1]
    assert secret not in repr(vars(row)) and row.secret_hash != secret and len(row.salt) >= 16


async def test_bad_agent_input(client: httpx.AsyncClient, make_token: Callable[..., str]) -> None:
    acme = _hdr(make_token, "acme")
    for body, param in [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x", "id": "bad id!"}, "id"),
        ({"name": 5}, "name"),
    ]:
        resp = await client.post(AGENTS, json=body, headers=acme)
        assert resp.status_code == 400 and resp.json()["error"]["param"] == param, resp.text


async def test_an_unknown_default_policy_is_refused_naming_the_known_ones(
    client: httpx.AsyncClient, make_token: Callable[..., str]
) -> None:
    """``default_policy: "nope"`` was stored (201, 200 on PATCH) and then ignored: calls routed under
    ``normal``."""
    acme, platform = _hdr(make_token, "acme"), _hdr(make_token, "platform", "platform_admin")
    custom = await client.post("/api/v2/routing/policies", json={"name": "thrifty"}, headers=platform)
    assert custom.status_code == 201, custom.text
    refused = await client.post(
        AGENTS, json={"id": "bot", "name": "Bot", "default_policy": "nope"}, headers=acme
    )
    error = refused.json()["error"]
    assert refused.status_code == 400 and error["param"] == "default_policy", refused.text
    assert "'nope'" in error["message"] and all(p in error["message"] for p in ("normal", "ops", "thrifty"))
    assert (await client.get(f"{AGENTS}/bot", headers=acme)).status_code == 404
    for policy in ("thrifty", "ops"):
        created = await client.post(
            AGENTS, json={"id": f"bot-{policy}", "name": "Bot", "default_policy": policy}, headers=acme
        )
        assert created.status_code == 201 and created.json()["default_policy"] == policy, created.text
    patched = await client.patch(f"{AGENTS}/bot-ops", json={"default_policy": "nope"}, headers=acme)
    assert patched.status_code == 400 and patched.json()["error"]["param"] == "default_policy", patched.text
    assert (await client.get(f"{AGENTS}/bot-ops", headers=acme)).json()["default_policy"] == "ops"
    for policy in ("thrifty", None):
        patched = await client.patch(f"{AGENTS}/bot-ops", json={"default_policy": policy}, headers=acme)
        assert patched.status_code == 200 and patched.json()["default_policy"] == policy, patched.text
