"""An admin change takes effect at once and stays, whatever snapshot rebuild is in flight: a rebuild
reads the database for a while (longer as the catalog grows), and used to install what it read over
the key issued, revoked or model enabled meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
from sqlalchemy import event, insert

from turnout.container import Container
from turnout.store.models import Model
from turnout.store.routing import AgentModelConfig

CATALOG = 30_000  # enough rows that a rebuild is still reading when a few admin writes are done


async def _setup(
    client: httpx.AsyncClient, container: Container, owner: dict[str, str], admin: dict[str, str]
) -> None:
    body = {"id": "p", "display_name": "P", "provider_type": "custom", "api_base": "http://127.0.0.1:9/v1"}
    assert (await client.post("/api/v2/admin/providers", json=body, headers=admin)).status_code == 201
    rows = [
        {
            "id": f"p/m{i}",
            "provider_id": "p",
            "external_id": f"m{i}",
            "display_name": f"m{i}",
            "capabilities": ["text"],
        }
        for i in range(CATALOG)
    ]
    for agent in ("bot", "big"):
        made = await client.post("/api/v2/agents", json={"id": agent, "name": agent}, headers=owner)
        assert made.status_code == 201
    enabled = [
        {"id": f"c{i}", "agent_id": "big", "tenant_id": "acme", "model_id": f"p/m{i}"} for i in range(CATALOG)
    ]
    async with container.sessions.begin() as session:
        await session.execute(insert(Model), rows)
        await session.execute(insert(AgentModelConfig), enabled)  # read last, and long, by a rebuild
    await container.snapshots.reload()


async def _listed(client: httpx.AsyncClient, key: str) -> tuple[int, set[str]]:
    resp = await client.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
    return resp.status_code, {
        m["id"] for m in resp.json().get("data", [])
    } if resp.status_code == 200 else set()


async def test_changes_made_during_a_rebuild_survive_it(
    client: httpx.AsyncClient, container: Container, make_token: Callable[..., str], admin: dict[str, str]
) -> None:
    owner = {"Authorization": f"Bearer {make_token(sub='ann', tenant='acme', roles=('tenant_admin',))}"}
    await _setup(client, container, owner, admin)
    reading_agent_models = asyncio.Event()

    def watch(conn: object, cursor: object, statement: str, *args: object) -> None:
        if "agent_model_config.priority_override" in statement:  # the rebuild, not its probe
            reading_agent_models.set()  # the rebuild has read the keys already

    event.listen(container.engine.sync_engine, "before_cursor_execute", watch)
    raced = 0
    for round_ in range(4):
        old = (await client.post("/api/v2/agents/bot/keys", json={}, headers=owner)).json()
        reading_agent_models.clear()
        rebuild = asyncio.create_task(container.snapshots.reload())
        await reading_agent_models.wait()
        new = (await client.post("/api/v2/agents/bot/keys", json={}, headers=owner)).json()
        revoked = await client.delete(f"/api/v2/agents/bot/keys/{old['id']}", headers=owner)
        assert revoked.status_code == 200
        model = f"p/m{round_}"
        enabled = await client.post("/api/v2/agents/bot/models", json={"model_ids": [model]}, headers=owner)
        assert enabled.status_code == 200, enabled.text
        raced += not rebuild.done()
        for when in ("during", "after"):
            if when == "after":
                await rebuild
            status, models = await _listed(client, new["key"])
            assert status == 200, f"round {round_}, {when} the rebuild: a key just issued is refused"
            assert model in models, f"round {round_}, {when} the rebuild: a model just enabled is missing"
            status, _ = await _listed(client, old["key"])
            assert status == 401, f"round {round_}, {when} the rebuild: a key just revoked still works"
    assert raced >= 1, "the writes happened while a rebuild was in flight"
