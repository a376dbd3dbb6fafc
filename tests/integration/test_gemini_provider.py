"""The Gemini adapter and model listing over real HTTP against the simulator's Gemini routes: keys
in the header only, pages followed to the end, tool round trips, images, system instructions,
streamed usage, embeddings and errors, each request checked by the simulator as Gemini would."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import orjson
import pytest

from turnout.catalog.fetch import ProviderConnection, ProviderSyncError, fetch_models
from turnout.providers.base import ProviderError, Target, UpstreamRequest
from turnout.providers.credentials import Credentials
from turnout.providers.gemini.adapter import GeminiAdapter
from turnout.simulator import Simulator, SimulatorConfig
from turnout.simulator.gemini_routes import PAGE_LIMIT

KEY = "AIzaSyD-" + "Q7c1tR5vB2nM4kL6jH8gF0dS3aP1oI9uY"
ADAPTER = GeminiAdapter()
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,  # Gemini's Schema has no such field: the adapter drops it
        },
    },
}


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    simulator = Simulator(SimulatorConfig(api_key=KEY))
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def target(sim: Simulator, key: str | None = KEY, model: str = "gemini-2.5-flash") -> Target:
    return Target(f"gemini/{model}", model, "g", "gemini", sim.api_base("gemini"), Credentials.of(key))


async def send(session: aiohttp.ClientSession, request: UpstreamRequest) -> tuple[int, bytes]:
    async with session.request(
        request.method, request.url, headers=request.headers, data=request.body
    ) as resp:
        return resp.status, await resp.read()


async def chat(session: aiohttp.ClientSession, sim: Simulator, body: dict[str, Any]) -> Any:
    status, payload = await send(session, ADAPTER.chat_request(target(sim), body, stream=False))
    assert status == 200, payload
    return ADAPTER.chat_response(target(sim), payload)


async def test_models_are_listed_across_pages_with_the_key_in_the_header(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    sim.config.models = [
        "gemini-2.5-flash",
        "gemini-2.5-pro",
        "gemini-2.0-flash",
        "gemini-embedding-001",
        "gemma-3-27b-it",
    ]
    found = await fetch_models(
        session, ProviderConnection("gemini", sim.api_base("gemini")), KEY, timeout_s=5
    )
    assert [m.external_id for m in found] == sim.config.models
    pages = -(-len(sim.config.models) // PAGE_LIMIT)
    assert pages > 1 and sim.stats.routes["GET /v1beta/models"] == pages
    flash = found[0]
    assert (flash.model_type, flash.ctx_length, flash.pricing_input) == ("chat", 1_048_576, Decimal("0.3"))
    assert found[3].model_type == "embedding"


async def test_a_wrong_or_missing_key_fails_the_sync_without_showing_the_key(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    conn = ProviderConnection("gemini", sim.api_base("gemini"))
    with pytest.raises(ProviderSyncError) as wrong:
        await fetch_models(session, conn, "AIza-wrong-key-0123456789", timeout_s=5)
    assert wrong.value.status == 400 and "API key not valid" in wrong.value.message
    with pytest.raises(ProviderSyncError) as missing:
        await fetch_models(session, conn, None, timeout_s=5)
    assert missing.value.status == 403


async def test_the_simulator_refuses_a_key_in_the_url(sim: Simulator, session: aiohttp.ClientSession) -> None:
    async with session.get(f"{sim.base_url}/v1beta/models", params={"key": KEY}) as resp:
        assert resp.status == 400 and (await resp.json())["error"]["status"] == "INVALID_ARGUMENT"
    request = ADAPTER.chat_request(
        target(sim), {"messages": [{"role": "user", "content": "hi"}]}, stream=False
    )
    assert (await send(session, request))[0] == 200
    recorded = sim.requests[-1]
    assert recorded.headers["x-goog-api-key"] == KEY and KEY not in recorded.path


async def test_a_wrong_key_is_an_authentication_error(sim: Simulator, session: aiohttp.ClientSession) -> None:
    wrong = target(sim, key="AIza-wrong-key-0123456789")
    status, payload = await send(
        session, ADAPTER.chat_request(wrong, {"messages": [{"role": "user", "content": "hi"}]}, stream=False)
    )
    error = ADAPTER.error(wrong, status, payload, {})
    assert (status, error.status_code, error.error_type) == (400, 401, "authentication_error")


async def test_system_instruction_images_and_the_answer(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    body = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "hello picture"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                ],
            },
        ],
        "max_tokens": 3,
    }
    answer = await chat(session, sim, body)
    sent = sim.requests[-1].body
    assert sent["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert sent["contents"][0]["parts"][1] == {"inlineData": {"mimeType": "image/png", "data": PNG}}
    assert answer["choices"][0]["message"]["content"] == "Echo: hello picture"
    assert answer["choices"][0]["finish_reason"] == "length" and answer["usage"]["completion_tokens"] == 3


async def test_a_tool_call_and_its_result_round_trip(sim: Simulator, session: aiohttp.ClientSession) -> None:
    ask = {"role": "user", "content": "What is the weather in Paris?"}
    first = await chat(session, sim, {"messages": [ask], "tools": [WEATHER]})
    message = first["choices"][0]["message"]
    assert first["choices"][0]["finish_reason"] == "tool_calls"
    (call,) = message["tool_calls"]
    assert call["function"]["name"] == "get_weather" and call["id"].startswith("call_")
    result = {"role": "tool", "tool_call_id": call["id"], "content": '{"temp": 21}'}
    second = await chat(session, sim, {"messages": [ask, message, result], "tools": [WEATHER]})
    contents = sim.requests[-1].body["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert contents[1]["parts"][0]["functionCall"] == {
        "name": "get_weather",
        "args": orjson.loads(call["function"]["arguments"]),
    }
    assert contents[2]["parts"] == [{"functionResponse": {"name": "get_weather", "response": {"temp": 21}}}]
    assert second["choices"][0]["finish_reason"] == "stop" and second["choices"][0]["message"]["content"]


async def test_the_simulator_checks_requests_as_gemini_does(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    url = f"{sim.base_url}/v1beta/models/gemini-2.5-flash:generateContent"
    headers = {"x-goog-api-key": KEY}
    bad: list[Any] = [
        {"contents": []},
        {"contents": [{"role": "user", "parts": []}]},
        {"contents": [{"role": "assistant", "parts": [{"text": "hi"}]}]},
        {"contents": [{"role": "user", "parts": [{"text": None}]}]},
        {"contents": [{"role": "user", "parts": [{"text": ""}]}]},
        {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "messages": []},
        {
            "contents": [
                {"role": "user", "parts": [{"text": "hi"}]},
                {"role": "model", "parts": [{"functionCall": {"name": "f"}}]},
                {"role": "user", "parts": [{"text": "no response"}]},
            ]
        },
        {
            "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
            "tools": [
                {
                    "functionDeclarations": [
                        {"name": "f", "parameters": {"type": "object", "additionalProperties": False}}
                    ]
                }
            ],
        },
    ]
    for body in bad:
        async with session.post(url, json=body, headers=headers) as resp:
            assert resp.status == 400, body
            assert (await resp.json())["error"]["status"] == "INVALID_ARGUMENT"


async def test_streamed_usage_counts_thinking_and_the_cache(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    sim.config.update({"reasoning_tokens": 7, "cached_tokens": 2})
    request = ADAPTER.chat_request(
        target(sim), {"messages": [{"role": "user", "content": "stream please"}]}, stream=True
    )
    decoder = ADAPTER.stream_decoder(target(sim))
    chunks: list[Any] = []
    async with session.post(request.url, headers=request.headers, data=request.body) as resp:
        assert resp.status == 200 and resp.content_type == "text/event-stream"
        async for data in resp.content.iter_any():
            chunks.extend(decoder.feed(data))
    chunks.extend(decoder.finish())
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text.startswith("Echo: stream please")
    usage = chunks[-1]["usage"]
    answer_tokens = sim.config.reply_tokens
    assert (
        usage["completion_tokens"] == answer_tokens + 7
        and usage["total_tokens"] == usage["prompt_tokens"] + answer_tokens + 7
    )
    assert usage["completion_tokens_details"] == {"reasoning_tokens": 7}
    assert usage["prompt_tokens_details"] == {"cached_tokens": 2}
    assert sim.requests[-1].stream and "alt=sse" in request.url


async def test_a_stream_cut_short_is_an_error(sim: Simulator, session: aiohttp.ClientSession) -> None:
    sim.inject("reset_after:2")
    request = ADAPTER.chat_request(
        target(sim), {"messages": [{"role": "user", "content": "hi"}]}, stream=True
    )
    decoder = ADAPTER.stream_decoder(target(sim))
    with pytest.raises((ProviderError, aiohttp.ClientError)):
        async with session.post(request.url, headers=request.headers, data=request.body) as resp:
            async for data in resp.content.iter_any():
                decoder.feed(data)
        decoder.finish()


async def test_a_rate_limit_says_when_to_retry(sim: Simulator, session: aiohttp.ClientSession) -> None:
    sim.inject("429:3")
    request = ADAPTER.chat_request(
        target(sim), {"messages": [{"role": "user", "content": "hi"}]}, stream=False
    )
    async with session.post(request.url, headers=request.headers, data=request.body) as resp:
        error = ADAPTER.error(target(sim), resp.status, await resp.read(), resp.headers)
    assert (error.status_code, error.retryable, error.retry_after_s) == (429, True, 3.0)


async def test_embeddings(sim: Simulator, session: aiohttp.ClientSession) -> None:
    embedder = target(sim, model="gemini-embedding-001")
    request = ADAPTER.embeddings_request(
        embedder, {"model": "gemini/gemini-embedding-001", "input": ["a", "b"], "dimensions": 4}
    )
    status, payload = await send(session, request)
    assert status == 200, payload
    out = ADAPTER.embeddings_response(embedder, payload)
    assert [len(d["embedding"]) for d in out["data"]] == [4, 4] and out["data"][0]["embedding"] != out[
        "data"
    ][1]["embedding"]
