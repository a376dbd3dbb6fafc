"""Routing policies, the task -> policy map and task-detection maps through the admin API."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from turnout.domain.policies import view_of

ROUTING = "/api/v2/routing"


def _hdr(make_token: Callable[..., str], role: str, tenant: str = "acme") -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(sub=role, tenant=tenant, roles=(role,))}"}


async def test_default_policies_and_crud(
    client: httpx.AsyncClient, admin: dict[str, str], make_token: Callable[..., str]
) -> None:
    listed = (await client.get(f"{ROUTING}/policies", headers=admin)).json()
    assert {p["name"] for p in listed} == {"normal", "deep_research", "code", "ops"}
    assert next(p for p in listed if p["name"] == "ops")["max_cost_per_task"] == 0.01
    shown = {p["name"]: p["effective_cost_tradeoff"] for p in listed}  # unset: the name's default
    assert shown == {"deep_research": 0.002, "code": 0.01, "normal": 0.02, "ops": 0.08}
    body = {
        "name": "legal",
        "description": "Careful",
        "models": [{"model": "p/m", "priority": 90}],
        "max_tokens": 2000,
    }
    created = await client.post(f"{ROUTING}/policies", json=body, headers=admin)
    assert created.status_code == 201 and created.json()["models"] == [{"model": "p/m", "priority": 90}]
    assert (await client.post(f"{ROUTING}/policies", json=body, headers=admin)).status_code == 409
    replaced = await client.put(f"{ROUTING}/policies/legal", json={"temperature": 0.1}, headers=admin)
    assert (
        replaced.status_code == 200
        and replaced.json()["temperature"] == 0.1
        and replaced.json()["models"] == []
    )
    tenant_admin = _hdr(make_token, "tenant_admin")
    assert (await client.get(f"{ROUTING}/policies/legal", headers=tenant_admin)).status_code == 200
    assert (await client.delete(f"{ROUTING}/policies/legal", headers=tenant_admin)).status_code == 403
    assert (await client.delete(f"{ROUTING}/policies/legal", headers=admin)).status_code == 204
    assert (await client.get(f"{ROUTING}/policies/legal", headers=admin)).status_code == 404
    bad = await client.post(f"{ROUTING}/policies", json={"name": "x", "temperature": 9}, headers=admin)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "temperature"


async def test_a_policy_states_its_price_of_cost(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    made = await client.post(
        f"{ROUTING}/policies", json={"name": "thrifty", "cost_tradeoff": 0.2}, headers=admin
    )
    assert made.status_code == 201 and made.json()["cost_tradeoff"] == 0.2
    shown = (await client.get(f"{ROUTING}/policies/thrifty", headers=admin)).json()
    assert shown["cost_tradeoff"] == shown["effective_cost_tradeoff"] == 0.2
    plain = await client.post(f"{ROUTING}/policies", json={"name": "plain"}, headers=admin)
    assert plain.json()["cost_tradeoff"] is None
    assert plain.json()["effective_cost_tradeoff"] == 0.02  # the gateway's setting
    for bad in (-0.1, 2, "cheap"):
        refused = await client.post(
            f"{ROUTING}/policies", json={"name": "odd", "cost_tradeoff": bad}, headers=admin
        )
        assert refused.status_code == 400 and refused.json()["error"]["param"] == "cost_tradeoff", bad


def test_default_policies_price_cost_by_what_they_are_for() -> None:
    tradeoff = {name: view_of(name, {}).cost_tradeoff for name in ("deep_research", "code", "normal", "ops")}
    assert tradeoff["deep_research"] < tradeoff["code"] < tradeoff["normal"] < tradeoff["ops"]
    assert view_of("custom", {}).cost_tradeoff is None  # the router's default
    assert view_of("ops", {"cost_tradeoff": 0.01}).cost_tradeoff == 0.01


async def test_task_policy_map(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    current = (await client.get(f"{ROUTING}/task-policies", headers=admin)).json()
    assert current["code"] == "code"
    updated = await client.put(
        f"{ROUTING}/task-policies", json={"code": "deep_research", "general": "ops"}, headers=admin
    )
    assert updated.status_code == 200
    assert (await client.get(f"{ROUTING}/task-policies", headers=admin)).json() == {
        "code": "deep_research",
        "general": "ops",
    }
    unknown = await client.put(f"{ROUTING}/task-policies", json={"code": "nope"}, headers=admin)
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "mapping.code"


async def test_a_policy_a_task_routes_under_is_not_deleted(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """Deleting it left the task map naming nothing: those tasks silently routed under the default."""
    made = await client.post(
        f"{ROUTING}/policies", json={"name": "thrifty", "cost_tradeoff": 0.5}, headers=admin
    )
    assert made.status_code == 201, made.text
    mapped = await client.put(f"{ROUTING}/task-policies", json={"summarization": "thrifty"}, headers=admin)
    assert mapped.status_code == 200, mapped.text
    refused = await client.delete(f"{ROUTING}/policies/thrifty", headers=admin)
    assert refused.status_code == 409 and "summarization" in refused.json()["error"]["message"]
    await client.put(f"{ROUTING}/task-policies", json={"summarization": "normal"}, headers=admin)
    assert (await client.delete(f"{ROUTING}/policies/thrifty", headers=admin)).status_code == 204


async def test_task_maps_are_configurable(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    maps = (await client.get(f"{ROUTING}/task-maps", headers=admin)).json()
    assert maps["tool_to_task"]["code_execute"] == "code"
    maps["keyword_to_task"]["legal"] = ["contract", "lawsuit"]
    saved = await client.put(f"{ROUTING}/task-maps", json=maps, headers=admin)
    assert saved.status_code == 200, saved.text
    provider = {
        "id": "p1",
        "display_name": "P1",
        "provider_type": "custom",
        "api_base": "http://127.0.0.1:9/v1",
    }
    assert (await client.post("/api/v2/admin/providers", json=provider, headers=admin)).status_code == 201
    assert (
        await client.post(
            "/api/v2/admin/models", json={"provider_id": "p1", "external_id": "m"}, headers=admin
        )
    ).status_code == 201
    explained = await client.post(
        f"{ROUTING}/explain",
        json={"messages": [{"role": "user", "content": "Check the contract before the lawsuit"}]},
        headers=admin,
    )
    assert explained.status_code == 200, explained.text
    assert explained.json()["task_type"] == "legal" and explained.json()["detection"]["source"] == "keyword"
    assert explained.json()["chosen"] == "p1/m"
    broken = await client.put(f"{ROUTING}/task-maps", json={"keyword_to_task": "nope"}, headers=admin)
    assert broken.status_code == 400


async def test_offline_classifier_detects_when_keywords_do_not(
    settings: object, make_token: Callable[..., str]
) -> None:
    from turnout.app import create_app
    from turnout.config import Settings
    from turnout.container import Container
    from turnout.store.migrate import upgrade

    assert isinstance(settings, Settings)
    container = Container.build(settings.model_copy(update={"task_classifier": "auto"}))
    await upgrade(container.engine)
    await container.start()
    try:
        app = create_app(container=container)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            admin = _hdr(make_token, "platform_admin")
            provider = {
                "id": "p1",
                "display_name": "P1",
                "provider_type": "custom",
                "api_base": "http://127.0.0.1:9/v1",
            }
            assert (
                await http.post("/api/v2/admin/providers", json=provider, headers=admin)
            ).status_code == 201
            model = {"provider_id": "p1", "external_id": "m"}
            assert (await http.post("/api/v2/admin/models", json=model, headers=admin)).status_code == 201
            prompt = "Sasha sells ten boards at $10 each"
            resp = await http.post(
                f"{ROUTING}/explain", json={"messages": [{"role": "user", "content": prompt}]}, headers=admin
            )
            assert resp.status_code == 200, resp.text
            assert (resp.json()["task_type"], resp.json()["detection"]["source"]) == ("math", "classifier")
    finally:
        await container.aclose()
