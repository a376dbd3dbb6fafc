"""Providers whose keys live in a real OpenBao (Vault KV v2) server; failures close, never fall back."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from tests.fixtures.openbao import OpenBao, openbao_fresh, stop_openbao  # noqa: F401
from tests.upstreams.models_server import ModelsUpstream
from turnout.app import create_app
from turnout.config import Settings
from turnout.container import Container
from turnout.store.migrate import upgrade

pytestmark = pytest.mark.vault
PROVIDERS = "/api/v2/admin/providers"
KEY = "sk-or-v1-VaultKept9Xq2Lm7Rt4"


async def _client_for(settings: Settings) -> tuple[Container, httpx.AsyncClient]:
    container = Container.build(settings)
    await upgrade(container.engine)
    app = create_app(container=container)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://turnout.test")
    return container, client


@pytest.fixture
async def upstream() -> AsyncIterator[ModelsUpstream]:
    server = ModelsUpstream(count=20, api_key=KEY)
    await server.start()
    yield server
    await server.stop()


def _vault_settings(settings: Settings, addr: str, token: str) -> Settings:
    """``settings`` with provider keys kept in the Vault at ``addr``, reached with ``token``."""
    return settings.model_copy(
        update={"secret_backend": "vault", "vault_addr": addr, "vault_token": SecretStr(token)}
    )


@pytest.fixture
async def vault_app(settings: Settings, openbao_fresh: OpenBao) -> AsyncIterator[httpx.AsyncClient]:  # noqa: F811
    vault_settings = _vault_settings(settings, openbao_fresh.addr, openbao_fresh.token)
    container, client = await _client_for(vault_settings)
    try:
        yield client
    finally:
        await client.aclose()
        await container.aclose()


def _body(upstream: ModelsUpstream, pid: str = "openrouter") -> dict[str, str]:
    return {"id": pid, "display_name": "OpenRouter", "provider_type": "openrouter",
            "api_base": f"{upstream.base_url}/api/v1", "api_key": KEY}  # fmt: skip


async def test_key_lives_in_kv_v2_and_sync_uses_it(
    vault_app: httpx.AsyncClient,
    admin: dict[str, str],
    upstream: ModelsUpstream,
    openbao_fresh: OpenBao,  # noqa: F811
) -> None:
    created = await vault_app.post(PROVIDERS, json=_body(upstream), headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["api_key_ref"] == "secret/llm/openrouter" and KEY not in created.text
    status, stored = openbao_fresh.api("GET", "secret/data/llm/openrouter")
    assert status == 200 and stored["data"]["data"]["api_key"] == KEY
    synced = await vault_app.post(f"{PROVIDERS}/openrouter/sync", headers=admin)
    assert synced.status_code == 200 and synced.json()["models_added"] == 20


async def test_sealed_vault_fails_closed_with_503(
    vault_app: httpx.AsyncClient,
    admin: dict[str, str],
    upstream: ModelsUpstream,
    openbao_fresh: OpenBao,  # noqa: F811
) -> None:
    assert (await vault_app.post(PROVIDERS, json=_body(upstream), headers=admin)).status_code == 201
    assert (await vault_app.post(f"{PROVIDERS}/openrouter/sync", headers=admin)).status_code == 200
    calls_before = len(upstream.requests)
    openbao_fresh.seal()

    resp = await vault_app.post(f"{PROVIDERS}/openrouter/sync", headers=admin)
    assert resp.status_code == 503
    assert "sealed" in resp.json()["error"]["message"]
    assert len(upstream.requests) == calls_before, "no provider call without the key"
    provider = (await vault_app.get(f"{PROVIDERS}/openrouter", headers=admin)).json()
    assert "sealed" in provider["last_sync_error"]
    assert provider["model_count"] == 20, "the last known catalog stays"

    create = await vault_app.post(PROVIDERS, json=_body(upstream, "other"), headers=admin)
    assert create.status_code == 503
    assert (await vault_app.get(f"{PROVIDERS}/other", headers=admin)).status_code == 404


async def test_unreachable_vault_fails_closed_with_503(
    vault_app: httpx.AsyncClient,
    admin: dict[str, str],
    upstream: ModelsUpstream,
    openbao_fresh: OpenBao,  # noqa: F811
) -> None:
    assert (await vault_app.post(PROVIDERS, json=_body(upstream), headers=admin)).status_code == 201
    stop_openbao(openbao_fresh)
    resp = await vault_app.post(f"{PROVIDERS}/openrouter/sync", headers=admin)
    assert resp.status_code == 503
    assert "unreachable" in resp.json()["error"]["message"]
    test = (await vault_app.post(f"{PROVIDERS}/openrouter/test", headers=admin)).json()
    assert test["ok"] is False and "unreachable" in test["error"]


async def test_denied_token_fails_closed_with_503(
    settings: Settings,
    admin: dict[str, str],
    upstream: ModelsUpstream,
    openbao_fresh: OpenBao,  # noqa: F811
) -> None:
    denied = _vault_settings(settings, openbao_fresh.addr, openbao_fresh.create_deny_token())
    container, client = await _client_for(denied)
    try:
        resp = await client.post(PROVIDERS, json=_body(upstream), headers=admin)
        assert resp.status_code == 503
        assert "denied" in resp.json()["error"]["message"]
        assert (await client.get(f"{PROVIDERS}/openrouter", headers=admin)).status_code == 404
    finally:
        await client.aclose()
        await container.aclose()


async def test_a_wrong_token_is_said_at_start_up_and_by_readyz(
    settings: Settings,
    openbao_fresh: OpenBao,  # noqa: F811
) -> None:
    """Before, a wrong Vault token was found only by the first call that needed a key."""
    wrong = _vault_settings(settings, openbao_fresh.addr, "s.not-a-token-anyone-issued")
    container, client = await _client_for(wrong)
    try:
        with capture_logs() as logs:
            await container.start()
        (said,) = [e for e in logs if e["event"] == "secrets.unavailable"]
        assert said["log_level"] == "error" and "TURNOUT_VAULT_TOKEN" in said["error"], said
        assert "not-a-token" not in str(said), "the token is never logged"
        ready = await client.get("/readyz")
        assert ready.status_code == 503, ready.text
        checks = ready.json()["checks"]
        assert checks["database"] == "ok" and "TURNOUT_VAULT_TOKEN" in checks["secret_store"], checks
    finally:
        await client.aclose()
        await container.aclose()


async def test_readyz_says_a_sealed_vault(
    vault_app: httpx.AsyncClient,
    openbao_fresh: OpenBao,  # noqa: F811
) -> None:
    ready = await vault_app.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["secret_store"] == "ok", ready.text
    openbao_fresh.seal()
    sealed = await vault_app.get("/readyz")
    assert sealed.status_code == 503 and "sealed" in sealed.json()["checks"]["secret_store"], sealed.text
