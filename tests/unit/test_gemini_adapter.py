"""The Gemini adapter and spec: URLs, the key in a header (never the URL), model-list pages."""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal
from typing import Any

import orjson
import pytest

from turnout.catalog.fetch import ProviderConnection, list_request, models_url
from turnout.modelinfo.discovered import UnexpectedPayload
from turnout.providers.base import ChatAdapter, Target, UpstreamRequest
from turnout.providers.credentials import Credentials
from turnout.providers.gemini.adapter import GeminiAdapter, method_url
from turnout.providers.gemini.models import parse_page
from turnout.providers.registry import spec_for

KEY = "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"
SPEC = spec_for("gemini")
ADAPTER = GeminiAdapter()
BODY: Any = {"model": "gemini/gemini-2.5-flash", "messages": [{"role": "user", "content": "hi"}]}


def target(api_base: str = "https://generativelanguage.googleapis.com", key: str | None = KEY) -> Target:
    return Target("gemini/gemini-2.5-flash", "gemini-2.5-flash", "g", "gemini", api_base, Credentials.of(key))


def test_the_spec() -> None:
    adapter: ChatAdapter = SPEC.adapter
    assert (SPEC.display_name, SPEC.price_id, SPEC.self_hosting) == ("Google Gemini", "google", "never")
    assert adapter.sign is None and SPEC.models.pagination is not None
    assert (dict(SPEC.models.pagination.first), SPEC.models.pagination.cursor) == (
        {"pageSize": "1000"},
        "pageToken",
    )


@pytest.mark.parametrize(
    "base",
    [
        "https://generativelanguage.googleapis.com",
        "https://generativelanguage.googleapis.com/",
        "https://generativelanguage.googleapis.com/v1beta",
        "https://generativelanguage.googleapis.com/v1beta/",
        "https://generativelanguage.googleapis.com/v1beta/openai",
    ],
)
def test_urls_never_double_v1beta(base: str) -> None:
    root = "https://generativelanguage.googleapis.com/v1beta"
    assert (
        ADAPTER.chat_request(target(base), BODY, stream=False).url
        == f"{root}/models/gemini-2.5-flash:generateContent"
    )
    stream = ADAPTER.chat_request(target(base), BODY, stream=True)
    assert stream.url == f"{root}/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    assert stream.headers["Accept"] == "text/event-stream"
    assert models_url(ProviderConnection("gemini", base))[0] == f"{root}/models"


def test_model_names_are_escaped_and_tuned_models_keep_their_collection() -> None:
    base = "https://g.example"
    assert (
        method_url(base, "my model", "generateContent") == f"{base}/v1beta/models/my%20model:generateContent"
    )
    assert (
        method_url(base, "tunedModels/t-1", "generateContent")
        == f"{base}/v1beta/tunedModels/t-1:generateContent"
    )


def test_the_key_rides_in_x_goog_api_key_and_never_in_the_url() -> None:
    listing = models_url(ProviderConnection("gemini", "https://g.example"))[0]
    requests = [
        ADAPTER.chat_request(target(), BODY, stream=False),
        ADAPTER.chat_request(target(), BODY, stream=True),
        ADAPTER.embeddings_request(target(), {"model": "gemini/e", "input": "hi"}),
        list_request(SPEC, listing, {"pageSize": "2", "pageToken": "t"}, Credentials.of(KEY)),
    ]
    for request in requests:
        assert request.headers["x-goog-api-key"] == KEY
        assert KEY not in request.url and "key=" not in request.url
        assert "Authorization" not in request.headers and KEY.encode() not in request.body
    keyless = ADAPTER.chat_request(target(key=None), BODY, stream=False)
    assert "x-goog-api-key" not in keyless.headers


