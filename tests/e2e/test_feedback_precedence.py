"""An implicit signal (a copy, a regenerate) never replaces what a person said of the same answer;
an explicit rating replaces an implicit one."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.gateway_env import OPENAI_MODEL, GatewayEnv, gw  # noqa: F401

HELLO: Any = [{"role": "user", "content": "hello"}]


async def _stored(env: GatewayEnv, message_id: str, admin: dict[str, str]) -> tuple[float | None, str | None]:
    for _ in range(100):
        detail = (await env.http.get(f"/api/v2/messages/{message_id}", headers=admin)).json()
        if detail.get("rating") is not None:
            return detail["rating"], detail["feedback_type"]
        await asyncio.sleep(0.05)
    return None, None


async def test_an_implicit_signal_never_replaces_an_explicit_rating(gw: GatewayEnv) -> None:  # noqa: F811
    raw = await gw.openai().chat.completions.with_raw_response.create(model=OPENAI_MODEL, messages=HELLO)
    message_id = raw.headers["x-turnout-message-id"]
    auth = {"Authorization": f"Bearer {gw.key}"}
    base = f"/api/v2/chat/messages/{message_id}"
    rated = await gw.http.post(f"{base}/feedback", json={"rating": 0.9}, headers=auth)
    assert rated.status_code == 200 and rated.json()["applied"] is True
    for event in ("copy", "regenerate"):
        signal = await gw.http.post(f"{base}/events", json={"event": event}, headers=auth)
        assert signal.status_code == 200, signal.text
        assert signal.json()["applied"] is False and signal.json()["rating"] == 0.9
    admin = {"Authorization": f"Bearer {gw.container.jwt.mint('ann', 'acme', ['tenant_admin'])}"}
    await gw.records(1)
    assert await _stored(gw, message_id, admin) == (0.9, "explicit")


async def test_an_explicit_rating_replaces_an_implicit_signal(gw: GatewayEnv) -> None:  # noqa: F811
    raw = await gw.openai().chat.completions.with_raw_response.create(model=OPENAI_MODEL, messages=HELLO)
    message_id = raw.headers["x-turnout-message-id"]
    auth = {"Authorization": f"Bearer {gw.key}"}
    base = f"/api/v2/chat/messages/{message_id}"
    assert (await gw.http.post(f"{base}/events", json={"event": "copy"}, headers=auth)).json()[
        "rating"
    ] == 1.0
    replaced = (await gw.http.post(f"{base}/feedback", json={"rating": 0.2}, headers=auth)).json()
    assert replaced["applied"] is True and replaced["replaced"] == 1.0
    admin = {"Authorization": f"Bearer {gw.container.jwt.mint('ann', 'acme', ['tenant_admin'])}"}
    await gw.records(1)
    assert await _stored(gw, message_id, admin) == (0.2, "explicit")


async def test_a_rating_must_be_a_number(gw: GatewayEnv) -> None:  # noqa: F811
    """true is no rating (it was stored as 1.0), nor is "0.9"; the native API's success is a boolean."""
    raw = await gw.openai().chat.completions.with_raw_response.create(model=OPENAI_MODEL, messages=HELLO)
    message_id = raw.headers["x-turnout-message-id"]
    auth = {"Authorization": f"Bearer {gw.key}"}
    for rating in (True, "0.9"):
        refused = await gw.http.post(
            f"/api/v2/chat/messages/{message_id}/feedback", json={"rating": rating}, headers=auth
        )
        assert refused.status_code == 400 and refused.json()["error"]["param"] == "rating", refused.text
    both = {"rating": 2, "feedback_type": "loud"}  # the lean hot-path handler names each bad field too
    refused = await gw.http.post(f"/api/v2/chat/messages/{message_id}/feedback", json=both, headers=auth)
    error = refused.json()["error"]
    assert refused.status_code == 400 and error["param"] == "rating", refused.text
    assert error["message"].startswith("rating: Input should be less than or equal to 1; feedback_type: ")
    native = await gw.http.post(
        "/api/models/feedback", json={"request_id": message_id, "success": 1}, headers=auth
    )
    assert native.status_code == 400 and native.json()["error"]["param"] == "success", native.text
    assert (
        await gw.http.post(f"/api/v2/chat/messages/{message_id}/feedback", json={"rating": 1}, headers=auth)
    ).status_code == 200, "an integer is a number"
