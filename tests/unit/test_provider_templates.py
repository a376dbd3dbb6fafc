"""Provider templates as declared: each one names a known provider's type, base URL and genai-prices
list correctly, and turns an admin's few parameters into the same ``ProviderCreate`` the normal
create endpoint takes. A template whose type this build lacks is reported, never half-created."""

from __future__ import annotations

import re

import pytest
from pydantic import SecretStr

from turnout.catalog.fetch import pricing_source
from turnout.catalog.schemas import CREDENTIALS_MAX, PROVIDER_ID_PATTERN, ProviderFromTemplate
from turnout.catalog.templates import (
    PLACEHOLDERS,
    TEMPLATES,
    TEMPLATES_BY_ID,
    ProviderTemplate,
    provider_create,
    template_for,
    template_out,
)
from turnout.errors import InvalidRequest, NotFound
from turnout.modelinfo.pricing import lookup_price, price_ids
from turnout.net.ssrf import check_api_base
from turnout.providers.registry import PROVIDER_TYPES, SPECS_BY_TYPE

#: (template, provider type, default api_base, genai-prices provider, self-hosted)
EXPECTED = [
    ("openai", "openai", "https://api.openai.com/v1", "openai", False),
    ("anthropic", "anthropic", "https://api.anthropic.com", "anthropic", False),
    ("openrouter", "openrouter", "https://openrouter.ai/api/v1", "openrouter", False),
    ("azure", "azure", None, "azure", False),
    ("gemini", "gemini", "https://generativelanguage.googleapis.com", "google", False),
    ("bedrock", "bedrock", "https://bedrock-runtime.{region}.amazonaws.com", "aws", False),
    ("mistral", "custom", "https://api.mistral.ai/v1", "mistral", False),
    ("groq", "custom", "https://api.groq.com/openai/v1", "groq", False),
    ("together", "custom", "https://api.together.xyz/v1", "together", False),
    ("deepseek", "custom", "https://api.deepseek.com/v1", "deepseek", False),
    ("huggingface", "custom", None, None, True),
    ("ollama", "ollama", "http://localhost:11434", None, True),
    ("vllm", "custom", "http://localhost:8000/v1", None, True),
    ("llamacpp", "custom", "http://localhost:8080/v1", None, True),
]
registered = [t for t in TEMPLATES if t.provider_type in PROVIDER_TYPES]
each_registered = pytest.mark.parametrize("template", registered, ids=[t.id for t in registered])


def test_the_known_providers_are_declared_as_documented() -> None:
    got = [(t.id, t.provider_type, t.api_base, t.price_id, t.self_hosted) for t in TEMPLATES]
    assert got == EXPECTED
    assert set(TEMPLATES_BY_ID) == {row[0] for row in EXPECTED}


@pytest.mark.parametrize("template", TEMPLATES, ids=[t.id for t in TEMPLATES])
def test_every_declaration_is_usable(template: ProviderTemplate) -> None:
    assert re.match(PROVIDER_ID_PATTERN, template.id)  # the default provider id
    assert template.price_id is None or template.price_id in price_ids()
    if template.price_id is None and template.spec is not None:  # None stored means "the type's"
        assert template.spec.price_id is None
    assert set(template.placeholders) <= PLACEHOLDERS
    assert template.docs_url.startswith("https://")
    if template.api_base is None:
        assert template.requires == ("api_base",) and template.api_base_example
    else:  # a default that passes the same URL check as an admin's
        check_api_base(template.api_base.format(region="us-east-1"), allow_private=False)


@pytest.mark.parametrize(
    ("template_id", "model", "price_in"), [("groq", "llama-3.3-70b-versatile", "0.59"),
                                          ("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo", "0.88")]
)  # fmt: skip
def test_hosted_open_models_are_priced_from_their_hosts_list(
    template_id: str, model: str, price_in: str
) -> None:
    """Why a template carries a price id: the type alone prices these wrong or not at all."""
    template = TEMPLATES_BY_ID[template_id]
    source = pricing_source(template.provider_type, template.stored_price_id())
    info = lookup_price(source, model)
    assert source == template_id and info is not None and str(info.input_per_mtok) == price_in
    assert lookup_price(pricing_source("openai", None), model) is None  # "openai" type: unpriced
    assert lookup_price(pricing_source("custom", None), model) is None  # guessed: no vendor matches


