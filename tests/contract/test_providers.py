"""The provider contract: every registered provider type (``registry.SPECS``) passes the same suite
against the simulator, through the real gateway (a live server, the official OpenAI SDK as client):
its models list syncs; a chat answers, whole and streamed; a tool call comes back as one; and an
upstream error reaches the client in the OpenAI error shape with the provider's credential scrubbed.

A newly registered provider is tested here without a line of this file changing; the simulator
must speak its wire format (``turnout/simulator/mounts.py``), or its tests fail saying so.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import pytest_asyncio

from tests.live_server import serve
from turnout.app import create_app
from turnout.config import Settings
from turnout.container import Container
from turnout.providers.registry import SPECS
from turnout.providers.spec import ProviderSpec
from turnout.simulator import Simulator, SimulatorConfig
from turnout.simulator.mounts import MOUNTS
from turnout.store.migrate import upgrade

pytestmark = pytest.mark.asyncio(loop_scope="module")

# the shape of a real key, so the scrubbing under test is the one real keys get
SIM_KEY = "sk-sim-" + secrets.token_hex(20)
# A sample value per credential field: each is set on the simulator (its config fields of the same
# names) and sent by the provider types whose credential schema takes the field.
SIM_CREDENTIALS = {
    "api_key": SIM_KEY,
    "aws_access_key_id": "AKIA" + secrets.token_hex(8).upper(),
    "aws_secret_access_key": secrets.token_urlsafe(30),
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
by_type = pytest.mark.parametrize("spec", SPECS, ids=[spec.type for spec in SPECS])


def credential(spec: ProviderSpec) -> dict[str, str]:
    """The sample credential of ``spec``: the sample value of each field its schema takes."""
    fields = {name: SIM_CREDENTIALS[name] for name in spec.credentials.fields if name in SIM_CREDENTIALS}
    missing = [name for name in spec.credentials.required if name not in fields]
    if missing:
        pytest.fail(f"no sample value for credential fields {missing}: add them to SIM_CREDENTIALS")
    return fields


@dataclass
class World:
    url: str
    sim: Simulator
    container: Container
    http: httpx.AsyncClient
    admin: dict[str, str]
    tenant_admin: dict[str, str]
    agent_key: str
    synced: dict[str, dict[str, Any]] = field(default_factory=dict)  # provider type -> sync result

    def client(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=f"{self.url}/v1", api_key=self.agent_key, max_retries=0)

    async def provider(self, spec: ProviderSpec) -> dict[str, Any]:
        """The provider of ``spec``'s type at the simulator, created and synced once, its models
        allowed to the agent; returns the sync result."""
        if spec.type in self.synced:
            return self.synced[spec.type]
        if spec.type not in MOUNTS:
            pytest.fail(
                f"the simulator does not speak provider type {spec.type!r}: add its routes and an "
                "entry in turnout/simulator/mounts.py (see src/turnout/providers/README.md)"
            )
        body: dict[str, Any] = {
            "id": spec.type,
            "display_name": spec.display_name,
            "provider_type": spec.type,
            "api_base": self.sim.api_base(spec.type),
        }
        fields = credential(spec)
        if list(fields) == ["api_key"]:
            body["api_key"] = fields["api_key"]  # the short form
        else:
            body["credentials"] = fields
        created = await self.http.post("/api/v2/admin/providers", json=body, headers=self.admin)
        assert created.status_code == 201, created.text
        synced = await self.http.post(f"/api/v2/admin/providers/{spec.type}/sync", headers=self.admin)
        assert synced.status_code == 200, synced.text
        allowed = await self.http.post(
            "/api/v2/agents/bot/models",
            json={"bulk_filter": {"provider": spec.type}},
            headers=self.tenant_admin,
        )
        assert allowed.status_code < 300, allowed.text
        await self.container.snapshots.refresh()
        self.synced[spec.type] = synced.json()
        return self.synced[spec.type]

    def chat_model(self, spec: ProviderSpec) -> tuple[str, str]:
        """(catalog id, the provider's id) of a chat model the simulator lists for ``spec``."""
        external = next(m for m in self.sim.listed_models(spec.type) if "embed" not in m)
        return f"{spec.type}/{external}", external


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    tmp: Path = tmp_path_factory.mktemp("contract")
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp}/contract.db",
        data_dir=tmp / "data",
        jwt_secret=secrets.token_hex(32),
        master_key=secrets.token_hex(32),
        task_classifier="off",
        retry_base_delay_s=0.01,
        retry_max_delay_s=0.05,
        record_flush_interval_s=0.05,
        _env_file=None,  # type: ignore[call-arg]
    )
    container = Container.build(settings)
    await upgrade(container.engine)
    sim = Simulator(SimulatorConfig(**SIM_CREDENTIALS))
    await sim.start()
    try:
        async with (
            serve(create_app(container=container)) as url,
            httpx.AsyncClient(base_url=url, timeout=30) as http,
        ):
            admin = {"Authorization": f"Bearer {container.jwt.mint('root', 'platform', ['platform_admin'])}"}
            ann = container.jwt.mint("ann", "acme", ["tenant_admin"])
            tenant_admin = {"Authorization": f"Bearer {ann}"}
            agent = await http.post("/api/v2/agents", json={"id": "bot", "name": "Bot"}, headers=tenant_admin)
            assert agent.status_code == 201, agent.text
            key = await http.post("/api/v2/agents/bot/keys", json={}, headers=tenant_admin)
            assert key.status_code == 201, key.text
            yield World(url, sim, container, http, admin, tenant_admin, key.json()["key"])
    finally:
        await sim.stop()
        await container.aclose()


