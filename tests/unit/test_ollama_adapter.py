"""Ollama native API adapter: request translation, answers, NDJSON streams, embeddings, errors."""

from __future__ import annotations

import base64
import struct

import orjson
import pytest

from turnout.errors import InvalidRequest
from turnout.providers.base import ProviderError, Target
from turnout.providers.credentials import Credentials
from turnout.providers.ollama.adapter import OllamaAdapter, ollama_base
from turnout.translate.ollama import as_base64

TARGET = Target("ollama/llama3.2", "llama3.2:3b", "p-ollama", "ollama", "http://ollama:11434/v1/")
adapter = OllamaAdapter()
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather for a location",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}, "format": {"type": "string", "enum": ["celsius"]}},
            "required": ["location", "format"],
        },
    },
}


def test_base_url_variants() -> None:
    for base in ("http://h:11434", "http://h:11434/", "http://h:11434/v1", "http://h:11434/api/"):
        assert ollama_base(base) == "http://h:11434"


def test_chat_request_translation() -> None:
    body = {
        "model": "ollama/llama3.2",
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in this image?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {"type": "text", "text": "And the weather in Toronto?"},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_abc",
                        "type": "function",
                        "function": {
                            "name": "get_current_weather",
                            "arguments": '{"location":"Toronto","format":"celsius"}',
                        },
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_abc", "content": '{"temp": 11}'},
        ],
        "tools": [WEATHER_TOOL],
        "temperature": 0.3,
        "top_p": 0.9,
        "max_completion_tokens": 256,
        "max_tokens": 999,
        "stop": "END",
        "seed": 42,
        "response_format": {"type": "json_object"},
        "metadata": {"agent_id": "a"},
        "fallbacks": ["x"],
    }
    req = adapter.chat_request(TARGET, body, stream=False)
    assert req.method == "POST" and req.url == "http://ollama:11434/api/chat"
    assert "Authorization" not in req.headers
    assert orjson.loads(req.body) == {
        "model": "llama3.2:3b",
        "stream": False,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": "What is in this image?\nAnd the weather in Toronto?",
                "images": [PNG],
            },
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "function": {
                            "name": "get_current_weather",
                            "arguments": {"location": "Toronto", "format": "celsius"},
                        }
                    }
                ],
            },
            {"role": "tool", "content": '{"temp": 11}', "tool_name": "get_current_weather"},
        ],
        "tools": [WEATHER_TOOL],
        "options": {"temperature": 0.3, "top_p": 0.9, "seed": 42, "num_predict": 256, "stop": ["END"]},
        "format": "json",
    }


def test_json_schema_stream_flag_and_key() -> None:
    schema = {"type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]}
    body = {
        "messages": [{"role": "user", "content": "Age?"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
        "max_tokens": 10,
        "stop": ["a", "b"],
        "tools": [WEATHER_TOOL],
        "tool_choice": "none",
    }
    keyed = Target("ollama/m", "m", "p", "ollama", "https://ollama.com", Credentials.of("ollama-key-123"))
    req = adapter.chat_request(keyed, body, stream=True)
    sent = orjson.loads(req.body)
    assert sent["stream"] is True and sent["format"] == schema and "tools" not in sent
    assert sent["options"] == {"num_predict": 10, "stop": ["a", "b"]}
    assert req.headers["Authorization"] == "Bearer ollama-key-123"


def test_remote_images_and_unknown_parts_are_refused() -> None:
    remote = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    with pytest.raises(InvalidRequest) as info:
        adapter.chat_request(TARGET, {"messages": [{"role": "user", "content": [remote]}]}, stream=False)
    assert info.value.param == "messages[0].content[0]"
    audio = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
    with pytest.raises(InvalidRequest):
        adapter.chat_request(TARGET, {"messages": [{"role": "user", "content": [audio]}]}, stream=False)


FINAL = {
    "model": "llama3.2:3b",
    "created_at": "2023-12-12T14:13:43.416799Z",
    "done": True,
    "done_reason": "stop",
    "total_duration": 5191566416,
    "load_duration": 2154458,
    "prompt_eval_count": 26,
    "prompt_eval_duration": 383809000,
    "eval_count": 298,
    "eval_duration": 4799921000,
}


def test_chat_response_text_and_tool_calls() -> None:
    answer = {**FINAL, "message": {"role": "assistant", "content": "Hello! How are you today?"}}
    result = adapter.chat_response(TARGET, orjson.dumps(answer))
    assert result["object"] == "chat.completion" and result["id"].startswith("chatcmpl-")
    assert result["model"] == "ollama/llama3.2"
    assert result["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello! How are you today?"},
            "finish_reason": "stop",
        }
    ]
    assert result["usage"] == {"prompt_tokens": 26, "completion_tokens": 298, "total_tokens": 324}

    call = {
        "function": {"name": "get_current_weather", "arguments": {"format": "celsius", "location": "Paris"}}
    }
    answer = {**FINAL, "message": {"role": "assistant", "content": "", "tool_calls": [call]}}
    message = adapter.chat_response(TARGET, orjson.dumps(answer))["choices"][0]
    assert message["finish_reason"] == "tool_calls"
    (tool_call,) = message["message"]["tool_calls"]
    assert tool_call["id"].startswith("call_") and tool_call["type"] == "function"
    assert tool_call["function"]["name"] == "get_current_weather"
    assert orjson.loads(tool_call["function"]["arguments"]) == {"format": "celsius", "location": "Paris"}
    assert message["message"]["content"] is None

    truncated = {**FINAL, "done_reason": "length", "message": {"role": "assistant", "content": "abc"}}
    assert adapter.chat_response(TARGET, orjson.dumps(truncated))["choices"][0]["finish_reason"] == "length"


def line(obj: dict[str, object]) -> bytes:
    return orjson.dumps(obj) + b"\n"


def msg(content: str, **extra: object) -> dict[str, object]:
    return {
        "model": "llama3.2:3b",
        "created_at": "2023-08-04T08:52:19.385406455-07:00",
        "message": {"role": "assistant", "content": content, **extra},
        "done": False,
    }


CALL = {
    "function": {"name": "get_current_weather", "arguments": {"location": "Toronto", "format": "celsius"}}
}
STREAM = (
    line(msg("The"))
    + line(msg(" sky"))
    + line(msg("", tool_calls=[CALL]))
    + line({**FINAL, "message": {"role": "assistant", "content": ""}})
)


def decode(stream: bytes, cuts: list[int]) -> list[dict[str, object]]:
    decoder = adapter.stream_decoder(TARGET)
    out: list[dict[str, object]] = []
    last = 0
    for cut in [*cuts, len(stream)]:
        out += decoder.feed(stream[last:cut])
        last = cut
    return out + decoder.finish()


def simplify(chunks: list[dict[str, object]]) -> list[object]:
    out: list[object] = []
    for c in chunks:
        assert c["object"] == "chat.completion.chunk" and c["model"] == "ollama/llama3.2"
        choices = c["choices"]
        assert isinstance(choices, list)
        if not choices:
            out.append(("usage", c["usage"]))
            continue
        delta = dict(choices[0]["delta"])
        for call in delta.get("tool_calls", []):
            assert call["id"].startswith("call_")
            call["id"] = "call_x"
        out.append((delta, choices[0]["finish_reason"]))
    return out


EXPECTED = [
    ({"role": "assistant", "content": "The"}, None),
    ({"content": " sky"}, None),
    (
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_x",
                    "type": "function",
                    "function": {
                        "name": "get_current_weather",
                        "arguments": '{"location":"Toronto","format":"celsius"}',
                    },
                }
            ]
        },
        None,
    ),
    ({}, "tool_calls"),
    ("usage", {"prompt_tokens": 26, "completion_tokens": 298, "total_tokens": 324}),
]


