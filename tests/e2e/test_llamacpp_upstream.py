"""Real OpenAI-compatible servers are stricter than OpenAI: llama.cpp's server answers 500 to a
message whose ``content`` is null, which is what OpenAI clients (and Turnout's translation of an
Anthropic tool-use turn) send for an assistant turn that only called tools. The simulator in its
``llama.cpp`` flavor has that quirk; Turnout must send such turns in a form it accepts."""

from __future__ import annotations

from typing import Any

from tests.gateway_env import OPENAI_MODEL, GatewayEnv, gw  # noqa: F401

TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


async def test_an_openai_tool_conversation_reaches_llama_cpp(gw: GatewayEnv) -> None:  # noqa: F811
    gw.sim.config.flavor = "llama.cpp"
    messages: Any = [
        {"role": "user", "content": "Weather in Oslo?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "4 degrees, rain"},
    ]
    done = await gw.openai().chat.completions.create(model=OPENAI_MODEL, messages=messages, tools=TOOLS)
    assert done.choices[0].message is not None
    sent = gw.sim.requests[-1].body["messages"][1]
    assert sent["content"] == "" and sent["tool_calls"][0]["id"] == "call_1"


async def test_an_anthropic_tool_conversation_reaches_llama_cpp(gw: GatewayEnv) -> None:  # noqa: F811
    gw.sim.config.flavor = "llama.cpp"
    tools: Any = [
        {
            "name": "get_weather",
            "input_schema": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        }
    ]
    messages: Any = [
        {"role": "user", "content": "Weather in Oslo?"},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}}
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "4 degrees"}],
        },
    ]
    done = await gw.anthropic().messages.create(
        model=OPENAI_MODEL, max_tokens=50, messages=messages, tools=tools
    )
    assert done.content, "llama.cpp accepted the translated conversation"
