"""Model ids a provider lists that Turnout cannot carry (in the ``x-turnout-model`` header, in the
database) are skipped at sync and reported, never stored (issue 15, item 7)."""

from __future__ import annotations

import httpx
import pytest

from tests.security.edge_env import EdgeEnv, edge, ok  # noqa: F401

GOOD = ["gpt-4o-mini", "caf\u00e9-model"]  # Latin-1 is fine in a header
BAD = [
    "evil\r\nx-injected: 1",  # CRLF: header injection
    "\u6a21\u578b-zh",  # outside Latin-1
    "ctl\x01model",
    "nul\x00model",  # PostgreSQL refuses NUL
    "del\x7fmodel",
    "c1\x85model",
    "long-" + "x" * 300,  # over the column's 255 characters
]
SIM_MODELS = GOOD + BAD


async def test_sync_skips_and_reports_unusable_ids(edge: EdgeEnv) -> None:  # noqa: F811
    result = await ok(await edge.http.post("/api/v2/admin/providers/sim/sync", headers=edge.admin))
    assert result["models_skipped"] == len(BAD)
    assert result["models_discovered"] == len(GOOD)
    provider = await ok(await edge.http.get("/api/v2/admin/providers/sim", headers=edge.admin))
    assert provider["last_sync_error"].startswith(f"{len(BAD)} models skipped")
    listed = await ok(
        await edge.http.get("/api/v2/admin/models?provider=sim&per_page=100", headers=edge.admin)
    )
    assert sorted(m["external_id"] for m in listed["items"]) == sorted(GOOD)


async def test_chat_answers_cleanly_for_every_listed_id(edge: EdgeEnv) -> None:  # noqa: F811
    """Before: the bad ids were stored, the upstream was called (and billed), then the answer's
    header could not be encoded: a 500 or a connection dropped with no answer."""
    for model in GOOD + BAD:
        body = {"model": f"sim/{model}", "messages": [{"role": "user", "content": "hi"}]}
        try:
            resp = await edge.http.post("/v1/chat/completions", json=body, headers=edge.agent)
        except httpx.HTTPError as exc:
            pytest.fail(f"{model!r}: no answer ({type(exc).__name__})")
        if model in GOOD:
            assert resp.status_code == 200, resp.text
            assert resp.headers["x-turnout-model"].encode("latin-1") == f"sim/{model}".encode("latin-1")
        else:
            assert resp.status_code in (400, 404), f"{model!r}: {resp.status_code} {resp.text}"
    assert edge.sim.stats.routes["POST /v1/chat/completions"] == len(GOOD)


async def test_custom_models_obey_the_same_rule(edge: EdgeEnv) -> None:  # noqa: F811
    for model in BAD:
        body = {"provider_id": "sim", "external_id": model}
        resp = await edge.http.post("/api/v2/admin/models", json=body, headers=edge.admin)
        assert resp.status_code == 400, f"{model!r}: {resp.status_code} {resp.text}"
        assert resp.json()["error"]["param"] == "external_id"
