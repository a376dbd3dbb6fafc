"""The gateway as existing clients use it: the official OpenAI and Anthropic SDKs, unchanged."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from tests.gateway_env import ANTHROPIC_MODEL, OLLAMA_MODEL, OPENAI_MODEL, GatewayEnv, gw  # noqa: F401

CHAT_MODELS = [OPENAI_MODEL, ANTHROPIC_MODEL, OLLAMA_MODEL]
HELLO: Any = [{"role": "user", "content": "hello"}]
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.mark.parametrize("model", CHAT_MODELS)
async def test_openai_chat_non_streaming(gw: GatewayEnv, model: str) -> None:  # noqa: F811
    raw = await gw.openai().chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "Tell me about turnouts"}], max_tokens=64
    )
    completion = raw.parse()
    assert completion.choices[0].message.content.startswith("Echo: Tell me about turnouts")
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens > 0
    assert completion.model == model
    assert raw.headers["x-turnout-model"] == model
    assert raw.headers["x-turnout-provider"] == model.split("/")[0]
    assert float(raw.headers["x-turnout-cost-usd"]) >= 0
    rows = await gw.records(1)
    assert rows[0].id == raw.headers["x-turnout-message-id"]
    assert (rows[0].model, rows[0].status, rows[0].agent_id, rows[0].tenant_id) == (
        model,
        "ok",
        "bot",
        "acme",
    )
    assert rows[0].prompt_tokens and rows[0].completion_tokens == completion.usage.completion_tokens


@pytest.mark.parametrize("model", CHAT_MODELS)
async def test_openai_chat_streaming_matches_whole_answer(gw: GatewayEnv, model: str) -> None:  # noqa: F811
    client = gw.openai()
    messages: Any = [{"role": "user", "content": "Stream me a story"}]
    whole = await client.chat.completions.create(model=model, messages=messages)
    stream = await client.chat.completions.create(
        model=model, messages=messages, stream=True, stream_options={"include_usage": True}
    )
    text, usage, finish = [], None, None
    async for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert "".join(text) == whole.choices[0].message.content
    assert finish == "stop" and usage is not None and usage.completion_tokens > 0
    rows = await gw.records(2)
    streamed = rows[-1]
    assert streamed.stream and streamed.status == "ok" and streamed.ttft_ms is not None
    assert streamed.completion_tokens == usage.completion_tokens


@pytest.mark.parametrize("model", CHAT_MODELS)
async def test_openai_tool_calls(gw: GatewayEnv, model: str) -> None:  # noqa: F811
    client = gw.openai()
    messages: Any = [{"role": "user", "content": "What is the weather in Paris?"}]
    whole = await client.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL])
    call = whole.choices[0].message.tool_calls[0]
    assert whole.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and "city" in call.function.arguments
    async with client.chat.completions.stream(model=model, messages=messages, tools=[WEATHER_TOOL]) as stream:
        final = await stream.get_final_completion()
    streamed = final.choices[0].message.tool_calls[0]
    assert streamed.function.name == "get_weather" and streamed.function.arguments == call.function.arguments
    rows = await gw.records(2)
    assert rows[-1].tools_used == ["get_weather"]


@pytest.mark.parametrize("model", [OPENAI_MODEL, ANTHROPIC_MODEL])
async def test_anthropic_messages(gw: GatewayEnv, model: str) -> None:  # noqa: F811
    client = gw.anthropic()
    message = await client.messages.create(
        model=model, max_tokens=64, system="Be brief", messages=[{"role": "user", "content": "Hello there"}]
    )
    assert message.content[0].type == "text" and message.content[0].text.startswith("Echo: Hello there")
    assert message.stop_reason == "end_turn" and message.usage.output_tokens > 0
    async with client.messages.stream(
        model=model, max_tokens=64, messages=[{"role": "user", "content": "Hello there"}]
    ) as stream:
        text = [t async for t in stream.text_stream]
        final = await stream.get_final_message()
    assert "".join(text) == message.content[0].text
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == message.usage.output_tokens


@pytest.mark.parametrize("model", [OPENAI_MODEL, ANTHROPIC_MODEL])
async def test_anthropic_tool_use(gw: GatewayEnv, model: str) -> None:  # noqa: F811
    tool: Any = {
        "name": "get_weather",
        "description": "Weather",
        "input_schema": WEATHER_TOOL["function"]["parameters"],
    }
    client = gw.anthropic()
    messages: Any = [{"role": "user", "content": "Weather in Oslo?"}]
    message = await client.messages.create(model=model, max_tokens=64, tools=[tool], messages=messages)
    use = next(b for b in message.content if b.type == "tool_use")
    assert message.stop_reason == "tool_use" and use.name == "get_weather" and "city" in use.input
    async with client.messages.stream(model=model, max_tokens=64, tools=[tool], messages=messages) as stream:
        final = await stream.get_final_message()
    streamed = next(b for b in final.content if b.type == "tool_use")
    assert streamed.name == "get_weather" and streamed.input == use.input
    follow_up: Any = [
        *messages,
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": use.id, "name": use.name, "input": use.input}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "Sunny, 21C"}],
        },
    ]
    answer = await client.messages.create(model=model, max_tokens=64, tools=[tool], messages=follow_up)
    assert answer.stop_reason == "end_turn" and answer.content[0].type == "text"


async def test_anthropic_key_header_and_bearer_both_work(gw: GatewayEnv) -> None:  # noqa: F811
    body = {"model": OPENAI_MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"anthropic-version": "2023-06-01"}
    by_key = await gw.http.post("/v1/messages", json=body, headers={**headers, "x-api-key": gw.key})
    by_bearer = await gw.http.post(
        "/v1/messages", json=body, headers={**headers, "Authorization": f"Bearer {gw.key}"}
    )
    assert by_key.status_code == by_bearer.status_code == 200
    bad = await gw.http.post("/v1/messages", json=body, headers={**headers, "x-api-key": gw.key + "x"})
    assert bad.status_code == 401 and bad.json()["type"] == "error"
    assert bad.json()["error"]["type"] == "authentication_error"


async def test_images_reach_vision_models(gw: GatewayEnv) -> None:  # noqa: F811
    pixel = "data:image/png;base64," + (
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    )
    content: Any = [{"type": "text", "text": "Describe"}, {"type": "image_url", "image_url": {"url": pixel}}]
    for model in CHAT_MODELS:
        done = await gw.openai().chat.completions.create(
            model=model, messages=[{"role": "user", "content": content}]
        )
        assert done.choices[0].message.content
    sent = [r for r in gw.sim.requests if r.provider == "anthropic"][-1].body
    assert sent["messages"][0]["content"][1]["source"]["type"] == "base64"
    assert [r for r in gw.sim.requests if r.provider == "ollama"][-1].body["messages"][0]["images"]


async def test_embeddings_and_model_list(gw: GatewayEnv) -> None:  # noqa: F811
    client = gw.openai()
    for model in ("oai/text-embedding-3-small", "local/nomic-embed-text:latest"):
        result = await client.embeddings.create(model=model, input=["one", "two"], encoding_format="float")
        assert len(result.data) == 2 and len(result.data[0].embedding) > 0
    listed = {m.id async for m in client.models.list()}
    assert {OPENAI_MODEL, ANTHROPIC_MODEL, OLLAMA_MODEL, "oai/text-embedding-3-small"} <= listed


async def test_json_response_format_and_parameters_pass_through(gw: GatewayEnv) -> None:  # noqa: F811
    done = await gw.openai().chat.completions.create(
        model=OPENAI_MODEL,
        messages=[{"role": "user", "content": "json please"}],
        response_format={"type": "json_object"},
        temperature=0.2,
        top_p=0.9,
        stop=["END"],
        max_completion_tokens=50,
        extra_body={"metadata": {"conversation_id": "c-1", "user_id": "u-9"}},
    )
    import json

    json.loads(done.choices[0].message.content or "")
    sent = gw.sim.requests[-1].body
    assert sent["model"] == "gpt-4o-mini" and sent["temperature"] == 0.2 and sent["stop"] == ["END"]
    assert "metadata" not in sent and "fallbacks" not in sent
    row = (await gw.records(1))[-1]
    assert (row.conversation_id, row.user_id) == ("c-1", "u-9")


async def test_native_endpoints(gw: GatewayEnv) -> None:  # noqa: F811
    auth = {"Authorization": f"Bearer {gw.key}"}
    chat = await gw.http.post(
        "/api/models/chat",
        json={"model_id": OPENAI_MODEL, "messages": [{"role": "user", "content": "hi"}], "task_type": "code",
              "context": [{"type": "code", "content": "print(1)"}], "metadata": {"task_id": "t-1"}},
        headers=auth,
    )  # fmt: skip
    assert chat.status_code == 200, chat.text
    body = chat.json()
    assert body["model"] == {"id": OPENAI_MODEL, "provider": "oai"} and body["content"].startswith("Echo:")
    assert body["usage"]["estimated_cost"] is not None and body["metadata"]["finish_reason"] == "stop"
    assert gw.sim.requests[-1].body["messages"][0]["content"].startswith("Context:")
    completion = await gw.http.post(
        "/api/models/completion", json={"prompt": "Say hi", "model_id": ANTHROPIC_MODEL}, headers=auth
    )
    assert completion.status_code == 200 and completion.json()["content"].startswith("Echo: Say hi")
    embeddings = await gw.http.post(
        "/api/models/embeddings",
        json={"texts": ["a", "b"], "model_id": "oai/text-embedding-3-small"},
        headers=auth,
    )
    assert embeddings.status_code == 200 and len(embeddings.json()["embeddings"]) == 2
    models = (await gw.http.get("/api/models", headers=auth)).json()["models"]
    assert any(m["id"] == OPENAI_MODEL and "chat" in m["capabilities"] for m in models)
    rows = await gw.records(3)
    assert any(r.task_type == "code" and r.endpoint == "chat" for r in rows)


async def test_the_sdks_request_id_is_the_record_of_the_call(gw: GatewayEnv) -> None:  # noqa: F811
    """What the official SDKs expose as a response's request id (OpenAI: x-request-id, Anthropic:
    request-id) is Turnout's message id, the one feedback, decisions and cancel take."""
    raw = await gw.openai().chat.completions.with_raw_response.create(model=OPENAI_MODEL, messages=HELLO)
    message_id = raw.headers["x-turnout-message-id"]
    assert raw.request_id == message_id and raw.parse()._request_id == message_id
    message = await gw.anthropic().messages.create(model=ANTHROPIC_MODEL, max_tokens=20, messages=HELLO)
    assert message._request_id is not None
    rows = {r.id for r in await gw.records(2)}
    assert message._request_id in rows, "the Anthropic SDK's request id names the record"
    gw.sim.inject("status:400", count=1)
    with pytest.raises(openai.BadRequestError) as failed:
        await gw.openai().chat.completions.create(model=OPENAI_MODEL, messages=HELLO)
    assert failed.value.request_id in {r.id for r in await gw.records(3)}, "an error names its record too"
    gw.sim.inject("status:400", count=1)
    with pytest.raises(anthropic.BadRequestError) as refused:
        await gw.anthropic().messages.create(model=ANTHROPIC_MODEL, max_tokens=20, messages=HELLO)
    assert refused.value.request_id in {r.id for r in await gw.records(4)}
