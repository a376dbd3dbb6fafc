"""Bedrock Converse <-> the canonical model: requests, answers, usage, errors and the binary
event stream (frames written by the simulator's encoder, read by botocore's decoder)."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from turnout.errors import InvalidRequest
from turnout.simulator.bedrock_routes import event, event_frame, exception_frame
from turnout.translate.bedrock import (
    converse_to_openai_response,
    converse_usage,
    error_from_answer,
    exception_name,
    finish_reason,
    openai_to_converse_request,
)
from turnout.translate.bedrock_stream import BedrockStreamDecoder
from turnout.translate.errors import ProviderError
from turnout.translate.types import ChatRequest, Chunk

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def _call(call_id: str, city: str) -> Any:
    arguments = json.dumps({"city": city})
    return {"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": arguments}}


# -- requests --------------------------------------------------------------------------------------


def test_system_user_and_sampling_fields() -> None:
    body: ChatRequest = {
        "model": "bedrock/m",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "No emoji."}]},
            {"role": "user", "content": "Hi"},
        ],
        "max_completion_tokens": 50,
        "max_tokens": 99,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": "END",
        "seed": 7,
        "metadata": {"agent": "a"},
    }
    out = openai_to_converse_request(body)
    assert out == {
        "messages": [{"role": "user", "content": [{"text": "Hi"}]}],
        "system": [{"text": "Be brief."}, {"text": "No emoji."}],
        "inferenceConfig": {"maxTokens": 50, "temperature": 0.2, "topP": 0.9, "stopSequences": ["END"]},
    }


def test_images_go_as_base64_bytes_and_web_urls_are_refused() -> None:
    content: Any = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": f"data:image/jpg;base64,{PNG}"}},
    ]
    out = openai_to_converse_request({"messages": [{"role": "user", "content": content}]})
    assert out["messages"][0]["content"] == [
        {"text": "What is this?"},
        {"image": {"format": "png", "source": {"bytes": PNG}}},
        {"image": {"format": "jpeg", "source": {"bytes": PNG}}},
    ]
    for url in ("https://example.com/cat.png", f"data:image/bmp;base64,{PNG}"):
        image: Any = [{"type": "image_url", "image_url": {"url": url}}]
        with pytest.raises(InvalidRequest) as caught:
            openai_to_converse_request({"messages": [{"role": "user", "content": image}]})
        assert caught.value.param == "messages[0].content[0].image_url.url"


def test_tool_calls_and_results_become_tool_use_and_merged_results() -> None:
    body: ChatRequest = {
        "messages": [
            {"role": "user", "content": "Weather in Paris and Oslo?"},
            {"role": "assistant", "content": None, "tool_calls": [_call("t1", "Paris"), _call("t2", "Oslo")]},
            {"role": "tool", "tool_call_id": "t1", "content": '{"temp": 21}'},
            {"role": "tool", "tool_call_id": "t2", "content": "cold"},
            {"role": "user", "content": "Thanks; and tomorrow?"},
        ],
        "tools": [WEATHER],
        "tool_choice": "required",
    }
    out = openai_to_converse_request(body)
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user"]  # alternating
    assert out["messages"][1]["content"] == [
        {"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {"city": "Paris"}}},
        {"toolUse": {"toolUseId": "t2", "name": "get_weather", "input": {"city": "Oslo"}}},
    ]
    assert out["messages"][2]["content"] == [  # the results first, then the user's words
        {"toolResult": {"toolUseId": "t1", "content": [{"json": {"temp": 21}}]}},
        {"toolResult": {"toolUseId": "t2", "content": [{"text": "cold"}]}},
        {"text": "Thanks; and tomorrow?"},
    ]
    spec = {
        "name": "get_weather",
        "description": "The weather in a city",
        "inputSchema": {"json": WEATHER["function"]["parameters"]},
    }
    assert out["toolConfig"] == {"tools": [{"toolSpec": spec}], "toolChoice": {"any": {}}}


@pytest.mark.parametrize(
    ("choice", "converted"),
    [
        ("auto", {"auto": {}}),
        ({"type": "function", "function": {"name": "get_weather"}}, {"tool": {"name": "get_weather"}}),
        (None, None),
    ],
)
def test_tool_choice(choice: Any, converted: Any) -> None:
    body: Any = {"messages": [{"role": "user", "content": "hi"}], "tools": [WEATHER]}
    if choice is not None:
        body["tool_choice"] = choice
    out = openai_to_converse_request(body)
    assert out["toolConfig"].get("toolChoice") == converted


def test_tool_choice_none_keeps_only_the_tools_the_history_needs() -> None:
    ask: Any = {"role": "user", "content": "hi"}
    assert "toolConfig" not in openai_to_converse_request(
        {"messages": [ask], "tools": [WEATHER], "tool_choice": "none"}
    )
    history: Any = [
        ask,
        {
            "role": "assistant",
            "tool_calls": [_call("t1", "Rome"), {**_call("t2", "x"), "function": {"name": "other"}}],
        },
        {"role": "tool", "tool_call_id": "t1", "content": ""},
        {"role": "tool", "tool_call_id": "t2", "content": "ok"},
    ]
    out = openai_to_converse_request({"messages": history, "tools": [WEATHER], "tool_choice": "none"})
    names = [t["toolSpec"]["name"] for t in out["toolConfig"]["tools"]]
    assert names == ["get_weather", "other"] and "toolChoice" not in out["toolConfig"]
    assert out["toolConfig"]["tools"][1]["toolSpec"]["inputSchema"] == {
        "json": {"type": "object", "properties": {}}
    }
    assert out["messages"][2]["content"][0]["toolResult"]["content"] == [{"json": {}}]  # empty result


def test_empty_turns_are_dropped_and_neighbours_merged() -> None:
    body: ChatRequest = {
        "messages": [
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": ""},
            {"role": "user", "content": [{"type": "text", "text": "two"}]},
        ]
    }
    assert openai_to_converse_request(body)["messages"] == [
        {"role": "user", "content": [{"text": "one"}, {"text": "two"}]}
    ]


def test_response_format_becomes_a_system_instruction() -> None:
    body: Any = {"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}}
    assert "JSON object" in openai_to_converse_request(body)["system"][0]["text"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "system", "content": "only"}]}, "messages"),
        ({"messages": [{"role": "user", "content": "x"}], "n": 2}, "n"),
        ({"messages": [{"role": "critic", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, "max_tokens"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        ({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "web"}]}, "tools[0].type"),
    ],
)
def test_bad_requests_name_the_field(body: Any, param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        openai_to_converse_request(body)
    assert caught.value.param == param


# -- answers and usage -----------------------------------------------------------------------------


def test_text_answer_with_cache_usage() -> None:
    answer = {
        "output": {"message": {"role": "assistant", "content": [{"text": "Hello"}, {"text": " there"}]}},
        "stopReason": "end_turn",
        "usage": {
            "inputTokens": 10,
            "outputTokens": 4,
            "totalTokens": 44,
            "cacheReadInputTokens": 20,
            "cacheWriteInputTokens": 10,
        },
        "metrics": {"latencyMs": 100},
    }
    out = converse_to_openai_response(answer, "bedrock/claude")
    assert out["model"] == "bedrock/claude" and out["object"] == "chat.completion"
    choice = out["choices"][0]
    assert choice["message"]["content"] == "Hello there" and choice["finish_reason"] == "stop"
    assert out["usage"] == {
        "prompt_tokens": 40,
        "completion_tokens": 4,
        "total_tokens": 44,
        "prompt_tokens_details": {"cached_tokens": 20, "cache_creation_tokens": 10},
    }


def test_tool_use_and_reasoning_answer() -> None:
    content = [
        {"reasoningContent": {"reasoningText": {"text": "Need weather.", "signature": "sig"}}},
        {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}}},
    ]
    answer = {"output": {"message": {"role": "assistant", "content": content}}, "stopReason": "tool_use"}
    message = converse_to_openai_response(answer, "m")["choices"][0]["message"]
    assert message["content"] is None and message["reasoning_content"] == "Need weather."
    call = message["tool_calls"][0]
    assert call["id"] == "tooluse_1" and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}


@pytest.mark.parametrize(
    ("stop", "tools", "finish"),
    [
        ("end_turn", False, "stop"),
        ("stop_sequence", False, "stop"),
        ("max_tokens", False, "length"),
        ("tool_use", True, "tool_calls"),
        ("end_turn", True, "tool_calls"),
        ("content_filtered", False, "content_filter"),
        ("guardrail_intervened", False, "content_filter"),
        ("something_new", False, "stop"),
        (None, False, "stop"),
    ],
)
def test_finish_reasons(stop: Any, tools: bool, finish: str) -> None:
    assert finish_reason(stop, tools) == finish


def test_usage_without_cache_and_malformed_answers() -> None:
    assert converse_usage({"inputTokens": 3, "outputTokens": 2, "totalTokens": 5}) == {
        "prompt_tokens": 3,
        "completion_tokens": 2,
        "total_tokens": 5,
    }
    with pytest.raises(ProviderError) as caught:
        converse_to_openai_response({"output": {}}, "m")
    assert caught.value.status_code == 502 and caught.value.retryable


# -- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "status", "mapped", "error_type", "retryable"),
    [
        ("ValidationException", 400, 400, "invalid_request_error", False),
        ("AccessDeniedException", 403, 403, "permission_error", False),
        ("InvalidSignatureException", 403, 401, "authentication_error", False),
        ("UnrecognizedClientException", 403, 401, "authentication_error", False),
        ("ResourceNotFoundException", 404, 404, "not_found_error", False),
        ("ThrottlingException", 429, 429, "rate_limit_error", True),
        ("ModelNotReadyException", 429, 503, "api_error", True),
        ("ServiceUnavailableException", 503, 503, "api_error", True),
        ("InternalServerException", 500, 500, "api_error", True),
        ("ModelTimeoutException", 408, 504, "api_error", True),
        ("SomethingNewException", 418, 418, "invalid_request_error", False),
    ],
)
def test_http_errors(name: str, status: int, mapped: int, error_type: str, retryable: bool) -> None:
    headers = {"X-Amzn-ErrorType": f"{name}:http://internal.amazon.com/coral/com.amazon.bedrock/"}
    error = error_from_answer(status, b'{"message": "went wrong"}', headers)
    assert (error.status_code, error.error_type, error.retryable) == (mapped, error_type, retryable)
    assert error.message == "went wrong" and error.code == name


def test_error_type_from_the_body_and_credentials_scrubbed() -> None:
    key_id, secret = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    body = orjson.dumps(
        {"__type": "com.amazon.coral#ThrottlingException", "Message": f"slow {key_id} {secret}"}
    )
    error = error_from_answer(429, body, {"Retry-After": "2"}, secrets=(key_id, secret))
    assert error.code == "ThrottlingException" and error.retry_after_s == 2.0
    assert key_id not in error.message and secret not in error.message and "[REDACTED]" in error.message
    proxy = error_from_answer(502, b'{"error": {"message": "bad gateway"}}', {})
    assert proxy.message == "bad gateway" and proxy.status_code == 502 and proxy.retryable
    assert error_from_answer(500, b"", {}).message == "Bedrock returned HTTP 500"
    assert exception_name("ValidationException:http://x") == "ValidationException"
    assert exception_name(None) is None


# -- streams ---------------------------------------------------------------------------------------


def _text_stream(stop: str = "end_turn") -> list[bytes]:
    return [
        event("messageStart", {"role": "assistant"}),
        event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hel"}}),
        event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "lo"}}),
        event("contentBlockStop", {"contentBlockIndex": 0}),
        event("messageStop", {"stopReason": stop}),
        event(
            "metadata",
            {"usage": {"inputTokens": 5, "outputTokens": 2, "totalTokens": 7}, "metrics": {"latencyMs": 9}},
        ),
    ]


def _decode(frames: list[bytes], step: int | None = None) -> list[Chunk]:
    decoder = BedrockStreamDecoder("bedrock/m", secrets=("AKIAIOSFODNN7EXAMPLE",))
    data = b"".join(frames)
    size = step or len(data)
    out: list[Chunk] = []
    for i in range(0, len(data), size):
        out.extend(decoder.feed(data[i : i + size]))
    return out + decoder.finish()


def _text(chunks: list[Chunk]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


@pytest.mark.parametrize("step", [None, 1, 7])
def test_text_stream_in_any_split(step: int | None) -> None:
    chunks = _decode(_text_stream(), step)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert _text(chunks) == "Hello" and all(c["model"] == "bedrock/m" for c in chunks)
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == {
        "prompt_tokens": 5,
        "completion_tokens": 2,
        "total_tokens": 7,
    }


def test_tool_use_stream() -> None:
    start = {"toolUse": {"toolUseId": "tooluse_9", "name": "get_weather"}}
    frames = [
        event("messageStart", {"role": "assistant"}),
        event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Let me look."}}),
        event("contentBlockStop", {"contentBlockIndex": 0}),
        event("contentBlockStart", {"contentBlockIndex": 1, "start": start}),
        event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '{"city": '}}}),
        event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '"Paris"}'}}}),
        event("contentBlockStop", {"contentBlockIndex": 1}),
        event(
            "contentBlockStart",
            {"contentBlockIndex": 2, "start": {"toolUse": {"toolUseId": "t2", "name": "now"}}},
        ),
        event("contentBlockStop", {"contentBlockIndex": 2}),
        event("messageStop", {"stopReason": "tool_use"}),
        event("metadata", {"usage": {"inputTokens": 1, "outputTokens": 1}, "metrics": {}}),
    ]
    chunks = _decode(frames, 5)
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            for call in choice["delta"].get("tool_calls") or ():
                entry = calls.setdefault(call["index"], {"id": "", "name": "", "arguments": ""})
                entry["id"] += call.get("id", "")
                entry["name"] += call.get("function", {}).get("name", "")
                entry["arguments"] += call.get("function", {}).get("arguments", "")
    assert calls == {
        0: {"id": "tooluse_9", "name": "get_weather", "arguments": '{"city": "Paris"}'},
        1: {"id": "t2", "name": "now", "arguments": "{}"},  # no input at all: still JSON
    }
    assert _text(chunks) == "Let me look."
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "tool_calls"


def test_reasoning_deltas() -> None:
    frames = [
        event("messageStart", {"role": "assistant"}),
        event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "Hmm"}}}),
        event("messageStop", {"stopReason": "end_turn"}),
    ]
    chunks = _decode(frames)
    assert any(c["choices"] and c["choices"][0]["delta"].get("reasoning_content") == "Hmm" for c in chunks)


def test_exception_frame_raises_scrubbed() -> None:
    frames = [
        event("messageStart", {"role": "assistant"}),
        exception_frame("throttlingException", "Too many tokens for AKIAIOSFODNN7EXAMPLE"),
    ]
    with pytest.raises(ProviderError) as caught:
        _decode(frames)
    error = caught.value
    assert error.status_code == 429 and error.retryable and error.code == "throttlingException"
    assert "AKIAIOSFODNN7EXAMPLE" not in error.message and "[REDACTED]" in error.message


def test_a_stream_cut_before_message_stop_raises() -> None:
    with pytest.raises(ProviderError) as caught:
        _decode(_text_stream()[:3])
    assert caught.value.status_code == 502 and "messageStop" in caught.value.message


def test_a_corrupt_frame_is_malformed() -> None:
    frame = bytearray(event("messageStart", {"role": "assistant"}))
    frame[-1] ^= 0xFF  # the message CRC no longer matches
    with pytest.raises(ProviderError) as caught:
        BedrockStreamDecoder("m").feed(bytes(frame))
    assert "malformed" in caught.value.message


def test_frames_decode_with_botocore() -> None:
    from botocore.eventstream import EventStreamBuffer

    buffer = EventStreamBuffer()
    buffer.add_data(event_frame({":event-type": "messageStop", ":message-type": "event"}, b'{"a": 1}'))
    (message,) = list(buffer)
    assert message.headers == {":event-type": "messageStop", ":message-type": "event"}
    assert message.payload == b'{"a": 1}'
