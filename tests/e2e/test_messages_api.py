"""Call records can be read: `GET /api/v2/messages` (filters, keyset pages, tenant scope) and
`GET /api/v2/messages/{id}` (attempts, fallback, decision, tokens, cost)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.gateway_env import OPENAI_MODEL, OPENAI_MODEL_2, GatewayEnv, gateway, gw  # noqa: F401

HELLO: Any = [{"role": "user", "content": "hello"}]


def _headers(env: GatewayEnv, tenant: str, role: str = "tenant_admin") -> dict[str, str]:
    return {"Authorization": f"Bearer {env.container.jwt.mint(f'{tenant}-admin', tenant, [role])}"}


async def test_call_records_are_listed_filtered_paged_and_shown_in_full(gw: GatewayEnv) -> None:  # noqa: F811
    client = gw.openai()
    ok = await client.chat.completions.with_raw_response.create(model=OPENAI_MODEL, messages=HELLO)
    gw.sim.inject("status:503", count=3, model="gpt-4o-mini")
    fell_back = await client.chat.completions.with_raw_response.create(
        model=OPENAI_MODEL, messages=HELLO, extra_body={"fallbacks": [OPENAI_MODEL_2]}
    )
    gw.sim.inject("status:400", count=1)
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(model=OPENAI_MODEL, messages=HELLO)
    await gw.records(3)
    acme = _headers(gw, "acme")

    listed = (await gw.http.get("/api/v2/messages", headers=acme)).json()
    assert len(listed["items"]) == 3 and listed["next_cursor"] is None
    assert [m["status"] for m in listed["items"]] == ["error", "ok", "ok"], "newest first"
    errors = (await gw.http.get("/api/v2/messages", params={"status": "error"}, headers=acme)).json()
    assert [m["http_status"] for m in errors["items"]] == [400]
    by_model = await gw.http.get("/api/v2/messages", params={"model": OPENAI_MODEL_2}, headers=acme)
    assert [m["id"] for m in by_model.json()["items"]] == [fell_back.headers["x-turnout-message-id"]]
    by_agent = await gw.http.get("/api/v2/messages", params={"agent_id": "nobody"}, headers=acme)
    assert by_agent.json()["items"] == []

    pages, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = (await gw.http.get("/api/v2/messages", params=params, headers=acme)).json()
        pages += [m["id"] for m in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [m["id"] for m in listed["items"]], "keyset pages walk every call once"

    detail = (
        await gw.http.get(f"/api/v2/messages/{fell_back.headers['x-turnout-message-id']}", headers=acme)
    ).json()
    assert detail["model"] == OPENAI_MODEL_2 and detail["fallback_used"] is True and detail["attempts"] == 4
    assert detail["decision"]["task_type"] and detail["prompt_tokens"] and detail["cost_usd"] is not None
    first = (await gw.http.get(f"/api/v2/messages/{ok.headers['x-turnout-message-id']}", headers=acme)).json()
    assert first["attempts"] == 1 and first["fallback_used"] is False and first["completion_tokens"]


async def test_call_records_stay_within_their_tenant(gw: GatewayEnv) -> None:  # noqa: F811
    raw = await gw.openai().chat.completions.with_raw_response.create(model=OPENAI_MODEL, messages=HELLO)
    message_id = raw.headers["x-turnout-message-id"]
    await gw.records(1)
    other = _headers(gw, "globex")
    assert (await gw.http.get("/api/v2/messages", headers=other)).json()["items"] == []
    assert (await gw.http.get(f"/api/v2/messages/{message_id}", headers=other)).status_code == 404
    peek = await gw.http.get("/api/v2/messages", params={"tenant_id": "acme"}, headers=other)
    assert peek.status_code == 403 and peek.json()["error"]["param"] == "tenant_id"
    platform = _headers(gw, "platform", "platform_admin")
    assert [m["id"] for m in (await gw.http.get("/api/v2/messages", headers=platform)).json()["items"]] == [
        message_id
    ]
    user = _headers(gw, "acme", "user")
    assert (await gw.http.get("/api/v2/messages", headers=user)).status_code == 403
    bad = await gw.http.get("/api/v2/messages", params={"cursor": "not-a-cursor"}, headers=platform)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "cursor"


async def test_a_call_record_is_found_right_after_the_answer(tmp_path: Path) -> None:
    """The id from an answer's header finds its record at once, though the writer batches records
    (here once a minute): a lookup that misses stores what this process still holds, then reads."""
    async with gateway(tmp_path, record_flush_interval_s=60.0) as env:
        raw = await env.openai().chat.completions.with_raw_response.create(model=OPENAI_MODEL, messages=HELLO)
        message_id = raw.headers["x-turnout-message-id"]
        acme = _headers(env, "acme")
        found = await env.http.get(f"/api/v2/messages/{message_id}", headers=acme)
        assert found.status_code == 200, found.text
        detail = found.json()
        assert detail["id"] == message_id and detail["model"] == OPENAI_MODEL and detail["status"] == "ok"
        assert detail["attempts"] == 1 and detail["completion_tokens"] and detail["decision"]["task_type"]
        missing = await env.http.get("/api/v2/messages/no-such-call", headers=acme)
        assert missing.status_code == 404 and missing.json()["error"]["param"] == "message_id"

        second = await env.openai().chat.completions.with_raw_response.create(
            model=OPENAI_MODEL, messages=HELLO
        )
        second_id = second.headers["x-turnout-message-id"]
        auth = {"Authorization": f"Bearer {env.key}"}
        rated = await env.http.post(
            f"/api/v2/chat/messages/{second_id}/feedback", json={"rating": 0.8}, headers=auth
        )
        assert rated.status_code == 200 and rated.json()["applied"] is True, rated.text
        shown = await env.http.get(f"/api/v2/messages/{second_id}", headers=acme)
        assert shown.status_code == 200, shown.text
        for _ in range(100):  # the rating reaches the stored record once the record is there
            if shown.json()["rating"] is not None:
                break
            await asyncio.sleep(0.05)
            shown = await env.http.get(f"/api/v2/messages/{second_id}", headers=acme)
        assert shown.json()["rating"] == 0.8 and shown.json()["feedback_type"] == "explicit"
