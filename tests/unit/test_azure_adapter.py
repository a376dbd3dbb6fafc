"""Azure OpenAI adapter: deployment and v1 URLs, api-key header, model field, filter-only chunks."""

from __future__ import annotations

import orjson
import pytest

from turnout.providers.azure.adapter import DEFAULT_API_VERSION, AzureAdapter
from turnout.providers.base import ProviderError, Target
from turnout.providers.credentials import Credentials

adapter = AzureAdapter()
AZURE_KEY = "0123456789abcdef0123456789abcdef"
DEPLOYED = Target(
    "azure/gpt-4o",
    "gpt-4o-prod",
    "p-az",
    "azure",
    "https://contoso.openai.azure.com/",
    Credentials.of(AZURE_KEY),
)
BODY = {
    "model": "azure/gpt-4o",
    "messages": [{"role": "user", "content": "Hi"}],
    "metadata": {"task_id": "t"},
}


def test_deployment_url_header_and_body() -> None:
    req = adapter.chat_request(DEPLOYED, BODY, stream=False)
    assert req.url == (
        f"https://contoso.openai.azure.com/openai/deployments/gpt-4o-prod/chat/completions"
        f"?api-version={DEFAULT_API_VERSION}"
    )
    assert req.headers == {"Content-Type": "application/json", "api-key": AZURE_KEY}
    assert orjson.loads(req.body) == {"messages": [{"role": "user", "content": "Hi"}]}


def test_api_version_and_base_with_openai_suffix() -> None:
    target = Target(
        "azure/e",
        "text-embedding-3-small",
        "p",
        "azure",
        "https://c.openai.azure.com/openai",
        Credentials.of("k" * 32),
        "2025-04-01-preview",
    )
    req = adapter.embeddings_request(target, {"model": "azure/e", "input": "x"})
    assert (
        req.url
        == "https://c.openai.azure.com/openai/deployments/text-embedding-3-small/embeddings?api-version=2025-04-01-preview"
    )
    assert orjson.loads(req.body) == {"input": "x"}


def test_v1_style() -> None:
    target = Target(
        "azure/gpt-4o",
        "gpt-4o-prod",
        "p",
        "azure",
        "https://contoso.openai.azure.com/openai/v1/",
        Credentials.of(AZURE_KEY),
    )
    req = adapter.chat_request(target, BODY, stream=True)
    assert req.url == "https://contoso.openai.azure.com/openai/v1/chat/completions"
    sent = orjson.loads(req.body)
    assert sent["model"] == "gpt-4o-prod" and sent["stream_options"] == {"include_usage": True}
    preview = Target(
        "azure/gpt-4o",
        "gpt-4o-prod",
        "p",
        "azure",
        "https://contoso.openai.azure.com",
        Credentials.of(AZURE_KEY),
        "preview",
    )
    assert adapter.chat_request(preview, BODY, stream=False).url == (
        "https://contoso.openai.azure.com/openai/v1/chat/completions?api-version=preview"
    )


def test_entra_token_goes_as_bearer() -> None:
    token = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJjb2duaXRpdmUifQ.c2ln"
    target = Target(
        "azure/gpt-4o", "gpt-4o", "p", "azure", "https://c.openai.azure.com", Credentials.of(token)
    )
    headers = adapter.chat_request(target, BODY, stream=False).headers
    assert headers["Authorization"] == f"Bearer {token}" and "api-key" not in headers


FILTER_CHUNK = {
    "choices": [],
    "created": 0,
    "id": "",
    "model": "",
    "object": "",
    "prompt_filter_results": [
        {"prompt_index": 0, "content_filter_results": {"hate": {"filtered": False, "severity": "safe"}}}
    ],
}
CONTENT = {
    "choices": [
        {
            "content_filter_results": {},
            "delta": {"content": "Hello", "role": "assistant"},
            "finish_reason": None,
            "index": 0,
        }
    ],
    "created": 1727112000,
    "id": "chatcmpl-A",
    "model": "gpt-4o-2024-08-06",
    "object": "chat.completion.chunk",
    "system_fingerprint": "fp_x",
}
USAGE = {**CONTENT, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}


def test_stream_drops_filter_only_chunks() -> None:
    stream = (
        b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in (FILTER_CHUNK, CONTENT, USAGE))
        + b"data: [DONE]\n\n"
    )
    for cut in range(0, len(stream) + 1, 5):
        decoder = adapter.stream_decoder(DEPLOYED)
        out = decoder.feed(stream[:cut]) + decoder.feed(stream[cut:]) + decoder.finish()
        assert out == [{**CONTENT, "model": "azure/gpt-4o"}, {**USAGE, "model": "azure/gpt-4o"}]


def test_azure_errors() -> None:
    body = orjson.dumps(
        {
            "error": {
                "code": "429",
                "message": "Requests to the ChatCompletions_Create Operation have exceeded call rate limit. "
                "Please retry after 6 seconds.",
            }
        }
    )
    err = adapter.error(DEPLOYED, 429, body, {"Retry-After": "6", "retry-after-ms": "5500"})
    assert err.retryable and err.retry_after_s == 5.5 and err.error_type == "rate_limit_error"
    filtered = orjson.dumps(
        {
            "error": {
                "message": "The response was filtered due to the prompt triggering content management"
                " policy.",
                "type": None,
                "param": "prompt",
                "code": "content_filter",
                "status": 400,
            }
        }
    )
    err = adapter.error(DEPLOYED, 400, filtered, {})
    assert (err.status_code, err.code, err.param, err.retryable) == (400, "content_filter", "prompt", False)
    missing = orjson.dumps(
        {"error": {"code": "DeploymentNotFound", "message": "The API deployment does not exist."}}
    )
    err = adapter.error(DEPLOYED, 404, missing, {})
    assert err.code == "DeploymentNotFound" and err.error_type == "not_found_error"
    with pytest.raises(ProviderError):
        adapter.stream_decoder(DEPLOYED).finish()
