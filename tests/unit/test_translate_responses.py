"""The Responses API translation on its own: what a client sees for reasoning, truncated answers,
interleaved tool calls, and malformed input items."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from turnout.errors import InvalidRequest
from turnout.translate.responses import (
    ResponsesStreamEncoder,
    completion_to_response,
    message_id_for,
    parse_responses,
    response_id_for,
)


def _events(raw: bytes) -> list[dict[str, Any]]:
    out = []
    for block in raw.decode().split("\n\n"):
        if block:
            kind, data = block.split("\n", 1)
            event = orjson.loads(data.removeprefix("data: "))
            assert kind == "event: " + event["type"]
            out.append(event)
    return out


def test_ids_round_trip() -> None:
    message_id = "01a24700-b0a8-7765-9ac0-c1a14de4265e"
    assert message_id_for(response_id_for(message_id)) == message_id
    assert message_id_for("resp_xyz") is None and message_id_for(message_id) is None


def test_reasoning_then_text_then_truncation_stream() -> None:
    encoder = ResponsesStreamEncoder("resp_1", "m", {"store": True})
    raw = encoder.encode({"choices": [{"index": 0, "delta": {"reasoning_content": "think"}}]})
    raw += encoder.encode({"choices": [{"index": 0, "delta": {"content": "Hel"}}]})
    raw += encoder.encode({"choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "length"}]})
    raw += encoder.finish({"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5})
    events = _events(raw)
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert "response.reasoning_text.delta" in kinds
    assert kinds.index("response.reasoning_text.done") < kinds.index("response.output_text.delta")
    assert kinds[-1] == "response.incomplete"
    final = events[-1]["response"]
    assert final["incomplete_details"] == {"reason": "max_output_tokens"}
    assert [item["type"] for item in final["output"]] == ["reasoning", "message"]
    assert final["output"][1]["content"][0]["text"] == "Hello"
    assert final["usage"]["output_tokens"] == 2 and final["usage"]["total_tokens"] == 5
    assert [e["sequence_number"] for e in events] == list(range(len(events)))


def test_interleaved_tool_call_deltas_land_on_their_own_items() -> None:
    encoder = ResponsesStreamEncoder("resp_1", "m", {})
    call = lambda i, **f: {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": i, **f}]}}]}  # noqa: E731
    raw = encoder.encode(call(0, id="a", function={"name": "f", "arguments": '{"x"'}))
    raw += encoder.encode(call(1, id="b", function={"name": "g", "arguments": '{"y": 2}'}))
    raw += encoder.encode(call(0, function={"arguments": ": 1}"}))
    raw += encoder.finish(None)
    final = _events(raw)[-1]["response"]
    assert [(i["call_id"], i["name"], i["arguments"]) for i in final["output"]] == [
        ("a", "f", '{"x": 1}'),
        ("b", "g", '{"y": 2}'),
    ]


CALL = {"name": "w", "arguments": "{}"}


def test_whole_answer_with_reasoning_text_and_calls() -> None:
    completion: Any = {
        "created": 1,
        "choices": [
            {
                "finish_reason": "tool_calls",
                "message": {
                    "content": "Let me look.",
                    "reasoning_content": "the user wants weather",
                    "tool_calls": [{"id": "c1", "type": "function", "function": CALL}],
                },
            }
        ],
        "usage": {
            "prompt_tokens": 5,
            "completion_tokens": 7,
            "completion_tokens_details": {"reasoning_tokens": 4},
            "prompt_tokens_details": {"cached_tokens": 2},
        },
    }
    response = completion_to_response(completion, "resp_1", "m", {})
    assert [item["type"] for item in response["output"]] == ["reasoning", "message", "function_call"]
    assert response["usage"]["output_tokens_details"] == {"reasoning_tokens": 4}
    assert response["usage"]["input_tokens_details"]["cached_tokens"] == 2
    assert response["status"] == "completed"


def test_history_call_and_output_become_one_assistant_turn_and_a_tool_message() -> None:
    parsed = parse_responses(
        {
            "model": "m",
            "instructions": "be brief",
            "input": [
                {"role": "user", "content": "weather?"},
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "Looking"}],
                },
                {"type": "function_call", "call_id": "c1", "name": "w", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
                {"type": "reasoning", "id": "rs_1", "summary": []},
            ],
        },
        [],
    )
    messages = parsed.chat["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool"]
    assert messages[2]["content"] == "Looking" and messages[2]["tool_calls"][0]["id"] == "c1"
    assert parsed.conversation == parsed.input_items  # no history; instructions are not carried on
    assert all(item.get("id") for item in parsed.input_items)
    follow = parse_responses({"model": "m", "input": "and tomorrow?"}, parsed.conversation)
    assert [m["role"] for m in follow.chat["messages"]] == ["user", "assistant", "tool", "user"]


@pytest.mark.parametrize("role", [{"a": 1}, ["user"], None, "robot"])
def test_unhashable_or_unknown_roles_are_a_400(role: Any) -> None:
    with pytest.raises(InvalidRequest) as exc:
        parse_responses({"model": "m", "input": [{"role": role, "content": "x"}]}, [])
    assert exc.value.param == "input[0].role"
