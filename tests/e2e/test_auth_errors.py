"""Authentication errors say what is wrong in the user's words: an unknown, malformed or revoked
API key, a malformed, expired or foreign bearer token; in the caller's dialect."""

from __future__ import annotations

import pytest

from tests.gateway_env import OPENAI_MODEL, GatewayEnv, gw  # noqa: F401
from turnout.auth.jwt_tokens import JwtCodec

BODY = {"model": OPENAI_MODEL, "messages": [{"role": "user", "content": "hi"}]}


async def _openai_error(env: GatewayEnv, token: str) -> tuple[int, str]:
    resp = await env.http.post(
        "/v1/chat/completions", json=BODY, headers={"Authorization": f"Bearer {token}"}
    )
    return resp.status_code, resp.json()["error"]["message"]


@pytest.mark.parametrize(
    ("mangle", "expected"),
    [
        (lambda key: key[:-3] + "xyz", "unknown API key"),  # a typo in the secret
        (lambda key: key[:12], "malformed API key"),  # cut short when pasted
        (lambda key: "sk-proj-" + "a" * 40, "unknown API key"),  # another service's key
        (lambda key: "not.a.jwt", "malformed bearer token"),
    ],
)
async def test_bad_credentials_are_named(gw: GatewayEnv, mangle: object, expected: str) -> None:  # noqa: F811
    status, message = await _openai_error(gw, mangle(gw.key))  # type: ignore[operator]
    assert status == 401 and message.startswith(expected), message
    assert "segments" not in message.lower()


async def test_tokens_say_whether_they_expired_or_came_from_elsewhere(gw: GatewayEnv) -> None:  # noqa: F811
    expired = gw.container.jwt.mint("ann", "acme", ["user"], ttl_s=-10)
    status, message = await _openai_error(gw, expired)
    assert status == 401 and message.startswith("expired token")
    foreign = JwtCodec("another-servers-secret-" + "x" * 32).mint("ann", "acme", ["user"])
    status, message = await _openai_error(gw, foreign)
    assert status == 401 and message.startswith("invalid token signature")
    admin = await gw.http.get("/api/v2/admin/providers", headers={"Authorization": f"Bearer {gw.key}"})
    assert (
        admin.status_code == 401 and "agent API key is not accepted here" in admin.json()["error"]["message"]
    )


async def test_revoked_keys_say_so_in_the_anthropic_dialect(gw: GatewayEnv) -> None:  # noqa: F811
    owner = {"Authorization": f"Bearer {gw.container.jwt.mint('ann', 'acme', ['tenant_admin'])}"}
    key_id = gw.key.split(".")[0][3:]
    assert (await gw.http.delete(f"/api/v2/agents/{gw.agent_id}/keys/{key_id}", headers=owner)).is_success
    resp = await gw.http.post(
        "/v1/messages",
        json={**BODY, "max_tokens": 10},
        headers={"x-api-key": gw.key, "anthropic-version": "2023-06-01"},
    )
    body = resp.json()
    assert resp.status_code == 401 and body["type"] == "error"
    assert body["error"]["type"] == "authentication_error" and body["error"]["message"].startswith(
        "API key revoked"
    )
