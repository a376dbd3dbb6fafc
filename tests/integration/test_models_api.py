"""Catalog listing, filters, pagination, custom models and bulk enable/disable through the admin API."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

PROVIDERS = "/api/v2/admin/providers"
MODELS = "/api/v2/admin/models"


async def _seed(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for pid in ("alpha", "beta"):
        body = {
            "id": pid,
            "display_name": pid,
            "provider_type": "custom",
            "api_base": f"http://127.0.0.1:9/{pid}",
        }
        assert (await client.post(PROVIDERS, json=body, headers=admin)).status_code == 201
    free, cheap, dear = (
        {"pricing_input": 0, "pricing_output": 0},
        {"pricing_input": 0.2, "pricing_output": 0.6},
        {
            "pricing_input": 15,
            "pricing_output": 60,
        },
    )
    specs: list[dict[str, Any]] = [
        {
            "provider_id": "alpha",
            "external_id": "org/vision-free:free",
            "capabilities": ["text", "vision"],
            **free,
        },
        {
            "provider_id": "alpha",
            "external_id": "org/coder",
            "capabilities": ["text", "code", "function_calling"],
        }
        | cheap,
        {"provider_id": "alpha", "external_id": "org/big-vision", "display_name": "Big 100%_Vision"}
        | {"capabilities": ["text", "vision", "function_calling"], **dear},
        {
            "provider_id": "beta",
            "external_id": "embed-small",
            "model_type": "embedding",
            "capabilities": ["text"],
        },
        {
            "provider_id": "beta",
            "external_id": "plain",
            "pricing_input": 3,
            "pricing_output": 9,
            "priority": 80,
        },
    ]
    for spec in specs:
        resp = await client.post(MODELS, json=spec, headers=admin)
        assert resp.status_code == 201, resp.text


async def _ids(client: httpx.AsyncClient, admin: dict[str, str], query: str) -> list[str]:
    resp = await client.get(f"{MODELS}?{query}", headers=admin)
    assert resp.status_code == 200, resp.text
    return [m["id"] for m in resp.json()["items"]]


async def test_custom_models_get_derived_tiers(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await _seed(client, admin)
    tiers = {
        m["id"]: m["cost_tier"]
        for m in (await client.get(f"{MODELS}?per_page=50", headers=admin)).json()["items"]
    }
    assert tiers == {
        "alpha/org/vision-free:free": "free",
        "alpha/org/coder": "low",
        "alpha/org/big-vision": "premium",
        "beta/embed-small": "standard",
        "beta/plain": "standard",
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("provider=alpha", ["alpha/org/big-vision", "alpha/org/coder", "alpha/org/vision-free:free"]),
        ("provider=alpha&cost_tier=free", ["alpha/org/vision-free:free"]),
        ("capability=vision", ["alpha/org/big-vision", "alpha/org/vision-free:free"]),
        ("capability=vision&capability=function_calling", ["alpha/org/big-vision"]),
        ("capability=code&capability=vision", []),
        ("model_type=embedding", ["beta/embed-small"]),
        ("q=CODER", ["alpha/org/coder"]),
        ("q=100%25_", ["alpha/org/big-vision"]),
        ("q=%25", ["alpha/org/big-vision"]),
        ("provider=nobody", []),
    ],
)
async def test_filters(
    client: httpx.AsyncClient, admin: dict[str, str], query: str, expected: list[str]
) -> None:
    await _seed(client, admin)
    assert await _ids(client, admin, query) == expected


async def test_pagination_covers_everything_once(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await _seed(client, admin)
    pages = [(await client.get(f"{MODELS}?per_page=2&page={n}", headers=admin)).json() for n in (1, 2, 3, 4)]
    assert [p["total"] for p in pages] == [5, 5, 5, 5]
    assert [len(p["items"]) for p in pages] == [2, 2, 1, 0]
    ids = [m["id"] for p in pages for m in p["items"]]
    assert len(set(ids)) == 5 and ids == sorted(ids)
    assert pages[1]["page"] == 2 and pages[1]["per_page"] == 2


async def test_edit_model_with_slashes_and_price_rederives_tier(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await _seed(client, admin)
    resp = await client.patch(
        f"{MODELS}/alpha/org/coder", json={"pricing_input": 20, "pricing_output": 80}, headers=admin
    )
    assert resp.status_code == 200
    assert resp.json()["cost_tier"] == "premium"
    resp = await client.patch(f"{MODELS}/alpha/org/coder", json={"cost_tier": "low"}, headers=admin)
    assert resp.json()["cost_tier"] == "low"
    detail = (await client.get(f"{MODELS}/alpha/org/coder", headers=admin)).json()
    assert detail["cost_tier"] == "low" and detail["pricing_input"] == 20 and "metadata" in detail


async def test_bulk_disable_then_enable_by_filter(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await _seed(client, admin)
    body = {"filter": {"provider": "alpha", "capability": ["vision"]}, "is_enabled": False}
    result = (await client.post(f"{MODELS}/bulk", json=body, headers=admin)).json()
    assert result == {"matched": 2, "changed": 2, "is_enabled": False}
    assert await _ids(client, admin, "enabled=false") == [
        "alpha/org/big-vision",
        "alpha/org/vision-free:free",
    ]
    again = (await client.post(f"{MODELS}/bulk", json=body, headers=admin)).json()
    assert again["changed"] == 0
    body = {"filter": {"cost_tier": "free"}, "is_enabled": True}
    assert (await client.post(f"{MODELS}/bulk", json=body, headers=admin)).json()["changed"] == 1
    assert await _ids(client, admin, "enabled=false") == ["alpha/org/big-vision"]


async def test_bulk_without_filter_is_refused(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await _seed(client, admin)
    resp = await client.post(f"{MODELS}/bulk", json={"filter": {}, "is_enabled": False}, headers=admin)
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "filter"
    assert await _ids(client, admin, "enabled=false") == []


async def test_provider_list_counts_models(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await _seed(client, admin)
    listed = (await client.get(PROVIDERS, headers=admin)).json()
    assert listed["total"] == 2
    assert {p["id"]: p["model_count"] for p in listed["items"]} == {"alpha": 3, "beta": 2}


async def test_a_null_cost_tier_drops_the_override_and_derives_it_from_the_prices_again(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await _seed(client, admin)
    path = f"{MODELS}/alpha/org/coder"
    pinned = await client.patch(path, json={"cost_tier": "low", "pricing_input": 20}, headers=admin)
    assert pinned.status_code == 200 and pinned.json()["cost_tier"] == "low", pinned.text
    cleared = await client.patch(path, json={"cost_tier": None, "pricing_output": 80}, headers=admin)
    assert cleared.status_code == 200, cleared.text  # was a 500: NOT NULL written to the column
    assert cleared.json()["cost_tier"] == "premium"  # from the prices, 20 and 80 per million
    again = await client.patch(path, json={"pricing_input": 0, "pricing_output": 0}, headers=admin)
    assert again.json()["cost_tier"] == "free"  # no override left: prices decide it again
