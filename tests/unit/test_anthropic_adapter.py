"""The Anthropic adapter: request building, answers, streams, errors and retry hints."""

from __future__ import annotations

import time
from email.utils import formatdate
from typing import Any

import orjson
import pytest

from turnout.providers.anthropic.adapter import AnthropicAdapter, messages_url
from turnout.providers.base import ChatAdapter, ProviderError, Target
from turnout.providers.credentials import Credentials
from turnout.translate.anthropic_stream import AnthropicStreamDecoder

KEY = "sk-ant-api03-Zx9Q7c1tR5vB2nM4kL6jH8gF0dS3aP1oI9uY7tR5eW3q"
ADAPTER = AnthropicAdapter()


def target(api_base: str = "https://api.anthropic.com", api_key: str | None = KEY) -> Target:
    return Target(
        model_id="anthropic/claude-sonnet-4-5",
        external_id="claude-sonnet-4-5-20250929",
        provider_id="anthropic",
        provider_type="anthropic",
        api_base=api_base,
        credentials=Credentials.of(api_key),
    )


BODY: dict[str, Any] = {
    "model": "anthropic/claude-sonnet-4-5",
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    "max_tokens": 100,
    "stream": False,
    "metadata": {"agent_id": "a1"},
}


def test_implements_chat_adapter() -> None:
    adapter: ChatAdapter = ADAPTER
    assert adapter is ADAPTER


@pytest.mark.parametrize(
    ("base", "url"),
    [
        ("https://api.anthropic.com", "https://api.anthropic.com/v1/messages"),
        ("https://api.anthropic.com/", "https://api.anthropic.com/v1/messages"),
        ("https://api.anthropic.com/v1", "https://api.anthropic.com/v1/messages"),
        ("https://proxy.test/anthropic/v1/", "https://proxy.test/anthropic/v1/messages"),
        ("http://localhost:8080/anthropic", "http://localhost:8080/anthropic/v1/messages"),
    ],
)
def test_messages_url(base: str, url: str) -> None:
    assert messages_url(base) == url
    assert ADAPTER.chat_request(target(base), BODY, stream=False).url == url


def test_chat_request() -> None:
    request = ADAPTER.chat_request(target(), dict(BODY), stream=False)
    assert request.method == "POST"
    assert request.headers == {
        "content-type": "application/json",
        "anthropic-version": "2023-06-01",
        "x-api-key": KEY,
    }
    body = orjson.loads(request.body)
    assert body == {
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        "system": "Be brief.",
    }


def test_chat_request_stream_and_no_key() -> None:
    request = ADAPTER.chat_request(target(api_key=None), {**BODY, "stream": True}, stream=True)
    assert "x-api-key" not in request.headers
    assert request.headers["accept"] == "text/event-stream"
    assert orjson.loads(request.body)["stream"] is True
    request = ADAPTER.chat_request(target(), {**BODY, "stream": True}, stream=False)
    assert "stream" not in orjson.loads(request.body)


def test_chat_response() -> None:
    payload = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": "Hello!"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 6},
    }
    out = ADAPTER.chat_response(target(), orjson.dumps(payload))
    assert out["model"] == "anthropic/claude-sonnet-4-5"
    assert out["choices"][0]["message"]["content"] == "Hello!"
    assert out["choices"][0]["finish_reason"] == "stop"
    assert out["usage"] == {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18}


@pytest.mark.parametrize("payload", [b"not json", b"[]", b'{"type": "message"}'])
def test_chat_response_malformed(payload: bytes) -> None:
    with pytest.raises(ProviderError) as info:
        ADAPTER.chat_response(target(), payload)
    assert info.value.status_code == 502 and info.value.retryable


def test_chat_response_error_body_with_200() -> None:
    payload = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    with pytest.raises(ProviderError) as info:
        ADAPTER.chat_response(target(), orjson.dumps(payload))
    assert info.value.status_code == 503 and info.value.retryable


def test_stream_decoder() -> None:
    decoder = ADAPTER.stream_decoder(target())
    assert isinstance(decoder, AnthropicStreamDecoder)
    start = {
        "type": "message_start",
        "message": {"id": "msg_1", "usage": {"input_tokens": 3, "output_tokens": 1}},
    }
    chunks = decoder.feed(b"event: message_start\ndata: " + orjson.dumps(start) + b"\n\n")
    assert chunks[0]["model"] == "anthropic/claude-sonnet-4-5"
    assert ADAPTER.stream_decoder(target()) is not decoder


