"""Anthropic fidelity: an Anthropic-dialect client's body reaches an Anthropic provider untouched but
for ``model`` (signed thinking across turns, redacted thinking, ``cache_control`` with ``ttl``,
``top_k``, ``metadata``, the ``anthropic-*`` headers) and its answer comes back as the provider wrote
it, whole and streamed, while the record still has its usage, cache tokens and cost. Translated
attempts (failover to an OpenAI-compatible model, an OpenAI client on an Anthropic model) map
thinking to ``reasoning_effort`` and ``reasoning_content``. ``/v1/messages/count_tokens`` is
forwarded to Anthropic providers and estimated (and flagged) elsewhere.

All through the official SDKs against a live Turnout in front of the simulator, which signs and
checks thinking blocks and accounts for the prompt cache as Anthropic does."""

from __future__ import annotations

from typing import Any

import anthropic
import orjson
import pytest
from pydantic import BaseModel

from tests.gateway_env import ANTHROPIC_MODEL, OPENAI_MODEL, GatewayEnv, gw  # noqa: F401
from turnout.simulator.anthropic_extended import REDACTED_TRIGGER, signature

UPSTREAM_MODEL = ANTHROPIC_MODEL.split("/", 1)[1]
THINKING: Any = {"type": "enabled", "budget_tokens": 2048}
ASK: Any = [{"role": "user", "content": "Why is the sky blue?"}]
LONG_SYSTEM = "You are a careful physicist. " * 200  # long enough to be worth caching


def _sent(env: GatewayEnv, path: str = "/v1/messages") -> Any:
    """The last request the simulated Anthropic API received on ``path``."""
    return [r for r in env.sim.requests if r.provider == "anthropic" and r.path == path][-1]


def _blocks(message: Any) -> list[dict[str, Any]]:
    """A message's content as the plain dicts a client sends back on its next turn."""
    return [block.model_dump(exclude_none=True) for block in message.content]


async def test_signed_thinking_round_trips_across_turns(gw: GatewayEnv) -> None:  # noqa: F811
    client = gw.anthropic()
    first = await client.messages.create(
        model=ANTHROPIC_MODEL, max_tokens=4096, thinking=THINKING, messages=ASK
    )
    assert first.model == ANTHROPIC_MODEL, "the public name, not the provider's id"
    thought, answer = first.content
    assert thought.type == "thinking" and thought.signature == signature(thought.thinking)
    assert answer.type == "text" and answer.text.startswith("Echo: Why is the sky blue?")
    assert first.usage.output_tokens_details is not None and first.usage.output_tokens_details.thinking_tokens
    assert _sent(gw).body["thinking"] == THINKING

    turn: Any = [
        *ASK,
        {"role": "assistant", "content": _blocks(first)},
        {"role": "user", "content": "And red?"},
    ]
    second = await client.messages.create(
        model=ANTHROPIC_MODEL, max_tokens=4096, thinking=THINKING, messages=turn
    )
    assert second.content[1].text.startswith("Echo: And red?")
    assert _sent(gw).body["messages"][1]["content"] == _blocks(first), "replayed exactly as answered"

    tampered: Any = [dict(turn[0]), {"role": "assistant", "content": _blocks(first)}, turn[2]]
    tampered[1]["content"][0]["thinking"] += " (edited)"
    with pytest.raises(anthropic.BadRequestError) as info:
        await client.messages.create(
            model=ANTHROPIC_MODEL, max_tokens=4096, thinking=THINKING, messages=tampered
        )
    assert "Invalid `signature` in `thinking` block" in info.value.message
    assert info.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]

    rows = await gw.records(3)
    assert [r.status for r in rows] == ["ok", "ok", "error"]
    assert rows[0].content == answer.text and rows[0].completion_tokens == first.usage.output_tokens
    assert rows[0].reasoning_tokens == first.usage.output_tokens_details.thinking_tokens
    assert rows[0].cost_usd is not None and rows[0].dialect == "anthropic"


