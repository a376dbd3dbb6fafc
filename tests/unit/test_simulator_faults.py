"""Simulator faults as the official SDKs (and raw HTTP clients) see them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import httpx
import openai
import pytest

from turnout.simulator import Fault, Simulator, SimulatorConfig
from turnout.simulator.faults import FaultBook

KEY = "sk-sim-fault-test"
ASK: Any = [{"role": "user", "content": "Tell me something"}]
CLAUDE_HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}


_CLIENTS: list[openai.AsyncOpenAI | anthropic.AsyncAnthropic] = []


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    simulator = Simulator(SimulatorConfig(api_key=KEY))
    await simulator.start()
    yield simulator
    while _CLIENTS:
        await _CLIENTS.pop().close()
    await simulator.stop()


def oai(sim: Simulator, **options: Any) -> openai.AsyncOpenAI:
    """An OpenAI SDK client (no retries unless asked), closed after the test."""
    client = openai.AsyncOpenAI(base_url=f"{sim.base_url}/v1", api_key=KEY, **{"max_retries": 0, **options})
    _CLIENTS.append(client)
    return client


def claude(sim: Simulator, **options: Any) -> anthropic.AsyncAnthropic:
    """An Anthropic SDK client (no retries unless asked), closed after the test."""
    client = anthropic.AsyncAnthropic(base_url=sim.base_url, api_key=KEY, **{"max_retries": 0, **options})
    _CLIENTS.append(client)
    return client


def fault(spec: str) -> dict[str, str]:
    return {"x-sim-fault": spec}


async def chat(client: openai.AsyncOpenAI, spec: str | None = None, model: str = "gpt-4o") -> str:
    done = await client.chat.completions.create(
        model=model,
        messages=ASK,
        extra_headers=fault(spec) if spec else None,
    )
    return done.choices[0].message.content or ""


async def test_status_fault_in_each_provider_shape(sim: Simulator) -> None:
    client = oai(sim)
    with pytest.raises(openai.InternalServerError) as info:
        await chat(client, "status:503")
    assert info.value.status_code == 503 and info.value.type == "server_error"
    with pytest.raises(openai.NotFoundError):
        await chat(client, "status:404")
    with pytest.raises(anthropic.APIStatusError) as caught:
        await claude(sim).messages.create(
            model="m",
            max_tokens=5,
            messages=ASK,
            extra_headers=fault("status:529"),
        )
    assert caught.value.status_code == 529
    assert caught.value.body["error"]["type"] == "overloaded_error"
    async with httpx.AsyncClient(base_url=sim.base_url) as http:
        body = {"model": "llama3.2", "messages": ASK}
        failed = await http.post("/api/chat", json=body, headers=fault("status:500"))
        assert failed.status_code == 500 and set(failed.json()) == {"error"}
        headers = {**fault("explode"), "Authorization": f"Bearer {KEY}"}
        bad = await http.post("/v1/chat/completions", json=body, headers=headers)
        assert bad.status_code == 400 and "x-sim-fault" in bad.json()["error"]["message"]
    assert sim.stats.faults["status"] == 4


async def test_rate_limit_with_retry_after(sim: Simulator) -> None:
    sim.inject("429:0.4")
    with pytest.raises(openai.RateLimitError) as info:
        await chat(oai(sim))
    headers = info.value.response.headers
    assert headers["retry-after"] == "0.4" and headers["x-ratelimit-remaining-requests"] == "0"
    assert info.value.code == "rate_limit_exceeded"
    sim.inject("429:0.4")
    started = time.perf_counter()
    assert (await chat(oai(sim, max_retries=1))).startswith("Echo:")  # the SDK waited Retry-After, retried
    assert time.perf_counter() - started >= 0.38
    assert sim.stats.routes["POST /v1/chat/completions"] == 3

    sim.inject("429:0.3", path="/v1/messages")
    with pytest.raises(anthropic.RateLimitError) as caught:
        await claude(sim).messages.create(model="m", max_tokens=5, messages=ASK)
    assert caught.value.response.headers["retry-after"] == "0.3"
    assert caught.value.response.headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert caught.value.body["error"]["type"] == "rate_limit_error"
    sim.inject("429:0.3", path="/v1/messages")
    started = time.perf_counter()
    await claude(sim, max_retries=1).messages.create(model="m", max_tokens=5, messages=ASK)
    assert time.perf_counter() - started >= 0.28


async def test_reset_before_any_byte(sim: Simulator) -> None:
    with pytest.raises(openai.APIConnectionError):
        await chat(oai(sim), "reset_before")
    with pytest.raises(anthropic.APIConnectionError):
        await claude(sim).messages.create(
            model="m",
            max_tokens=5,
            messages=ASK,
            extra_headers=fault("reset_before"),
        )
    sim.inject("reset_before", path="/api/")
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError):
            await session.post(f"{sim.base_url}/api/chat", json={"model": "llama3.2", "messages": ASK})
    assert sim.stats.faults["reset_before"] == 3
    assert (await chat(oai(sim))).startswith("Echo:")  # the simulator itself is fine


async def test_reset_after_chunks(sim: Simulator) -> None:
    client, received = oai(sim), 0
    with pytest.raises(openai.APIConnectionError):
        stream = await client.chat.completions.create(
            model="gpt-4o",
            messages=ASK,
            stream=True,
            extra_headers=fault("reset_after:3"),
        )
        async for _ in stream:
            received += 1
    assert received == 3
    with pytest.raises(openai.APIConnectionError):  # non-streamed: half a body, then the reset
        await chat(client, "reset_after:1")

    body = {"model": "m", "max_tokens": 50, "messages": ASK, "stream": True}
    events: list[str] = []
    async with httpx.AsyncClient(base_url=sim.base_url) as http:
        with pytest.raises(httpx.TransportError):
            headers = {**CLAUDE_HEADERS, **fault("reset_after:4")}
            async with http.stream("POST", "/v1/messages", json=body, headers=headers) as response:
                async for line in response.aiter_lines():
                    if line.startswith("event: "):
                        events.append(line[7:])
    assert events == ["message_start", "content_block_start", "ping", "content_block_delta"]


async def test_stall_before_headers(sim: Simulator) -> None:
    started = time.perf_counter()
    with pytest.raises(openai.APITimeoutError):
        await chat(oai(sim, timeout=0.3), "stall:5")
    with pytest.raises(anthropic.APITimeoutError):
        await claude(sim, timeout=0.3).messages.create(
            model="m",
            max_tokens=5,
            messages=ASK,
            extra_headers=fault("stall:5"),
        )
    assert time.perf_counter() - started < 3
    started = time.perf_counter()
    assert (await chat(oai(sim), "stall:0.2")).startswith("Echo:")  # a short stall, then the answer
    assert time.perf_counter() - started >= 0.19


async def test_stall_after_chunks(sim: Simulator) -> None:
    client, received = oai(sim, timeout=openai.Timeout(5.0, read=0.3)), 0
    with pytest.raises(openai.APITimeoutError):
        stream = await client.chat.completions.create(
            model="gpt-4o",
            messages=ASK,
            stream=True,
            extra_headers=fault("stall_after:2:5"),
        )
        async for _ in stream:
            received += 1
    assert received == 2
    started = time.perf_counter()
    stream = await oai(sim).chat.completions.create(
        model="gpt-4o",
        messages=ASK,
        stream=True,
        extra_headers=fault("stall_after:2:0.3"),
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream])
    assert text == await chat(oai(sim)) and time.perf_counter() - started >= 0.29


async def test_slow_latency_and_pacing(sim: Simulator) -> None:
    client = oai(sim)
    started = time.perf_counter()
    await chat(client, "slow:0.3")
    assert time.perf_counter() - started >= 0.29
    sim.config.latency_ms = 200
    started = time.perf_counter()
    await client.models.list()
    assert time.perf_counter() - started >= 0.19
    sim.config.latency_ms = 0
    sim.config.tokens_per_second = 100  # 19 chunks: role, 16 words, finish, [DONE]
    started = time.perf_counter()
    stamps = []
    async for _ in await client.chat.completions.create(model="gpt-4o", messages=ASK, stream=True):
        stamps.append(time.perf_counter() - started)
    assert stamps[-1] >= 0.16 and stamps[-1] - stamps[0] >= 0.14
    started = time.perf_counter()
    await chat(client)  # non-streamed: 16 tokens at 100/s
    assert time.perf_counter() - started >= 0.15
    sim.config.tokens_per_second = 0
    started = time.perf_counter()
    async for _ in await client.chat.completions.create(
        model="gpt-4o",
        messages=ASK,
        stream=True,
        extra_headers=fault("slow:0:50"),  # pacing override only
    ):
        pass
    assert time.perf_counter() - started >= 0.3


async def test_injected_fault_filters_and_counts(sim: Simulator) -> None:
    client = oai(sim)
    armed = sim.inject(Fault("status", status=500, count=2, model="gpt-4o"))
    assert armed.spec == "status:500"
    assert await chat(client, model="gpt-4o-mini")
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            await chat(client, model="gpt-4o")
    assert await chat(client, model="gpt-4o")
    assert sim.stats.faults["status"] == 2 and sim.stats.models["gpt-4o"] == 3
    sim.inject("status:503", count=None)
    for _ in range(3):
        with pytest.raises(openai.InternalServerError):
            await chat(client)
    sim.clear_faults()
    assert await chat(client)


async def test_stop_ends_stalls(sim: Simulator) -> None:
    async with httpx.AsyncClient(base_url=sim.base_url, timeout=30) as http:
        pending = asyncio.create_task(http.post("/api/chat", json={"model": "m"}, headers=fault("stall:60")))
        await asyncio.sleep(0.2)
        started = time.perf_counter()
        await sim.stop()
        assert time.perf_counter() - started < 3
        pending.cancel()
        await asyncio.gather(pending, return_exceptions=True)


# -- spec syntax ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("status:503", Fault("status", status=503)),
        ("429", Fault("rate_limit", seconds=1.0)),
        ("429:2.5", Fault("rate_limit", seconds=2.5)),
        ("reset_before", Fault("reset_before")),
        ("reset_after:3", Fault("reset_after", after=3)),
        ("stall:1.5", Fault("stall", seconds=1.5)),
        ("stall_after:2:0.5", Fault("stall_after", after=2, seconds=0.5)),
        ("slow", Fault("slow", seconds=1.0)),
        ("slow:0.2:40", Fault("slow", seconds=0.2, tokens_per_second=40)),
    ],
)
def test_fault_spec_round_trip(spec: str, expected: Fault) -> None:
    parsed = Fault.parse(spec)
    assert parsed == expected
    assert Fault.parse(parsed.spec) == parsed
    assert parsed.status == (429 if parsed.kind == "rate_limit" else parsed.status)


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "status",
        "status:abc",
        "status:99",
        "reset_after",
        "stall:-1",
        "stall_after:2",
        "nope:1",
        "slow:1:2:3",
    ],
)
def test_bad_fault_specs(spec: str) -> None:
    with pytest.raises(ValueError):
        Fault.parse(spec)


def test_fault_json_and_book() -> None:
    assert Fault.from_json({"fault": "status:502", "count": 2, "model": "m"}) == Fault(
        "status", 502, count=2, model="m"
    )
    assert Fault.from_json({"kind": "429", "seconds": 3}).status == 429
    for bad in ({"fault": 5}, {"kind": "x"}, {"kind": "stall", "bogus": 1}, [1]):
        with pytest.raises(ValueError):
            Fault.from_json(bad)
    book = FaultBook()
    book.add(Fault("status", count=1, path="/v1/messages"))
    book.add(Fault("stall", count=None))
    assert book.take("/v1/chat/completions", "m").kind == "stall"
    assert book.take("/v1/messages", "m").kind == "status"
    assert book.take("/v1/messages", "m").kind == "stall"
    assert [d["fault"] for d in book.describe()] == ["stall:1"]
    book.clear()
    assert not book and book.take("/", None) is None
