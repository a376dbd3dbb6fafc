"""Anthropic Messages <-> canonical (OpenAI Chat Completions) requests: both directions, round trips."""

from __future__ import annotations

import copy
import importlib
from typing import Any

import orjson
import pytest

from turnout.errors import InvalidRequest
from turnout.translate.anthropic import FORMAT_TOOL, anthropic_to_openai_response
from turnout.translate.anthropic_inbound import anthropic_to_openai_request
from turnout.translate.anthropic_outbound import FORMAT_TOOL_USE, openai_to_anthropic_request
from turnout.translate.anthropic_stream import AnthropicStreamDecoder

PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"location": {"type": "string", "description": "The city and state"}},
    "required": ["location"],
}

# An Anthropic request as the docs show it: system blocks, an image, a tool round trip, tools.
ANTHROPIC_REQUEST: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 1024,
    "system": [{"type": "text", "text": "You are terse."}, {"type": "text", "text": "Use tools."}],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
                {"type": "text", "text": "What is the weather where this photo was taken?"},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Need the weather.", "signature": "sig"},
                {"type": "text", "text": "Let me check."},
                {
                    "type": "tool_use",
                    "id": "toolu_01A09q90qw90lq917835lq9",
                    "name": "get_weather",
                    "input": {"location": "San Francisco, CA"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01A09q90qw90lq917835lq9",
                    "content": [{"type": "text", "text": "15 degrees"}],
                },
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
    ],
    "tools": [{"name": "get_weather", "description": "Get the weather", "input_schema": WEATHER_SCHEMA}],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "temperature": 0.5,
    "top_p": 0.9,
    "top_k": 40,
    "stop_sequences": ["\n\nHuman:"],
    "stream": True,
    "metadata": {"user_id": "user-42"},
}


def test_anthropic_request_to_openai() -> None:
    out = anthropic_to_openai_request(copy.deepcopy(ANTHROPIC_REQUEST))
    assert out["model"] == "claude-sonnet-4-5"
    assert out["max_tokens"] == 1024
    assert out["temperature"] == 0.5 and out["top_p"] == 0.9 and "top_k" not in out
    assert out["stop"] == ["\n\nHuman:"]
    assert out["stream"] is True and out["stream_options"] == {"include_usage": True}
    assert out["user"] == "user-42" and "metadata" not in out
    assert out["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Get the weather",
                "parameters": WEATHER_SCHEMA,
            },
        }
    ]
    assert out["tool_choice"] == "auto" and out["parallel_tool_calls"] is False
    system, user, assistant, tool, follow_up = out["messages"]
    assert system == {"role": "system", "content": "You are terse.\n\nUse tools."}
    assert user["role"] == "user"
    assert user["content"][0] == {
        "type": "image_url",
        "image_url": {"url": f"data:image/png;base64,{PNG_B64}"},
    }
    assert user["content"][1] == {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}
    assert user["content"][2]["text"].startswith("What is the weather")
    assert assistant == {
        "role": "assistant",
        "content": "Let me check.",
        "tool_calls": [
            {
                "id": "toolu_01A09q90qw90lq917835lq9",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"location":"San Francisco, CA"}'},
            }
        ],
    }
    assert tool == {"role": "tool", "tool_call_id": "toolu_01A09q90qw90lq917835lq9", "content": "15 degrees"}
    assert follow_up == {"role": "user", "content": "And tomorrow?"}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "get_weather"}, {"type": "function", "function": {"name": "get_weather"}}),
    ],
)
def test_tool_choice_mapping(choice: dict[str, Any], expected: Any) -> None:
    body = {**ANTHROPIC_REQUEST, "tool_choice": choice}
    assert anthropic_to_openai_request(body)["tool_choice"] == expected
    back = openai_to_anthropic_request(anthropic_to_openai_request(body), "claude")
    assert back["tool_choice"] == choice


