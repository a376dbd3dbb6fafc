"""Provider specs and the registry: one declaration per provider feeds the type list, validation and
help; credentials are scrubbed field by field; the signing hook signs chat and models requests."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any, get_args

import orjson
import pytest

from turnout.catalog.fetch import ProviderConnection, list_request, models_url
from turnout.catalog.schemas import ProviderType
from turnout.providers.anthropic.adapter import AnthropicAdapter
from turnout.providers.azure.adapter import AzureAdapter
from turnout.providers.base import ChatAdapter, Target, UpstreamRequest
from turnout.providers.credentials import Credentials
from turnout.providers.ollama.adapter import OllamaAdapter
from turnout.providers.openai_compat.adapter import OpenAICompatAdapter
from turnout.providers.openai_compat.spec import OPENAI_MODELS
from turnout.providers.registry import PROVIDER_TYPES, SPECS, spec_for
from turnout.providers.spec import ProviderSpec

SIGNING_KEY = b"region-and-date-derived-key"
by_type = pytest.mark.parametrize("spec", SPECS, ids=[spec.type for spec in SPECS])


def hmac_signer(request: UpstreamRequest, credentials: Credentials) -> None:
    """A stand-in for AWS SigV4: a MAC over method, URL and body, keyed by a credential field."""
    key = (credentials.get("secret_access_key") or "").encode()
    message = b"\n".join((request.method.encode(), request.url.encode(), request.body))
    request.headers["x-signature"] = hmac.new(key, message, hashlib.sha256).hexdigest()


def _signature(request: UpstreamRequest, key: str) -> str:
    message = b"\n".join((request.method.encode(), request.url.encode(), request.body))
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def test_the_registry_is_the_one_list_of_provider_types() -> None:
    assert PROVIDER_TYPES == (
        "openai",
        "openrouter",
        "anthropic",
        "azure",
        "ollama",
        "custom",
        "bedrock",
        "gemini",
    )
    assert len(set(PROVIDER_TYPES)) == len(SPECS)
    assert get_args(ProviderType) == PROVIDER_TYPES  # the admin API validates against the registry
    for spec in SPECS:
        adapter: ChatAdapter = spec.adapter
        assert spec_for(spec.type) is spec
        if spec.type == "bedrock":  # SigV4 over an AWS key pair; the others take an optional key
            assert adapter.sign is not None and spec.credentials.required
            continue
        assert adapter.sign is None
        assert spec.credentials.fields == ("api_key",) and not spec.credentials.required


@by_type
def test_every_credential_field_is_scrubbed_from_provider_errors(spec: ProviderSpec) -> None:
    token = "tok-" + secrets.token_hex(16)  # a second field, never seen by the process before
    credentials = Credentials({"api_key": "key-" + secrets.token_hex(16), "session_token": token})
    target = Target(f"{spec.type}/m", "m", "p", spec.type, "http://upstream.test", credentials)
    body = orjson.dumps({"error": {"message": f"token {token} expired", "type": "authentication_error"}})
    error = spec.adapter.error(target, 401, body, {})
    assert token not in error.message and "[REDACTED]" in error.message and error.status_code == 401


@pytest.mark.parametrize(
    ("adapter", "provider_type"),
    [
        (OpenAICompatAdapter(sign=hmac_signer), "openai"),
        (AzureAdapter(sign=hmac_signer), "azure"),
        (AnthropicAdapter(sign=hmac_signer), "anthropic"),
        (OllamaAdapter(sign=hmac_signer), "ollama"),
    ],
    ids=["openai_compat", "azure", "anthropic", "ollama"],
)
def test_an_adapters_signer_signs_the_finished_request(adapter: Any, provider_type: str) -> None:
    secret = "s3cr3t-" + secrets.token_hex(8)
    credentials = Credentials({"access_key_id": "AKIDEXAMPLE", "secret_access_key": secret})
    target = Target(f"{provider_type}/m", "m", "p", provider_type, "http://upstream.test", credentials)
    body = {"model": f"{provider_type}/m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    chat = adapter.chat_request(target, body, stream=False)
    assert chat.headers["x-signature"] == _signature(chat, secret)
    if provider_type != "anthropic":  # Anthropic has no embeddings
        embed = adapter.embeddings_request(target, {"model": f"{provider_type}/m", "input": "hi"})
        assert embed.headers["x-signature"] == _signature(embed, secret)


def test_a_specs_signer_signs_its_models_requests_with_their_query() -> None:
    spec = ProviderSpec(
        type="signed",
        display_name="Signed",
        adapter=OpenAICompatAdapter(sign=hmac_signer),
        models=OPENAI_MODELS,
        models_url=lambda base: f"{base.rstrip('/')}/models",
        list_params=lambda url, version: {"api-version": version or "1"},
    )
    credentials = Credentials({"secret_access_key": "k-" + secrets.token_hex(8)})
    request = list_request(spec, "http://upstream.test/v1/models", {"after_id": "m 2"}, credentials)
    assert request.url == "http://upstream.test/v1/models?after_id=m+2"
    assert request.headers["x-signature"] == _signature(request, credentials.fields["secret_access_key"])
    assert request.headers["Accept"] == "application/json"


@pytest.mark.parametrize(
    ("provider_type", "api_base", "url"),
    [
        ("azure", "https://res.openai.azure.com/openai/v1", "https://res.openai.azure.com/openai/models"),
        ("ollama", "http://localhost:11434/api", "http://localhost:11434/api/tags"),
    ],
)
def test_models_url_uses_the_same_root_as_the_adapter(provider_type: str, api_base: str, url: str) -> None:
    assert models_url(ProviderConnection(provider_type, api_base))[0] == url


def test_credentials_never_show_their_values() -> None:
    credentials = Credentials({"api_key": "sk-abc-123456789", "region": "eu-west-1x"})
    assert "sk-abc" not in repr(credentials) and "eu-west" not in repr(credentials)
    assert (
        credentials.secrets == ("sk-abc-123456789",)  # a region configures, it is not scrubbed
        and credentials.api_key == "sk-abc-123456789"
    )
    assert (
        Credentials.of("k").fields == {"api_key": "k"} and not Credentials.of(None) and not Credentials.of("")
    )
