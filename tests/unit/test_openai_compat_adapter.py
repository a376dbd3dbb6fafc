"""OpenAI-compatible adapter (OpenAI, OpenRouter, custom), the shared error mapping and the registry."""

from __future__ import annotations

import copy
import importlib.util
from datetime import UTC, datetime
from email.utils import format_datetime

import orjson
import pytest

from turnout.errors import UpstreamError
from turnout.providers.azure.adapter import AzureAdapter
from turnout.providers.base import ProviderError, Target
from turnout.providers.credentials import Credentials
from turnout.providers.ollama.adapter import OllamaAdapter
from turnout.providers.openai_compat.adapter import OpenAICompatAdapter
from turnout.providers.openai_compat.spec import ADAPTER
from turnout.providers.registry import adapter_for
from turnout.translate.errors import (
    is_retryable_status,
    openai_type_for_status,
    parse_retry_after,
    scrub,
)

KEY = "sk-or-v1-0123456789abcdef0123456789abcdef"
OPENAI = Target(
    "openai/gpt-4o-mini",
    "gpt-4o-mini",
    "p1",
    "openai",
    "https://api.openai.com/v1/",
    Credentials.of("sk-test-123456789"),
)
ROUTER = Target(
    "openrouter/openai/gpt-4o",
    "openai/gpt-4o",
    "p2",
    "openrouter",
    "https://openrouter.ai/api/v1",
    Credentials.of(KEY),
)
LOCAL = Target("local/qwen", "Qwen/Qwen2.5-7B-Instruct", "p3", "custom", "http://vllm:8000/v1")
adapter = ADAPTER  # the registered instance (with OpenRouter's app headers)

BODY = {
    "model": "openrouter/openai/gpt-4o",
    "messages": [{"role": "user", "content": "Hello"}],
    "temperature": 0.2,
    "metadata": {"agent_id": "a1", "task_id": "t1"},
    "fallbacks": ["openai/gpt-4o-mini"],
    "task_type": "chat",
    "requirements": {"tools": True},
}

COMPLETION = {
    "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
    "object": "chat.completion",
    "created": 1741569952,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello! How can I assist you today?",
                "refusal": None,
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 19, "completion_tokens": 10, "total_tokens": 29},
    "system_fingerprint": "fp_06737a9306",
}


def chunk(delta: dict[str, object], finish: str | None = None) -> dict[str, object]:
    return {
        "id": "chatcmpl-123",
        "object": "chat.completion.chunk",
        "created": 1694268190,
        "model": "gpt-4o-mini",
        "system_fingerprint": "fp_44709d6fcb",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


USAGE_CHUNK = {
    "id": "chatcmpl-123",
    "object": "chat.completion.chunk",
    "created": 1694268190,
    "model": "gpt-4o-mini",
    "choices": [],
    "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
}
CHUNKS = [
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "Hé"}),
    chunk({}, "stop"),
    USAGE_CHUNK,
]
STREAM = b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in CHUNKS) + b"data: [DONE]\n\n"


def decode(stream: bytes, target: Target, cuts: list[int]) -> list[dict[str, object]]:
    decoder = adapter.stream_decoder(target)
    out: list[dict[str, object]] = []
    last = 0
    for cut in [*cuts, len(stream)]:
        out += decoder.feed(stream[last:cut])
        last = cut
    return out + decoder.finish()


def expected_chunks(model_id: str) -> list[dict[str, object]]:
    return [{**c, "model": model_id} for c in CHUNKS]


# -- requests -------------------------------------------------------------------------------------


def test_chat_request_openrouter_stream() -> None:
    before = copy.deepcopy(BODY)
    req = adapter.chat_request(ROUTER, BODY, stream=True)
    assert BODY == before, "the canonical body is not mutated"
    assert req.method == "POST" and req.url == "https://openrouter.ai/api/v1/chat/completions"
    assert req.headers["Authorization"] == f"Bearer {KEY}" and req.headers["X-Title"] == "Turnout"
    assert orjson.loads(req.body) == {
        "model": "openai/gpt-4o",
        "messages": [{"role": "user", "content": "Hello"}],
        "temperature": 0.2,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_chat_request_keeps_other_stream_options_and_drops_them_without_stream() -> None:
    body = {**BODY, "stream": True, "stream_options": {"include_usage": False, "include_obfuscation": False}}
    sent = orjson.loads(adapter.chat_request(OPENAI, body, stream=True).body)
    assert sent["stream_options"] == {"include_usage": True, "include_obfuscation": False}
    assert body["stream_options"] == {"include_usage": False, "include_obfuscation": False}
    plain = orjson.loads(adapter.chat_request(OPENAI, {**body, "stream": False}, stream=False).body)
    assert "stream" not in plain and "stream_options" not in plain and plain["model"] == "gpt-4o-mini"


def test_chat_request_custom_without_key() -> None:
    req = adapter.chat_request(LOCAL, {"messages": [{"role": "user", "content": "x"}]}, stream=False)
    assert req.url == "http://vllm:8000/v1/chat/completions"
    assert req.headers == {"Content-Type": "application/json"}
    assert orjson.loads(req.body)["model"] == "Qwen/Qwen2.5-7B-Instruct"


def test_embeddings_round_trip() -> None:
    body = {"model": "openai/text-embedding-3-small", "input": ["a", "b"], "encoding_format": "float"}
    req = adapter.embeddings_request(OPENAI, body)
    assert req.url == "https://api.openai.com/v1/embeddings"
    assert orjson.loads(req.body) == {**body, "model": "gpt-4o-mini"}
    answer = {
        "object": "list",
        "data": [{"object": "embedding", "embedding": [0.0023, -0.0093], "index": 0}],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 8, "total_tokens": 8},
    }
    result = adapter.embeddings_response(OPENAI, orjson.dumps(answer))
    assert result == {**answer, "model": "openai/gpt-4o-mini"}


