"""The provider simulator driven by the official OpenAI and Anthropic SDKs, and raw HTTP for Ollama."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from turnout.simulator import Simulator, SimulatorConfig

KEY = "sk-sim-test-0123456789abcdef"
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city"],
        },
    },
}
CLAUDE_TOOL: Any = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": WEATHER_TOOL["function"]["parameters"],
}
ASK: Any = [{"role": "user", "content": "Hello there simulator, how are you today?"}]


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    simulator = Simulator(SimulatorConfig(api_key=KEY))
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def oai(sim: Simulator) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=f"{sim.base_url}/v1", api_key=KEY, max_retries=0)
    yield client
    await client.close()


@pytest.fixture
async def claude(sim: Simulator) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=sim.base_url, api_key=KEY, max_retries=0)
    yield client
    await client.close()


@pytest.fixture
async def http(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.base_url, timeout=10) as client:
        yield client


def sse_data(raw: str) -> list[Any]:
    """The ``data:`` payloads of an SSE body (``[DONE]`` kept as a string)."""
    out: list[Any] = []
    for line in raw.splitlines():
        if line.startswith("data: "):
            payload = line[6:]
            out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out


# -- OpenAI --------------------------------------------------------------------------------------


async def test_openai_chat_completion(oai: openai.AsyncOpenAI, sim: Simulator) -> None:
    done = await oai.chat.completions.create(model="gpt-4o-mini", messages=ASK)
    assert done.object == "chat.completion" and done.id.startswith("chatcmpl-")
    assert done.model == "gpt-4o-mini"
    choice = done.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert choice.message.refusal is None
    assert choice.message.content is not None
    assert choice.message.content.startswith("Echo: Hello there simulator, how are you today?")
    assert len(choice.message.content.split()) == 16
    assert done.usage is not None
    assert done.usage.completion_tokens == 16
    assert done.usage.prompt_tokens == (len(ASK[0]["content"]) + 3) // 4
    assert done.usage.total_tokens == done.usage.prompt_tokens + 16
    again = await oai.chat.completions.create(model="gpt-4o-mini", messages=ASK)
    assert again.choices[0].message.content == choice.message.content  # deterministic
    assert sim.stats.routes["POST /v1/chat/completions"] == 2
    assert sim.requests[-1].body["messages"] == ASK


async def test_openai_stream_with_and_without_usage(oai: openai.AsyncOpenAI) -> None:
    plain = await oai.chat.completions.create(model="gpt-4o", messages=ASK)
    chunks = [
        c
        async for c in await oai.chat.completions.create(
            model="gpt-4o",
            messages=ASK,
            stream=True,
            stream_options={"include_usage": True},
        )
    ]
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 16
    assert all(c.usage is None for c in chunks[:-1])
    text = "".join(c.choices[0].delta.content or "" for c in chunks[:-1])
    assert text == plain.choices[0].message.content
    no_usage = [c async for c in await oai.chat.completions.create(model="gpt-4o", messages=ASK, stream=True)]
    assert all(c.choices for c in no_usage) and no_usage[-1].choices[0].finish_reason == "stop"


async def test_openai_stream_wire_format(http: httpx.AsyncClient) -> None:
    body = {"model": "gpt-4o", "messages": ASK, "stream": True, "stream_options": {"include_usage": True}}
    response = await http.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"})
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_data(response.text)
    assert events[-1] == "[DONE]"
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert all("usage" in e and e["usage"] is None for e in events[:-2])
    assert events[-2]["choices"] == [] and events[-2]["usage"]["total_tokens"] > 16


async def test_openai_tool_call_stream_helper(oai: openai.AsyncOpenAI) -> None:
    async with oai.chat.completions.stream(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER_TOOL],
    ) as stream:
        final = await stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    call = choice.message.tool_calls[0]
    assert call.id.startswith("call_") and call.function.name == "get_weather"
    args = json.loads(call.function.arguments)
    assert args == {"city": "Weather in Paris?", "unit": "c"}

    plain = await oai.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER_TOOL],
    )
    assert json.loads(plain.choices[0].message.tool_calls[0].function.arguments) == args
    bare = await oai.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Weather in Paris?"}]
    )
    assert plain.usage and bare.usage
    assert plain.usage.prompt_tokens > bare.usage.prompt_tokens + 20, "tool definitions are billed as prompt"
    asked = {"id": call.id, "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    follow_up = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "tool_calls": [asked]},
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    answer = await oai.chat.completions.create(model="gpt-4o", messages=follow_up, tools=[WEATHER_TOOL])
    assert answer.choices[0].finish_reason == "stop" and answer.choices[0].message.tool_calls is None


async def test_openai_tool_call_deltas(http: httpx.AsyncClient) -> None:
    body = {"model": "m", "messages": ASK, "tools": [WEATHER_TOOL], "stream": True}
    response = await http.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"})
    events = sse_data(response.text)
    first = events[0]["choices"][0]["delta"]["tool_calls"][0]
    assert first["index"] == 0 and first["type"] == "function" and first["id"].startswith("call_")
    assert first["function"] == {"name": "get_weather", "arguments": ""}
    fragments = [e["choices"][0]["delta"]["tool_calls"][0] for e in events[1:-2]]
    assert len(fragments) > 1 and all(set(f) == {"index", "function"} for f in fragments)
    json.loads("".join(f["function"]["arguments"] for f in fragments))
    assert events[-2]["choices"][0]["finish_reason"] == "tool_calls"


async def test_openai_json_mode_and_max_tokens(oai: openai.AsyncOpenAI) -> None:
    done = await oai.chat.completions.create(
        model="gpt-4o",
        messages=ASK,
        response_format={"type": "json_object"},
    )
    assert json.loads(done.choices[0].message.content or "")["reply"].startswith("Echo: Hello")
    schema = {"type": "object", "properties": {"age": {"type": "integer"}, "ok": {"type": "boolean"}}}
    typed = await oai.chat.completions.create(
        model="gpt-4o",
        messages=ASK,
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    )
    assert json.loads(typed.choices[0].message.content or "") == {"age": 1, "ok": True}
    for limit in ({"max_tokens": 5}, {"max_completion_tokens": 5}):
        short = await oai.chat.completions.create(model="gpt-4o", messages=ASK, **limit)
        assert short.choices[0].finish_reason == "length"
        assert short.usage is not None and short.usage.completion_tokens == 5
        assert short.choices[0].message.content == "Echo: Hello there simulator, how"


async def test_openai_validation_errors(oai: openai.AsyncOpenAI, http: httpx.AsyncClient) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await oai.chat.completions.create(model="gpt-4o", messages=ASK, n=2)
    assert info.value.status_code == 400 and info.value.param == "n"
    auth = {"Authorization": f"Bearer {KEY}"}
    missing = await http.post("/v1/chat/completions", json={"model": "gpt-4o"}, headers=auth)
    assert missing.status_code == 400
    assert missing.json() == {
        "error": {
            "message": "Missing required parameter: 'messages'.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "missing_required_parameter",
        }
    }
    no_model = await http.post("/v1/chat/completions", json={"messages": ASK}, headers=auth)
    assert no_model.status_code == 400 and no_model.json()["error"]["type"] == "invalid_request_error"
    garbage = await http.post("/v1/chat/completions", content=b"{not json", headers=auth)
    assert garbage.status_code == 400


async def test_openai_embeddings(oai: openai.AsyncOpenAI) -> None:
    default = await oai.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta"])  # base64
    assert [d.index for d in default.data] == [0, 1] and len(default.data[0].embedding) == 8
    floats = await oai.embeddings.create(
        model="text-embedding-3-small", input="alpha", encoding_format="float"
    )
    assert floats.data[0].embedding == default.data[0].embedding  # same vector in both encodings
    assert default.data[0].embedding != default.data[1].embedding
    assert abs(sum(x * x for x in floats.data[0].embedding) - 1.0) < 1e-4
    sized = await oai.embeddings.create(model="text-embedding-3-small", input="alpha", dimensions=32)
    assert len(sized.data[0].embedding) == 32
    assert (
        floats.usage.prompt_tokens == floats.usage.total_tokens == 2
        and floats.model == "text-embedding-3-small"
    )


async def test_openai_models_and_wrong_key(oai: openai.AsyncOpenAI, sim: Simulator) -> None:
    ids = [m.id async for m in oai.models.list()]
    assert ids == ["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"]
    bad = openai.AsyncOpenAI(base_url=f"{sim.base_url}/v1", api_key="sk-wrong-key-000000", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        await bad.chat.completions.create(model="gpt-4o", messages=ASK)
    await bad.close()
    error = info.value.body
    assert isinstance(error, dict) and error["code"] == "invalid_api_key"
    assert error["type"] == "invalid_request_error" and "sk-wrong-key-000000" not in error["message"]


async def test_strict_models(
    oai: openai.AsyncOpenAI, claude: anthropic.AsyncAnthropic, sim: Simulator
) -> None:
    sim.config.strict_models = True
    with pytest.raises(openai.NotFoundError) as info:
        await oai.chat.completions.create(model="gpt-nope", messages=ASK)
    assert info.value.code == "model_not_found"
    with pytest.raises(anthropic.NotFoundError):
        await claude.messages.create(model="claude-nope", max_tokens=10, messages=ASK)
    await oai.chat.completions.create(model="gpt-4o", messages=ASK)


# -- Anthropic -----------------------------------------------------------------------------------


async def test_anthropic_message(claude: anthropic.AsyncAnthropic) -> None:
    message = await claude.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=100,
        system="Be brief.",
        messages=ASK,
    )
    assert message.id.startswith("msg_") and message.type == "message" and message.role == "assistant"
    assert message.model == "claude-sonnet-4-6" and message.stop_reason == "end_turn"
    assert message.stop_sequence is None
    block = message.content[0]
    assert block.type == "text" and block.text.startswith("Echo: Hello there")
    usage = message.usage
    assert (
        usage.output_tokens == 16
        and usage.input_tokens == (len("Be brief.") + len(ASK[0]["content"]) + 3) // 4
    )
    assert usage.cache_creation_input_tokens == 0 and usage.cache_read_input_tokens == 0
    short = await claude.messages.create(model="claude-sonnet-4-6", max_tokens=3, messages=ASK)
    assert short.stop_reason == "max_tokens" and short.usage.output_tokens == 3


async def test_anthropic_refuses_fields_it_does_not_know(claude: anthropic.AsyncAnthropic) -> None:
    """As Anthropic's API does: an OpenAI or Turnout field on /v1/messages is a 400 naming it (a
    gateway that leaks ``fallbacks`` upstream must fail here, as it would in production)."""
    for extra in ({"fallbacks": ["x"]}, {"response_format": {"type": "json_object"}}):
        with pytest.raises(anthropic.BadRequestError) as refused:
            await claude.messages.create(
                model="claude-sonnet-4-6", max_tokens=10, messages=ASK, extra_body=extra
            )
        assert "Extra inputs are not permitted" in str(refused.value) and next(iter(extra)) in str(
            refused.value
        )
    with pytest.raises(anthropic.BadRequestError):
        await claude.messages.count_tokens(
            model="claude-sonnet-4-6", messages=ASK, extra_body={"max_tokens": 5}
        )


async def test_anthropic_stream_event_sequence(
    http: httpx.AsyncClient, claude: anthropic.AsyncAnthropic
) -> None:
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    body = {"model": "claude-haiku-4-5", "max_tokens": 50, "messages": ASK, "stream": True}
    response = await http.post("/v1/messages", json=body, headers=headers)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    names = [line[7:] for line in response.text.splitlines() if line.startswith("event: ")]
    deltas = names[3:-3]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert deltas == ["content_block_delta"] * 16
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    data = sse_data(response.text)
    assert [d["type"] for d in data] == names
    assert data[0]["message"]["content"] == [] and data[0]["message"]["usage"]["output_tokens"] == 1
    assert data[-2]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert data[-2]["usage"] == {"output_tokens": 16}

    async with claude.messages.stream(model="claude-haiku-4-5", max_tokens=50, messages=ASK) as stream:
        pieces = [t async for t in stream.text_stream]
        final = await stream.get_final_message()
    assert "".join(pieces) == final.content[0].text == "".join(d["delta"]["text"] for d in data[3:-3])
    assert final.usage.output_tokens == 16


async def test_anthropic_tool_use(claude: anthropic.AsyncAnthropic, http: httpx.AsyncClient) -> None:
    ask = [{"role": "user", "content": "Weather in Oslo?"}]
    async with claude.messages.stream(
        model="claude-sonnet-4-6",
        max_tokens=200,
        messages=ask,
        tools=[CLAUDE_TOOL],
    ) as stream:
        final = await stream.get_final_message()
    assert final.stop_reason == "tool_use"
    block = final.content[0]
    assert block.type == "tool_use" and block.name == "get_weather" and block.id.startswith("toolu_")
    assert block.input == {"city": "Weather in Oslo?", "unit": "c"}
    plain = await claude.messages.create(model="m", max_tokens=200, messages=ask, tools=[CLAUDE_TOOL])
    assert plain.content[0].input == block.input

    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    body = {"model": "m", "max_tokens": 200, "messages": ask, "tools": [CLAUDE_TOOL], "stream": True}
    data = sse_data((await http.post("/v1/messages", json=body, headers=headers)).text)
    opening = data[1]["content_block"]
    assert opening["id"].startswith("toolu_")
    assert opening == {"type": "tool_use", "id": opening["id"], "name": "get_weather", "input": {}}
    partial = [d["delta"] for d in data if d["type"] == "content_block_delta"]
    assert all(p["type"] == "input_json_delta" for p in partial) and partial[0]["partial_json"] == ""
    assert json.loads("".join(p["partial_json"] for p in partial)) == block.input

    answered = [
        *ask,
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": block.id, "name": "get_weather", "input": {}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "rain"}]},
    ]
    after = await claude.messages.create(model="m", max_tokens=200, messages=answered, tools=[CLAUDE_TOOL])
    assert after.stop_reason == "end_turn" and after.content[0].type == "text"


async def test_anthropic_errors_and_models(http: httpx.AsyncClient, sim: Simulator) -> None:
    body = {"model": "m", "max_tokens": 10, "messages": ASK}
    no_version = await http.post("/v1/messages", json=body, headers={"x-api-key": KEY})
    assert no_version.status_code == 400
    assert no_version.json()["type"] == "error"
    assert no_version.json()["error"] == {
        "type": "invalid_request_error",
        "message": "anthropic-version: header is required",
    }
    headers = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
    no_max = await http.post("/v1/messages", json={"model": "m", "messages": ASK}, headers=headers)
    assert no_max.status_code == 400 and no_max.json()["error"]["message"] == "max_tokens: Field required"
    wrong = await http.post("/v1/messages", json=body, headers={**headers, "x-api-key": "nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"] == {"type": "authentication_error", "message": "invalid x-api-key"}
    assert wrong.headers["request-id"] == wrong.json()["request_id"]

    bad = anthropic.AsyncAnthropic(base_url=sim.base_url, api_key="wrong-key", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as info:
        await bad.messages.create(model="m", max_tokens=10, messages=ASK)
    await bad.close()
    assert info.value.body["error"]["type"] == "authentication_error"

    client = anthropic.AsyncAnthropic(base_url=sim.base_url, api_key=KEY, max_retries=0)
    ids = [m.id async for m in client.models.list()]
    await client.close()
    assert ids == ["claude-sonnet-4-6", "claude-haiku-4-5"]
    page = await http.get("/v1/models", params={"limit": 1}, headers=headers)
    assert page.json()["data"][0]["type"] == "model" and page.json()["has_more"] is True
    assert sim.stats.routes["GET /v1/models"] == 2 and sim.stats.providers["anthropic"] >= 2


# -- Ollama --------------------------------------------------------------------------------------


def ndjson(raw: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in raw.splitlines() if line]


async def test_ollama_chat_stream_by_default(http: httpx.AsyncClient) -> None:
    body = {"model": "llama3.2", "messages": ASK}
    streamed = await http.post("/api/chat", json=body)  # no key: Ollama has no auth
    assert streamed.headers["content-type"] == "application/x-ndjson"
    lines = ndjson(streamed.text)
    assert all(not line["done"] and line["message"]["role"] == "assistant" for line in lines[:-1])
    final = lines[-1]
    assert final["done"] is True and final["done_reason"] == "stop" and final["message"]["content"] == ""
    assert final["eval_count"] == len(lines) - 1 == 16
    assert final["prompt_eval_count"] > 0 and final["total_duration"] > final["eval_duration"] > 0
    whole = await http.post("/api/chat", json={**body, "stream": False})
    single = whole.json()
    assert single["done"] is True and single["model"] == "llama3.2"
    assert single["message"]["content"] == "".join(line["message"]["content"] for line in lines[:-1])
    short = (
        await http.post("/api/chat", json={**body, "stream": False, "options": {"num_predict": 4}})
    ).json()
    assert short["done_reason"] == "length" and short["eval_count"] == 4


async def test_ollama_tools_embed_tags(http: httpx.AsyncClient) -> None:
    body = {"model": "llama3.2", "messages": ASK, "tools": [WEATHER_TOOL], "stream": False}
    called = (await http.post("/api/chat", json=body)).json()
    call = called["message"]["tool_calls"][0]["function"]
    assert (
        call["name"] == "get_weather" and isinstance(call["arguments"], dict) and "city" in call["arguments"]
    )
    streamed = ndjson((await http.post("/api/chat", json={**body, "stream": True})).text)
    assert streamed[0]["message"]["tool_calls"][0]["function"]["arguments"] == call["arguments"]
    assert streamed[-1]["done"] is True
    embedded = (await http.post("/api/embed", json={"model": "nomic-embed-text", "input": ["a", "b"]})).json()
    assert len(embedded["embeddings"]) == 2 and len(embedded["embeddings"][0]) == 8
    assert embedded["prompt_eval_count"] == 1
    tags = (await http.get("/api/tags")).json()
    assert [m["name"] for m in tags["models"]] == ["llama3.2:latest", "nomic-embed-text:latest"]
    assert (await http.post("/api/chat", json={"messages": ASK})).json() == {"error": "model is required"}


# -- control routes and CLI ----------------------------------------------------------------------


async def test_control_routes(http: httpx.AsyncClient, oai: openai.AsyncOpenAI, sim: Simulator) -> None:
    armed = await http.post("/_sim/faults", json={"fault": "status:502", "count": 1, "path": "/v1/chat"})
    assert armed.status_code == 201 and armed.json()["faults"][0]["remaining"] == 1
    assert (await http.post("/_sim/faults", json={"fault": "bogus:1"})).status_code == 400
    await oai.embeddings.create(model="e", input="x")  # path filter: not hit
    with pytest.raises(openai.APIStatusError) as info:
        await oai.chat.completions.create(model="gpt-4o", messages=ASK)
    assert info.value.status_code == 502
    assert (await http.get("/_sim/faults")).json() == {"faults": []}
    await http.post("/_sim/faults", json=[{"fault": "429"}, {"kind": "status", "status": 500, "count": None}])
    assert len((await http.get("/_sim/faults")).json()["faults"]) == 2
    await http.delete("/_sim/faults")
    await oai.chat.completions.create(model="gpt-4o", messages=ASK)
    stats = (await http.get("/_sim/stats")).json()
    assert stats["routes"] == {"POST /v1/embeddings": 1, "POST /v1/chat/completions": 2}
    assert stats["faults"] == {"status": 1} and stats["models"] == {"e": 1, "gpt-4o": 2}
    recent = (await http.get("/_sim/requests", params={"limit": 1})).json()["requests"]
    assert recent[0]["path"] == "/v1/chat/completions" and recent[0]["model"] == "gpt-4o"
    changed = await http.post("/_sim/config", json={"reply_tokens": 4, "latency_ms": 1})
    assert changed.json()["reply_tokens"] == 4 and changed.json()["api_key"] == "set"
    assert (await http.post("/_sim/config", json={"latency_ms": "x"})).status_code == 400
    short = await oai.chat.completions.create(model="gpt-4o", messages=ASK)
    assert short.usage is not None and short.usage.completion_tokens == 4
    await http.delete("/_sim/stats")
    assert sim.stats.total == 0 and not sim.requests


async def test_cli_module_serves(tmp_path: Any) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    args = [sys.executable, "-m", "turnout.simulator", "--port", str(port), "-m", "a,b", "--api-key", KEY]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            deadline = time.monotonic() + 20
            while True:
                try:
                    if (await client.get("/_sim/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise
                    await asyncio.sleep(0.1)
            listed = await client.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"})
            assert [m["id"] for m in listed.json()["data"]] == ["a", "b"]
            assert (await client.get("/v1/models")).status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_openrouter_routes(sim: Simulator) -> None:
    """OpenRouter's model list (prices per token as strings, modalities, parameters) and the OpenAI
    API under /api/v1 with its Bearer key, as the official SDK sends it."""
    async with httpx.AsyncClient(base_url=f"{sim.base_url}/api/v1") as http:
        listed = (await http.get("/models")).json()["data"]
    assert [m["id"] for m in listed] == list(sim.listed_models("openrouter"))
    mini = listed[0]
    assert mini["pricing"]["prompt"] == "0.00000015" and "tools" in mini["supported_parameters"]
    assert listed[-1]["architecture"]["output_modalities"] == ["embeddings"]
    client = openai.AsyncOpenAI(base_url=sim.api_base("openrouter"), api_key=KEY, max_retries=0)
    async with client:
        answer = await client.chat.completions.create(model="openai/gpt-4o-mini", messages=ASK)
        assert (answer.choices[0].message.content or "").startswith("Echo: Hello there")
        with pytest.raises(openai.AuthenticationError):
            await client.with_options(api_key="wrong").chat.completions.create(model="x", messages=ASK)
    assert sim.stats.routes["POST /api/v1/chat/completions"] == 2
    assert sim.stats.providers["openrouter"] >= 2


async def test_azure_routes(sim: Simulator) -> None:
    """Azure's deployment URLs: the model from the path, ``api-key``, and ``api-version`` required."""
    client = openai.AsyncAzureOpenAI(
        azure_endpoint=sim.base_url, api_key=KEY, api_version="2024-10-21", max_retries=0
    )
    async with client:
        answer = await client.chat.completions.create(model="gpt-4o-mini", messages=ASK)
        assert answer.model == "gpt-4o-mini" and (answer.choices[0].message.content or "").startswith("Echo:")
        vectors = await client.embeddings.create(model="text-embedding-3-small", input="hi")
        assert len(vectors.data[0].embedding) == sim.config.embedding_dimensions
    async with httpx.AsyncClient(base_url=sim.base_url, headers={"api-key": KEY}) as http:
        models = await http.get("/openai/models", params={"api-version": "2024-10-21"})
        assert models.json()["data"][0]["capabilities"]["chat_completion"] is True
        assert (await http.get("/openai/models")).status_code == 404  # no api-version
        denied = await http.get("/openai/models?api-version=1", headers={"api-key": "wrong"})
        assert denied.status_code == 401 and denied.json()["error"]["code"] == "401"


async def test_echo_key_fault_quotes_the_presented_credential(
    sim: Simulator, oai: openai.AsyncOpenAI
) -> None:
    sim.inject("echo_key")
    with pytest.raises(openai.AuthenticationError) as info:
        await oai.chat.completions.create(model="gpt-4o-mini", messages=ASK)
    assert KEY in str(info.value) and sim.stats.faults["echo_key"] == 1
    assert sim.faults.describe() == []
