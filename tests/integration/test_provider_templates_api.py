"""Provider templates through the admin API: the list, and providers created from a template exactly
as ``POST /providers`` creates them (same checks, secret store, sync), priced from the template's
genai-prices list; bad input is a 4xx naming the field; only platform admins get in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from turnout.catalog.templates import TEMPLATES_BY_ID, ProviderTemplate
from turnout.container import Container
from turnout.providers.registry import PROVIDER_TYPES
from turnout.simulator import Simulator, SimulatorConfig

TEMPLATES = "/api/v2/admin/provider-templates"
PROVIDERS = "/api/v2/admin/providers"
MODELS = "/api/v2/admin/models"
KEY = "gsk-Templ4teKeyNeverEchoed9x"


def _needs_type(template_id: str) -> None:
    """Skip (saying why) where this build does not register the template's provider type."""
    provider_type = TEMPLATES_BY_ID[template_id].provider_type
    if provider_type not in PROVIDER_TYPES:
        pytest.skip(f"provider type {provider_type!r} is not registered in this build")


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    simulator = Simulator(SimulatorConfig(api_key=KEY))
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


async def _create(
    client: httpx.AsyncClient, admin: dict[str, str], template_id: str, **body: Any
) -> httpx.Response:
    return await client.post(f"{TEMPLATES}/{template_id}/providers", json=body, headers=admin)