@by_type
async def test_models_are_listed_and_synced(world: World, spec: ProviderSpec) -> None:
    result = await world.provider(spec)
    listed = set(world.sim.listed_models(spec.type))
    assert result["models_discovered"] == len(listed) and result["models_skipped"] == 0
    page = await world.http.get(
        "/api/v2/admin/models", params={"provider": spec.type, "per_page": 100}, headers=world.admin
    )
    assert page.status_code == 200, page.text
    assert {m["external_id"] for m in page.json()["items"]} == listed


@by_type
async def test_chat(world: World, spec: ProviderSpec) -> None:
    await world.provider(spec)
    model, external = world.chat_model(spec)
    answer = await world.client().chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hello there"}]
    )
    assert answer.model == model
    assert (answer.choices[0].message.content or "").startswith("Echo: hello there")
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None and answer.usage.completion_tokens > 0
    assert world.sim.requests[-1].model == external


@by_type
async def test_stream(world: World, spec: ProviderSpec) -> None:
    await world.provider(spec)
    model, _ = world.chat_model(spec)
    stream = await world.client().chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "stream please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, usage = "", None, None
    async for chunk in stream:
        assert chunk.model == model
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
        usage = chunk.usage or usage
    assert text.startswith("Echo: stream please") and finish == "stop"
    assert usage is not None and usage.completion_tokens > 0


@by_type
async def test_tool_call(world: World, spec: ProviderSpec) -> None:
    await world.provider(spec)
    model, _ = world.chat_model(spec)
    answer = await world.client().chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER],  # type: ignore[list-item]
    )
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert len(calls) == 1 and calls[0].type == "function"
    assert calls[0].function.name == "get_weather" and calls[0].id
    assert isinstance(json.loads(calls[0].function.arguments), dict)


@by_type
async def test_upstream_error_is_openai_shaped_and_scrubbed(world: World, spec: ProviderSpec) -> None:
    await world.provider(spec)
    model, external = world.chat_model(spec)
    world.sim.inject("echo_key:400", model=external)  # the upstream quotes the key it was sent
    resp = await world.http.post(
        "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {world.agent_key}"},
    )
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
    assert "Incorrect API key provided" in error["message"] and "[REDACTED]" in error["message"]
    for value in credential(spec).values():
        assert value not in resp.text and value.removeprefix("sk-sim-") not in resp.text
    assert world.sim.stats.faults["echo_key"] >= 1