async def test_streamed_thinking_passes_events_through_and_round_trips(gw: GatewayEnv) -> None:  # noqa: F811
    client = gw.anthropic()
    kinds: list[str] = []
    async with client.messages.stream(
        model=ANTHROPIC_MODEL, max_tokens=4096, thinking=THINKING, messages=ASK
    ) as stream:
        async for event in stream:
            if event.type == "content_block_delta":
                kinds.append(event.delta.type)
        final = await stream.get_final_message()
    assert "thinking_delta" in kinds and "signature_delta" in kinds and "text_delta" in kinds
    assert kinds.index("signature_delta") < kinds.index("text_delta")
    assert final.model == ANTHROPIC_MODEL
    thought = final.content[0]
    assert thought.type == "thinking" and thought.signature == signature(thought.thinking)

    turn: Any = [*ASK, {"role": "assistant", "content": _blocks(final)}, {"role": "user", "content": "More"}]
    async with client.messages.stream(
        model=ANTHROPIC_MODEL, max_tokens=4096, thinking=THINKING, messages=turn
    ) as stream:
        again = await stream.get_final_message()
    assert again.content[1].text.startswith("Echo: More")
    rows = await gw.records(2)
    assert all(r.stream and r.status == "ok" for r in rows)
    assert rows[0].content == final.content[1].text and rows[0].reasoning_tokens


async def test_raw_stream_is_the_upstream_stream_but_for_the_model(gw: GatewayEnv) -> None:  # noqa: F811
    body = {
        "model": ANTHROPIC_MODEL,
        "max_tokens": 4096,
        "thinking": THINKING,
        "messages": ASK,
        "stream": True,
    }
    headers = {"x-api-key": gw.key, "anthropic-version": "2023-06-01"}
    relayed = (await gw.http.post("/v1/messages", json=body, headers=headers)).text
    events = [orjson.loads(line[6:]) for line in relayed.splitlines() if line.startswith("data: ")]
    names = [line[7:] for line in relayed.splitlines() if line.startswith("event: ")]
    assert names[:3] == ["message_start", "content_block_start", "ping"] and names[-1] == "message_stop"
    assert events[0]["message"]["model"] == ANTHROPIC_MODEL
    assert events[1]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    assert any(e.get("delta", {}).get("type") == "signature_delta" for e in events)
    assert UPSTREAM_MODEL not in relayed.replace(ANTHROPIC_MODEL, "")


async def test_redacted_thinking_round_trips(gw: GatewayEnv) -> None:  # noqa: F811
    client = gw.anthropic()
    ask: Any = [{"role": "user", "content": f"{REDACTED_TRIGGER} think about this"}]
    first = await client.messages.create(
        model=ANTHROPIC_MODEL, max_tokens=4096, thinking=THINKING, messages=ask
    )
    redacted = first.content[0]
    assert redacted.type == "redacted_thinking" and redacted.data
    turn: Any = [*ask, {"role": "assistant", "content": _blocks(first)}, {"role": "user", "content": "Go on"}]
    async with client.messages.stream(
        model=ANTHROPIC_MODEL, max_tokens=4096, thinking=THINKING, messages=turn
    ) as stream:
        second = await stream.get_final_message()
    assert second.content[0].type == "thinking", "the trigger was in the first turn only"
    assert _sent(gw).body["messages"][1]["content"][0] == {"type": "redacted_thinking", "data": redacted.data}
    turn[1]["content"][0]["data"] = redacted.data[:-4] + "AAAA"
    with pytest.raises(anthropic.BadRequestError, match="Invalid `data` in `redacted_thinking` block"):
        await client.messages.create(model=ANTHROPIC_MODEL, max_tokens=4096, thinking=THINKING, messages=turn)


