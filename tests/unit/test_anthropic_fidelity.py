"""Pass-through and thinking translation, below the HTTP layer: the model spliced into a client's bytes,
the Anthropic stream relay, the native body (Turnout's metadata ids out), and reasoning both ways
(``reasoning_effort`` <-> ``thinking``, ``reasoning_content`` <-> ``thinking`` blocks, reasoning
tokens <-> thinking tokens)."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
import pytest

from turnout.errors import InvalidRequest
from turnout.translate.anthropic import (
    anthropic_to_openai_response,
    anthropic_usage,
    openai_to_anthropic_response,
    openai_usage,
)
from turnout.translate.anthropic_inbound import anthropic_to_openai_request, thinking_effort
from turnout.translate.anthropic_native import COUNT_TOKENS, MESSAGES, MessagesRelay, native_body
from turnout.translate.anthropic_outbound import EFFORT_BUDGETS, openai_to_anthropic_request
from turnout.translate.anthropic_stream import AnthropicStreamDecoder, AnthropicStreamEncoder
from turnout.translate.passthrough import NativeBody, body_with_model, splice_model

ASK: Any = [{"role": "user", "content": "hi"}]


# -- the model, spliced into the client's bytes ------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b'{"model":"a/b","max_tokens":5}',
        b'{ "max_tokens": 5,\n  "model" :  "a/b" }',
        b'{"messages":[{"content":"say \\"model\\": \\"x\\""}],"model":"a/b"}',
    ],
)
def test_the_model_value_is_spliced_in_and_every_other_byte_kept(raw: bytes) -> None:
    native = NativeBody(MESSAGES, orjson.loads(raw), raw, {})
    sent = body_with_model(native, "claude-x")
    assert sent == raw.replace(b'"a/b"', b'"claude-x"')


@pytest.mark.parametrize(
    "raw",
    [
        b'{"tools":[{"input_schema":{"properties":{"model":{"type":"string"}}}}],"model":"a/b"}',
        b'{"model":"a/b","messages":[{"content":"model"}],"x":"model"}',
        b'{"mod\\u0065l":"a/b","tools":[{"model":"a/b"}]}',
    ],
)
def test_a_model_that_cannot_be_found_for_certain_is_serialised_again(raw: bytes) -> None:
    native = NativeBody(MESSAGES, orjson.loads(raw), raw, {})
    sent = orjson.loads(body_with_model(native, "claude-x"))
    assert sent == {**orjson.loads(raw), "model": "claude-x"}


def test_splice_wants_a_string_model_and_the_expected_value() -> None:
    assert splice_model(b'{"model":7}', "m") is None
    assert splice_model(b'{"model":"a"}', "m", expected="b") is None
    assert splice_model(b'{"model":"a"}', "m", expected="a") == b'{"model":"m"}'
    unnamed = NativeBody(MESSAGES, {"messages": ASK}, b'{"messages":[]}', {})
    assert orjson.loads(body_with_model(unnamed, "m"))["model"] == "m"  # "auto": no model given


def test_native_body_forwards_anthropic_headers_and_drops_turnout_metadata() -> None:
    headers = {"anthropic-version": "2023-06-01", "anthropic-beta": "b1,b2", "x-api-key": "secret"}
    kept = native_body({"model": "m", "metadata": {"user_id": "u"}}, b"raw", headers)
    assert kept.raw == b"raw" and kept.format is MESSAGES
    assert kept.headers == {"anthropic-version": "2023-06-01", "anthropic-beta": "b1,b2"}
    mixed = native_body({"model": "m", "metadata": {"user_id": "u", "conversation_id": "c"}}, b"raw", {})
    assert mixed.raw is None and mixed.body == {"model": "m", "metadata": {"user_id": "u"}}
    ours = native_body({"model": "m", "metadata": {"task_id": "t"}}, b"raw", {}, COUNT_TOKENS)
    assert ours.body == {"model": "m"} and ours.format is COUNT_TOKENS


def test_a_whole_answer_is_renamed_only() -> None:
    payload = b'{"id":"msg_1","model":"claude-haiku-4-5","content":[{"type":"text","text":"x"}]}'
    assert MESSAGES.answer(payload, "claude/haiku") == payload.replace(b"claude-haiku-4-5", b"claude/haiku")
    nested = b'{"model":"c","content":[{"type":"tool_use","input":{"model":"c"}}]}'
    assert orjson.loads(MESSAGES.answer(nested, "p"))["content"][0]["input"] == {"model": "c"}
    assert orjson.loads(MESSAGES.answer(nested, "p"))["model"] == "p"
    assert COUNT_TOKENS.answer(b'{"input_tokens":3}', "p") == b'{"input_tokens":3}'


# -- the stream relay ----------------------------------------------------------------------------------

START = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","model":"claude-h",'
    b'"content":[],"usage":{"input_tokens":3}}}\n\n'
)
REST = (
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
    b'"content_block":{"type":"thinking","thinking":"","signature":""}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"signature_delta","signature":"c2ln"}}\n\n'
)


@pytest.mark.parametrize("cut", [1, 20, len(START) - 1, len(START), len(START) + 5])
def test_relay_renames_the_model_once_and_passes_the_rest_as_it_comes(cut: int) -> None:
    relay = MessagesRelay("claude/h")
    stream = START + REST
    first = relay.feed(stream[:cut])
    if cut < len(START):
        assert first == b"", "an incomplete message_start is held back"
    out = first + relay.feed(stream[cut:])
    assert out == START.replace(b'"claude-h"', b'"claude/h"') + REST
    assert relay.feed(b"event: ping\n\n") == b"event: ping\n\n"


def test_relay_handles_crlf_events_before_message_start_and_errors() -> None:
    relay = MessagesRelay("p")
    ping = b"event: ping\r\ndata: {}\r\n\r\n"
    start = START.replace(b"\n", b"\r\n")
    assert relay.feed(ping + start[:10]) == ping
    assert orjson.loads(relay.feed(start[10:]).split(b"data: ")[1])["message"]["model"] == "p"
    broken = MessagesRelay("p")
    broken.feed(b"event: message_st")
    frame = broken.error("upstream broke", "api_error")
    assert frame.startswith(b"event: error\n") and b'"message":"upstream broke"' in frame


# -- thinking, translated ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("thinking", "effort"),
    [
        ({"type": "enabled", "budget_tokens": 1024}, "low"),
        ({"type": "enabled", "budget_tokens": 2048}, "low"),
        ({"type": "enabled", "budget_tokens": 4096}, "medium"),
        ({"type": "enabled", "budget_tokens": 8192}, "medium"),
        ({"type": "enabled", "budget_tokens": 32000}, "high"),
        ({"type": "adaptive"}, "medium"),
        ({"type": "disabled"}, None),
        ({"type": "enabled"}, None),
        (None, None),
    ],
)
def test_anthropic_thinking_becomes_reasoning_effort(thinking: Any, effort: str | None) -> None:
    body: dict[str, Any] = {"model": "m", "max_tokens": 40000, "messages": ASK}
    if thinking is not None:
        body["thinking"] = thinking
    assert anthropic_to_openai_request(body).get("reasoning_effort") == effort
    assert thinking_effort({"type": "adaptive"}, {"effort": "high"}) == "high"


@pytest.mark.parametrize("effort", list(EFFORT_BUDGETS))
def test_reasoning_effort_becomes_a_thinking_budget_and_back(effort: str) -> None:
    out = openai_to_anthropic_request({"messages": ASK, "reasoning_effort": effort, "temperature": 0.3}, "c")  # type: ignore[typeddict-item]
    budget = EFFORT_BUDGETS[effort]
    assert out["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert out["max_tokens"] > budget and "temperature" not in out, "Anthropic's rules for thinking"
    back = thinking_effort(out["thinking"])
    assert back == ("low" if effort == "minimal" else effort)


def test_reasoning_effort_keeps_a_roomy_max_tokens_and_adds_room_to_a_small_one() -> None:
    roomy = openai_to_anthropic_request({"messages": ASK, "reasoning_effort": "low", "max_tokens": 9000}, "c")  # type: ignore[typeddict-item]
    assert roomy["max_tokens"] == 9000
    small = openai_to_anthropic_request(
        {"messages": ASK, "reasoning_effort": "low", "max_completion_tokens": 100, "top_p": 0.5},
        "c",  # type: ignore[typeddict-item]
    )
    assert small["max_tokens"] == 2048 + 100 and "top_p" not in small
    assert "thinking" not in openai_to_anthropic_request({"messages": ASK, "reasoning_effort": "none"}, "c")  # type: ignore[typeddict-item]


def test_no_thinking_where_anthropic_would_refuse_it_and_a_bad_effort_is_a_400() -> None:
    tool: Any = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    forced = {"messages": ASK, "reasoning_effort": "low", "tools": tool, "tool_choice": "required"}
    assert "thinking" not in openai_to_anthropic_request(forced, "c")  # type: ignore[arg-type]
    loop: Any = [
        *ASK,
        {"role": "assistant", "tool_calls": [{"id": "t1", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "t1", "content": "ok"},
    ]
    assert "thinking" not in openai_to_anthropic_request({"messages": loop, "reasoning_effort": "low"}, "c")  # type: ignore[typeddict-item]
    with pytest.raises(InvalidRequest) as info:
        openai_to_anthropic_request({"messages": ASK, "reasoning_effort": "extreme"}, "c")  # type: ignore[typeddict-item]
    assert info.value.param == "reasoning_effort"


def test_thinking_text_and_tokens_cross_both_ways() -> None:
    message = {
        "id": "msg_1",
        "content": [
            {"type": "thinking", "thinking": "Let me ", "signature": "s1"},
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "thinking", "thinking": "see.", "signature": "s2"},
            {"type": "text", "text": "Hi"},
        ],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 5, "output_tokens": 20, "output_tokens_details": {"thinking_tokens": 12}},
    }
    completion = anthropic_to_openai_response(message, "m")
    assert completion["choices"][0]["message"]["reasoning_content"] == "Let me see."
    assert completion["usage"]["completion_tokens_details"] == {"reasoning_tokens": 12}
    back = openai_to_anthropic_response(completion, "m")
    assert back["content"] == [
        {"type": "thinking", "thinking": "Let me see.", "signature": ""},
        {"type": "text", "text": "Hi"},
    ]
    assert back["usage"]["output_tokens_details"] == {"thinking_tokens": 12}
    assert openai_usage(back["usage"]) == completion["usage"]
    assert "output_tokens_details" not in anthropic_usage({"prompt_tokens": 1, "completion_tokens": 1})
    routed: Any = {
        "choices": [{"message": {"content": "x", "reasoning": "OpenRouter's"}, "finish_reason": "stop"}]
    }
    assert openai_to_anthropic_response(routed, "m")["content"][0]["thinking"] == "OpenRouter's"


def _sse(*events: dict[str, Any]) -> bytes:
    return b"".join(b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n" for e in events)


def test_streamed_thinking_becomes_reasoning_content_and_back_into_a_thinking_block() -> None:
    decoder = AnthropicStreamDecoder("m")
    chunks = decoder.feed(
        _sse(
            {"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 3}}},
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "thinking", "thinking": ""},
            },
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "thinking_delta", "thinking": "Hmm"},
            },
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "signature_delta", "signature": "s"},
            },
            {"type": "content_block_stop", "index": 0},
            {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
            {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hi"}},
            {"type": "content_block_stop", "index": 1},
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 4}},
            {"type": "message_stop"},
        )
    )
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert [d.get("reasoning_content") for d in deltas if "reasoning_content" in d] == ["Hmm"]
    encoder = AnthropicStreamEncoder("m")
    out = b"".join(encoder.encode(c) for c in chunks) + encoder.finish(None)
    events = [orjson.loads(line[6:]) for line in out.split(b"\n") if line.startswith(b"data: ")]
    starts = [e["content_block"] for e in events if e["type"] == "content_block_start"]
    assert starts == [{"type": "thinking", "thinking": "", "signature": ""}, {"type": "text", "text": ""}]
    pieces = [e["delta"] for e in events if e["type"] == "content_block_delta"]
    assert pieces == [{"type": "thinking_delta", "thinking": "Hmm"}, {"type": "text_delta", "text": "Hi"}]
    vllm = AnthropicStreamEncoder("m")
    relayed = vllm.encode({"choices": [{"index": 0, "delta": {"reasoning": "OpenRouter thinks"}}]})
    assert b'"thinking_delta"' in relayed and b"OpenRouter thinks" in relayed


# -- the adapter's native requests ---------------------------------------------------------------------


def test_anthropic_adapter_sends_a_native_body_with_the_clients_anthropic_headers() -> None:
    from turnout.providers.anthropic.adapter import AnthropicAdapter
    from turnout.providers.base import Target
    from turnout.providers.credentials import Credentials
    from turnout.providers.registry import adapter_for

    target = Target(
        "claude/h", "claude-h-1", "claude", "anthropic", "https://api.test/v1", Credentials.of("sk-1")
    )
    raw = b'{"model":"claude/h","max_tokens":5,"top_k":2,"messages":[{"role":"user","content":"hi"}]}'
    headers = {"anthropic-version": "2025-01-01", "anthropic-beta": "b1"}
    native = native_body(orjson.loads(raw), raw, headers)
    request = AnthropicAdapter().native_request(target, native, stream=True)
    assert request is not None and request.native and request.method == "POST"
    assert request.url == "https://api.test/v1/messages"
    assert request.body == raw.replace(b'"claude/h"', b'"claude-h-1"')
    assert request.headers["anthropic-version"] == "2025-01-01" and request.headers["anthropic-beta"] == "b1"
    assert request.headers["x-api-key"] == "sk-1" and request.headers["accept"] == "text/event-stream"
    count = native_body({"model": "claude/h", "messages": ASK}, b"", {}, COUNT_TOKENS)
    counted = AnthropicAdapter().native_request(target, count, stream=False)
    assert counted is not None and counted.url == "https://api.test/v1/messages/count_tokens"
    assert counted.headers["anthropic-version"] == "2023-06-01", "the adapter's own when the client sent none"

    class Other:
        name = "openai.responses"

    other = NativeBody(Other(), {}, None, {})  # type: ignore[arg-type]
    assert AnthropicAdapter().native_request(target, other, stream=False) is None
    openai_target = dataclasses.replace(target, provider_type="openai", api_base="https://api.test/v1")
    translated = adapter_for("openai").native_request(openai_target, native, stream=False)  # type: ignore[attr-defined]
    assert translated is None, "an Anthropic body to an OpenAI-compatible provider: translated"