def test_stream_split_at_every_byte() -> None:
    for cut in range(len(STREAM) + 1):
        assert simplify(decode(STREAM, [cut])) == EXPECTED, cut


def test_stream_ids_are_stable_and_crlf_and_no_final_newline_work() -> None:
    chunks = decode(STREAM.replace(b"\n", b"\r\n")[:-2], [])
    assert simplify(chunks) == EXPECTED
    assert len({c["id"] for c in chunks}) == 1 and len({c["created"] for c in chunks}) == 1


def test_stream_length_finish() -> None:
    stream = line(msg("a")) + line(
        {**FINAL, "done_reason": "length", "message": {"role": "assistant", "content": "b"}}
    )
    assert simplify(decode(stream, [])) == [
        ({"role": "assistant", "content": "a"}, None),
        ({"content": "b"}, None),
        ({}, "length"),
        ("usage", {"prompt_tokens": 26, "completion_tokens": 298, "total_tokens": 324}),
    ]


def test_stream_error_line_and_truncation() -> None:
    decoder = adapter.stream_decoder(TARGET)
    with pytest.raises(ProviderError) as info:
        decoder.feed(line(msg("The")) + b'{"error":"an error was encountered while running the model"}\n')
    assert info.value.status_code == 502 and "while running the model" in info.value.message
    decoder = adapter.stream_decoder(TARGET)
    assert len(decoder.feed(line(msg("The")) + line(msg(" sky")))) == 2
    with pytest.raises(ProviderError) as info:
        decoder.finish()
    assert info.value.message == "stream ended before completion" and not info.value.retryable


def test_embeddings() -> None:
    req = adapter.embeddings_request(
        TARGET, {"model": "ollama/e", "input": ["why is the sky blue?", "hi"], "dimensions": 2}
    )
    assert req.url == "http://ollama:11434/api/embed"
    assert orjson.loads(req.body) == {
        "model": "llama3.2:3b",
        "input": ["why is the sky blue?", "hi"],
        "dimensions": 2,
    }
    with pytest.raises(InvalidRequest):
        adapter.embeddings_request(TARGET, {"model": "ollama/e", "input": [[1, 2, 3]]})
    answer = {
        "model": "all-minilm",
        "embeddings": [[0.010071029, -0.0017594862], [-0.0098027075, 0.06042469]],
        "total_duration": 14143917,
        "load_duration": 1019500,
        "prompt_eval_count": 8,
    }
    assert adapter.embeddings_response(TARGET, orjson.dumps(answer)) == {
        "object": "list",
        "data": [
            {"object": "embedding", "index": 0, "embedding": [0.010071029, -0.0017594862]},
            {"object": "embedding", "index": 1, "embedding": [-0.0098027075, 0.06042469]},
        ],
        "model": "ollama/llama3.2",
        "usage": {"prompt_tokens": 8, "total_tokens": 8},
    }
    assert struct.unpack("<2f", base64.b64decode(as_base64([0.5, -2.0]))) == (0.5, -2.0)


def test_errors() -> None:
    err = adapter.error(TARGET, 404, b'{"error":"model \\"llama9\\" not found, try pulling it first"}', {})
    assert err.status_code == 404 and err.error_type == "not_found_error" and not err.retryable
    assert err.message == 'model "llama9" not found, try pulling it first'
    err = adapter.error(TARGET, 503, b"server busy", {"Retry-After": "2"})
    assert err.retryable and err.retry_after_s == 2.0 and err.message == "server busy"
    assert adapter.error(TARGET, 500, b"", {}).message == "ollama returned HTTP 500"
    with pytest.raises(ProviderError):
        adapter.chat_response(TARGET, b'{"error":"boom"}')