async def test_cache_control_top_k_metadata_and_headers_arrive_untouched(gw: GatewayEnv) -> None:  # noqa: F811
    client = gw.anthropic()
    params: dict[str, Any] = {
        "max_tokens": 300,
        "system": [
            {"type": "text", "text": LONG_SYSTEM, "cache_control": {"type": "ephemeral", "ttl": "1h"}}
        ],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Why is the sky blue?", "cache_control": {"type": "ephemeral"}}
                ],
            }
        ],
        "metadata": {"user_id": "user-42"},
        "stop_sequences": ["\n\nHuman:"],
    }
    beta = "interleaved-thinking-2025-05-14,context-1m-2025-08-07"
    forwarded = {"anthropic-beta": beta, "anthropic-version": "2023-06-01"}
    first = await client.messages.create(
        model=ANTHROPIC_MODEL, **params, extra_body={"top_k": 5}, extra_headers=forwarded
    )
    sent = _sent(gw)
    assert sent.body == {**params, "top_k": 5, "model": UPSTREAM_MODEL}, "all of it, untouched but model"
    assert {name: sent.headers[name] for name in forwarded} == forwarded
    usage = first.usage
    assert usage.cache_creation_input_tokens and not usage.cache_read_input_tokens
    split = usage.cache_creation
    assert split is not None and split.ephemeral_1h_input_tokens > split.ephemeral_5m_input_tokens > 0
    assert (
        split.ephemeral_1h_input_tokens + split.ephemeral_5m_input_tokens == usage.cache_creation_input_tokens
    )

    again = await client.messages.create(model=ANTHROPIC_MODEL, **params, extra_body={"top_k": 5})
    assert again.usage.cache_read_input_tokens == usage.cache_creation_input_tokens
    assert not again.usage.cache_creation_input_tokens
    rows = await gw.records(2)
    assert (rows[0].cache_write_tokens, rows[0].cached_tokens) == (usage.cache_creation_input_tokens, 0)
    assert (rows[1].cache_write_tokens, rows[1].cached_tokens) == (0, again.usage.cache_read_input_tokens)
    assert rows[0].prompt_tokens == usage.input_tokens + usage.cache_creation_input_tokens
    assert rows[0].cost_usd is not None and rows[1].cost_usd is not None
    assert rows[1].cost_usd < rows[0].cost_usd, "a cache read costs less than the cache write"
    assert rows[0].user_id == "user-42"


async def test_client_bytes_are_forwarded_byte_for_byte(gw: GatewayEnv) -> None:  # noqa: F811
    body = (
        b'{ "max_tokens": 64,\n  "top_k": 3, "temperature": 0.50, "model": "'
        + ANTHROPIC_MODEL.encode()
        + b'",'
        b' "messages": [{"role": "user", "content": [{"type": "text", "text": "caf\\u00e9 \\"model\\"",'
        b' "cache_control": {"type": "ephemeral", "ttl": "5m"}}]}]}'
    )
    headers = {"x-api-key": gw.key, "anthropic-version": "2023-06-01", "content-type": "application/json"}
    answered = await gw.http.post("/v1/messages", content=body, headers=headers)
    assert answered.status_code == 200, answered.text
    assert answered.json()["model"] == ANTHROPIC_MODEL
    assert _sent(gw).raw == body.replace(ANTHROPIC_MODEL.encode(), UPSTREAM_MODEL.encode())


async def test_turnout_metadata_ids_are_recorded_not_sent(gw: GatewayEnv) -> None:  # noqa: F811
    metadata = {"user_id": "u-1", "conversation_id": "conv-7", "task_id": "t-1"}
    await gw.anthropic().messages.create(
        model=ANTHROPIC_MODEL, max_tokens=50, messages=ASK, metadata=metadata
    )  # type: ignore[arg-type]
    assert _sent(gw).body["metadata"] == {"user_id": "u-1"}, "Anthropic takes user_id only"
    row = (await gw.records(1))[0]
    assert (row.conversation_id, row.user_id) == ("conv-7", "u-1")


