"""Anthropic SSE stream decoding (provider -> canonical chunks) and encoding (canonical -> client)."""

from __future__ import annotations

import importlib
from typing import Any

import httpx
import orjson
import pytest

from turnout.translate.anthropic_stream import AnthropicStreamDecoder, AnthropicStreamEncoder
from turnout.translate.errors import ProviderError


def sse(*events: dict[str, Any]) -> bytes:
    return b"".join(b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n" for e in events)


# Shaped like the documented "streaming request with tool use" example, plus non-ASCII text.
EVENTS: list[dict[str, Any]] = [
    {
        "type": "message_start",
        "message": {
            "id": "msg_014p7gG3wDgGV9EUtLvnow3U",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 472, "output_tokens": 2, "cache_read_input_tokens": 100},
        },
    },
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "ping"},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Okay, "}},
    {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": "let's check — ☀️ 天気"},
    },
    {"type": "content_block_stop", "index": 0},
    {
        "type": "content_block_start",
        "index": 1,
        "content_block": {
            "type": "tool_use",
            "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
            "name": "get_weather",
            "input": {},
        },
    },
    {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}},
    {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "input_json_delta", "partial_json": '{"location":'},
    },
    {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "input_json_delta", "partial_json": ' "SF, CA"}'},
    },
    {"type": "content_block_stop", "index": 1},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {"output_tokens": 89},
    },
    {"type": "message_stop"},
]
STREAM = sse(*EVENTS)
EXPECTED = {
    "roles": ["assistant"],
    "text": "Okay, let's check — ☀️ 天気",
    "tools": {
        0: {
            "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
            "name": "get_weather",
            "arguments": '{"location": "SF, CA"}',
        }
    },
    "finish": ["tool_calls"],
    "usage": {
        "prompt_tokens": 572,
        "completion_tokens": 89,
        "total_tokens": 661,
        "prompt_tokens_details": {"cached_tokens": 100, "cache_creation_tokens": 0},
    },
}


def summarize(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """What a client rebuilds from canonical chunks."""
    out: dict[str, Any] = {"roles": [], "text": "", "tools": {}, "finish": [], "usage": None}
    for chunk in chunks:
        if chunk.get("usage") is not None:
            out["usage"] = chunk["usage"]
        for choice in chunk["choices"]:
            delta = choice["delta"]
            if delta.get("role"):
                out["roles"].append(delta["role"])
            out["text"] += delta.get("content") or ""
            for call in delta.get("tool_calls") or ():
                tool = out["tools"].setdefault(call["index"], {"id": None, "name": None, "arguments": ""})
                tool["id"] = call.get("id") or tool["id"]
                fn = call.get("function") or {}
                tool["name"] = fn.get("name") or tool["name"]
                tool["arguments"] += fn.get("arguments") or ""
            if choice["finish_reason"]:
                out["finish"].append(choice["finish_reason"])
    return out


def decode(*parts: bytes) -> list[dict[str, Any]]:
    decoder = AnthropicStreamDecoder("anthropic/claude")
    chunks: list[dict[str, Any]] = []
    for part in parts:
        chunks += decoder.feed(part)
    return chunks + decoder.finish()


def test_decode_whole_stream_shapes() -> None:
    chunks = decode(STREAM)
    assert summarize(chunks) == EXPECTED
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "anthropic/claude" for c in chunks)
    assert {c["id"] for c in chunks} == {"msg_014p7gG3wDgGV9EUtLvnow3U"}
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == EXPECTED["usage"]
    types = pytest.importorskip("openai.types.chat")
    for chunk in chunks:
        types.ChatCompletionChunk.model_validate(chunk)


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_decode_split_at_every_position(newline: bytes) -> None:
    raw = STREAM.replace(b"\n", newline)
    for cut in range(len(raw) + 1):
        assert summarize(decode(raw[:cut], raw[cut:])) == EXPECTED, cut


