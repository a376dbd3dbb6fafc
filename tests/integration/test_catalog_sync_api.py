"""Provider sync through the admin API, against a local upstream in each provider's wire format."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.upstreams.models_server import ModelsUpstream, make_anthropic_models
from turnout.container import Container
from turnout.store.models import Base

PROVIDERS = "/api/v2/admin/providers"
MODELS = "/api/v2/admin/models"
KEY = "sk-test-Zq9vR2mXw8LpT4kY7nB3"


@pytest.fixture
async def upstream() -> AsyncIterator[ModelsUpstream]:
    server = ModelsUpstream(count=60, api_key=KEY)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def _add(
    client: httpx.AsyncClient, admin: dict[str, str], pid: str, ptype: str, base: str, **kw: Any
) -> None:
    body = {
        "id": pid,
        "display_name": pid.title(),
        "provider_type": ptype,
        "api_base": base,
        "api_key": KEY,
        **kw,
    }
    resp = await client.post(PROVIDERS, json=body, headers=admin)
    assert resp.status_code == 201, resp.text


async def _sync(
    client: httpx.AsyncClient, admin: dict[str, str], pid: str, status: int = 200
) -> dict[str, Any]:
    resp = await client.post(f"{PROVIDERS}/{pid}/sync", headers=admin)
    assert resp.status_code == status, resp.text
    return resp.json()  # type: ignore[no-any-return]


async def _model(client: httpx.AsyncClient, admin: dict[str, str], model_id: str) -> dict[str, Any]:
    resp = await client.get(f"{MODELS}/{model_id}", headers=admin)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


async def test_openrouter_sync_imports_prices_capabilities_and_tiers(
    client: httpx.AsyncClient, admin: dict[str, str], upstream: ModelsUpstream
) -> None:
    await _add(client, admin, "openrouter", "openrouter", f"{upstream.base_url}/api/v1")
    result = await _sync(client, admin, "openrouter")
    assert result["models_discovered"] == 60
    assert result["models_added"] == 60
    assert result["models_updated"] == result["models_removed"] == 0

    gpt = await _model(client, admin, "openrouter/openai/gpt-4o")
    assert gpt["pricing_input"] == pytest.approx(2.5) and gpt["pricing_output"] == pytest.approx(10.0)
    assert gpt["ctx_length"] == 128000
    assert {"text", "vision", "function_calling", "long_context"} <= set(gpt["capabilities"])
    assert gpt["cost_tier"] == "standard"
    free = await _model(client, admin, "openrouter/meta-llama/llama-3.3-70b-instruct:free")
    assert free["cost_tier"] == "free"
    assert (await _model(client, admin, "openrouter/openai/o1-pro"))["cost_tier"] == "premium"
    assert "code" in (await _model(client, admin, "openrouter/mistralai/codestral-2501"))["capabilities"]

    provider = (await client.get(f"{PROVIDERS}/openrouter", headers=admin)).json()
    assert provider["model_count"] == 60 and provider["last_synced"] is not None
    assert provider["last_sync_error"] is None


async def test_resync_updates_removes_and_keeps_admin_edits(
    client: httpx.AsyncClient, admin: dict[str, str], upstream: ModelsUpstream
) -> None:
    await _add(client, admin, "openrouter", "openrouter", f"{upstream.base_url}/api/v1")
    await _sync(client, admin, "openrouter")
    again = await _sync(client, admin, "openrouter")
    assert (again["models_added"], again["models_updated"], again["models_removed"]) == (0, 0, 0)
    assert again["models_unchanged"] == 60

    edit = {"priority": 95, "capabilities": ["text", "code"], "display_name": "Our GPT", "domains": ["legal"]}
    resp = await client.patch(f"{MODELS}/openrouter/openai/gpt-4o", json=edit, headers=admin)
    assert resp.status_code == 200, resp.text

    models = upstream.openrouter_models
    gone = [m["id"] for m in models[-2:]]
    gpt = next(m for m in models if m["id"] == "openai/gpt-4o")
    new_price = {**gpt["pricing"], "prompt": "0.000002"}
    changed = {**gpt, "name": "OpenAI: GPT-4o (2025)", "context_length": 256000, "pricing": new_price}
    upstream.openrouter_models = [changed if m is gpt else m for m in models[:-2]]

    third = await _sync(client, admin, "openrouter")
    assert (third["models_added"], third["models_updated"], third["models_removed"]) == (0, 1, 2)
    after = await _model(client, admin, "openrouter/openai/gpt-4o")
    assert after["priority"] == 95 and after["capabilities"] == ["text", "code"]
    assert after["display_name"] == "Our GPT" and after["domains"] == ["legal"]
    assert after["ctx_length"] == 256000 and after["pricing_input"] == pytest.approx(2.0)
    for model_id in gone:
        vanished = await _model(client, admin, f"openrouter/{model_id}")
        assert vanished["is_available"] is False
    listed = (
        await client.get(f"{MODELS}?provider=openrouter&available=true&per_page=500", headers=admin)
    ).json()
    assert listed["total"] == 58

    upstream.openrouter_models = models  # they come back
    fourth = await _sync(client, admin, "openrouter")
    assert fourth["models_updated"] == 3 and fourth["models_removed"] == 0
    assert (await _model(client, admin, f"openrouter/{gone[0]}"))["is_available"] is True


@pytest.mark.parametrize(
    ("ptype", "path", "expected_ids"),
    [
        ("openai", "/v1", {"openai/gpt-4o", "openai/text-embedding-3-small"}),
        ("custom", "/v1", {"custom/gpt-4o"}),
        ("anthropic", "/anthropic", {"anthropic/claude-sonnet-4-20250514"}),
        ("ollama", "", {"ollama/llama3.1:8b", "ollama/nomic-embed-text:latest"}),
        ("azure", "/openai", set()),
    ],
)
async def test_each_wire_format_syncs(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    upstream: ModelsUpstream,
    ptype: str,
    path: str,
    expected_ids: set[str],
) -> None:
    await _add(client, admin, ptype, ptype, upstream.base_url + path, api_version="2024-10-21")
    result = await _sync(client, admin, ptype)
    assert result["models_discovered"] > 0
    listed = (await client.get(f"{MODELS}?provider={ptype}&per_page=500", headers=admin)).json()
    ids = {m["id"] for m in listed["items"]}
    assert listed["total"] == result["models_discovered"]
    assert expected_ids <= ids
    if ptype == "ollama":
        embed = await _model(client, admin, "ollama/nomic-embed-text:latest")
        assert embed["model_type"] == "embedding"
    if ptype == "openai":
        gpt = await _model(client, admin, "openai/gpt-4o")
        assert gpt["pricing_input"] is not None and gpt["ctx_length"], "genai-prices fills what OpenAI omits"


async def test_anthropic_pagination_collects_every_page(
    client: httpx.AsyncClient, admin: dict[str, str], upstream: ModelsUpstream
) -> None:
    upstream.anthropic_models = make_anthropic_models(2345)
    await _add(client, admin, "claude", "anthropic", f"{upstream.base_url}/anthropic")
    result = await _sync(client, admin, "claude")
    assert result["models_discovered"] == 2345
    pages = [r for r in upstream.requests if r["path"] == "/anthropic/v1/models"]
    assert len(pages) == 3 and pages[1]["query"]["after_id"] == "claude-test-00999"


async def test_failed_sync_keeps_catalog_and_records_error(
    client: httpx.AsyncClient, admin: dict[str, str], upstream: ModelsUpstream
) -> None:
    await _add(client, admin, "openrouter", "openrouter", f"{upstream.base_url}/api/v1")
    await _sync(client, admin, "openrouter")
    upstream.inject("status", status=503)
    err = (await _sync(client, admin, "openrouter", status=502))["error"]
    assert "503" in err["message"]
    provider = (await client.get(f"{PROVIDERS}/openrouter", headers=admin)).json()
    assert "503" in provider["last_sync_error"]
    listed = (await client.get(f"{MODELS}?provider=openrouter&available=true", headers=admin)).json()
    assert listed["total"] == 60
    await _sync(client, admin, "openrouter")
    assert (await client.get(f"{PROVIDERS}/openrouter", headers=admin)).json()["last_sync_error"] is None


async def test_wrong_key_error_never_echoes_the_key(
    client: httpx.AsyncClient, admin: dict[str, str], upstream: ModelsUpstream
) -> None:
    body = {"id": "oai", "display_name": "OAI", "provider_type": "openai"}
    body |= {"api_base": f"{upstream.base_url}/v1", "api_key": "sk-wrong-Hj3kL9pQ2wE5rT8y"}
    assert (await client.post(PROVIDERS, json=body, headers=admin)).status_code == 201
    resp = await client.post(f"{PROVIDERS}/oai/sync", headers=admin)
    assert resp.status_code == 502 and "401" in resp.json()["error"]["message"]
    assert "Hj3kL9pQ2wE5rT8y" not in resp.text
    provider = await client.get(f"{PROVIDERS}/oai", headers=admin)
    assert "Hj3kL9pQ2wE5rT8y" not in provider.text


async def test_connection_test_reports_ok_and_failure(
    client: httpx.AsyncClient, admin: dict[str, str], upstream: ModelsUpstream
) -> None:
    await _add(client, admin, "oai", "openai", f"{upstream.base_url}/v1")
    ok = (await client.post(f"{PROVIDERS}/oai/test", headers=admin)).json()
    assert ok["ok"] is True and ok["latency_ms"] >= 0
    assert ok["models_found"] == (await _sync(client, admin, "oai"))["models_discovered"]
    upstream.inject("status", status=500)
    bad = (await client.post(f"{PROVIDERS}/oai/test", headers=admin)).json()
    assert bad["ok"] is False and bad["status"] == 500 and bad["error"]


async def test_key_is_stored_only_in_secret_store(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    upstream: ModelsUpstream,
    container: Container,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await _add(client, admin, "openrouter", "openrouter", f"{upstream.base_url}/api/v1")
    created = (await client.get(f"{PROVIDERS}/openrouter", headers=admin)).json()
    assert created["api_key_ref"] == "secret/llm/openrouter"
    assert created["api_key_hint"] == "…" + KEY[-4:]
    await _sync(client, admin, "openrouter")  # the upstream demands the key: it was retrieved
    responses = [
        await client.get(PROVIDERS, headers=admin),
        await client.get(f"{MODELS}?per_page=500", headers=admin),
    ]
    assert all(KEY not in r.text for r in responses)
    async with container.sessions() as session:
        for table in Base.metadata.sorted_tables:
            for row in (await session.execute(select(table))).all():
                assert KEY not in repr(row) and KEY.encode() not in b"".join(
                    v for v in row if isinstance(v, bytes)
                )
    assert KEY not in capsys.readouterr().err


async def test_deactivated_provider_refuses_sync(
    client: httpx.AsyncClient, admin: dict[str, str], upstream: ModelsUpstream
) -> None:
    await _add(client, admin, "openrouter", "openrouter", f"{upstream.base_url}/api/v1")
    gone = await client.delete(f"{PROVIDERS}/openrouter", headers=admin)
    assert gone.status_code == 200 and gone.json()["is_active"] is False
    err = (await _sync(client, admin, "openrouter", status=409))["error"]
    assert err["code"] == "provider_inactive"
    back = await client.patch(f"{PROVIDERS}/openrouter", json={"is_active": True}, headers=admin)
    assert back.json()["is_active"] is True
    await _sync(client, admin, "openrouter")