async def test_count_tokens_is_forwarded_to_anthropic_and_estimated_elsewhere(gw: GatewayEnv) -> None:  # noqa: F811
    client = gw.anthropic()
    tools: Any = [{"name": "get_weather", "input_schema": {"type": "object", "properties": {}}}]
    counted = await client.messages.with_raw_response.count_tokens(
        model=ANTHROPIC_MODEL, system="Be brief", messages=ASK, tools=tools, thinking=THINKING
    )
    assert (await counted.parse()).input_tokens > 0 and "x-turnout-estimated" not in counted.headers
    assert counted.headers["x-turnout-model"] == ANTHROPIC_MODEL
    sent = _sent(gw, "/v1/messages/count_tokens")
    assert (
        sent.body["model"] == UPSTREAM_MODEL
        and sent.body["thinking"] == THINKING
        and sent.body["tools"] == tools
    )
    assert gw.upstream_calls("POST /v1/messages/count_tokens") == 1

    estimated = await client.messages.with_raw_response.count_tokens(
        model=OPENAI_MODEL, system="Be brief", messages=ASK
    )
    assert estimated.headers["x-turnout-estimated"] == "true"
    assert orjson.loads(estimated.http_response.content) == {
        "input_tokens": (await estimated.parse()).input_tokens,
        "estimated": True,
    }
    assert (await estimated.parse()).input_tokens == (len("Be brief") + len(ASK[0]["content"]) + 3) // 4
    assert gw.upstream_calls("POST /v1/messages/count_tokens") == 1, "nothing sent upstream to estimate"

    routed = await client.messages.with_raw_response.count_tokens(model="auto", messages=ASK)
    assert (await routed.parse()).input_tokens > 0 and routed.headers["x-turnout-model"]
    assert await gw.records(0, timeout_s=0.2) == [], "a count is not a call: no record"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": ANTHROPIC_MODEL}, "messages"),
        ({"model": ANTHROPIC_MODEL, "messages": []}, "messages"),
        ({"model": ANTHROPIC_MODEL, "messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role"),
        ({"model": 7, "messages": ASK}, "model"),
        ({"model": ANTHROPIC_MODEL, "messages": ASK, "tools": [{"name": "bad name!"}]}, "tools[0].name"),
    ],
)
async def test_count_tokens_bad_input_is_a_400_naming_the_field(
    gw: GatewayEnv,  # noqa: F811
    body: Any,
    param: str,
) -> None:
    headers = {"x-api-key": gw.key, "anthropic-version": "2023-06-01"}
    answered = await gw.http.post("/v1/messages/count_tokens", json=body, headers=headers)
    assert answered.status_code == 400
    error = answered.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert param in error["error"]["message"]
    assert gw.sim.stats.total == 0
    unauthenticated = await gw.http.post("/v1/messages/count_tokens", json=body)
    assert unauthenticated.status_code == 401


async def test_reasoning_effort_from_an_openai_client_reaches_anthropic_as_thinking(gw: GatewayEnv) -> None:  # noqa: F811
    client = gw.openai()
    done = await client.chat.completions.create(
        model=ANTHROPIC_MODEL, messages=ASK, reasoning_effort="low", max_completion_tokens=500
    )
    sent = _sent(gw).body
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert sent["max_tokens"] > 2048, "room for the answer above the thinking budget"
    message: Any = done.choices[0].message
    assert message.reasoning_content and message.reasoning_content.startswith("The user asks: Why is the sky")
    assert message.content.startswith("Echo: Why is the sky blue?")
    assert done.usage is not None and done.usage.completion_tokens_details is not None
    assert done.usage.completion_tokens_details.reasoning_tokens

    stream = await client.chat.completions.create(
        model=ANTHROPIC_MODEL, messages=ASK, reasoning_effort="high", stream=True
    )
    reasoning, content = [], []
    async for chunk in stream:
        for choice in chunk.choices:
            delta: Any = choice.delta
            reasoning.append(getattr(delta, "reasoning_content", None) or "")
            content.append(delta.content or "")
    assert "".join(reasoning) == message.reasoning_content and "".join(content) == message.content
    assert _sent(gw).body["thinking"] == {"type": "enabled", "budget_tokens": 16384}
    rows = await gw.records(2)
    assert all(r.reasoning_tokens for r in rows)

    with pytest.raises(Exception, match="reasoning_effort"):
        await client.chat.completions.create(model=ANTHROPIC_MODEL, messages=ASK, reasoning_effort="extreme")  # type: ignore[arg-type]