def test_decode_byte_by_byte_and_three_way_splits() -> None:
    raw = STREAM.replace(b"\n", b"\r\n")
    assert summarize(decode(*(raw[i : i + 1] for i in range(len(raw))))) == EXPECTED
    step = 97
    for a in range(0, len(raw), step):
        for b in range(a, len(raw), step):
            assert summarize(decode(raw[:a], raw[a:b], raw[b:])) == EXPECTED


def test_tool_without_input_deltas_gets_empty_object() -> None:
    events = [
        EVENTS[0],
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "tool_use", "id": "t", "name": "now"},
        },
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 5}},
        {"type": "message_stop"},
    ]
    tools = summarize(decode(sse(*events)))["tools"]
    assert tools == {0: {"id": "t", "name": "now", "arguments": "{}"}}


@pytest.mark.parametrize(
    ("kind", "status", "error_type", "retryable"),
    [
        ("overloaded_error", 503, "api_error", True),
        ("rate_limit_error", 429, "rate_limit_error", True),
        ("api_error", 500, "api_error", True),
        ("invalid_request_error", 400, "invalid_request_error", False),
        ("something_new", 502, "api_error", True),
    ],
)
def test_error_event_mid_stream(kind: str, status: int, error_type: str, retryable: bool) -> None:
    decoder = AnthropicStreamDecoder("m")
    chunks = decoder.feed(sse(*EVENTS[:4]))
    assert summarize(chunks)["text"] == "Okay, "
    error = {"type": "error", "error": {"type": kind, "message": "Overloaded"}}
    with pytest.raises(ProviderError) as info:
        decoder.feed(b"event: error\ndata: " + orjson.dumps(error) + b"\n\n")
    assert info.value.status_code == status
    assert info.value.error_type == error_type
    assert info.value.retryable is retryable
    assert info.value.message == "Overloaded"


def test_error_event_scrubs_key() -> None:
    decoder = AnthropicStreamDecoder("m", secrets=("sk-ant-api03-secretsecret",))
    error = {"type": "error", "error": {"type": "api_error", "message": "bad key sk-ant-api03-secretsecret"}}
    with pytest.raises(ProviderError) as info:
        decoder.feed(sse(error))
    assert "secret" not in info.value.message


@pytest.mark.parametrize(
    "cut", [0, 10, len(sse(*EVENTS[:5])), len(STREAM) - len(sse(EVENTS[-1])), len(STREAM) - 3]
)
def test_truncated_stream_raises_on_finish(cut: int) -> None:
    decoder = AnthropicStreamDecoder("m")
    decoder.feed(STREAM[:cut])
    with pytest.raises(ProviderError) as info:
        decoder.finish()
    assert info.value.status_code == 502


def test_last_event_without_blank_line_and_trailing_events_ignored() -> None:
    raw = STREAM.rstrip(b"\n") + b"\n"
    assert summarize(decode(raw)) == EXPECTED
    assert summarize(decode(STREAM + sse({"type": "message_stop"}))) == EXPECTED


def test_malformed_event_data() -> None:
    with pytest.raises(ProviderError) as info:
        decode(b"event: message_start\ndata: {not json\n\n")
    assert info.value.status_code == 502


# Canonical chunks as an OpenAI upstream streams them: text, two tool calls, finish, usage.
def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": choices,
        **extra,
    }


def call(index: int, *, id: str | None = None, name: str | None = None, args: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"index": index, "function": {"arguments": args}}
    if id:
        out.update(id=id, type="function")
        out["function"]["name"] = name
    return {"tool_calls": [out]}


