"""Gemini generateContent <-> the canonical model: requests, answers, usage, streams and errors."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from turnout.errors import InvalidRequest
from turnout.translate.errors import ProviderError
from turnout.translate.gemini import (
    completion,
    embed_request,
    embeddings,
    error_object,
    gemini_error,
    openai_usage,
)
from turnout.translate.gemini_outbound import SKIP_SIGNATURE, gemini_schema, to_gemini_request
from turnout.translate.gemini_stream import GeminiStreamDecoder

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
KEY = "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {
                "city": {"type": "string", "format": "uri", "description": "The city"},
                "unit": {"type": ["string", "null"], "enum": ["c", "f"]},
            },
            "required": ["city", "missing"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}


def test_system_messages_become_the_system_instruction_and_roles_map_to_user_and_model() -> None:
    out = to_gemini_request(
        {
            "model": "gemini/gemini-2.5-flash",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Salut"},
                {"role": "user", "content": "Again"},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": ""}, {"type": "text", "text": "please"}],
                },
                {"role": "assistant", "content": ""},  # empty turns are dropped
            ],
            "metadata": {"agent_id": "a1"},
            "fallbacks": ["x"],
        }
    )
    assert out["systemInstruction"] == {"parts": [{"text": "Be brief.\n\nAnswer in French."}]}
    assert out["contents"] == [
        {"role": "user", "parts": [{"text": "Hi"}]},
        {"role": "model", "parts": [{"text": "Salut"}]},
        {"role": "user", "parts": [{"text": "Again"}, {"text": "please"}]},  # merged: one turn per role
    ]
    assert set(out) == {"systemInstruction", "contents"}  # nothing of Turnout's own goes upstream


def test_without_system_instruction_the_system_text_opens_the_first_user_turn() -> None:
    body: Any = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]}
    out = to_gemini_request(body, system_instruction=False)
    assert "systemInstruction" not in out
    assert out["contents"] == [{"role": "user", "parts": [{"text": "Be brief."}, {"text": "Hi"}]}]


def test_images_become_inline_data_or_file_data() -> None:
    out = to_gemini_request(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": f"data:image/jpg;base64,{PNG}"}},
                        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png?size=2"}},
                        {"type": "input_audio", "input_audio": {"data": PNG, "format": "wav"}},
                    ],
                }
            ]
        }
    )
    assert out["contents"][0]["parts"] == [
        {"text": "What is this?"},
        {"inlineData": {"mimeType": "image/jpeg", "data": PNG}},
        {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/cat.png?size=2"}},
        {"inlineData": {"mimeType": "audio/wav", "data": PNG}},
    ]


@pytest.mark.parametrize("url", ["ftp://example.com/a.png", "data:image/png,notbase64", ""])
def test_bad_image_urls_are_a_400_naming_the_part(url: str) -> None:
    body: Any = {
        "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]
    }
    with pytest.raises(InvalidRequest) as caught:
        to_gemini_request(body)
    assert caught.value.param == "messages[0].content[0].image_url.url"


def test_tool_calls_and_results_become_function_call_and_function_response_by_name() -> None:
    out = to_gemini_request(
        {
            "messages": [
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_a",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                        },
                        {
                            "id": "call_b",
                            "type": "function",
                            "function": {"name": "get_time", "arguments": ""},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "call_b", "content": "12:00"},
                {"role": "tool", "tool_call_id": "call_a", "content": '{"temp": 21}'},
                {"role": "user", "content": "Thanks"},
            ],
            "tools": [WEATHER],
        }
    )
    user, model, results = out["contents"]
    assert user == {"role": "user", "parts": [{"text": "Weather in Paris and Rome?"}]}
    assert model == {
        "role": "model",
        "parts": [
            {
                "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                "thoughtSignature": SKIP_SIGNATURE,
            },
            {"functionCall": {"name": "get_time", "args": {}}},
        ],
    }
    assert results == {
        "role": "user",
        "parts": [  # one turn, function responses first, each named after the call its id points at
            {"functionResponse": {"name": "get_time", "response": {"output": "12:00"}}},
            {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
            {"text": "Thanks"},
        ],
    }


def test_a_tool_result_for_an_unknown_call_is_a_400() -> None:
    body: Any = {
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "tool", "tool_call_id": "nope", "content": "x"},
        ]
    }
    with pytest.raises(InvalidRequest) as caught:
        to_gemini_request(body)
    assert caught.value.param == "messages[1].tool_call_id"


def test_tools_are_declared_with_a_schema_gemini_accepts() -> None:
    out = to_gemini_request(
        {
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [
                WEATHER,
                {"type": "function", "function": {"name": "now", "parameters": {"type": "object"}}},
            ],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        }
    )
    assert out["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "The weather in a city",
                    "parameters": {
                        "type": "object",
                        "properties": {
                            "city": {"type": "string", "description": "The city"},
                            "unit": {"type": "string", "nullable": True, "enum": ["c", "f"]},
                        },
                        "required": ["city"],
                    },
                },
                {"name": "now"},  # an object without properties: no parameters at all
            ]
        }
    ]
    assert out["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    }


@pytest.mark.parametrize(("choice", "mode"), [("auto", "AUTO"), ("required", "ANY"), ("none", "NONE")])
def test_tool_choice_modes(choice: str, mode: str) -> None:
    body: Any = {"messages": [{"role": "user", "content": "hi"}], "tools": [WEATHER], "tool_choice": choice}
    assert to_gemini_request(body)["toolConfig"] == {"functionCallingConfig": {"mode": mode}}


def test_schemas_inline_refs_and_drop_what_gemini_rejects() -> None:
    schema = {
        "type": "object",
        "$defs": {"Point": {"type": "object", "properties": {"x": {"type": "integer", "format": "int32"}}}},
        "properties": {
            "at": {"$ref": "#/$defs/Point"},
            "tags": {"type": "array", "items": {"type": "string", "const": "a"}, "uniqueItems": True},
            "when": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]},
            "either": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
        },
        "additionalProperties": False,
    }
    assert gemini_schema(schema) == {
        "type": "object",
        "properties": {
            "at": {"type": "object", "properties": {"x": {"type": "integer", "format": "int32"}}},
            "tags": {"type": "array", "items": {"type": "string", "enum": ["a"]}},
            "when": {"nullable": True, "type": "string", "format": "date-time"},
            "either": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
        },
    }
    recursive = {
        "$defs": {"N": {"type": "object", "properties": {"next": {"$ref": "#/$defs/N"}}}},
        "$ref": "#/$defs/N",
    }
    depth, node = 0, gemini_schema(recursive)
    while "properties" in node:
        node, depth = node["properties"]["next"], depth + 1
    assert node == {"type": "object"} and depth <= 9  # recursion stops


def test_generation_config() -> None:
    out = to_gemini_request(
        {
            "messages": [{"role": "user", "content": "hi"}],
            "temperature": 0.2,
            "top_p": 0.9,
            "max_completion_tokens": 50,
            "max_tokens": 999,
            "stop": "END",
            "n": 2,
            "seed": 7,
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "r",
                    "schema": {"type": "object", "properties": {"a": {"type": "string"}}},
                },
            },
        }
    )
    assert out["generationConfig"] == {
        "temperature": 0.2,
        "topP": 0.9,
        "maxOutputTokens": 50,
        "candidateCount": 2,
        "seed": 7,
        "stopSequences": ["END"],
        "responseMimeType": "application/json",
        "responseSchema": {"type": "object", "properties": {"a": {"type": "string"}}},
    }
    plain = to_gemini_request(
        {"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_object"}}
    )
    assert plain["generationConfig"] == {"responseMimeType": "application/json"}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "system", "content": "only me"}]}, "messages"),
        ({"messages": [{"role": "critic", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, "max_tokens"),
        ({"messages": [{"role": "user", "content": "x"}], "temperature": "hot"}, "temperature"),
        (
            {"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "web_search"}]},
            "tools[0].type",
        ),
    ],
)
def test_bad_requests_are_a_400_naming_the_field(body: Any, param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        to_gemini_request(body)
    assert caught.value.param == param


# -- answers ---------------------------------------------------------------------------------------


def answer(**extra: Any) -> bytes:
    base: dict[str, Any] = {
        "candidates": [
            {
                "content": {"parts": [{"text": "Hello"}, {"text": " world"}], "role": "model"},
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 2, "totalTokenCount": 12},
        "modelVersion": "gemini-2.5-flash",
    }
    return orjson.dumps({**base, **extra})


def test_an_answer_becomes_a_chat_completion() -> None:
    out = completion(answer(), "gemini/gemini-2.5-flash")
    assert out["object"] == "chat.completion" and out["model"] == "gemini/gemini-2.5-flash"
    assert out["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello world", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert out["usage"] == {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}


def test_function_calls_get_ids_and_json_arguments_and_thoughts_become_reasoning() -> None:
    candidate = {
        "content": {
            "role": "model",
            "parts": [
                {"text": "Let me look.", "thought": True},
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                    "thoughtSignature": "c2ln",
                },
                {"functionCall": {"name": "get_time"}},
            ],
        },
        "finishReason": "STOP",
        "index": 0,
    }
    out = completion(answer(candidates=[candidate]), "gemini/m")
    choice = out["choices"][0]
    message = choice["message"]
    calls = message["tool_calls"]
    assert choice["finish_reason"] == "tool_calls" and message["content"] is None
    assert message["reasoning"] == "Let me look."
    assert [c["function"] for c in calls] == [
        {"name": "get_weather", "arguments": '{"city":"Paris"}'},
        {"name": "get_time", "arguments": "{}"},
    ]
    assert all(c["id"].startswith("call_") and c["type"] == "function" for c in calls)
    assert calls[0]["id"] != calls[1]["id"]


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("OTHER", "stop"),
        ("MALFORMED_FUNCTION_CALL", "stop"),
    ],
)
def test_finish_reasons(reason: str, finish: str) -> None:
    candidate = {"content": {"parts": [{"text": "x"}], "role": "model"}, "finishReason": reason}
    assert completion(answer(candidates=[candidate]), "m")["choices"][0]["finish_reason"] == finish


def test_several_candidates_are_several_choices_and_a_blocked_prompt_is_filtered() -> None:
    two = [
        {"content": {"parts": [{"text": "b"}]}, "finishReason": "STOP", "index": 1},
        {"content": {"parts": [{"text": "a"}]}, "finishReason": "STOP", "index": 0},
    ]
    choices = completion(answer(candidates=two), "m")["choices"]
    assert [(c["index"], c["message"]["content"]) for c in choices] == [(0, "a"), (1, "b")]
    blocked = orjson.dumps(
        {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 4}}
    )
    out = completion(blocked, "m")
    assert out["choices"][0]["finish_reason"] == "content_filter"
    assert "SAFETY" in (out["choices"][0]["message"]["refusal"] or "")
    assert out["usage"]["prompt_tokens"] == 4


def test_usage_counts_thinking_as_output_and_the_cache_inside_the_prompt() -> None:
    usage = openai_usage(
        {
            "promptTokenCount": 100,
            "cachedContentTokenCount": 60,
            "candidatesTokenCount": 20,
            "thoughtsTokenCount": 30,
            "totalTokenCount": 150,
        }
    )
    assert usage == {
        "prompt_tokens": 100,
        "completion_tokens": 50,
        "total_tokens": 150,
        "prompt_tokens_details": {"cached_tokens": 60},
        "completion_tokens_details": {"reasoning_tokens": 30},
    }


@pytest.mark.parametrize("payload", [b"not json", b"[]", b'{"candidates": "x"}', b"{}"])
def test_malformed_answers_are_a_retryable_502(payload: bytes) -> None:
    with pytest.raises(ProviderError) as caught:
        completion(payload, "m")
    assert caught.value.status_code == 502 and caught.value.retryable


# -- streams ---------------------------------------------------------------------------------------


def sse(*events: dict[str, Any]) -> bytes:
    return b"".join(b"data: " + orjson.dumps(e) + b"\r\n\r\n" for e in events)


def text_event(text: str, finish: str | None = None, usage: dict[str, Any] | None = None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    out: dict[str, Any] = {"candidates": [candidate], "modelVersion": "gemini-2.5-flash"}
    if usage:
        out["usageMetadata"] = usage
    return out


def decode_all(decoder: GeminiStreamDecoder, data: bytes, step: int) -> list[Any]:
    chunks: list[Any] = []
    for i in range(0, len(data), step):
        chunks.extend(decoder.feed(data[i : i + step]))
    return chunks + decoder.finish()


@pytest.mark.parametrize("step", [1, 7, 10_000])
def test_a_stream_becomes_chunks_with_usage_last_whatever_the_split(step: int) -> None:
    data = sse(
        text_event("Hel", usage={"promptTokenCount": 5, "candidatesTokenCount": 1, "totalTokenCount": 6}),
        text_event("lo"),
        text_event(
            "!",
            "STOP",
            {
                "promptTokenCount": 5,
                "candidatesTokenCount": 3,
                "thoughtsTokenCount": 4,
                "cachedContentTokenCount": 2,
            },
        ),
    )
    chunks = decode_all(GeminiStreamDecoder("gemini/m"), data, step)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert "".join(d.get("content") or "" for d in deltas) == "Hello!"
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert [f for f in finishes if f] == ["stop"]
    last = chunks[-1]
    assert last["choices"] == [] and last["usage"] == {
        "prompt_tokens": 5,
        "completion_tokens": 7,
        "total_tokens": 12,
        "prompt_tokens_details": {"cached_tokens": 2},
        "completion_tokens_details": {"reasoning_tokens": 4},
    }
    assert {c["model"] for c in chunks} == {"gemini/m"} and len({c["id"] for c in chunks}) == 1


def test_a_streamed_function_call_comes_whole_with_an_index_and_an_id() -> None:
    call = {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2ln"}
    event = {
        "candidates": [{"content": {"parts": [call], "role": "model"}, "finishReason": "STOP", "index": 0}]
    }
    chunks = decode_all(GeminiStreamDecoder("m"), sse(event), 10_000)
    calls = [tc for c in chunks if c["choices"] for tc in c["choices"][0]["delta"].get("tool_calls", [])]
    assert len(calls) == 1 and calls[0]["index"] == 0 and calls[0]["id"].startswith("call_")
    assert calls[0]["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"  # no usage sent: no usage chunk


def test_a_stream_that_closes_before_a_finish_reason_is_an_error() -> None:
    decoder = GeminiStreamDecoder("m")
    decoder.feed(sse(text_event("Hel")))
    with pytest.raises(ProviderError) as caught:
        decoder.finish()
    assert caught.value.status_code == 502 and caught.value.retryable


def test_an_error_event_mid_stream_raises_scrubbed() -> None:
    error = {"error": {"code": 429, "message": f"quota for key {KEY}", "status": "RESOURCE_EXHAUSTED"}}
    decoder = GeminiStreamDecoder("m", secrets=(KEY,))
    decoder.feed(sse(text_event("Hel")))
    with pytest.raises(ProviderError) as caught:
        decoder.feed(sse(error))
    assert caught.value.status_code == 429 and caught.value.retryable and KEY not in caught.value.message


def test_a_blocked_prompt_streams_a_refusal() -> None:
    chunks = decode_all(GeminiStreamDecoder("m"), sse({"promptFeedback": {"blockReason": "OTHER"}}), 10_000)
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "content_filter"


# -- errors and embeddings ---------------------------------------------------------------------------


def error_body(code: int, status: str, message: str, *details: dict[str, Any]) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = list(details)
    return orjson.dumps({"error": error})


def test_a_rejected_key_is_a_401_and_the_key_is_scrubbed() -> None:
    reason = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
    body = error_body(400, "INVALID_ARGUMENT", f"API key not valid: {KEY}", reason)
    error = gemini_error(400, error_object(body), secrets=(KEY,))
    assert (error.status_code, error.error_type, error.code) == (
        401,
        "authentication_error",
        "api_key_invalid",
    )
    assert KEY not in error.message and not error.retryable


def test_a_rate_limit_waits_as_retry_info_says() -> None:
    retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "27s"}
    error = gemini_error(429, error_object(error_body(429, "RESOURCE_EXHAUSTED", "slow down", retry)))
    assert (error.status_code, error.error_type, error.retryable, error.retry_after_s) == (
        429,
        "rate_limit_error",
        True,
        27.0,
    )
    header_wins = gemini_error(
        429, error_object(error_body(429, "RESOURCE_EXHAUSTED", "x", retry)), retry_after_s=2
    )
    assert header_wins.retry_after_s == 2


def test_errors_of_other_shapes() -> None:
    array = b"[" + error_body(400, "INVALID_ARGUMENT", "bad field") + b"]"  # a stream without alt=sse
    assert gemini_error(400, error_object(array)).message == "bad field"
    html = gemini_error(502, error_object(b"<html>Bad Gateway</html>"))
    assert html.status_code == 502 and html.retryable and "Bad Gateway" in html.message
    in_body = gemini_error(None, {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"})
    assert in_body.status_code == 503 and in_body.retryable
    by_name = gemini_error(None, {"message": "gone", "status": "NOT_FOUND"})
    assert by_name.status_code == 404 and by_name.error_type == "not_found_error"


def test_embeddings_use_batch_embed_contents() -> None:
    body = embed_request(
        {"model": "gemini/e", "input": ["a", "b"], "dimensions": 4}, "models/gemini-embedding-001"
    )
    assert body == {
        "requests": [
            {
                "model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": t}]},
                "outputDimensionality": 4,
            }
            for t in ("a", "b")
        ]
    }
    with pytest.raises(InvalidRequest):
        embed_request({"input": [[1, 2, 3]]}, "models/e")
    out = embeddings(
        orjson.dumps({"embeddings": [{"values": [0.1, 0.2]}, {"values": [0.3, 0.4]}]}), "gemini/e"
    )
    assert out["object"] == "list" and out["model"] == "gemini/e"
    assert [d["embedding"] for d in out["data"]] == [[0.1, 0.2], [0.3, 0.4]]
    assert out["usage"] == {"prompt_tokens": 0, "total_tokens": 0}
