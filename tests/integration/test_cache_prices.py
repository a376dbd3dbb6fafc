"""Cache prices in the catalog: a sync fills them from what the provider reports or genai-prices
knows, an admin can set them by hand (and the hand-set price survives syncs), and self-hosted
models get none (their cached tokens cost the input price, 0)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest

from turnout.modelinfo.pricing import lookup_price
from turnout.providers.openai_compat import openrouter_models as openrouter
from turnout.simulator import Simulator, SimulatorConfig

MODELS = "/api/v2/admin/models"


@pytest.fixture
async def sim_url() -> AsyncIterator[str]:
    sim = Simulator(SimulatorConfig())
    url = await sim.start()
    try:
        yield url
    finally:
        await sim.stop()


async def _sync(client: httpx.AsyncClient, admin: dict[str, str], provider: dict[str, object]) -> None:
    resp = await client.post("/api/v2/admin/providers", json={"display_name": "p", **provider}, headers=admin)
    assert resp.status_code == 201, resp.text
    await _resync(client, admin, str(provider["id"]))


async def _resync(client: httpx.AsyncClient, admin: dict[str, str], provider_id: str) -> None:
    resp = await client.post(f"/api/v2/admin/providers/{provider_id}/sync", headers=admin)
    assert resp.status_code == 200, resp.text


async def test_sync_fills_cache_prices_and_hand_set_ones_survive(
    client: httpx.AsyncClient, admin: dict[str, str], sim_url: str
) -> None:
    known = lookup_price("openai", "gpt-4o-mini")
    assert known is not None and known.cache_read_per_mtok is not None
    hosted = {"id": "oai", "provider_type": "openai", "api_base": f"{sim_url}/v1", "self_hosted": False}
    await _sync(client, admin, hosted)
    model = (await client.get(f"{MODELS}/oai/gpt-4o-mini", headers=admin)).json()
    assert Decimal(str(model["pricing_cache_read"])) == known.cache_read_per_mtok

    resp = await client.patch(
        f"{MODELS}/oai/gpt-4o-mini",
        json={"pricing_cache_read": 0.01, "pricing_cache_write": 0.5},
        headers=admin,
    )
    assert resp.status_code == 200, resp.text
    assert {"pricing_cache_read", "pricing_cache_write"} <= set(resp.json()["overrides"])
    await _resync(client, admin, "oai")
    model = (await client.get(f"{MODELS}/oai/gpt-4o-mini", headers=admin)).json()
    assert (model["pricing_cache_read"], model["pricing_cache_write"]) == (0.01, 0.5)

    bad = await client.patch(f"{MODELS}/oai/gpt-4o-mini", json={"pricing_cache_read": -1}, headers=admin)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "pricing_cache_read"

    local = {"id": "local", "provider_type": "openai", "api_base": f"{sim_url}/v1"}  # localhost: self-hosted
    await _sync(client, admin, local)
    model = (await client.get(f"{MODELS}/local/gpt-4o-mini", headers=admin)).json()
    assert (model["pricing_input"], model["pricing_cache_read"], model["pricing_cache_write"]) == (
        0,
        None,
        None,
    )


def test_openrouter_reports_its_cache_prices() -> None:
    entry = {
        "id": "vendor/some-model",
        "pricing": {
            "prompt": "0.000001", "completion": "0.000002",
            "input_cache_read": "0.0000001", "input_cache_write": "0.00000125",
        },
    }  # fmt: skip
    found = openrouter.parse_entry(entry)
    assert found is not None
    assert (found.pricing_cache_read, found.pricing_cache_write) == (Decimal("0.1"), Decimal("1.25"))