async def _claude_first_then_gpt(env: GatewayEnv) -> None:
    """The agent ranks the Claude model first and the OpenAI one second; the Claude one fails."""
    tenant_admin = {"Authorization": f"Bearer {env.container.jwt.mint('ann', 'acme', ['tenant_admin'])}"}
    for model, priority in ((ANTHROPIC_MODEL, 100), (OPENAI_MODEL, 90)):
        changed = await env.http.patch(
            f"/api/v2/agents/{env.agent_id}/models/{model}",
            json={"priority_override": priority},
            headers=tenant_admin,
        )
        assert changed.status_code == 200, changed.text
    await env.container.snapshots.reload()
    env.sim.inject("status:529", count=10, model=UPSTREAM_MODEL)


FAILOVER: Any = {
    "model": "auto",
    "max_tokens": 4096,
    "thinking": THINKING,
    "system": [{"type": "text", "text": "Be brief", "cache_control": {"type": "ephemeral"}}],
    "messages": ASK,
}


@pytest.mark.parametrize("stream", [False, True])
async def test_failover_from_anthropic_to_an_openai_model_answers_in_anthropic_shape(
    gw: GatewayEnv,  # noqa: F811
    stream: bool,
) -> None:
    await _claude_first_then_gpt(gw)
    client = gw.anthropic()
    if stream:
        async with client.messages.stream(**FAILOVER) as streamed:
            answer = await streamed.get_final_message()
    else:
        answer = await client.messages.create(**FAILOVER)
    assert answer.model == OPENAI_MODEL and answer.content[-1].type == "text"
    assert answer.content[-1].text.startswith("Echo: Why is the sky blue?")
    tried = _sent(gw).body
    assert tried["thinking"] == THINKING and tried["system"] == FAILOVER["system"], "native on Anthropic"
    translated = [r for r in gw.sim.requests if r.provider != "anthropic"][-1].body
    assert translated["model"] == "gpt-4o-mini" and translated["reasoning_effort"] == "low"
    assert "cache_control" not in orjson.dumps(translated).decode() and "thinking" not in translated
    row = (await gw.records(1))[0]
    assert (row.model, row.fallback_used, row.status, row.attempts) == (OPENAI_MODEL, True, "ok", 4)


PDF: Any = {
    "type": "document",
    "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQK"},
    "title": "report",
}
WEB_SEARCH: Any = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}


async def test_documents_and_server_tools_reach_claude_and_only_claude(gw: GatewayEnv) -> None:  # noqa: F811
    """A PDF ``document`` block and a server tool (web search) are Claude's own: an Anthropic client
    sending them to a Claude model got 400 "not supported for this model", although the body goes
    to Anthropic untouched. Now they pass through to Claude; a model of another format, which would
    lose them in translation, is passed over in failover and refused with a 400 naming the block
    when no model is left."""
    client = gw.anthropic()
    ask: Any = [{"role": "user", "content": [PDF, {"type": "text", "text": "Summarise the report"}]}]
    answer = await client.messages.create(
        model=ANTHROPIC_MODEL, max_tokens=100, messages=ask, tools=[WEB_SEARCH]
    )
    assert answer.content and answer.model == ANTHROPIC_MODEL
    sent = _sent(gw).body
    assert sent["messages"] == ask and sent["tools"] == [WEB_SEARCH], "untouched"
    counted = await client.messages.count_tokens(model=ANTHROPIC_MODEL, messages=ask)
    assert counted.input_tokens > 0 and _sent(gw, "/v1/messages/count_tokens").body["messages"] == ask
    served = await client.messages.create(
        model=OPENAI_MODEL, max_tokens=100, messages=ask, extra_body={"fallbacks": [ANTHROPIC_MODEL]}
    )
    assert served.model == ANTHROPIC_MODEL, "the OpenAI-format model is passed over"
    with pytest.raises(anthropic.BadRequestError) as refused:
        await client.messages.create(model=OPENAI_MODEL, max_tokens=100, messages=ask)
    error = refused.value.body["error"]  # type: ignore[index]
    assert "document" in error["message"] and "Anthropic" in error["message"], error
    with pytest.raises(anthropic.BadRequestError) as no_tool:
        await client.messages.create(model=OPENAI_MODEL, max_tokens=100, messages=ASK, tools=[WEB_SEARCH])
    assert "web_search_20250305" in no_tool.value.body["error"]["message"]  # type: ignore[index]
    rows = await gw.records(4)
    assert [r.model for r in rows[:2]] == [ANTHROPIC_MODEL, ANTHROPIC_MODEL]
    assert rows[1].fallback_used and all(r.status == "error" for r in rows[2:])


