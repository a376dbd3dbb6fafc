"""Validation of requests while translating: a 400 naming the offending field, both directions."""

from __future__ import annotations

from typing import Any

import pytest

from turnout.errors import InvalidRequest
from turnout.translate.anthropic_inbound import anthropic_to_openai_request
from turnout.translate.anthropic_outbound import openai_to_anthropic_request


def _bad(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "hi"}]}, "max_tokens"),
        (_bad(messages=None), "messages"),
        (_bad(messages=[]), "messages"),
        (_bad(max_tokens="10"), "max_tokens"),
        (_bad(max_tokens=0), "max_tokens"),
        (_bad(model=3), "model"),
        (_bad(temperature=1.5), "temperature"),
        (_bad(stream="yes"), "stream"),
        (_bad(system=5), "system"),
        (_bad(system=[{"type": "image"}]), "system[0].type"),
        (_bad(stop_sequences="END"), "stop_sequences"),
        (_bad(metadata={"user_id": 7}), "metadata.user_id"),
        (_bad(messages=[{"role": "system", "content": "x"}]), "messages[0].role"),
        (_bad(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
        (_bad(messages=[{"role": "user", "content": []}]), "messages[0].content"),
        (_bad(messages=[{"role": "user", "content": [{"type": "audio"}]}]), "messages[0].content[0].type"),
        (_bad(messages=[{"role": "user", "content": [{"type": "document"}]}]), "messages[0].content[0].type"),
        (_bad(messages=[{"role": "user", "content": ["hi"]}]), "messages[0].content[0]"),
        (
            _bad(messages=[{"role": "user", "content": [{"type": "image", "source": {"type": "file"}}]}]),
            "messages[0].content[0].source.type",
        ),
        (
            _bad(messages=[{"role": "user", "content": [{"type": "tool_result", "content": "x"}]}]),
            "messages[0].content[0].tool_use_id",
        ),
        (
            _bad(
                messages=[
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "id": "t", "name": "f", "input": 1}],
                    }
                ]
            ),
            "messages[0].content[0].input",
        ),
        (_bad(tools={}), "tools"),
        (_bad(tools=[{"name": "f", "input_schema": {"type": "string"}}]), "tools[0].input_schema"),
        (_bad(tools=[{"name": "f"}]), "tools[0].input_schema"),
        (_bad(tools=[{"name": "bad name!", "input_schema": {"type": "object"}}]), "tools[0].name"),
        (_bad(tools=[{"type": "web_search_20250305", "name": "web_search"}]), "tools[0].type"),
        (_bad(tool_choice={"type": "sometimes"}), "tool_choice.type"),
        (_bad(tool_choice={"type": "tool"}), "tool_choice.name"),
    ],
)
def test_anthropic_request_validation(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        anthropic_to_openai_request(body)
    assert info.value.param == param
    assert info.value.status_code == 400


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "user", "content": "hi"}], "n": 2}, "n"),
        ({"messages": [{"role": "system", "content": "only system"}]}, "messages"),
        ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}, "max_tokens"),
        ({"messages": [{"role": "function", "content": "x", "name": "f"}]}, "messages[0].role"),
        (
            {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
            "messages[0].content[0].type",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}
                ]
            },
            "messages[0].content[0].image_url.url",
        ),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{"}}
                        ],
                    }
                ]
            },
            "messages[0].tool_calls[0].function.arguments",
        ),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        (
            {"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "file_search"}]},
            "tools[0].type",
        ),
        (
            {"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "yaml"}},
            "response_format.type",
        ),
    ],
)
def test_openai_request_validation(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        openai_to_anthropic_request(body, "claude")
    assert info.value.param == param


@pytest.mark.parametrize(
    ("config", "param"),
    [("json", "output_config"), ({"format": {"type": "json_schema"}}, "output_config.format")],
)
def test_output_config_validation(config: Any, param: str) -> None:
    body = {"max_tokens": 5, "messages": [{"role": "user", "content": "hi"}], "output_config": config}
    with pytest.raises(InvalidRequest) as info:
        anthropic_to_openai_request(body)
    assert info.value.param == param