def test_tool_result_error_string_and_images() -> None:
    body = {
        "max_tokens": 10,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "boom", "is_error": True},
                    {
                        "type": "tool_result",
                        "tool_use_id": "t2",
                        "content": [
                            {"type": "text", "text": "chart:"},
                            {"type": "image", "source": {"type": "url", "url": "https://x.test/c.png"}},
                        ],
                    },
                    {"type": "tool_result", "tool_use_id": "t3"},
                ],
            }
        ],
    }
    messages = anthropic_to_openai_request(body)["messages"]
    assert messages[0] == {"role": "tool", "tool_call_id": "t1", "content": "Error: boom"}
    assert messages[1] == {"role": "tool", "tool_call_id": "t2", "content": "chart:"}
    assert messages[2] == {"role": "tool", "tool_call_id": "t3", "content": ""}
    assert messages[3] == {
        "role": "user",
        "content": [{"type": "image_url", "image_url": {"url": "https://x.test/c.png"}}],
    }


# A canonical request as an OpenAI client sends it, with a finished tool round trip.
OPENAI_REQUEST: dict[str, Any] = {
    "model": "anthropic/claude-sonnet-4-5",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather here?"},
                {
                    "type": "image_url",
                    "image_url": {"url": f"data:image/png;base64,{PNG_B64}", "detail": "low"},
                },
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'},
                },
                {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": ""}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "15 degrees"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "noon"}]},
        {"role": "user", "content": "Thanks"},
        {"role": "user", "content": "And tomorrow?"},
    ],
    "tools": [
        {
            "type": "function",
            "function": {"name": "get_weather", "description": "Weather", "parameters": WEATHER_SCHEMA},
        },
        {"type": "function", "function": {"name": "get_time"}},
    ],
    "tool_choice": "required",
    "parallel_tool_calls": False,
    "max_completion_tokens": 300,
    "temperature": 1.7,
    "top_p": 0.8,
    "stop": "END",
    "stream": True,
    "user": "u1",
    "seed": 7,
    "metadata": {"agent_id": "a"},
}


def test_openai_request_to_anthropic() -> None:
    out = openai_to_anthropic_request(copy.deepcopy(OPENAI_REQUEST), "claude-sonnet-4-5-20250929")
    assert out["model"] == "claude-sonnet-4-5-20250929"
    assert out["max_tokens"] == 300
    assert out["system"] == "You are terse.\n\nUse tools."
    assert out["temperature"] == 1 and out["top_p"] == 0.8
    assert out["stop_sequences"] == ["END"]
    assert out["stream"] is True
    assert out["metadata"] == {"user_id": "u1"}
    assert "seed" not in out
    assert out["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert out["tools"][1] == {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}
    user, assistant, results = out["messages"]
    assert [b["type"] for b in user["content"]] == ["text", "image", "image"]
    assert user["content"][1]["source"] == {"type": "base64", "media_type": "image/png", "data": PNG_B64}
    assert user["content"][2]["source"] == {"type": "url", "url": "https://example.com/cat.jpg"}
    assert assistant == {
        "role": "assistant",
        "content": [
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"location": "Paris"}},
            {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}},
        ],
    }
    # the tool results and the two user messages merge into one user turn, results first
    assert results["role"] == "user"
    assert results["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "15 degrees"},
        {"type": "tool_result", "tool_use_id": "call_2", "content": "noon"},
        {"type": "text", "text": "Thanks"},
        {"type": "text", "text": "And tomorrow?"},
    ]


