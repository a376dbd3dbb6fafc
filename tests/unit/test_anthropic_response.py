"""Anthropic messages <-> canonical ``chat.completion``: content, stop reasons, usage, error bodies."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from turnout.translate.anthropic import (
    anthropic_error_body,
    anthropic_to_openai_response,
    openai_to_anthropic_response,
)
from turnout.translate.errors import ProviderError

ANTHROPIC_MESSAGE: dict[str, Any] = {
    "id": "msg_01Aq9w938a90dw8q",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [
        {"type": "thinking", "thinking": "hmm", "signature": "s"},
        {"type": "text", "text": "I'll check "},
        {"type": "text", "text": "the weather."},
        {
            "type": "tool_use",
            "id": "toolu_01",
            "name": "get_weather",
            "input": {"location": "Paris", "n": [1, 2]},
        },
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 2095,
        "output_tokens": 503,
        "cache_creation_input_tokens": 10,
        "cache_read_input_tokens": 1000,
    },
}


def test_anthropic_response_to_openai() -> None:
    out = anthropic_to_openai_response(copy.deepcopy(ANTHROPIC_MESSAGE), "anthropic/claude-sonnet-4-5")
    assert out["object"] == "chat.completion" and out["model"] == "anthropic/claude-sonnet-4-5"
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "I'll check the weather."
    assert choice["message"]["tool_calls"] == [
        {
            "id": "toolu_01",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"location":"Paris","n":[1,2]}'},
        }
    ]
    assert out["usage"] == {
        "prompt_tokens": 3105,
        "completion_tokens": 503,
        "total_tokens": 3608,
        "prompt_tokens_details": {"cached_tokens": 1000, "cache_creation_tokens": 10},
    }
    openai_types = pytest.importorskip("openai.types.chat")
    openai_types.ChatCompletion.model_validate(out)


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        ("model_context_window_exceeded", "length"),
        (None, "stop"),
    ],
)
def test_stop_reason_mapping(stop: str | None, finish: str) -> None:
    payload = {**ANTHROPIC_MESSAGE, "content": [{"type": "text", "text": "x"}], "stop_reason": stop}
    assert anthropic_to_openai_response(payload, "m")["choices"][0]["finish_reason"] == finish


def test_malformed_anthropic_response() -> None:
    with pytest.raises(ProviderError) as info:
        anthropic_to_openai_response({"type": "message"}, "m")
    assert info.value.status_code == 502


def test_response_round_trip_and_openai_to_anthropic() -> None:
    openai = anthropic_to_openai_response(copy.deepcopy(ANTHROPIC_MESSAGE), "m")
    back = openai_to_anthropic_response(openai, "anthropic/claude")
    assert back["id"].startswith("msg_") and back["type"] == "message" and back["role"] == "assistant"
    assert back["model"] == "anthropic/claude"
    assert back["content"] == [
        {"type": "thinking", "thinking": "hmm", "signature": ""},  # its text kept, not its signature
        {"type": "text", "text": "I'll check the weather."},
        {
            "type": "tool_use",
            "id": "toolu_01",
            "name": "get_weather",
            "input": {"location": "Paris", "n": [1, 2]},
        },
    ]
    assert back["stop_reason"] == "tool_use" and back["stop_sequence"] is None
    assert back["usage"] == ANTHROPIC_MESSAGE["usage"]
    anthropic_types = pytest.importorskip("anthropic.types")
    anthropic_types.Message.model_validate(back)


@pytest.mark.parametrize(
    ("finish", "stop"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
    ],
)
def test_openai_to_anthropic_response_stop(finish: str, stop: str) -> None:
    payload = {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": finish}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }
    out = openai_to_anthropic_response(payload, "m")
    assert out["stop_reason"] == stop
    assert out["usage"]["input_tokens"] == 5 and out["usage"]["output_tokens"] == 2


def test_openai_to_anthropic_response_edge_cases() -> None:
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "not json"}}],
    }
    out = openai_to_anthropic_response({"choices": [{"message": message, "finish_reason": "stop"}]}, "m")
    assert out["content"] == [{"type": "tool_use", "id": "c1", "name": "f", "input": {"_raw": "not json"}}]
    assert out["stop_reason"] == "tool_use"
    refusal = {"role": "assistant", "content": None, "refusal": "I can't help with that."}
    out = openai_to_anthropic_response({"choices": [{"message": refusal, "finish_reason": "stop"}]}, "m")
    assert out["content"] == [{"type": "text", "text": "I can't help with that."}]
    assert out["stop_reason"] == "refusal"
    with pytest.raises(ProviderError):
        openai_to_anthropic_response({"choices": []}, "m")


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (402, "billing_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (409, "invalid_request_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "overloaded_error"),
        (504, "timeout_error"),
        (529, "overloaded_error"),
    ],
)
def test_anthropic_error_body(status: int, kind: str) -> None:
    assert anthropic_error_body(status, "nope") == {
        "type": "error",
        "error": {"type": kind, "message": "nope"},
    }
