"""Two replicas of the real app on one database (SQLite or PostgreSQL, via ``db_url``) in front of the
provider simulator, set up through the admin API the way a user would. Used by the agent, access and
experience-scope security tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from turnout.app import create_app
from turnout.config import Settings
from turnout.container import Container
from turnout.simulator import Simulator, SimulatorConfig
from turnout.store.messages import Message
from turnout.store.migrate import upgrade

SIM_KEY = "sk-sim-Agents4Security"
MINI, BIG, EMBED = "sim/gpt-4o-mini", "sim/gpt-4o", "sim/text-embedding-3-small"
CHAT: list[dict[str, Any]] = [{"role": "user", "content": "hello there"}]


@dataclass
class World:
    """Replica ``0`` and ``1`` share one database; ``http[i]`` talks to replica ``i`` in-process."""

    containers: list[Container]
    http: list[httpx.AsyncClient]
    sim: Simulator

    def token(self, sub: str, tenant: str, roles: tuple[str, ...] = ("user",), **claims: Any) -> str:
        return self.containers[0].jwt.mint(sub, tenant, roles, **claims)

    def bearer(
        self, sub: str, tenant: str, roles: tuple[str, ...] = ("user",), **claims: Any
    ) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(sub, tenant, roles, **claims)}"}

    def admin(self, tenant: str) -> dict[str, str]:
        return self.bearer(f"{tenant}-admin", tenant, ("tenant_admin",))

    async def agent(
        self, tenant: str, agent_id: str, models: list[str], capsule: dict[str, Any] | None = None
    ) -> str:
        """Create an agent in ``tenant`` with ``models`` enabled; returns a fresh API key."""
        http, admin = self.http[0], self.admin(tenant)
        body: dict[str, Any] = {"id": agent_id, "name": agent_id, "capsule": capsule or {}}
        created = await http.post("/api/v2/agents", json=body, headers=admin)
        assert created.status_code == 201, created.text
        enabled = await http.post(
            f"/api/v2/agents/{agent_id}/models", json={"model_ids": models}, headers=admin
        )
        assert enabled.status_code == 200, enabled.text
        key = await http.post(f"/api/v2/agents/{agent_id}/keys", json={}, headers=admin)
        assert key.status_code == 201, key.text
        return str(key.json()["key"])

    async def settle(self) -> None:
        """Both replicas rebuild their snapshot from the database now."""
        for container in self.containers:
            await container.snapshots.reload()

    async def records(self, count: int, timeout_s: float = 5.0) -> list[Message]:
        """Wait until ``count`` Message rows are stored; oldest first."""
        deadline = time.monotonic() + timeout_s
        while True:
            async with self.containers[0].sessions() as session:
                rows = list((await session.scalars(select(Message).order_by(Message.created_at))).all())
            if len(rows) >= count or time.monotonic() > deadline:
                return rows
            await asyncio.sleep(0.05)


def key_headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def until(check: Callable[[], Any], timeout_s: float = 5.0) -> None:
    """Await ``check()`` (a coroutine function's result or a plain value) until it is truthy."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        assert time.monotonic() < deadline, "condition never became true"
        await asyncio.sleep(0.05)


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[World]:
    fast = settings.model_copy(
        update={
            "snapshot_interval_s": 0.2,
            "feedback_sync_interval_s": 0.2,
            "record_flush_interval_s": 0.05,
            "retry_base_delay_s": 0.01,
            "retry_max_delay_s": 0.05,
        }
    )
    containers = [Container.build(fast), Container.build(fast)]
    await upgrade(containers[0].engine)
    sim = Simulator(SimulatorConfig(api_key=SIM_KEY))
    sim_url = await sim.start()
    clients: list[httpx.AsyncClient] = []
    try:
        for container in containers:
            await container.start()
            transport = httpx.ASGITransport(app=create_app(container=container), raise_app_exceptions=False)
            clients.append(httpx.AsyncClient(transport=transport, base_url="http://turnout.test", timeout=30))
        platform = {
            "Authorization": f"Bearer {containers[0].jwt.mint('root', 'platform', ['platform_admin'])}"
        }
        spec = {"id": "sim", "display_name": "Sim", "provider_type": "openai", "api_base": f"{sim_url}/v1"}
        created = await clients[0].post(
            "/api/v2/admin/providers", json={**spec, "api_key": SIM_KEY}, headers=platform
        )
        assert created.status_code == 201, created.text
        synced = await clients[0].post("/api/v2/admin/providers/sim/sync", headers=platform)
        assert synced.status_code == 200, synced.text
        env = World(containers, clients, sim)
        await env.settle()
        yield env
    finally:
        for client in clients:
            await client.aclose()
        for container in reversed(containers):
            await container.aclose()
        await sim.stop()