def test_the_body_is_the_translated_request_and_gemma_gets_no_system_instruction() -> None:
    body: Any = {**BODY, "messages": [{"role": "system", "content": "Be brief."}, *BODY["messages"]]}
    sent = orjson.loads(ADAPTER.chat_request(target(), body, stream=False).body)
    assert sent["systemInstruction"] == {"parts": [{"text": "Be brief."}]} and "model" not in sent
    gemma = Target(
        "gemini/gemma-3-27b-it", "gemma-3-27b-it", "g", "gemini", "https://g.example", Credentials.of(KEY)
    )
    sent = orjson.loads(ADAPTER.chat_request(gemma, body, stream=False).body)
    assert "systemInstruction" not in sent and sent["contents"][0]["parts"][0] == {"text": "Be brief."}


def test_embeddings_request_and_answer() -> None:
    request = ADAPTER.embeddings_request(target(), {"model": "gemini/e", "input": "hi"})
    assert request.url.endswith("/v1beta/models/gemini-2.5-flash:batchEmbedContents")
    assert orjson.loads(request.body)["requests"][0]["model"] == "models/gemini-2.5-flash"
    out = ADAPTER.embeddings_response(target(), orjson.dumps({"embeddings": [{"values": [1.0]}]}))
    assert out["data"][0]["embedding"] == [1.0] and out["model"] == "gemini/gemini-2.5-flash"


def test_a_signer_signs_the_finished_request() -> None:
    def sign(request: UpstreamRequest, credentials: Credentials) -> None:
        key = (credentials.get("api_key") or "").encode()
        request.headers["x-signature"] = hmac.new(
            key, request.url.encode() + request.body, hashlib.sha256
        ).hexdigest()

    request = GeminiAdapter(sign=sign).chat_request(target(), BODY, stream=False)
    expected = hmac.new(KEY.encode(), request.url.encode() + request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-signature"] == expected


def test_errors_are_scrubbed_and_take_retry_after() -> None:
    body = orjson.dumps({"error": {"code": 503, "message": f"busy {KEY}", "status": "UNAVAILABLE"}})
    error = ADAPTER.error(target(), 503, body, {"Retry-After": "3"})
    assert (error.status_code, error.retryable, error.retry_after_s) == (503, True, 3.0)
    assert KEY not in error.message and "[REDACTED]" in error.message


# -- models ----------------------------------------------------------------------------------------


def entry(name: str, methods: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "name": f"models/{name}",
        "displayName": name.title(),
        "supportedGenerationMethods": methods,
        **extra,
    }


def test_a_page_lists_chat_and_embedding_models_and_the_next_token() -> None:
    page = {
        "models": [
            entry("gemini-2.5-flash", ["generateContent", "countTokens"], inputTokenLimit=1_048_576),
            entry("gemini-embedding-001", ["embedContent", "batchEmbedContents"], inputTokenLimit=2048),
            entry("imagen-4.0-generate-001", ["predict"]),
            entry("gemini-2.5-flash-preview-tts", ["generateContent"]),  # speech out only
            entry("gemini-live-2.5-flash-preview", ["bidiGenerateContent"]),
            entry("aqa", ["generateAnswer"]),
            {"displayName": "no name"},
        ],
        "nextPageToken": "Cg1nZW1pbmk",
    }
    models, token = parse_page(page, "google")
    assert token == "Cg1nZW1pbmk"
    assert [(m.external_id, m.model_type) for m in models] == [
        ("gemini-2.5-flash", "chat"),
        ("gemini-embedding-001", "embedding"),
    ]
    flash, embed = models
    assert flash.display_name == "Gemini-2.5-Flash" and flash.ctx_length == 1_048_576
    assert flash.pricing_input == Decimal("0.3") and flash.pricing_output == Decimal("2.5")  # genai-prices
    assert set(flash.capabilities) >= {"text", "vision", "audio", "long_context", "function_calling"}
    assert embed.capabilities == ("text",) and embed.pricing_input == Decimal("0.15")
    assert flash.metadata["supportedGenerationMethods"] == ["generateContent", "countTokens"]


def test_the_last_page_has_no_token_and_an_empty_list_may_be_an_empty_object() -> None:
    assert parse_page({"models": [entry("gemini-2.0-flash", ["generateContent"])]}, "google")[1] is None
    assert parse_page({}, "google") == ([], None)
    for bad in ([], {"data": []}, {"models": {}}):
        with pytest.raises(UnexpectedPayload):
            parse_page(bad, "google")