def test_openai_request_defaults_and_response_format() -> None:
    body = {
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "x", "schema": {"type": "object"}},
        },
        "tool_choice": "auto",
    }
    out = openai_to_anthropic_request(body, "claude")
    assert out["max_tokens"] == 4096
    assert out["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    assert out["tools"] == [
        {"name": FORMAT_TOOL, "description": FORMAT_TOOL_USE, "input_schema": {"type": "object"}}
    ]
    assert out["tool_choice"] == {"type": "tool", "name": FORMAT_TOOL}
    assert "system" not in out and "stream" not in out
    out = openai_to_anthropic_request({**body, "response_format": {"type": "json_object"}}, "claude")
    assert out["tool_choice"] == {"type": "tool", "name": FORMAT_TOOL} and "system" not in out
    array = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "array"}}}
    out = openai_to_anthropic_request({**body, "response_format": array}, "claude")
    assert "tools" not in out and "JSON Schema" in out["system"], "a tool's input is an object"
    reserved = {"type": "function", "function": {"name": FORMAT_TOOL, "parameters": {"type": "object"}}}
    with pytest.raises(InvalidRequest) as refused:
        openai_to_anthropic_request({**body, "tools": [reserved]}, "claude")
    assert refused.value.param == "tools[0].function.name"


def test_the_format_tools_call_is_the_answer_whole_or_streamed() -> None:
    message = {
        "id": "msg_1",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": FORMAT_TOOL, "input": {"city": "Paris"}}],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 5, "output_tokens": 3},
    }
    (choice,) = anthropic_to_openai_response(message, "m")["choices"]
    assert choice["message"]["content"] == '{"city":"Paris"}' and "tool_calls" not in choice["message"]
    assert choice["finish_reason"] == "stop"
    decoder = AnthropicStreamDecoder("m")
    events = [
        (
            "message_start",
            {"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 5}}},
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "tool_use", "id": "t", "name": FORMAT_TOOL, "input": {}},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": '{"city": '},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": '"Paris"}'},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 3}},
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    raw = b"".join(b"event: %s\ndata: %s\n\n" % (name.encode(), orjson.dumps(data)) for name, data in events)
    chunks = decoder.feed(raw) + decoder.finish()
    deltas = [c["choices"][0] for c in chunks if c["choices"]]
    assert "".join(d["delta"].get("content") or "" for d in deltas) == '{"city": "Paris"}'
    assert not any("tool_calls" in d["delta"] for d in deltas)
    assert [d["finish_reason"] for d in deltas if d["finish_reason"]] == ["stop"]


