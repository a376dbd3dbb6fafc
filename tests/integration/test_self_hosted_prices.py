"""Self-hosted models are free: providers on the operator's own machines, or whose admin set default
prices, sync their models at those prices (0 unless said otherwise), not at a hosted API's guess."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from turnout.simulator import Simulator, SimulatorConfig

PROVIDERS = "/api/v2/admin/providers"
MODELS = "/api/v2/admin/models"
KEY = "sk-sim-SelfHosted4Tests9x"
GGUF = "/models/SmolLM2-135M-Instruct-Q8_0.gguf"  # what llama.cpp's server lists as its model id


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    simulator = Simulator(SimulatorConfig(api_key=KEY))
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


async def _add(client: httpx.AsyncClient, admin: dict[str, str], pid: str, **fields: Any) -> dict[str, Any]:
    body = {"id": pid, "display_name": pid, "api_key": KEY, **fields}
    resp = await client.post(PROVIDERS, json=body, headers=admin)
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


async def _synced(client: httpx.AsyncClient, admin: dict[str, str], pid: str) -> dict[str, dict[str, Any]]:
    resp = await client.post(f"{PROVIDERS}/{pid}/sync", headers=admin)
    assert resp.status_code == 200, resp.text
    listed = await client.get(f"{MODELS}?provider={pid}&per_page=100", headers=admin)
    assert listed.status_code == 200, listed.text
    return {m["external_id"]: m for m in listed.json()["items"]}


def _prices(model: dict[str, Any]) -> tuple[Any, Any, str]:
    return model["pricing_input"], model["pricing_output"], model["cost_tier"]


async def test_local_servers_sync_their_models_free(
    client: httpx.AsyncClient, admin: dict[str, str], sim: Simulator
) -> None:
    sim.config.models = ["gpt-4o", "llama-3.1-8b-instruct", GGUF]
    local = [
        ("loopback", {"provider_type": "openai", "api_base": f"{sim.base_url}/v1"}),
        (
            "byname",
            {"provider_type": "custom", "api_base": f"{sim.base_url.replace('127.0.0.1', 'localhost')}/v1"},
        ),
        ("ollama", {"provider_type": "ollama", "api_base": sim.base_url}),
    ]
    for pid, spec in local:
        await _add(client, admin, pid, **spec)
        models = await _synced(client, admin, pid)
        assert len(models) == 3, models
        for model in models.values():  # even gpt-4o: whatever it is called, it runs on this machine
            assert _prices(model) == (0, 0, "free"), (pid, model)
        provider = (await client.get(f"{PROVIDERS}/{pid}", headers=admin)).json()
        assert provider["is_self_hosted"] is True and provider["self_hosted"] is None
    free = await client.get(f"{MODELS}?provider=loopback&cost_tier=free", headers=admin)
    assert free.json()["total"] == 3


async def test_default_prices_price_every_synced_model(
    client: httpx.AsyncClient, admin: dict[str, str], sim: Simulator
) -> None:
    """A provider that is not self-hosted keeps genai-prices' figures, unless its admin set defaults."""
    sim.config.models = ["gpt-4o", "gpt-4o-mini"]
    hosted = {"provider_type": "openai", "api_base": f"{sim.base_url}/v1", "self_hosted": False}
    assert (await _add(client, admin, "priced", **hosted))["is_self_hosted"] is False
    models = await _synced(client, admin, "priced")
    assert _prices(models["gpt-4o"]) == (2.5, 10.0, "standard"), "genai-prices knows OpenAI's price"

    await _add(client, admin, "gratis", **hosted, default_price_input=0, default_price_output=0)
    models = await _synced(client, admin, "gratis")
    assert [_prices(m) for m in models.values()] == [(0, 0, "free")] * 2

    await _add(client, admin, "flat", **hosted, default_price_input="0.5", default_price_output=2)
    assert _prices((await _synced(client, admin, "flat"))["gpt-4o"]) == (0.5, 2.0, "low")


async def test_defaults_set_later_reprice_at_the_next_sync_and_hand_set_prices_win(
    client: httpx.AsyncClient, admin: dict[str, str], sim: Simulator
) -> None:
    sim.config.models = ["gpt-4o", "gpt-4o-mini"]
    await _add(
        client, admin, "relay", provider_type="openai", api_base=f"{sim.base_url}/v1", self_hosted=False
    )
    await _synced(client, admin, "relay")
    hand = await client.patch(
        f"{MODELS}/relay/gpt-4o-mini", json={"pricing_input": 20, "pricing_output": 80}, headers=admin
    )
    assert hand.status_code == 200 and hand.json()["cost_tier"] == "premium", hand.text

    patched = await client.patch(
        f"{PROVIDERS}/relay", json={"default_price_input": 0, "default_price_output": 0}, headers=admin
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["default_price_input"], patched.json()["default_price_output"]) == (0, 0)
    models = await _synced(client, admin, "relay")
    assert _prices(models["gpt-4o"]) == (0, 0, "free")
    assert _prices(models["gpt-4o-mini"]) == (20, 80, "premium"), "the admin's own price stays, with its tier"

    cleared = await client.patch(
        f"{PROVIDERS}/relay", json={"default_price_input": None, "default_price_output": None}, headers=admin
    )
    assert cleared.json()["default_price_input"] is None
    assert _prices((await _synced(client, admin, "relay"))["gpt-4o"]) == (2.5, 10.0, "standard")


async def test_a_self_hosted_model_gets_a_readable_alias(
    client: httpx.AsyncClient, admin: dict[str, str], sim: Simulator
) -> None:
    sim.config.models = [GGUF]
    await _add(client, admin, "llama", provider_type="openai", api_base=f"{sim.base_url}/v1")
    model_id = f"llama/{GGUF}"
    assert model_id in {m["id"] for m in (await _synced(client, admin, "llama")).values()}
    resp = await client.patch(f"{MODELS}/{model_id}", json={"alias": "smollm2-135m"}, headers=admin)
    assert resp.status_code == 200 and resp.json()["alias"] == "smollm2-135m", resp.text
    priced = await client.patch(
        f"{PROVIDERS}/llama", json={"default_price_input": 0.1, "default_price_output": 0.2}, headers=admin
    )
    assert priced.status_code == 200, priced.text
    again = await _synced(client, admin, "llama")  # new prices: the sync rewrites the row
    assert _prices(again[GGUF]) == (0.1, 0.2, "low")
    assert again[GGUF]["alias"] == "smollm2-135m", "the alias survives syncs"