# -- responses ------------------------------------------------------------------------------------


def test_chat_response_reports_the_catalog_model() -> None:
    result = adapter.chat_response(ROUTER, orjson.dumps(COMPLETION))
    assert result == {**COMPLETION, "model": "openrouter/openai/gpt-4o"}


def test_chat_response_with_error_body_or_garbage() -> None:
    with pytest.raises(ProviderError) as info:
        adapter.chat_response(ROUTER, b'{"error":{"code":503,"message":"No endpoints found"}}')
    assert info.value.status_code == 503 and info.value.retryable
    for bad in (b"<html>oops</html>", b"[]", b'{"id":"x"}'):
        with pytest.raises(ProviderError) as info:
            adapter.chat_response(OPENAI, bad)
        assert info.value.status_code == 502


# -- streams --------------------------------------------------------------------------------------


def test_stream_split_at_every_byte() -> None:
    want = expected_chunks(OPENAI.model_id)
    for cut in range(len(STREAM) + 1):
        assert decode(STREAM, OPENAI, [cut]) == want, cut


def test_openrouter_comments_and_crlf() -> None:
    stream = (
        b": OPENROUTER PROCESSING\n\n" + STREAM.replace(b"\n\n", b"\n\n: OPENROUTER PROCESSING\n\n")
    ).replace(b"\n", b"\r\n")
    want = expected_chunks(ROUTER.model_id)
    for cut in range(0, len(stream) + 1, 3):
        assert decode(stream, ROUTER, [cut, cut + 1]) == want


def test_truncated_stream_raises() -> None:
    truncated = STREAM[: STREAM.index(b"data: [DONE]")]
    decoder = adapter.stream_decoder(OPENAI)
    assert len(decoder.feed(truncated)) == 4
    with pytest.raises(ProviderError) as info:
        decoder.finish()
    assert info.value.status_code == 502 and not info.value.retryable
    assert info.value.message == "stream ended before completion"


def test_done_without_trailing_blank_line_and_events_after_done_ignored() -> None:
    decoder = adapter.stream_decoder(OPENAI)
    assert decoder.feed(b"data: " + orjson.dumps(CHUNKS[1]) + b"\n\ndata: [DONE]") != []
    assert decoder.finish() == []
    decoder = adapter.stream_decoder(OPENAI)
    assert len(decoder.feed(STREAM + b"data: " + orjson.dumps(CHUNKS[1]) + b"\n\n")) == 4
    assert decoder.done and decoder.finish() == []


def test_openrouter_mid_stream_error() -> None:
    error_chunk = {
        "id": "cmpl-abc123",
        "object": "chat.completion.chunk",
        "created": 1234567890,
        "model": "openai/gpt-4o",
        "provider": "openai",
        "error": {"code": "server_error", "message": f"Provider disconnected unexpectedly (key {KEY})"},
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
    }
    stream = STREAM[: STREAM.index(b"data: ", 10)] + b"data: " + orjson.dumps(error_chunk) + b"\n\n"
    decoder = adapter.stream_decoder(ROUTER)
    with pytest.raises(ProviderError) as info:
        decoder.feed(stream)
    assert info.value.status_code == 502 and info.value.code == "server_error"
    assert "Provider disconnected unexpectedly" in info.value.message and KEY not in info.value.message


def test_numeric_and_vllm_stream_errors() -> None:
    with pytest.raises(ProviderError) as info:
        adapter.stream_decoder(ROUTER).feed(
            b'data: {"error":{"code":429,"message":"Rate limit exceeded"}}\n\n'
        )
    assert info.value.status_code == 429 and info.value.error_type == "rate_limit_error"
    vllm = (
        b'data: {"object":"error","message":"max_tokens too large","type":"BadRequestError","code":400}\n\n'
    )
    with pytest.raises(ProviderError) as info:
        adapter.stream_decoder(LOCAL).feed(vllm)
    assert info.value.status_code == 400 and info.value.message == "max_tokens too large"
    with pytest.raises(ProviderError) as info:
        adapter.stream_decoder(LOCAL).feed(b"data: {not json\n\n")
    assert info.value.status_code == 502


