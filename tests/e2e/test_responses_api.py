"""The OpenAI Responses API as its users call it: the official ``openai`` SDK's ``responses``
resource against a live Turnout in front of the simulator, for every wire format the simulator
speaks (OpenAI-compatible, Anthropic, Ollama: all translated from chat completions)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from tests.gateway_env import ANTHROPIC_MODEL, OLLAMA_MODEL, OPENAI_MODEL, GatewayEnv, gw  # noqa: F401

CHAT_MODELS = [OPENAI_MODEL, ANTHROPIC_MODEL, OLLAMA_MODEL]
WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.mark.parametrize("model", CHAT_MODELS)
async def test_create_whole_then_retrieve(gw: GatewayEnv, model: str) -> None:  # noqa: F811
    client = gw.openai()
    raw = await client.responses.with_raw_response.create(
        model=model, instructions="Be brief.", input="Tell me about turnouts", max_output_tokens=64
    )
    response = raw.parse()
    assert response.status == "completed" and response.model == model
    assert response.output_text.startswith("Echo: Tell me about turnouts")
    assert response.usage is not None and response.usage.output_tokens > 0
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    # the record, the decision log and feedback all find the call from the response id
    message_id = raw.headers["x-turnout-message-id"]
    assert response.id == "resp_" + message_id.replace("-", "")
    rows = await gw.records(1)
    assert (rows[0].id, rows[0].dialect, rows[0].endpoint, rows[0].status) == (
        message_id,
        "responses",
        "responses",
        "ok",
    )
    assert rows[0].completion_tokens == response.usage.output_tokens
    sent = gw.sim.requests[-1]
    if model == OPENAI_MODEL:  # OpenAI speaks the Responses API: the client's body went on as its own
        assert sent.path == "/v1/responses" and sent.body["instructions"] == "Be brief."
    else:  # translated to the provider's chat format, the instructions as its system prompt
        assert sent.body["messages"][0]["role"] == "system" or sent.body.get("system")
    again = await client.responses.retrieve(response.id)
    assert again.id == response.id and again.output_text == response.output_text
    rated = await gw.http.post(
        f"/api/v2/chat/messages/{response.id}/feedback",
        json={"rating": 0.9},
        headers={"Authorization": f"Bearer {gw.key}"},
    )
    assert rated.status_code == 200, rated.text


@pytest.mark.parametrize("model", CHAT_MODELS)
async def test_stream_events_match_whole_answer(gw: GatewayEnv, model: str) -> None:  # noqa: F811
    client = gw.openai()
    whole = await client.responses.create(model=model, input="Stream me a story")
    kinds: list[str] = []
    text: list[str] = []
    sequence: list[int] = []
    completed: Any = None
    async with await client.responses.create(model=model, input="Stream me a story", stream=True) as stream:
        async for event in stream:
            kinds.append(event.type)
            sequence.append(event.sequence_number)
            if event.type == "response.output_text.delta":
                text.append(event.delta)
            if event.type == "response.completed":
                completed = event.response
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert {"response.output_item.added", "response.content_part.added", "response.output_text.done",
            "response.content_part.done", "response.output_item.done"} <= set(kinds)  # fmt: skip
    assert sequence == list(range(len(sequence)))
    assert "".join(text) == whole.output_text == completed.output_text
    assert completed.usage.output_tokens > 0
    stored = await client.responses.retrieve(completed.id)  # written before response.completed
    assert stored.output_text == whole.output_text
    rows = await gw.records(2)
    assert rows[-1].stream and rows[-1].endpoint == "responses" and rows[-1].status == "ok"


@pytest.mark.parametrize("model", CHAT_MODELS)
async def test_function_call_round_trip_with_previous_response_id(gw: GatewayEnv, model: str) -> None:  # noqa: F811
    client = gw.openai()
    first = await client.responses.create(
        model=model, input="What is the weather in Paris?", tools=[WEATHER], tool_choice="auto"
    )
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert "city" in json.loads(calls[0].arguments)
    second = await client.responses.create(
        model=model,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "Sunny, 21 C"}],
        tools=[WEATHER],
    )
    assert second.status == "completed" and second.previous_response_id == first.id
    # the chain reached the upstream whole: the question, the call, and its output
    sent = json.dumps(gw.sim.requests[-1].body)
    assert "What is the weather in Paris?" in sent and "Sunny, 21 C" in sent and "get_weather" in sent
    items = await client.responses.input_items.list(second.id)
    assert [item.type for item in items.data] == ["function_call_output"]


async def test_streamed_function_call_arguments(gw: GatewayEnv) -> None:  # noqa: F811
    client = gw.openai()
    deltas: list[str] = []
    done: Any = None
    async with await client.responses.create(
        model=OPENAI_MODEL, input="What is the weather in Paris?", tools=[WEATHER], stream=True
    ) as stream:
        async for event in stream:
            if event.type == "response.function_call_arguments.delta":
                deltas.append(event.delta)
            if event.type == "response.output_item.done" and event.item.type == "function_call":
                done = event.item
    assert done is not None and done.name == "get_weather"
    assert "".join(deltas) == done.arguments and "city" in json.loads(done.arguments)


async def test_store_false_is_not_kept_and_delete_forgets(gw: GatewayEnv) -> None:  # noqa: F811
    client = gw.openai()
    unstored = await client.responses.create(model=OPENAI_MODEL, input="hello", store=False)
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(unstored.id)
    with pytest.raises(openai.NotFoundError) as exc:
        await client.responses.create(model=OPENAI_MODEL, input="again", previous_response_id=unstored.id)
    assert exc.value.body["param"] == "previous_response_id"  # type: ignore[index]
    kept = await client.responses.create(model=OPENAI_MODEL, input="hello")
    await client.responses.delete(kept.id)
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(kept.id)


async def test_other_tenants_cannot_read_or_continue(gw: GatewayEnv) -> None:  # noqa: F811
    mine = await gw.openai().responses.create(model=OPENAI_MODEL, input="a secret plan")
    token = gw.container.jwt.mint("mallory", "other-tenant", ["tenant_admin"])
    other = openai.AsyncOpenAI(base_url=f"{gw.url}/v1", api_key=token, max_retries=0)
    try:
        with pytest.raises(openai.NotFoundError):
            await other.responses.retrieve(mine.id)
        with pytest.raises(openai.NotFoundError):
            await other.responses.delete(mine.id)
        with pytest.raises(openai.NotFoundError):
            await other.responses.input_items.list(mine.id)
        calls_before = gw.upstream_calls()
        with pytest.raises(openai.NotFoundError):
            await other.responses.create(model=OPENAI_MODEL, input="go on", previous_response_id=mine.id)
        assert gw.upstream_calls() == calls_before
    finally:
        await other.close()
    assert (await gw.openai().responses.retrieve(mine.id)).id == mine.id


async def test_auto_routing_and_json_schema_format(gw: GatewayEnv) -> None:  # noqa: F811
    raw = await gw.openai().responses.with_raw_response.create(
        model="auto",
        input="Give me a JSON object with a name",
        text={
            "format": {
                "type": "json_schema",
                "name": "person",
                "schema": {"type": "object", "properties": {"name": {"type": "string"}}},
            }
        },
        reasoning={"effort": "low"},
    )
    assert raw.parse().status == "completed"
    tenant_admin = {"Authorization": "Bearer " + gw.container.jwt.mint("ann", "acme", ["tenant_admin"])}
    decision = await gw.http.get(f"/api/v2/routing/decisions/{raw.parse().id}", headers=tenant_admin)
    assert decision.status_code == 200, decision.text
    assert decision.json()["message_id"] == raw.headers["x-turnout-message-id"]
    assert {r["model"] for r in decision.json()["ranked"]} >= {raw.headers["x-turnout-model"]}
    chosen = raw.headers["x-turnout-model"]
    sent = gw.sim.requests[-1]
    assert sent.model is not None and chosen.endswith(sent.model)
    if chosen.startswith("oai/"):
        assert sent.body["response_format"]["type"] == "json_schema"
        assert sent.body["reasoning_effort"] == "low"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "hi"}, "model"),
        ({"model": OPENAI_MODEL}, "input"),
        ({"model": OPENAI_MODEL, "input": 7}, "input"),
        (
            {"model": OPENAI_MODEL, "input": [{"type": "message", "role": "robot", "content": "x"}]},
            "input[0].role",
        ),
        ({"model": OPENAI_MODEL, "input": "x", "tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"model": OPENAI_MODEL, "input": "x", "tool_choice": {"type": "mcp"}}, "tool_choice"),
        ({"model": OPENAI_MODEL, "input": "x", "max_output_tokens": 0}, "max_output_tokens"),
        ({"model": OPENAI_MODEL, "input": "x", "temperature": 3}, "temperature"),
        ({"model": OPENAI_MODEL, "input": "x", "reasoning": {"effort": "huge"}}, "reasoning.effort"),
        ({"model": OPENAI_MODEL, "input": "x", "background": True}, "background"),
        ({"model": OPENAI_MODEL, "input": "x", "text": {"format": {"type": "yaml"}}}, "text.format.type"),
        (
            {"model": OPENAI_MODEL, "input": [{"type": "function_call_output", "output": "x"}]},
            "input[0].call_id",
        ),
        ({"model": OPENAI_MODEL, "input": [{"type": "item_reference", "id": "x"}]}, "input[0].type"),
    ],
)
async def test_bad_input_is_a_400_naming_the_field(gw: GatewayEnv, body: dict[str, Any], param: str) -> None:  # noqa: F811
    resp = await gw.http.post("/v1/responses", json=body, headers={"Authorization": f"Bearer {gw.key}"})
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert gw.upstream_calls() == 0


async def test_input_items_pages(gw: GatewayEnv) -> None:  # noqa: F811
    client = gw.openai()
    items: Any = [{"role": "user", "content": f"line {i}"} for i in range(5)]
    response = await client.responses.create(model=OPENAI_MODEL, input=items)
    first = await client.responses.input_items.list(response.id, limit=2, order="asc")
    assert [part.text for item in first.data for part in item.content] == ["line 0", "line 1"]  # type: ignore[union-attr]
    assert first.has_more
    rest = await client.responses.input_items.list(response.id, limit=10, order="asc", after=first.last_id)
    assert len(rest.data) == 3 and not rest.has_more
    async with httpx.AsyncClient(base_url=gw.url) as http:
        bad = await http.get(
            f"/v1/responses/{response.id}/input_items?limit=500",
            headers={"Authorization": f"Bearer {gw.key}"},
        )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "limit"


async def test_openai_upstream_gets_the_responses_api_itself_with_the_whole_conversation(
    gw: GatewayEnv,  # noqa: F811
) -> None:
    client = gw.openai()
    first = await client.responses.create(
        model=OPENAI_MODEL, input="What is the weather in Paris?", tools=[WEATHER], metadata={"run": "1"}
    )
    call = next(item for item in first.output if item.type == "function_call")
    sent = gw.sim.requests[-1]
    assert sent.path == "/v1/responses" and sent.body["metadata"] == {"run": "1"}
    assert sent.body["tools"] == [WEATHER] and sent.body["store"] is False
    assert first.id.startswith("resp_") and first.model == OPENAI_MODEL
    assert gw.upstream_calls("POST /v1/chat/completions") == 0
    second = await client.responses.create(
        model=OPENAI_MODEL,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "Sunny"}],
    )
    sent = gw.sim.requests[-1]
    # the simulator, like OpenAI, refuses an output without its call and ids it never made: Turnout
    # sent the conversation itself
    assert "previous_response_id" not in sent.body
    assert [item.get("type", "message") for item in sent.body["input"]] == [
        "message",
        "function_call",
        "function_call_output",
    ]
    assert second.previous_response_id == first.id and second.output_text
    # streamed and passed through: Turnout's id in every event, stored before response.completed
    ids, text = set(), []
    async with await client.responses.create(
        model=OPENAI_MODEL, previous_response_id=second.id, input="thanks!", stream=True
    ) as stream:
        async for event in stream:
            if hasattr(event, "response"):
                ids.add(event.response.id)
            if event.type == "response.output_text.delta":
                text.append(event.delta)
    (stream_id,) = ids
    assert stream_id.startswith("resp_") and "".join(text).startswith("Echo: thanks!")
    assert (await client.responses.retrieve(stream_id)).output_text == "".join(text)
    rows = await gw.records(3)
    assert all(r.endpoint == "responses" and r.completion_tokens for r in rows[-3:])
    # the chain goes on through a provider that does not speak the Responses API: translated
    last = await client.responses.create(model=ANTHROPIC_MODEL, previous_response_id=stream_id, input="bye")
    sent_text = json.dumps(gw.sim.requests[-1].body)
    assert "What is the weather in Paris?" in sent_text and "Sunny" in sent_text and "thanks!" in sent_text
    assert last.output_text.startswith("Echo: bye")