@each_registered
def test_a_registered_template_lists_its_types_credential_fields(template: ProviderTemplate) -> None:
    out = template_out(template)
    assert out.available and out.unavailable_reason is None
    assert out.credential_fields and set(out.credential_required) <= set(out.credential_fields)


def test_no_type_takes_more_credential_fields_than_a_body_may_send() -> None:
    """A template adds the region to the caller's credentials after the body's count check; the
    known fields of a type fit the limit, so that addition can never be what breaks it."""
    assert all(len(spec.credentials.fields) <= CREDENTIALS_MAX for spec in SPECS_BY_TYPE.values())


def test_a_template_of_an_unregistered_type_is_listed_unavailable_and_refuses() -> None:
    pigeon = ProviderTemplate(
        "pigeon", "Pigeon post", "carrier-pigeon", "https://coop.example", None, "https://x"
    )
    out = template_out(pigeon)
    assert not out.available and out.credential_fields == []
    assert "'carrier-pigeon' is not registered" in (out.unavailable_reason or "")
    with pytest.raises(InvalidRequest) as caught:
        provider_create(pigeon, ProviderFromTemplate(api_key=SecretStr("k")))
    assert caught.value.param == "template_id" and caught.value.code == "template_unavailable"


def test_an_unknown_template_is_a_404_listing_the_known_ones() -> None:
    with pytest.raises(NotFound) as caught:
        template_for("skynet")
    assert caught.value.param == "template_id" and "groq" in caught.value.message


def test_an_openai_compatible_host_is_custom_with_its_own_price_id() -> None:
    made = provider_create(TEMPLATES_BY_ID["mistral"], ProviderFromTemplate(api_key=SecretStr("k")))
    assert (made.id, made.provider_type, made.api_base) == ("mistral", "custom", "https://api.mistral.ai/v1")
    assert made.price_id == "mistral" and made.self_hosted is False
    openai = provider_create(TEMPLATES_BY_ID["openai"], ProviderFromTemplate(id="oai", display_name="Work"))
    assert (openai.id, openai.display_name, openai.price_id) == ("oai", "Work", None)  # the type's own


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://ep.endpoints.huggingface.cloud", "https://ep.endpoints.huggingface.cloud/v1"),
        ("https://ep.endpoints.huggingface.cloud/v1/", "https://ep.endpoints.huggingface.cloud/v1"),
    ],
)
def test_a_per_endpoint_url_gets_its_suffix_once(given: str, expected: str) -> None:
    made = provider_create(TEMPLATES_BY_ID["huggingface"], ProviderFromTemplate(api_base=given))
    assert made.api_base == expected and made.self_hosted is True


@pytest.mark.parametrize(("template_id", "missing"), [("azure", "api_base"), ("huggingface", "api_base"),
                                                      ("bedrock", "region")])  # fmt: skip
def test_a_missing_required_parameter_is_named(template_id: str, missing: str) -> None:
    template = TEMPLATES_BY_ID[template_id]
    if template.provider_type not in PROVIDER_TYPES:
        pytest.skip(f"provider type {template.provider_type!r} is not registered in this build")
    with pytest.raises(InvalidRequest) as caught:
        provider_create(template, ProviderFromTemplate())
    assert caught.value.param == missing and caught.value.code == "missing_parameter"


def test_a_region_goes_into_the_url_and_a_credential_that_takes_one() -> None:
    template = TEMPLATES_BY_ID["bedrock"]
    if template.spec is None:
        pytest.skip("provider type 'bedrock' is not registered in this build")
    keys = {
        "aws_access_key_id": SecretStr("AKIAEXAMPLE"),
        "aws_secret_access_key": SecretStr("wJalr/EXAMPLE"),
    }
    made = provider_create(template, ProviderFromTemplate(region="eu-west-1", credentials=keys))
    assert made.api_base == "https://bedrock-runtime.eu-west-1.amazonaws.com"
    assert made.credentials is not None
    if "region" in template.spec.credentials.fields:
        assert made.credentials["region"].get_secret_value() == "eu-west-1"
    with pytest.raises(InvalidRequest) as caught:  # a region where none is taken is a mistake
        provider_create(TEMPLATES_BY_ID["openai"], ProviderFromTemplate(region="eu-west-1"))
    assert caught.value.param == "region"
