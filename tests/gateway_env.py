"""A live Turnout (uvicorn, real sockets) in front of the provider simulator, set up the way a user
would: providers created and synced through the admin API, an agent with an API key."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from sqlalchemy import select

from tests.live_server import serve
from turnout.app import create_app
from turnout.config import Settings
from turnout.container import Container
from turnout.simulator import Simulator, SimulatorConfig
from turnout.store.messages import Message

SIM_KEY = "sk-sim-Upstream7Key4Tests"
OPENAI_MODEL = "oai/gpt-4o-mini"
OPENAI_MODEL_2 = "oai/gpt-4o"
ANTHROPIC_MODEL = "claude/claude-haiku-4-5"
OLLAMA_MODEL = "local/llama3.2:latest"


@dataclass
class GatewayEnv:
    url: str
    key: str
    agent_id: str
    sim: Simulator
    container: Container
    http: httpx.AsyncClient
    admin: dict[str, str]
    clients: list[Any] = dataclasses.field(default_factory=list)

    def openai(self) -> openai.AsyncOpenAI:
        """An official OpenAI SDK client pointed at Turnout (no SDK retries), closed at teardown."""
        client = openai.AsyncOpenAI(base_url=f"{self.url}/v1", api_key=self.key, max_retries=0)
        self.clients.append(client)
        return client

    def anthropic(self) -> anthropic.AsyncAnthropic:
        """An official Anthropic SDK client pointed at Turnout, closed at teardown."""
        client = anthropic.AsyncAnthropic(base_url=self.url, api_key=self.key, max_retries=0)
        self.clients.append(client)
        return client

    async def add_provider(self, spec: dict[str, Any]) -> None:
        """Register a provider (``spec`` as ``POST /api/v2/admin/providers`` takes it, with the
        simulator's key unless it has ``credentials``), sync it and allow its models to the agent,
        as the admins would."""
        key = {} if "credentials" in spec else {"api_key": SIM_KEY}  # Bedrock signs with a key pair
        body = {"display_name": spec["id"], **key, **spec}
        created = await self.http.post("/api/v2/admin/providers", json=body, headers=self.admin)
        assert created.status_code == 201, created.text
        synced = await self.http.post(f"/api/v2/admin/providers/{spec['id']}/sync", headers=self.admin)
        assert synced.status_code == 200, synced.text
        owner = {"Authorization": "Bearer " + self.container.jwt.mint("ann", "acme", ["tenant_admin"])}
        selection = {"bulk_filter": {"provider": spec["id"]}}
        path = f"/api/v2/agents/{self.agent_id}/models"
        allowed = await self.http.post(path, json=selection, headers=owner)
        assert allowed.status_code < 300, allowed.text

    async def records(self, count: int, timeout_s: float = 5.0) -> list[Message]:
        """Wait until at least ``count`` Message rows are stored; return them oldest first."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            async with self.container.sessions() as session:
                rows = list((await session.scalars(select(Message).order_by(Message.created_at))).all())
            if len(rows) >= count or asyncio.get_running_loop().time() > deadline:
                return rows
            await asyncio.sleep(0.05)

    def upstream_calls(self, route: str = "POST /v1/chat/completions") -> int:
        return int(self.sim.stats.routes[route])


FAST: dict[str, Any] = {  # fast retries and short timeouts, so fault tests run in seconds
    "retry_base_delay_s": 0.01,
    "retry_max_delay_s": 0.05,
    "first_byte_timeout_s": 2.0,
    "http_read_timeout_s": 2.0,
    "http_total_timeout_s": 5.0,
    "breaker_threshold": 3,
    "breaker_cooldown_s": 1.0,
    "record_flush_interval_s": 0.05,
    "store_message_text": True,
}


def gateway_settings(settings: Settings, **overrides: Any) -> Settings:
    """``settings`` with ``FAST`` (and ``overrides``) applied."""
    return settings.model_copy(update={**FAST, **overrides})


async def _ok(resp: httpx.Response) -> dict[str, Any]:
    assert resp.status_code < 300, resp.text
    return resp.json()  # type: ignore[no-any-return]


async def provision(
    http: httpx.AsyncClient, make_token: Callable[..., str], sim_url: str
) -> tuple[dict[str, str], str, str]:
    """Set Turnout up through its admin API as a user would: the simulator as three providers
    (OpenAI, Anthropic and Ollama formats), synced; tenant ``acme``'s agent ``bot`` allowed every
    model, with an API key. Returns the platform admin's headers, the agent's id and its key."""
    root = make_token(sub="root", tenant="platform", roles=("platform_admin",))
    admin = {"Authorization": f"Bearer {root}"}
    providers = [  # the simulator stands in for the hosted APIs: priced as they are, not free
        {"id": "oai", "provider_type": "openai", "api_base": f"{sim_url}/v1", "self_hosted": False},
        {"id": "claude", "provider_type": "anthropic", "api_base": sim_url, "self_hosted": False},
        {"id": "local", "provider_type": "ollama", "api_base": sim_url},
    ]
    for spec in providers:
        await _ok(
            await http.post(
                "/api/v2/admin/providers",
                json={**spec, "display_name": spec["id"], "api_key": SIM_KEY},
                headers=admin,
            )
        )
        await _ok(await http.post(f"/api/v2/admin/providers/{spec['id']}/sync", headers=admin))
    tenant_admin = {
        "Authorization": f"Bearer {make_token(sub='ann', tenant='acme', roles=('tenant_admin',))}"
    }
    agent = await _ok(
        await http.post("/api/v2/agents", json={"id": "bot", "name": "Bot"}, headers=tenant_admin)
    )
    key = await _ok(await http.post(f"/api/v2/agents/{agent['id']}/keys", json={}, headers=tenant_admin))
    for spec in providers:  # the agent may use every model of the three providers
        selection = {"bulk_filter": {"provider": spec["id"]}}
        await _ok(
            await http.post(f"/api/v2/agents/{agent['id']}/models", json=selection, headers=tenant_admin)
        )
    return admin, str(agent["id"]), str(key["key"])


@asynccontextmanager
async def gateway(tmp_path: Path, **overrides: Any) -> AsyncIterator[GatewayEnv]:
    """A provisioned Turnout on the embedded SQLite store, with ``overrides`` of its settings."""
    base = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/gw.db",
        data_dir=tmp_path / "data",
        jwt_secret=secrets.token_hex(32),
        master_key=secrets.token_hex(32),
        task_classifier="off",
        _env_file=None,  # type: ignore[call-arg]
    )
    async with open_gateway(base, **overrides) as env:
        yield env


@asynccontextmanager
async def open_gateway(base: Settings, **overrides: Any) -> AsyncIterator[GatewayEnv]:
    """A served gateway on ``base``'s (empty) database, provisioned against a running simulator."""
    container = Container.build(gateway_settings(base, **overrides))
    make_token: Callable[..., str] = lambda sub, tenant, roles: container.jwt.mint(sub, tenant, roles)  # noqa: E731
    from turnout.store.migrate import upgrade

    await upgrade(container.engine)
    sim = Simulator(SimulatorConfig(api_key=SIM_KEY))
    sim_url = await sim.start()
    try:
        async with (
            serve(create_app(container=container)) as url,
            httpx.AsyncClient(base_url=url, timeout=30) as http,
        ):
            admin, agent_id, key = await provision(http, make_token, sim_url)
            await container.snapshots.reload()
            sim.reset_stats()  # count only what the tests send
            env = GatewayEnv(url, key, agent_id, sim, container, http, admin)
            try:
                yield env
            finally:
                for client in env.clients:
                    await client.close()
    finally:
        await sim.stop()
        await container.aclose()


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[GatewayEnv]:
    """The data plane is database-free on its hot path, so it runs on the embedded SQLite store."""
    async with gateway(tmp_path) as env:
        yield env