def _error(resp: httpx.Response, status: int, param: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    err: dict[str, Any] = resp.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["param"] == param, err
    assert param in err["message"] or status == 404  # a 404 names the template it did not find
    return err


async def test_the_list_shows_every_template_and_whether_this_build_can_use_it(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    resp = await client.get(TEMPLATES, headers=admin)
    assert resp.status_code == 200, resp.text
    items = {t["id"]: t for t in resp.json()["items"]}
    assert resp.json()["total"] == len(items) == len(TEMPLATES_BY_ID)
    groq = items["groq"]
    assert (groq["provider_type"], groq["api_base"], groq["price_id"]) == (
        "custom", "https://api.groq.com/openai/v1", "groq"
    )  # fmt: skip
    assert groq["available"] and groq["requires"] == [] and groq["docs_url"].startswith("https://")
    assert items["azure"]["requires"] == ["api_base"] and items["azure"]["api_base"] is None
    assert items["bedrock"]["requires"] == ["region"]
    assert items["vllm"]["self_hosted"] and not items["openai"]["self_hosted"]
    for item in items.values():  # a type this build lacks is said, not hidden
        assert item["available"] == (item["provider_type"] in PROVIDER_TYPES)
        assert (item["unavailable_reason"] is None) == item["available"]
    one = await client.get(f"{TEMPLATES}/groq", headers=admin)
    assert one.status_code == 200 and one.json() == groq


async def test_a_provider_from_a_template_has_its_type_url_and_pricing_and_never_echoes_the_key(
    client: httpx.AsyncClient, admin: dict[str, str], container: Container
) -> None:
    resp = await _create(client, admin, "groq", api_key=KEY)
    assert resp.status_code == 201, resp.text
    assert resp.headers["location"] == f"{PROVIDERS}/groq"
    out = resp.json()
    assert (out["id"], out["display_name"], out["provider_type"]) == ("groq", "Groq", "custom")
    assert out["api_base"] == "https://api.groq.com/openai/v1"
    assert (out["price_id"], out["pricing_source"]) == ("groq", "groq")
    assert out["self_hosted"] is False and out["is_self_hosted"] is False
    assert KEY not in resp.text and out["api_key_hint"] == "…" + KEY[-4:]
    assert await container.secrets.get_fields(out["api_key_ref"]) == {"api_key": KEY}  # stored there only
    listed = await client.get(f"{PROVIDERS}/groq", headers=admin)
    assert listed.status_code == 200 and listed.json()["pricing_source"] == "groq" and KEY not in listed.text
    again = await _create(client, admin, "groq", api_key=KEY)
    assert again.status_code == 409 and again.json()["error"]["param"] == "id"


REGISTERED = [t for t in TEMPLATES_BY_ID.values() if t.provider_type in PROVIDER_TYPES]


@pytest.mark.parametrize("template", REGISTERED, ids=[t.id for t in REGISTERED])
async def test_every_usable_template_creates_its_provider(
    client: httpx.AsyncClient, admin: dict[str, str], template: ProviderTemplate
) -> None:
    """Given what ``requires`` and the type's credential schema ask for, each template creates."""
    listed = (await client.get(f"{TEMPLATES}/{template.id}", headers=admin)).json()
    body: dict[str, Any] = (
        {"api_base": "https://acme.example.com"} if "api_base" in listed["requires"] else {}
    )
    body |= {"region": "us-east-1"} if "region" in listed["requires"] else {}
    if listed["credential_required"]:
        body["credentials"] = {name: f"secret-{name}-0123456789" for name in listed["credential_required"]}
    elif "api_key" in listed["credential_fields"] and not template.self_hosted:
        body["api_key"] = KEY
    resp = await _create(client, admin, template.id, **body)
    assert resp.status_code == 201, resp.text
    out = resp.json()
    assert (out["id"], out["provider_type"]) == (template.id, template.provider_type)
    expected_base = (template.api_base or "https://acme.example.com" + template.api_base_suffix).format(
        region="us-east-1"
    )
    assert out["api_base"] == expected_base and out["pricing_source"] == template.price_id
    assert out["is_self_hosted"] is template.self_hosted
    assert "secret-" not in resp.text and KEY not in resp.text


async def test_a_template_following_its_types_pricing_stores_no_price_id(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    resp = await _create(client, admin, "anthropic", id="claude", display_name="Claude", rate_limit_rpm=60)
    assert resp.status_code == 201, resp.text
    out = resp.json()
    assert (out["id"], out["display_name"], out["rate_limit_rpm"]) == ("claude", "Claude", 60)
    assert (out["provider_type"], out["api_base"]) == ("anthropic", "https://api.anthropic.com")
    assert (out["price_id"], out["pricing_source"], out["api_key_ref"]) == (None, "anthropic", None)


async def test_a_provider_from_a_template_syncs_priced_from_the_templates_list(
    client: httpx.AsyncClient, admin: dict[str, str], sim: Simulator
) -> None:
    """Groq's open models are priced from Groq's list, even through a relay on this machine."""
    sim.config.models = ["llama-3.3-70b-versatile"]
    resp = await _create(client, admin, "groq", id="relay", api_base=f"{sim.base_url}/v1", api_key=KEY)
    assert resp.status_code == 201, resp.text
    synced = await client.post(f"{PROVIDERS}/relay/sync", headers=admin)
    assert synced.status_code == 200, synced.text
    model = (await client.get(f"{MODELS}/relay/llama-3.3-70b-versatile", headers=admin)).json()
    assert (model["pricing_input"], model["pricing_output"]) == (0.59, 0.79), model


async def test_a_self_hosted_template_syncs_free(
    client: httpx.AsyncClient, admin: dict[str, str], sim: Simulator
) -> None:
    sim.config.models = ["llama-3.3-70b-versatile"]
    resp = await _create(client, admin, "vllm", id="gpu", api_base=sim.base_url, api_key=KEY)
    assert resp.status_code == 201, resp.text
    assert resp.json()["api_base"] == f"{sim.base_url}/v1" and resp.json()["is_self_hosted"] is True
    assert (await client.post(f"{PROVIDERS}/gpu/sync", headers=admin)).status_code == 200
    model = (await client.get(f"{MODELS}/gpu/llama-3.3-70b-versatile", headers=admin)).json()
    assert (model["pricing_input"], model["pricing_output"], model["cost_tier"]) == (0, 0, "free")


async def test_a_template_needing_a_url_takes_it_and_refuses_without_it(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    missing = await _create(client, admin, "azure", api_key=KEY)
    err = _error(missing, 400, "api_base")
    assert err["code"] == "missing_parameter" and "openai.azure.com" in err["message"]
    assert (await client.get(f"{PROVIDERS}/azure", headers=admin)).status_code == 404  # nothing stored
    made = await _create(client, admin, "azure", api_base="https://acme.openai.azure.com/", api_key=KEY)
    assert made.status_code == 201, made.text
    out = made.json()
    assert (out["provider_type"], out["api_base"], out["pricing_source"]) == (
        "azure", "https://acme.openai.azure.com", "azure"
    )  # fmt: skip


async def test_bedrock_takes_a_region_and_an_aws_key_pair(
    client: httpx.AsyncClient, admin: dict[str, str], container: Container
) -> None:
    _needs_type("bedrock")
    keys = {
        "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
        "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxR",
    }
    _error(await _create(client, admin, "bedrock", credentials=keys), 400, "region")
    resp = await _create(client, admin, "bedrock", region="eu-central-1", credentials=keys)
    assert resp.status_code == 201, resp.text
    out = resp.json()
    assert (out["provider_type"], out["api_base"], out["pricing_source"]) == (
        "bedrock", "https://bedrock-runtime.eu-central-1.amazonaws.com", "aws"
    )  # fmt: skip
    assert all(secret not in resp.text for secret in keys.values())
    stored = await container.secrets.get_fields(out["api_key_ref"])
    assert {k: stored[k] for k in keys} == keys and stored.get("region", "eu-central-1") == "eu-central-1"


@pytest.mark.parametrize(
    ("template", "body", "status", "param"),
    [
        ("skynet", {"api_key": KEY}, 404, "template_id"),
        ("Not A Slug", {}, 400, "template_id"),
        ("openai", {"region": "us-east-1"}, 400, "region"),
        ("bedrock", {"region": "us-east-1.evil.example/"}, 400, "region"),
        ("openai", {"id": "Bad Id"}, 400, "id"),
        ("openai", {"template": "groq"}, 400, "template"),
        ("openai", {"api_base": "http://169.254.169.254/latest"}, 400, "api_base"),
        ("huggingface", {"api_base": "http://metadata.google.internal"}, 400, "api_base"),
        ("openai", {"credentials": {"aws_secret_access_key": "x"}}, 400, "credentials.aws_secret_access_key"),
        ("openai", {"api_key": KEY, "credentials": {"api_key": KEY}}, 400, "credentials.api_key"),
    ],
)
async def test_bad_input_is_a_4xx_naming_the_field_and_stores_nothing(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    template: str,
    body: dict[str, Any],
    status: int,
    param: str,
) -> None:
    err = _error(await _create(client, admin, template, **body), status, param)
    assert KEY not in err["message"]
    assert (await client.get(PROVIDERS, headers=admin)).json()["total"] == 0


async def test_the_credential_limit_counts_what_the_caller_sent_not_the_region_the_template_adds(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """16 credential fields is the documented most (OpenAPI ``maxProperties``); Bedrock's template
    adds the region as one more, which must not turn a body within the limit into "at most 16
    items": what is wrong with 16 fields is that Bedrock takes only four of them, so that is said."""
    _needs_type("bedrock")
    keys = {"aws_access_key_id": "AKIAIOSFODNN7EXAMPLE", "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG"}
    limit = (await client.get("/openapi.json")).json()["components"]["schemas"]["ProviderFromTemplate"]
    most = limit["properties"]["credentials"]["anyOf"][0]["maxProperties"]
    keys |= {f"extra_{n}": "x" for n in range(most - len(keys))}
    sixteen = await _create(client, admin, "bedrock", region="us-east-1", credentials=keys)
    err = _error(sixteen, 400, "credentials.extra_0")
    assert err["message"] == (
        "credentials.extra_0: unknown credential field "
        "(expected: aws_access_key_id, aws_secret_access_key, aws_session_token, region)"
    ), err
    over = await _create(client, admin, "bedrock", region="us-east-1", credentials=keys | {"one_more": "x"})
    assert _error(over, 400, "credentials")["message"] == (
        f"credentials: Dictionary should have at most {most} items after validation, not more"
    )
    assert (await client.get(PROVIDERS, headers=admin)).json()["total"] == 0


@pytest.mark.parametrize("template_id", ["bedrock", "azure", "huggingface", "openai"])
@pytest.mark.parametrize("api_base", ["/", "///", " / "])
async def test_an_api_base_of_only_slashes_is_refused_up_front_naming_it(
    client: httpx.AsyncClient, admin: dict[str, str], template_id: str, api_base: str
) -> None:
    """A base of "/" passed the length check, then became an empty base once its trailing slash
    went (or the template's bare "/v1"); now it is refused as what it is, with every other bad field
    of the body in the same answer."""
    _needs_type(template_id)
    region = {"region": "us-east-1"} if template_id == "bedrock" else {}
    resp = await _create(client, admin, template_id, api_base=api_base, api_key=KEY, **region)
    err = _error(resp, 400, "api_base")
    assert err["message"] == f"api_base: must be an http or https URL, not {api_base.strip()!r}", err
    both = await _create(client, admin, template_id, api_base=api_base, rate_limit_rpm=0)
    assert _error(both, 400, "api_base")["message"] == (
        f"api_base: must be an http or https URL, not {api_base.strip()!r}; "
        "rate_limit_rpm: Input should be greater than or equal to 1"
    )
    assert (await client.get(PROVIDERS, headers=admin)).json()["total"] == 0


async def test_a_url_the_template_suffix_takes_past_its_column_is_named(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """The provider a template's values make is validated again: a URL with its suffix added."""
    _needs_type("huggingface")
    long = "https://" + "h" * 245  # 253 characters: the template's /v1 makes 256, one too many
    one = _error(
        await _create(client, admin, "huggingface", api_base=long + "/", api_key=KEY), 400, "api_base"
    )
    assert one["message"] == "api_base: String should have at most 255 characters", one
    assert (await client.get(PROVIDERS, headers=admin)).json()["total"] == 0


async def test_price_id_can_be_set_on_any_provider_and_must_be_known(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    base = {
        "id": "fw",
        "display_name": "Fireworks",
        "provider_type": "custom",
        "api_base": "https://x.example/v1",
    }
    _error(await client.post(PROVIDERS, json={**base, "price_id": "nope"}, headers=admin), 400, "price_id")
    made = await client.post(PROVIDERS, json={**base, "price_id": "fireworks"}, headers=admin)
    assert made.status_code == 201 and made.json()["pricing_source"] == "fireworks", made.text
    cleared = await client.patch(f"{PROVIDERS}/fw", json={"price_id": None}, headers=admin)
    assert cleared.status_code == 200 and cleared.json()["pricing_source"] is None  # custom: guessed
    bad = await client.patch(f"{PROVIDERS}/fw", json={"price_id": "nope"}, headers=admin)
    _error(bad, 400, "price_id")


@pytest.mark.parametrize("roles", [("tenant_admin",), ("user",)])
async def test_only_platform_admins_use_templates(
    client: httpx.AsyncClient, make_token: Callable[..., str], roles: tuple[str, ...]
) -> None:
    headers = {"Authorization": f"Bearer {make_token(sub='ann', tenant='acme', roles=roles)}"}
    assert (await client.get(TEMPLATES, headers=headers)).status_code == 403
    assert (await _create(client, headers, "groq", api_key=KEY)).status_code == 403
    assert (await client.get(TEMPLATES)).status_code == 401
