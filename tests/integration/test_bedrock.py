"""AWS Bedrock end to end: a live Turnout in front of the simulator's Bedrock routes, the provider
created through the admin API with an AWS key pair (``credentials``), the official OpenAI SDK as
client. The simulator checks every SigV4 signature with botocore, so each passing call proves the
request was signed right; botocore's own Bedrock clients check the simulator in turn.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import botocore.session
import httpx
import openai
import pytest
import pytest_asyncio
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.gateway_env import GatewayEnv, gateway
from turnout.simulator import Simulator

pytestmark = pytest.mark.asyncio(loop_scope="module")

KEY_ID = "AKIA" + secrets.token_hex(8).upper()
SECRET = secrets.token_urlsafe(30)
CLAUDE = "anthropic.claude-3-5-haiku-20241022-v1:0"
MODEL = f"aws/{CLAUDE}"
PNG = base64.b64encode(bytes.fromhex("89504e470d0a1a0a0000000d49484452")).decode()
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@dataclass
class World:
    env: GatewayEnv
    synced: dict[str, Any]

    @property
    def sim(self) -> Simulator:
        return self.env.sim

    @property
    def http(self) -> httpx.AsyncClient:
        return self.env.http

    @property
    def admin(self) -> dict[str, str]:
        return self.env.admin

    @property
    def agent_key(self) -> str:
        return self.env.key

    def client(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=f"{self.env.url}/v1", api_key=self.env.key, max_retries=0)

    def last_body(self) -> dict[str, Any]:
        return self.sim.requests[-1].body

    @contextmanager
    def secret(self, value: str) -> Iterator[None]:
        """The simulator (AWS) expects ``value`` as the secret key for a while."""
        self.sim.config.aws_secret_access_key = value
        try:
            yield
        finally:
            self.sim.config.aws_secret_access_key = SECRET


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    """The gateway of ``tests/gateway_env.py``, with a Bedrock provider created through the admin
    API from an AWS key pair, synced, and its models allowed to the agent."""
    async with gateway(tmp_path_factory.mktemp("bedrock")) as env:
        env.sim.config.update({"aws_access_key_id": KEY_ID, "aws_secret_access_key": SECRET})
        body = {
            "id": "aws",
            "display_name": "AWS",
            "provider_type": "bedrock",
            "api_base": env.sim.base_url,
            "credentials": {"aws_access_key_id": KEY_ID, "aws_secret_access_key": SECRET},
        }
        created = await env.http.post("/api/v2/admin/providers", json=body, headers=env.admin)
        assert created.status_code == 201, created.text
        assert created.json()["api_key_hint"] == "…" + KEY_ID[-4:] and SECRET not in created.text
        synced = await env.http.post("/api/v2/admin/providers/aws/sync", headers=env.admin)
        assert synced.status_code == 200, synced.text
        tenant_admin = {"Authorization": f"Bearer {env.container.jwt.mint('ann', 'acme', ['tenant_admin'])}"}
        selection = {"bulk_filter": {"provider": "aws"}}
        allowed = await env.http.post(
            f"/api/v2/agents/{env.agent_id}/models", json=selection, headers=tenant_admin
        )
        assert allowed.status_code < 300, allowed.text
        await env.container.snapshots.refresh()
        yield World(env, synced.json())


async def test_sync_lists_the_active_text_models_with_prices(world: World) -> None:
    assert world.synced["models_discovered"] == 2  # the simulator's image model is left out
    page = await world.http.get("/api/v2/admin/models", params={"provider": "aws"}, headers=world.admin)
    assert page.status_code == 200, page.text
    found = {m["external_id"]: m for m in page.json()["items"]}
    assert set(found) == {CLAUDE, "amazon.nova-lite-v1:0"}
    claude = found[CLAUDE]
    assert claude["pricing_input"] is not None and claude["pricing_input"] > 0  # genai-prices' aws list
    assert {"vision", "function_calling"} <= set(claude["capabilities"])


async def test_chat_is_sigv4_signed(world: World) -> None:
    async with world.client() as client:
        answer = await client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}],
        )
    assert (answer.choices[0].message.content or "").startswith("Echo: hello")
    assert answer.choices[0].finish_reason == "stop" and answer.usage is not None
    sent = world.sim.requests[-1]
    assert sent.path == f"/model/{CLAUDE}/converse" and sent.model == CLAUDE
    authorization = sent.headers["Authorization"]
    assert authorization.startswith(f"AWS4-HMAC-SHA256 Credential={KEY_ID}/")
    assert "/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date, " in authorization
    assert sent.body["system"] == [{"text": "Be brief."}]


async def test_a_wrong_secret_is_an_upstream_auth_error(world: World) -> None:
    with world.secret("not-" + SECRET):
        resp = await world.http.post(
            "/v1/chat/completions",
            json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {world.agent_key}"},
        )
        resync = await world.http.post("/api/v2/admin/providers/aws/sync", headers=world.admin)
    assert resp.status_code == 401, resp.text
    error = resp.json()["error"]
    assert error["type"] == "authentication_error" and error["code"] == "InvalidSignatureException"
    assert "signature we calculated does not match" in error["message"]
    assert SECRET not in resp.text and KEY_ID not in resp.text
    assert resync.status_code == 502 and "403" in resync.text and SECRET not in resync.text


async def test_tool_use_round_trip(world: World) -> None:
    ask: Any = {"role": "user", "content": "What is the weather in Paris and Oslo?"}
    async with world.client() as client:
        first = await client.chat.completions.create(model=MODEL, messages=[ask], tools=[WEATHER])
        choice = first.choices[0]
        assert choice.finish_reason == "tool_calls" and choice.message.tool_calls
        call = choice.message.tool_calls[0]
        assert call.function.name == "get_weather" and "city" in json.loads(call.function.arguments)
        assert world.last_body()["toolConfig"]["tools"][0]["toolSpec"]["name"] == "get_weather"
        second_call = {
            "id": "tooluse_oslo",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
        }
        history: Any = [
            ask,
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump(), second_call]},
            {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21}'},
            {"role": "tool", "tool_call_id": "tooluse_oslo", "content": "cold"},
        ]
        final = await client.chat.completions.create(model=MODEL, messages=history, tools=[WEATHER])
    assert final.choices[0].finish_reason == "stop" and final.choices[0].message.content
    sent = world.last_body()["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]  # tool results merged in one turn
    assert [b["toolUse"]["toolUseId"] for b in sent[1]["content"]] == [call.id, "tooluse_oslo"]
    assert sent[2]["content"] == [
        {"toolResult": {"toolUseId": call.id, "content": [{"json": {"temp_c": 21}}]}},
        {"toolResult": {"toolUseId": "tooluse_oslo", "content": [{"text": "cold"}]}},
    ]


async def test_images(world: World) -> None:
    content: Any = [
        {"type": "text", "text": "describe this"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
    ]
    async with world.client() as client:
        answer = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": content}]
        )
        assert (answer.choices[0].message.content or "").startswith("Echo: describe this")
        assert world.last_body()["messages"][0]["content"][1] == {
            "image": {"format": "png", "source": {"bytes": PNG}}
        }
        web: Any = [{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": web}])
    assert "base64 data: URLs" in str(caught.value)


async def test_stream_text_and_usage(world: World) -> None:
    world.sim.config.cached_tokens = 2
    try:
        async with world.client() as client:
            stream = await client.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": "stream please, with some more words"}],
                stream=True,
                stream_options={"include_usage": True},
            )
            text, finish, usage = "", None, None
            async for chunk in stream:
                assert chunk.model == MODEL
                for choice in chunk.choices:
                    text += choice.delta.content or ""
                    finish = choice.finish_reason or finish
                usage = chunk.usage or usage
    finally:
        world.sim.config.cached_tokens = 0
    assert world.sim.requests[-1].path == f"/model/{CLAUDE}/converse-stream"
    assert text.startswith("Echo: stream please") and finish == "stop"
    assert usage is not None and usage.completion_tokens == 16 and usage.prompt_tokens > 2
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 2


async def test_stream_tool_use(world: World) -> None:
    async with world.client() as client:
        stream = await client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Weather in Lisbon?"}],
            tools=[WEATHER],
            stream=True,
        )
        calls: dict[int, dict[str, str]] = {}
        finish = None
        async for chunk in stream:
            for choice in chunk.choices:
                finish = choice.finish_reason or finish
                for call in choice.delta.tool_calls or ():
                    entry = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                    entry["id"] += call.id or ""
                    if call.function is not None:
                        entry["name"] += call.function.name or ""
                        entry["arguments"] += call.function.arguments or ""
    assert finish == "tool_calls" and list(calls) == [0]
    assert calls[0]["name"] == "get_weather" and calls[0]["id"].startswith("tooluse_")
    assert json.loads(calls[0]["arguments"]) == {"city": "Weather in Lisbon?"}


async def test_a_cut_stream_reaches_the_client_as_an_error(world: World) -> None:
    world.sim.inject("reset_after:3", model=CLAUDE)
    async with world.client() as client:
        stream = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "cut me off"}], stream=True
        )
        with pytest.raises(openai.APIError):
            async for _ in stream:
                pass


# -- the simulator, checked by botocore's own Bedrock clients ------------------------------------


def _client(sim: Simulator, service: str, secret: str = SECRET) -> Any:
    session = botocore.session.Session()
    return session.create_client(
        service,
        region_name="us-east-1",
        endpoint_url=sim.base_url,
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}),
    )


def _botocore_calls(sim: Simulator) -> dict[str, Any]:
    runtime = _client(sim, "bedrock-runtime")
    messages = [{"role": "user", "content": [{"text": "hello from boto"}]}]
    whole = runtime.converse(modelId=CLAUDE, messages=messages)
    tools = {"tools": [{"toolSpec": {"name": "lookup", "inputSchema": {"json": {"type": "object"}}}}]}
    events = list(runtime.converse_stream(modelId=CLAUDE, messages=messages, toolConfig=tools)["stream"])
    listed = _client(sim, "bedrock").list_foundation_models()["modelSummaries"]
    try:
        _client(sim, "bedrock-runtime", "wrong").converse(modelId=CLAUDE, messages=messages)
    except ClientError as exc:
        refused = exc.response
    return {"whole": whole, "events": events, "listed": listed, "refused": refused}


async def test_botocore_clients_accept_the_simulator(world: World) -> None:
    got = await asyncio.to_thread(_botocore_calls, world.sim)
    assert got["whole"]["output"]["message"]["content"][0]["text"].startswith("Echo: hello from boto")
    assert got["whole"]["stopReason"] == "end_turn"
    kinds = [next(iter(e)) for e in got["events"]]
    deltas = ["contentBlockDelta"] * (len(kinds) - 5)
    assert kinds == [
        "messageStart",
        "contentBlockStart",
        *deltas,
        "contentBlockStop",
        "messageStop",
        "metadata",
    ]
    assert got["events"][-2]["messageStop"]["stopReason"] == "tool_use"
    assert {m["modelId"] for m in got["listed"]} >= {CLAUDE, "stability.stable-image-core-v1:1"}
    assert got["refused"]["Error"]["Code"] == "InvalidSignatureException"
    assert got["refused"]["ResponseMetadata"]["HTTPStatusCode"] == 403