def test_embeddings_not_supported() -> None:
    for call in (
        lambda: ADAPTER.embeddings_request(target(), {"model": "m", "input": "x"}),
        lambda: ADAPTER.embeddings_response(target(), b"{}"),
    ):
        with pytest.raises(ProviderError) as info:
            call()
        assert info.value.status_code == 400
        assert info.value.message == "embeddings are not supported by Anthropic"
        assert info.value.param == "model"
        assert info.value.error_type == "invalid_request_error"


def error_payload(kind: str, message: str = "something went wrong") -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_1"})


@pytest.mark.parametrize(
    ("status", "kind", "out_status", "out_type", "retryable"),
    [
        (400, "invalid_request_error", 400, "invalid_request_error", False),
        (401, "authentication_error", 401, "authentication_error", False),
        (402, "billing_error", 402, "insufficient_quota", False),
        (403, "permission_error", 403, "permission_error", False),
        (404, "not_found_error", 404, "not_found_error", False),
        (408, "timeout_error", 408, "api_error", True),
        (409, "conflict_error", 409, "invalid_request_error", True),
        (413, "request_too_large", 413, "invalid_request_error", False),
        (429, "rate_limit_error", 429, "rate_limit_error", True),
        (500, "api_error", 500, "api_error", True),
        (502, "api_error", 502, "api_error", True),
        (504, "timeout_error", 504, "api_error", True),
        (529, "overloaded_error", 503, "api_error", True),
    ],
)
def test_error_mapping(status: int, kind: str, out_status: int, out_type: str, retryable: bool) -> None:
    error = ADAPTER.error(target(), status, error_payload(kind), {"retry-after": "7"})
    assert error.status_code == out_status
    assert error.error_type == out_type
    assert error.retryable is retryable
    assert error.message == "something went wrong"
    assert error.code == kind
    assert error.retry_after_s == (7.0 if retryable else None)


def test_error_non_json_and_empty_bodies() -> None:
    error = ADAPTER.error(target(), 502, b"<html>Bad Gateway</html>", {})
    assert error.status_code == 502 and error.retryable and "Bad Gateway" in error.message
    error = ADAPTER.error(target(), 503, b"", {})
    assert error.message == "Anthropic returned HTTP 503"
    assert error.body()["error"]["type"] == "api_error"


def test_spend_limit_429_is_not_retryable() -> None:
    payload = {
        "type": "error",
        "error": {
            "type": "rate_limit_error",
            "message": "spend limit reached",
            "details": {"error_code": "enforced_spend_limit_reached"},
        },
    }
    error = ADAPTER.error(target(), 429, orjson.dumps(payload), {"retry-after": "60"})
    assert error.status_code == 429 and not error.retryable and error.retry_after_s is None


def test_error_never_echoes_the_key() -> None:
    message = f"invalid x-api-key: {KEY}"
    error = ADAPTER.error(target(), 401, error_payload("authentication_error", message), {})
    assert KEY not in error.message and KEY[:20] not in error.message
    assert "invalid x-api-key" in error.message
    with pytest.raises(ProviderError) as info:
        ADAPTER.chat_response(target(), error_payload("api_error", f"echo {KEY}"))
    assert KEY not in info.value.message


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "30"}, 30.0),
        ({"Retry-After": "1.5"}, 1.5),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after": "-1"}, None),
        ({"retry-after": "soon"}, None),
        ({}, None),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
    ],
)
def test_retry_after_seconds(headers: dict[str, str], expected: float | None) -> None:
    assert ADAPTER.error(target(), 429, error_payload("rate_limit_error"), headers).retry_after_s == expected


def test_retry_after_http_date() -> None:
    headers = {"retry-after": formatdate(time.time() + 120, usegmt=True)}
    delay = ADAPTER.error(target(), 529, error_payload("overloaded_error"), headers).retry_after_s
    assert delay is not None and 110 <= delay <= 121
    past = {"retry-after": formatdate(time.time() - 120, usegmt=True)}
    assert ADAPTER.error(target(), 503, error_payload("overloaded_error"), past).retry_after_s == 0.0
