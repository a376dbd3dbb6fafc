"""Bad input to the admin API: always a 4xx OpenAI-shaped error naming the field, never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

PROVIDERS = "/api/v2/admin/providers"
MODELS = "/api/v2/admin/models"
GOOD_PROVIDER = {
    "id": "local",
    "display_name": "Local",
    "provider_type": "custom",
    "api_base": "http://127.0.0.1:9/v1",
}


def _error(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    return err


async def _provider(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    resp = await client.post(PROVIDERS, json=GOOD_PROVIDER, headers=admin)
    assert resp.status_code == 201, resp.text


async def test_malformed_json_is_400(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    resp = await client.post(
        PROVIDERS, content=b'{"id": "x", ', headers={**admin, "Content-Type": "application/json"}
    )
    err = _error(resp, 400)
    assert "malformed JSON" in err["message"]


@pytest.mark.parametrize(
    ("patch", "param"),
    [
        ({"id": "Has Spaces"}, "id"),
        ({"id": 42}, "id"),
        ({"provider_type": "skynet"}, "provider_type"),
        ({"rate_limit_rpm": -5}, "rate_limit_rpm"),
        ({"rate_limit_rpm": "many"}, "rate_limit_rpm"),
        ({"display_name": ""}, "display_name"),
        ({"api_base": "ftp://example.com"}, "api_base"),
        ({"api_base": "http://169.254.169.254/latest"}, "api_base"),
        ({"api_base": "http://[fd00:ec2::254]/v1"}, "api_base"),
        ({"api_base": "http://metadata.google.internal/v1"}, "api_base"),
        ({"api_base": "http://user:pw@example.com/v1"}, "api_base"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
async def test_bad_provider_fields_name_the_field(
    client: httpx.AsyncClient, admin: dict[str, str], patch: dict[str, Any], param: str
) -> None:
    err = _error(await client.post(PROVIDERS, json={**GOOD_PROVIDER, **patch}, headers=admin), 400)
    assert err["param"] == param
    assert (await client.get(PROVIDERS, headers=admin)).json()["total"] == 0


async def test_missing_required_field(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    body = {k: v for k, v in GOOD_PROVIDER.items() if k != "api_base"}
    err = _error(await client.post(PROVIDERS, json=body, headers=admin), 400)
    assert err["param"] == "api_base"
    assert "required" in err["message"]


async def test_every_bad_field_is_named_not_only_the_first(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """It said "display_name: field required (and 2 more error(s))": a user fixed one field a try."""
    body = {**GOOD_PROVIDER, "rate_limit_rpm": -5, "provider_type": "skynet"}
    del body["display_name"]
    err = _error(await client.post(PROVIDERS, json=body, headers=admin), 400)
    assert err["param"] == "display_name", "the first bad field, as before"
    message = err["message"]
    assert message.startswith("display_name: field required; ") and "more error" not in message
    assert (
        "provider_type: Input should be " in message and "rate_limit_rpm: Input should be greater" in message
    )
    await _provider(client, admin)
    bad_model = {"provider_id": "local", "external_id": "m1", "model_type": "image", "ctx_length": 0}
    err = _error(await client.post(MODELS, json=bad_model, headers=admin), 400)
    assert err["param"] == "model_type" and "ctx_length: Input should be greater" in err["message"]
    assert err["message"].startswith("model_type: Input should be "), err["message"]


async def test_duplicate_provider_is_409(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await _provider(client, admin)
    err = _error(await client.post(PROVIDERS, json=GOOD_PROVIDER, headers=admin), 409)
    assert err["param"] == "id"


async def test_unknown_ids_are_404(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for method, path in [
        ("GET", f"{PROVIDERS}/nope"),
        ("PATCH", f"{PROVIDERS}/nope"),
        ("DELETE", f"{PROVIDERS}/nope"),
        ("POST", f"{PROVIDERS}/nope/sync"),
        ("POST", f"{PROVIDERS}/nope/test"),
        ("GET", f"{MODELS}/nope/some-model"),
        ("PATCH", f"{MODELS}/nope/some-model"),
    ]:
        resp = await client.request(method, path, headers=admin, json={} if method == "PATCH" else None)
        _error(resp, 404)


async def test_oversized_body_is_413(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    huge = {**GOOD_PROVIDER, "display_name": "x" * (5 * 1024 * 1024)}
    err = _error(await client.post(PROVIDERS, json=huge, headers=admin), 413)
    assert err["code"] == "payload_too_large"


async def test_oversized_chunked_body_is_413(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    async def chunks() -> Any:
        for _ in range(6):
            yield b"x" * (1024 * 1024)

    resp = await client.post(
        PROVIDERS, content=chunks(), headers={**admin, "Content-Type": "application/json"}
    )
    _error(resp, 413)


@pytest.mark.parametrize(
    ("patch", "param"),
    [
        ({"priority": 101}, "priority"),
        ({"priority": -1}, "priority"),
        ({"priority": "high"}, "priority"),
        ({"pricing_input": -0.5}, "pricing_input"),
        ({"pricing_output": "free"}, "pricing_output"),
        ({"cost_tier": "cheap"}, "cost_tier"),
        ({"capabilities": ["telepathy"]}, "capabilities.0"),
        ({"model_type": "image"}, "model_type"),
        ({"ctx_length": 0}, "ctx_length"),
        ({"external_id": ""}, "external_id"),
    ],
)
async def test_bad_model_fields_name_the_field(
    client: httpx.AsyncClient, admin: dict[str, str], patch: dict[str, Any], param: str
) -> None:
    await _provider(client, admin)
    body = {"provider_id": "local", "external_id": "m1", **patch}
    err = _error(await client.post(MODELS, json=body, headers=admin), 400)
    assert err["param"] == param
    resp = await client.post(MODELS, json={"provider_id": "local", "external_id": "m2"}, headers=admin)
    assert resp.status_code == 201
    err = _error(await client.patch(f"{MODELS}/local/m2", json=patch, headers=admin), 400)
    assert err["param"] == param


async def test_duplicate_and_orphan_models(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await _provider(client, admin)
    body = {"provider_id": "local", "external_id": "org/m1:free"}
    assert (await client.post(MODELS, json=body, headers=admin)).status_code == 201
    _error(await client.post(MODELS, json=body, headers=admin), 409)
    err = _error(await client.post(MODELS, json={**body, "provider_id": "ghost"}, headers=admin), 404)
    assert err["param"] == "provider_id"


@pytest.mark.parametrize(
    "query",
    ["per_page=0", "per_page=501", "page=0", "cost_tier=cheap", "capability=telepathy", "available=maybe"],
)
async def test_bad_list_filters(client: httpx.AsyncClient, admin: dict[str, str], query: str) -> None:
    err = _error(await client.get(f"{MODELS}?{query}", headers=admin), 400)
    assert err["param"].split(".")[0] == query.split("=")[0]


async def test_unknown_route_and_method(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    _error(await client.get("/api/v2/admin/nothing", headers=admin), 404)
    _error(await client.put(PROVIDERS, headers=admin), 405)
