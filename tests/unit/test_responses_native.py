"""Decoding a passed-through Responses API answer for the record: whole and streamed."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from turnout.translate.errors import ProviderError
from turnout.translate.responses_native import (
    ResponsesStreamDecoder,
    native_responses_body,
    response_completion,
)


def _sse(*events: dict[str, Any]) -> bytes:
    return b"".join(b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n" for e in events)


def test_stream_of_a_call_and_its_usage() -> None:
    decoder = ResponsesStreamDecoder("cat/m")
    item = {"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "w", "arguments": ""}
    raw = _sse(
        {"type": "response.created", "response": {}},
        {"type": "response.output_item.added", "item": item},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "delta": '{"a":'},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "delta": "1}"},
        {
            "type": "response.completed",
            "response": {"status": "completed", "usage": {"input_tokens": 4, "output_tokens": 3}},
        },
    )
    chunks = decoder.feed(raw[:37]) + decoder.feed(raw[37:]) + decoder.finish()
    calls = [
        c["choices"][0]["delta"]["tool_calls"][0] for c in chunks if c["choices"] and c["choices"][0]["delta"]
    ]
    assert calls[0]["function"]["name"] == "w" and calls[0]["id"] == "c1"
    assert "".join(c["function"]["arguments"] for c in calls) == '{"a":1}'
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "tool_calls"
    assert chunks[-1]["usage"] == {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}


def test_a_stream_cut_before_its_end_or_failing_raises() -> None:
    decoder = ResponsesStreamDecoder("m")
    decoder.feed(_sse({"type": "response.output_text.delta", "delta": "hi"}))
    with pytest.raises(ProviderError):
        decoder.finish()
    with pytest.raises(ProviderError, match="overloaded"):
        ResponsesStreamDecoder("m").feed(
            _sse({"type": "error", "message": "overloaded", "code": "server_error"})
        )


def test_whole_incomplete_answer_reads_as_length() -> None:
    completion = response_completion(
        {
            "status": "incomplete",
            "incomplete_details": {"reason": "max_output_tokens"},
            "output": [{"type": "message", "content": [{"type": "output_text", "text": "Hel"}]}],
            "usage": {
                "input_tokens": 2,
                "output_tokens": 1,
                "output_tokens_details": {"reasoning_tokens": 1},
            },
        },
        "cat/m",
    )
    choice = completion["choices"][0]
    assert (choice["message"]["content"], choice["finish_reason"]) == ("Hel", "length")
    assert completion["usage"]["completion_tokens_details"] == {"reasoning_tokens": 1}


def test_the_body_sent_carries_the_conversation_not_turnouts_state() -> None:
    history = [
        {"id": "msg_1", "type": "message", "role": "user", "status": "completed", "content": "q"},
        {"id": "rs_1", "type": "reasoning", "summary": []},
    ]
    native = native_responses_body(
        {"model": "m", "input": "x", "previous_response_id": "resp_1", "fallbacks": ["a"], "store": True},
        history,
        [{"id": "msg_2", "type": "message", "role": "user", "content": "x"}],
    )
    assert native.raw is None and native.body["store"] is False
    assert "previous_response_id" not in native.body and "fallbacks" not in native.body
    assert native.body["input"] == [
        {"type": "message", "role": "user", "content": "q"},
        {"type": "message", "role": "user", "content": "x"},
    ]