def test_request_round_trip_openai_anthropic_openai() -> None:
    """OpenAI -> Anthropic -> OpenAI keeps text, tool calls with their arguments, and images."""
    there = openai_to_anthropic_request(copy.deepcopy(OPENAI_REQUEST), "claude")
    back = anthropic_to_openai_request(there)
    messages = back["messages"]
    assert messages[0] == {"role": "system", "content": "You are terse.\n\nUse tools."}
    assert messages[1]["content"] == [
        {"type": "text", "text": "Weather here?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ]
    calls = messages[2]["tool_calls"]
    assert [(c["id"], c["function"]["name"]) for c in calls] == [
        ("call_1", "get_weather"),
        ("call_2", "get_time"),
    ]
    assert [orjson.loads(c["function"]["arguments"]) for c in calls] == [{"location": "Paris"}, {}]
    assert messages[3:5] == [
        {"role": "tool", "tool_call_id": "call_1", "content": "15 degrees"},
        {"role": "tool", "tool_call_id": "call_2", "content": "noon"},
    ]
    assert messages[5]["content"] == [
        {"type": "text", "text": "Thanks"},
        {"type": "text", "text": "And tomorrow?"},
    ]
    assert back["tools"][0]["function"]["parameters"] == WEATHER_SCHEMA
    assert back["tool_choice"] == "required" and back["parallel_tool_calls"] is False
    assert back["max_tokens"] == 300 and back["stop"] == ["END"] and back["user"] == "u1"


def test_request_round_trip_anthropic_openai_anthropic() -> None:
    there = anthropic_to_openai_request(copy.deepcopy(ANTHROPIC_REQUEST))
    back = openai_to_anthropic_request(there, "claude-sonnet-4-5")
    original = ANTHROPIC_REQUEST["messages"]
    assert back["messages"][0]["content"] == original[0]["content"]
    assert back["messages"][1]["content"] == original[1]["content"][1:]  # thinking dropped
    assert back["messages"][2]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": "toolu_01A09q90qw90lq917835lq9",
        "content": "15 degrees",
    }
    assert back["tools"] == ANTHROPIC_REQUEST["tools"]
    assert back["system"] == "You are terse.\n\nUse tools."
    for key in ("max_tokens", "temperature", "top_p", "stop_sequences", "stream", "metadata", "tool_choice"):
        assert back[key] == ANTHROPIC_REQUEST[key], key


def sdk_http() -> Any:
    """The HTTP library the installed Anthropic SDK is built on (recent ones use ``httpx2``)."""
    try:
        return importlib.import_module("httpx2")
    except ImportError:
        return importlib.import_module("httpx")


def test_body_written_by_the_anthropic_sdk_translates() -> None:
    """What the official SDK sends (captured at the transport) is accepted and survives a round trip."""
    anthropic = pytest.importorskip("anthropic")
    http = sdk_http()
    sent: list[dict[str, Any]] = []

    def handler(request: Any) -> Any:
        sent.append(orjson.loads(request.content))
        message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": []}
        usage = {"input_tokens": 1, "output_tokens": 1}
        return http.Response(200, json={**message, "stop_reason": "end_turn", "usage": usage})

    client = anthropic.Anthropic(
        api_key="k", base_url="http://gw.test", http_client=http.Client(transport=http.MockTransport(handler))
    )
    # SDK 2.x no longer has temperature/top_p/top_k (the 2026-10-21 API rejects them)
    skip = ("stream", "model", "temperature", "top_p", "top_k")
    fields = {k: v for k, v in ANTHROPIC_REQUEST.items() if k not in skip}
    client.messages.create(model="anthropic/claude-gateway", **fields)
    canonical = anthropic_to_openai_request(sent[0])
    assert [m["role"] for m in canonical["messages"]] == ["system", "user", "assistant", "tool", "user"]
    back = openai_to_anthropic_request(canonical, "claude-sonnet-4-5")
    assert back["messages"][0]["content"] == sent[0]["messages"][0]["content"]
    assert back["tools"] == sent[0]["tools"] and back["tool_choice"] == sent[0]["tool_choice"]


def test_output_config_format_becomes_response_format() -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    body = {
        **ANTHROPIC_REQUEST,
        "output_config": {"format": {"type": "json_schema", "schema": schema}, "effort": "low"},
    }
    out = anthropic_to_openai_request(body)
    assert out["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema},
    }
    assert "effort" not in orjson.dumps(out).decode()
    assert '"answer"' in openai_to_anthropic_request(out, "claude")["system"]


def test_outbound_small_mappings() -> None:
    tools = OPENAI_REQUEST["tools"]
    user = {"role": "user", "content": [{"type": "image_url", "image_url": "data:image/jpg;base64,AAAA"}]}
    out = openai_to_anthropic_request(
        {
            "messages": [user],
            "tools": tools,
            "tool_choice": "none",
            "parallel_tool_calls": False,
            "stop": ["a", ""],
        },
        "claude",
    )
    assert out["messages"][0]["content"][0]["source"] == {
        "type": "base64",
        "media_type": "image/jpeg",
        "data": "AAAA",
    }
    assert out["tool_choice"] == {"type": "none"}
    assert out["stop_sequences"] == ["a"]
    named = {"type": "function", "function": {"name": "get_time"}}
    out = openai_to_anthropic_request({"messages": [user], "tools": tools, "tool_choice": named}, "claude")
    assert out["tool_choice"] == {"type": "tool", "name": "get_time"}
    out = openai_to_anthropic_request(
        {"messages": [user], "tools": tools, "parallel_tool_calls": False}, "claude"
    )
    assert out["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