# -- errors ---------------------------------------------------------------------------------------

RATE_LIMIT = orjson.dumps(
    {
        "error": {
            "message": "Rate limit reached for gpt-4o-mini in organization org-x on tokens per min (TPM).",
            "type": "tokens",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
)


def test_429_with_retry_after_seconds() -> None:
    err = adapter.error(OPENAI, 429, RATE_LIMIT, {"retry-after": "7"})
    assert (err.status_code, err.error_type, err.code) == (429, "rate_limit_error", "rate_limit_exceeded")
    assert err.retryable and err.retry_after_s == 7.0
    assert err.message.startswith("Rate limit reached for gpt-4o-mini")


def test_429_with_retry_after_http_date_and_ms() -> None:
    when = datetime.fromtimestamp(2_000_000_030, UTC)
    assert parse_retry_after({"Retry-After": format_datetime(when, usegmt=True)}, now=2_000_000_000) == 30.0
    assert parse_retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # in the past
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({"Retry-After": "-3"}) is None
    assert parse_retry_after({}) is None
    err = adapter.error(
        OPENAI, 503, b"upstream overloaded", {"Retry-After": format_datetime(datetime.now(UTC), usegmt=True)}
    )
    assert err.retryable and err.retry_after_s is not None and 0 <= err.retry_after_s <= 1


def test_client_errors_keep_code_and_param_and_are_final() -> None:
    body = orjson.dumps(
        {
            "error": {
                "message": "This model's maximum context length is 128000 tokens.",
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            }
        }
    )
    err = adapter.error(OPENAI, 400, body, {"Retry-After": "1"})
    assert (err.status_code, err.error_type, err.param, err.code) == (
        400,
        "invalid_request_error",
        "messages",
        "context_length_exceeded",
    )
    assert not err.retryable and err.retry_after_s is None


def test_quota_429_is_not_retryable() -> None:
    body = orjson.dumps(
        {"error": {"message": "Over quota", "type": "insufficient_quota", "code": "insufficient_quota"}}
    )
    err = adapter.error(OPENAI, 429, body, {"retry-after": "1"})
    assert err.status_code == 429 and not err.retryable


def test_messages_are_scrubbed_and_plain_text_kept() -> None:
    body = (
        b'{"error":{"message":"Incorrect API key provided: sk-live-1234567890abcdef. See docs.","code":401}}'
    )
    err = adapter.error(OPENAI, 401, body, {})
    assert "sk-live-1234567890abcdef" not in err.message and "Incorrect API key provided" in err.message
    assert err.error_type == "authentication_error" and err.code == "upstream_error" and not err.retryable
    err = adapter.error(OPENAI, 502, b"<html>Bad Gateway</html>", {})
    assert err.message == "<html>Bad Gateway</html>" and err.retryable
    assert adapter.error(OPENAI, 500, b"", {}).message == "provider returned HTTP 500"
    assert adapter.error(OPENAI, 400, b"x" * 10_000, {}).message == "x" * 2000


def test_scrub_and_status_tables() -> None:
    assert scrub("key abcd-1234-efgh was rejected", "abcd-1234-efgh") == "key [REDACTED] was rejected"
    assert scrub("Authorization: Bearer abcdefghijkl", None) == "Authorization: [REDACTED]"
    assert [openai_type_for_status(s) for s in (400, 401, 403, 404, 408, 422, 429, 500, 529)] == [
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "not_found_error",
        "api_error",
        "invalid_request_error",
        "rate_limit_error",
        "api_error",
        "api_error",
    ]
    assert [s for s in range(400, 600) if is_retryable_status(s)] == [408, 425, 429, 500, 502, 503, 504, 529]


# -- registry -------------------------------------------------------------------------------------


def test_registry() -> None:
    assert adapter_for("openai") is adapter_for("openrouter") is adapter_for("custom")
    assert isinstance(adapter_for("openai"), OpenAICompatAdapter)
    assert isinstance(adapter_for("azure"), AzureAdapter) and adapter_for("azure") is adapter_for("azure")
    assert isinstance(adapter_for("ollama"), OllamaAdapter)
    with pytest.raises(UpstreamError):
        adapter_for("carrier-pigeon")


@pytest.mark.skipif(
    importlib.util.find_spec("turnout.providers.anthropic") is None, reason="no anthropic adapter yet"
)
def test_registry_anthropic_is_lazy_singleton() -> None:
    first = adapter_for("anthropic")
    assert type(first).__name__ == "AnthropicAdapter" and adapter_for("anthropic") is first