CANONICAL = [
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "Hel"}),
    chunk({"content": "lo ☀️"}),
    chunk(call(0, id="call_a", name="get_weather")),
    chunk(call(0, args='{"loc')),
    chunk(call(0, args='ation": "Paris"}')),
    chunk(call(1, id="call_b", name="get_time", args="{}")),
    chunk({}, "tool_calls"),
    chunk(usage={"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42}),
]


def encode_all(chunks: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
    encoder = AnthropicStreamEncoder("anthropic/claude")
    return b"".join(encoder.encode(c) for c in chunks) + encoder.finish(usage)


def parse_frames(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    frames = []
    for block in raw.decode().split("\n\n"):
        if block:
            event, data = block.split("\n")
            assert event.startswith("event: ") and data.startswith("data: ")
            frames.append((event[7:], orjson.loads(data[6:])))
    return frames


def test_encoder_event_sequence() -> None:
    frames = parse_frames(encode_all(CANONICAL))
    assert all(name == body["type"] for name, body in frames)
    names = [name for name, _ in frames]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    starts = [body for name, body in frames if name == "content_block_start"]
    assert [(s["index"], s["content_block"]["type"]) for s in starts] == [
        (0, "text"),
        (1, "tool_use"),
        (2, "tool_use"),
    ]
    assert names.count("content_block_stop") == 3
    start = frames[0][1]["message"]
    assert start["usage"] == {"input_tokens": 0, "output_tokens": 0} and start["id"].startswith("msg_")
    delta = frames[-2][1]
    assert delta["delta"]["stop_reason"] == "tool_use"
    assert delta["usage"]["output_tokens"] == 12 and delta["usage"]["input_tokens"] == 30


def test_encoder_output_decodes_to_same_text_and_tool_calls() -> None:
    back = summarize(decode(encode_all(CANONICAL)))
    assert back == {
        "roles": ["assistant"],
        "text": "Hello ☀️",
        "tools": {
            0: {"id": "call_a", "name": "get_weather", "arguments": '{"location": "Paris"}'},
            1: {"id": "call_b", "name": "get_time", "arguments": "{}"},
        },
        "finish": ["tool_calls"],
        "usage": {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42},
    }


def test_encoder_text_only_usage_from_finish_and_empty_stream() -> None:
    raw = encode_all(
        [chunk({"content": "hi"}), chunk({}, "length")], {"prompt_tokens": 3, "completion_tokens": 1}
    )
    frames = parse_frames(raw)
    assert frames[-2][1]["delta"]["stop_reason"] == "max_tokens"
    assert frames[-2][1]["usage"]["output_tokens"] == 1
    empty = parse_frames(AnthropicStreamEncoder("m", input_tokens=9).finish(None))
    assert [n for n, _ in empty] == ["message_start", "message_delta", "message_stop"]
    assert empty[0][1]["message"]["usage"]["input_tokens"] == 9
    assert empty[1][1]["delta"]["stop_reason"] == "end_turn"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("api_error", "api_error"),
        ("rate_limit_error", "rate_limit_error"),
        ("server_error", "api_error"),
        ("x", "api_error"),
    ],
)
def test_encoder_error_frame(given: str, expected: str) -> None:
    encoder = AnthropicStreamEncoder("m")
    encoder.encode(CANONICAL[1])
    name, body = parse_frames(encoder.error("upstream broke", given))[0]
    assert name == "error"
    assert body == {"type": "error", "error": {"type": expected, "message": "upstream broke"}}
    assert encoder.finish(None) == b""


def sdk_http() -> Any:
    """The HTTP library the installed Anthropic SDK is built on (recent ones use ``httpx2``)."""
    try:
        return importlib.import_module("httpx2")
    except ImportError:
        return httpx


def test_encoder_output_accepted_by_anthropic_sdk() -> None:
    """The official SDK rebuilds the same message from the encoder's stream."""
    anthropic = pytest.importorskip("anthropic")
    http = sdk_http()
    raw = encode_all(CANONICAL)
    transport = http.MockTransport(
        lambda request: http.Response(200, headers={"content-type": "text/event-stream"}, content=raw)
    )
    client = anthropic.Anthropic(
        api_key="k", base_url="http://gw.test", http_client=http.Client(transport=transport)
    )
    with client.messages.stream(
        model="anthropic/claude", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        message = stream.get_final_message()
    assert [b.type for b in message.content] == ["text", "tool_use", "tool_use"]
    assert message.content[0].text == "Hello ☀️"
    assert message.content[1].input == {"location": "Paris"} and message.content[1].id == "call_a"
    assert message.content[2].name == "get_time" and message.content[2].input == {}
    assert message.stop_reason == "tool_use"
    assert message.usage.output_tokens == 12