async def test_turnout_fields_work_in_the_anthropic_dialect_and_stay_home(gw: GatewayEnv) -> None:  # noqa: F811
    """``fallbacks``, ``task_type`` and ``requirements`` (Turnout's own body fields) were ignored in
    the Anthropic dialect and sent on to Anthropic, whose API refuses fields it does not know."""
    gw.sim.inject("status:500", count=None, model=UPSTREAM_MODEL)
    answer = await gw.anthropic().messages.create(
        model=ANTHROPIC_MODEL,
        max_tokens=50,
        messages=ASK,
        extra_body={"fallbacks": [OPENAI_MODEL], "task_type": "science", "requirements": {}},
    )
    assert answer.model == OPENAI_MODEL, "the fallback served"
    sent = _sent(gw).body
    assert not {"fallbacks", "task_type", "requirements"} & set(sent), sorted(sent)
    row = (await gw.records(1))[0]
    assert (row.model, row.fallback_used, row.task_type) == (OPENAI_MODEL, True, "science")


class Weather(BaseModel):
    city: str
    celsius: float


async def test_openai_structured_outputs_from_a_claude_model_parse(gw: GatewayEnv) -> None:  # noqa: F811
    """The OpenAI SDK's ``parse`` against a Claude model got prose: ``response_format`` became a
    system instruction, which Claude may wrap in words or fences, so ``parse`` raised. It is now
    Claude's own way to a JSON answer, a forced tool whose input is the schema (Anthropic
    validates it), and the tool call comes back as the message's JSON content, streamed or not,
    with ``finish_reason`` stop."""
    client = gw.openai()
    ask = [{"role": "user", "content": "Weather in Paris?"}]
    done = await client.chat.completions.parse(model=ANTHROPIC_MODEL, messages=ask, response_format=Weather)
    (choice,) = done.choices
    assert isinstance(choice.message.parsed, Weather) and choice.finish_reason == "stop", choice
    assert choice.message.tool_calls in (None, []), "the format's tool is not the caller's tool call"
    sent = _sent(gw).body
    assert sent["tool_choice"] == {"type": "tool", "name": sent["tools"][0]["name"]}, sent
    assert sent["tools"][0]["input_schema"]["required"] == ["city", "celsius"] and "system" not in sent
    async with client.chat.completions.stream(
        model=ANTHROPIC_MODEL, messages=ask, response_format=Weather
    ) as stream:
        final = await stream.get_final_completion()
    assert isinstance(final.choices[0].message.parsed, Weather), final
    assert final.choices[0].finish_reason == "stop"
    json_mode = await client.chat.completions.create(
        model=ANTHROPIC_MODEL, messages=ask, response_format={"type": "json_object"}
    )
    assert isinstance(orjson.loads(json_mode.choices[0].message.content or ""), dict), json_mode


async def test_structured_outputs_with_thinking_or_tools_ask_in_words(gw: GatewayEnv) -> None:  # noqa: F811
    """Anthropic refuses a forced tool with thinking on, and forcing one would take the caller's
    own tools away: then the format is asked for in the system prompt, as before."""
    client = gw.openai()
    ask = [{"role": "user", "content": "Weather in Paris?"}]
    schema = {"type": "json_schema", "json_schema": {"name": "w", "schema": Weather.model_json_schema()}}
    await client.chat.completions.create(
        model=ANTHROPIC_MODEL,
        messages=ask,
        response_format=schema,
        reasoning_effort="low",  # type: ignore[arg-type]
    )
    sent = _sent(gw).body
    assert "tool_choice" not in sent and "JSON Schema" in sent["system"] and sent["thinking"], sent
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    await client.chat.completions.create(
        model=ANTHROPIC_MODEL,
        messages=ask,
        response_format=schema,
        tools=[tool],  # type: ignore[arg-type,list-item]
    )
    sent = _sent(gw).body
    assert [t["name"] for t in sent["tools"]] == ["lookup"] and "JSON Schema" in sent["system"], sent
