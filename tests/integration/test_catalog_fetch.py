"""fetch_models / test_connection against the local fake provider (tests.upstreams.models_server)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import aiohttp
import orjson
import pytest

from tests.upstreams.models_server import ModelsUpstream, make_anthropic_models, make_openrouter_models
from turnout.catalog import fetch
from turnout.catalog.fetch import (
    ProviderConnection,
    ProviderSyncError,
    decode_page,
    fetch_models,
    models_url,
)
from turnout.errors import UpstreamError
from turnout.modelinfo.pricing import lookup_price
from turnout.providers.credentials import Credentials
from turnout.providers.registry import WIRE_FORMATS, spec_for

KEY = "sk-test-5ecret-key-0123456789"
WRONG = "sk-wrong-key-9876543210"


@pytest.fixture
async def upstream() -> AsyncIterator[ModelsUpstream]:
    server = ModelsUpstream(api_key=KEY, hang_s=10)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def conn(upstream: ModelsUpstream, provider_type: str, suffix: str = "", **kw: str) -> ProviderConnection:
    return ProviderConnection(provider_type, upstream.base_url + suffix, **kw)


async def test_openai(upstream: ModelsUpstream, session: aiohttp.ClientSession) -> None:
    found = await fetch_models(session, conn(upstream, "openai", "/v1"), KEY, timeout_s=5)
    assert [m.external_id for m in found] == [
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1",
        "o3-mini",
        "text-embedding-3-small",
    ]
    assert upstream.requests[-1]["headers"]["Authorization"] == f"Bearer {KEY}"
    gpt = found[0]
    assert (gpt.pricing_input, gpt.pricing_output, gpt.ctx_length) == (Decimal("2.5"), Decimal(10), 128000)


async def test_openrouter(session: aiohttp.ClientSession) -> None:
    server = ModelsUpstream(count=500)  # OpenRouter's list needs no key
    await server.start()
    try:
        found = await fetch_models(
            session, ProviderConnection("openrouter", f"{server.base_url}/api/v1"), None, timeout_s=5
        )
    finally:
        await server.stop()
    assert len(found) == 500 and "Authorization" not in server.requests[-1]["headers"]
    by_id = {m.external_id: m for m in found}
    assert (
        by_id["openai/gpt-4o"].pricing_input == Decimal("2.5")
        and by_id["openai/gpt-4o"].cost_tier == "standard"
    )
    assert by_id["openrouter/auto"].pricing_input is None
    assert by_id["meta-llama/llama-3.3-70b-instruct:free"].cost_tier == "free"
    assert sum("vision" in m.capabilities for m in found) > 100  # fmt: skip


async def test_anthropic_follows_pages(upstream: ModelsUpstream, session: aiohttp.ClientSession) -> None:
    upstream.anthropic_models = make_anthropic_models(8)
    upstream.anthropic_page_cap = 3  # the server hands out at most 3 per page
    found = await fetch_models(session, conn(upstream, "anthropic"), KEY, timeout_s=5)
    assert [m.external_id for m in found] == [f"claude-test-{i:05d}" for i in range(8)]
    pages = [r for r in upstream.requests if r["path"] == "/v1/models"]
    assert [r["query"].get("after_id") for r in pages] == [None, "claude-test-00002", "claude-test-00005"]
    assert all(r["query"]["limit"] == "1000" for r in pages)
    assert (
        pages[0]["headers"]["x-api-key"] == KEY and pages[0]["headers"]["anthropic-version"] == "2023-06-01"
    )


async def test_anthropic_large_catalog_and_v1_base(
    upstream: ModelsUpstream, session: aiohttp.ClientSession
) -> None:
    upstream.anthropic_models = make_anthropic_models(2500)
    found = await fetch_models(session, conn(upstream, "anthropic", "/v1"), KEY, timeout_s=5)
    assert len(found) == 2500 and len(upstream.requests) == 3


async def test_anthropic_defaults(upstream: ModelsUpstream, session: aiohttp.ClientSession) -> None:
    found = await fetch_models(session, conn(upstream, "anthropic"), KEY, timeout_s=5)
    opus = found[0]
    assert (opus.external_id, opus.display_name, opus.cost_tier) == (
        "claude-opus-4-1-20250805",
        "Claude Opus 4.1",
        "premium",
    )


async def test_ollama_and_azure(upstream: ModelsUpstream, session: aiohttp.ClientSession) -> None:
    local = await fetch_models(session, conn(upstream, "ollama", "/v1"), None, timeout_s=5)  # /v1 is dropped
    assert {m.external_id: m.model_type for m in local}["nomic-embed-text:latest"] == "embedding"
    assert all(m.cost_tier == "free" for m in local)
    azure = await fetch_models(session, conn(upstream, "azure", api_version="2024-10-21"), KEY, timeout_s=5)
    assert [m.external_id for m in azure] == ["gpt-4o-2024-08-06", "text-embedding-3-large"]
    assert upstream.requests[-1]["query"] == {"api-version": "2024-10-21"}
    assert upstream.requests[-1]["headers"]["api-key"] == KEY


async def test_models_can_change_between_syncs(
    upstream: ModelsUpstream, session: aiohttp.ClientSession
) -> None:
    c = conn(upstream, "openai", "/v1")
    before = {m.external_id for m in await fetch_models(session, c, KEY, timeout_s=5)}
    upstream.openai_models = [m for m in upstream.openai_models if m["id"] != "gpt-4.1"]
    upstream.openai_models.append({"id": "gpt-5", "object": "model", "created": 1, "owned_by": "system"})
    after = {m.external_id for m in await fetch_models(session, c, KEY, timeout_s=5)}
    assert before - after == {"gpt-4.1"} and after - before == {"gpt-5"}


@pytest.mark.parametrize(("provider_type", "suffix"), [("openai", "/v1"), ("anthropic", ""), ("azure", "")])
@pytest.mark.parametrize("sent", [WRONG, None])
async def test_wrong_key_is_401_and_never_leaks(
    upstream: ModelsUpstream,
    session: aiohttp.ClientSession,
    provider_type: str,
    suffix: str,
    sent: str | None,
) -> None:
    with pytest.raises(ProviderSyncError) as info:
        await fetch_models(session, conn(upstream, provider_type, suffix), sent, timeout_s=5)
    err = info.value
    assert isinstance(err, UpstreamError) and err.status == 401
    assert "HTTP 401" in err.message and "/models" in err.message
    assert WRONG not in err.message and KEY not in err.message and WRONG not in str(err)
    if provider_type == "openai":  # the provider's own message is kept
        assert "Incorrect API key provided" in err.message or "didn't provide an API key" in err.message


async def test_server_error(upstream: ModelsUpstream, session: aiohttp.ClientSession) -> None:
    upstream.inject("status", status=500)
    with pytest.raises(ProviderSyncError, match=r"HTTP 500: injected failure") as info:
        await fetch_models(session, conn(upstream, "anthropic"), KEY, timeout_s=5)
    assert info.value.status == 500
    assert (
        len(await fetch_models(session, conn(upstream, "anthropic"), KEY, timeout_s=5)) == 5
    )  # next one is fine


async def test_timeout(upstream: ModelsUpstream, session: aiohttp.ClientSession) -> None:
    upstream.inject("hang")
    with pytest.raises(ProviderSyncError, match=r"no answer within 0\.3s") as info:
        await fetch_models(session, conn(upstream, "ollama"), None, timeout_s=0.3)
    assert info.value.status is None


async def test_dropped_connection(upstream: ModelsUpstream, session: aiohttp.ClientSession) -> None:
    upstream.inject("close", times=2)  # aiohttp retries a dropped request once
    with pytest.raises(ProviderSyncError, match="connection failed"):
        await fetch_models(session, conn(upstream, "ollama"), None, timeout_s=5)


async def test_unexpected_responses(upstream: ModelsUpstream, session: aiohttp.ClientSession) -> None:
    upstream.inject("garbage")
    with pytest.raises(ProviderSyncError, match=r"unexpected response \(not JSON\)") as info:
        await fetch_models(session, conn(upstream, "ollama"), None, timeout_s=5)
    assert info.value.status == 200
    wrong_shape = conn(
        upstream, "openai", models_endpoint="/api/tags"
    )  # an Ollama answer to an OpenAI client
    with pytest.raises(ProviderSyncError, match=r"unexpected response .*'data' list"):
        await fetch_models(session, wrong_shape, KEY, timeout_s=5)


async def test_unreachable(session: aiohttp.ClientSession) -> None:
    server = ModelsUpstream()
    base = await server.start()
    await server.stop()  # nothing listens there any more
    with pytest.raises(ProviderSyncError, match="connection failed") as info:
        await fetch_models(session, ProviderConnection("openai", base), KEY, timeout_s=5)
    assert info.value.status is None


async def test_connection_report(upstream: ModelsUpstream, session: aiohttp.ClientSession) -> None:
    ok = await fetch.test_connection(session, conn(upstream, "openai", "/v1"), KEY, timeout_s=5)
    assert ok["ok"] is True and ok["models_found"] == 5 and ok["status"] == 200 and ok["error"] is None
    assert isinstance(ok["latency_ms"], int) and ok["latency_ms"] >= 0
    bad = await fetch.test_connection(session, conn(upstream, "openai", "/v1"), WRONG, timeout_s=5)
    assert (bad["ok"], bad["models_found"], bad["status"]) == (False, None, 401)
    assert "HTTP 401" in bad["error"] and WRONG not in bad["error"]


@pytest.mark.parametrize(
    ("provider_type", "api_base", "endpoint", "url"),
    [("openai", "https://api.openai.com/v1/", None, "https://api.openai.com/v1/models"),
     ("openrouter", "https://openrouter.ai/api/v1", None, "https://openrouter.ai/api/v1/models"),
     ("anthropic", "https://api.anthropic.com", None, "https://api.anthropic.com/v1/models"),
     ("anthropic", "https://api.anthropic.com/v1", None, "https://api.anthropic.com/v1/models"),
     ("azure", "https://res.openai.azure.com", None, "https://res.openai.azure.com/openai/models"),
     ("azure", "https://res.openai.azure.com/openai", None, "https://res.openai.azure.com/openai/models"),
     ("ollama", "http://localhost:11434/v1", None, "http://localhost:11434/api/tags"),
     ("custom", "http://vllm:8000/v1", "/v1/models/", "http://vllm:8000/v1/v1/models/")],
)  # fmt: skip
def test_models_url(provider_type: str, api_base: str, endpoint: str | None, url: str) -> None:
    got, params = models_url(ProviderConnection(provider_type, api_base, endpoint, "2025-01-01"))
    assert got == url
    assert params == ({"api-version": "2025-01-01"} if provider_type == "azure" else {})


def test_models_url_refuses_absolute_endpoint_and_unknown_type() -> None:
    with pytest.raises(ProviderSyncError, match="relative"):
        models_url(
            ProviderConnection("openai", "https://api.openai.com/v1", "https://elsewhere.example/models")
        )
    with pytest.raises(ProviderSyncError, match="unsupported provider type"):
        models_url(ProviderConnection("carrier-pigeon", "https://x"))


def test_auth_headers() -> None:
    def auth_headers(provider_type: str, key: str | None) -> dict[str, str]:
        return spec_for(provider_type).list_headers(Credentials.of(key))

    assert auth_headers("openai", "k")["Authorization"] == "Bearer k"
    assert auth_headers("anthropic", "k") == {
        "Accept": "application/json", "anthropic-version": "2023-06-01", "x-api-key": "k"}  # fmt: skip
    assert auth_headers("azure", "k")["api-key"] == "k"
    assert "Authorization" not in auth_headers("ollama", None)


def test_large_openrouter_catalog_decodes_completely() -> None:
    """A 50k-model answer (the size bench/sync_catalog.py times) decodes to 50k distinct models."""
    body = orjson.dumps({"data": make_openrouter_models(50_000)})
    models, cursor = decode_page(body, WIRE_FORMATS["openrouter"], "openrouter")
    assert cursor is None
    assert len({m.external_id for m in models}) == 50_000


def test_unknown_models_have_no_price() -> None:
    assert all(
        lookup_price(spec_for("openrouter").price_id, f"vendor{i}/unknown-model-{i}") is None
        for i in range(500)
    )
