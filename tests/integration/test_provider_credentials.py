"""Provider credentials through the admin API: the ``credentials`` object (checked against the
provider type's credential schema) next to the ``api_key`` short form, rotation, and secrets stored
by installs older than structured credentials (a plain string), which keep working."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from turnout.container import Container
from turnout.simulator import Simulator, SimulatorConfig

PROVIDERS = "/api/v2/admin/providers"
KEY = "sk-sim-Cr3dentialsKey9x7Q2"


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    simulator = Simulator(SimulatorConfig(api_key=KEY))
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


async def _create(
    client: httpx.AsyncClient, admin: dict[str, str], sim: Simulator, **fields: Any
) -> httpx.Response:
    body = {
        "id": "sim",
        "display_name": "Sim",
        "provider_type": "anthropic",
        "api_base": sim.base_url,
        **fields,
    }
    return await client.post(PROVIDERS, json=body, headers=admin)


async def _sync_status(client: httpx.AsyncClient, admin: dict[str, str]) -> int:
    return (await client.post(f"{PROVIDERS}/sim/sync", headers=admin)).status_code


async def test_credentials_object_is_stored_and_used(
    client: httpx.AsyncClient, admin: dict[str, str], sim: Simulator
) -> None:
    created = await _create(client, admin, sim, credentials={"api_key": KEY})
    assert created.status_code == 201, created.text
    assert created.json()["api_key_hint"] == "…" + KEY[-4:] and KEY not in created.text
    assert await _sync_status(client, admin) == 200  # the simulator let the stored key in
    rotated = "sk-sim-RotatedKey0000000001"
    sim.config.api_key = rotated
    assert await _sync_status(client, admin) == 502  # the old key is refused upstream
    patched = await client.patch(
        f"{PROVIDERS}/sim", json={"credentials": {"api_key": rotated}}, headers=admin
    )
    assert patched.status_code == 200, patched.text
    assert await _sync_status(client, admin) == 200


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        (
            {"credentials": {"aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG"}},
            "credentials.aws_secret_access_key",
        ),
        ({"api_key": KEY, "credentials": {"api_key": KEY}}, "credentials.api_key"),
        ({"credentials": {}}, "credentials"),
    ],
)
async def test_credentials_outside_the_schema_are_a_400_naming_the_field(
    client: httpx.AsyncClient, admin: dict[str, str], sim: Simulator, fields: dict[str, Any], param: str
) -> None:
    resp = await _create(client, admin, sim, **fields)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["param"] == param
    assert (await client.get(f"{PROVIDERS}/sim", headers=admin)).status_code == 404  # nothing stored


async def test_a_plain_string_secret_from_an_older_install_still_works(
    client: httpx.AsyncClient, admin: dict[str, str], container: Container, sim: Simulator
) -> None:
    created = await _create(client, admin, sim, api_key=KEY)
    assert created.status_code == 201, created.text
    ref = created.json()["api_key_ref"]
    await container.secrets.put(ref, KEY)  # the value as versions before structured credentials wrote it
    assert await container.secrets.get_fields(ref) == {"api_key": KEY}
    assert await _sync_status(client, admin) == 200
    tested = await client.post(f"{PROVIDERS}/sim/test", headers=admin)
    assert tested.status_code == 200 and tested.json()["ok"] is True, tested.text
