"""Tenant isolation on every agent and feedback endpoint: another tenant's objects answer 404."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest

from turnout.container import Container
from turnout.store.messages import Message
from turnout.store.models import utcnow

AGENTS = "/api/v2/agents"


def _hdr(make_token: Callable[..., str], tenant: str, role: str = "tenant_admin") -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(sub=f'{tenant}-{role}', tenant=tenant, roles=(role,))}"}


@pytest.fixture
async def acme_agent(
    client: httpx.AsyncClient, make_token: Callable[..., str], admin: dict[str, str]
) -> dict[str, str]:
    """Tenant acme's agent with one enabled model and one key."""
    body = {"id": "p1", "display_name": "P1", "provider_type": "custom", "api_base": "http://127.0.0.1:9/v1"}
    assert (await client.post("/api/v2/admin/providers", json=body, headers=admin)).status_code == 201
    model = {"provider_id": "p1", "external_id": "m1"}
    assert (await client.post("/api/v2/admin/models", json=model, headers=admin)).status_code == 201
    acme = _hdr(make_token, "acme")
    assert (
        await client.post(AGENTS, json={"id": "helpdesk", "name": "Helpdesk"}, headers=acme)
    ).status_code == 201
    enabled = await client.post(f"{AGENTS}/helpdesk/models", json={"model_ids": ["p1/m1"]}, headers=acme)
    assert enabled.status_code == 200, enabled.text
    key = (await client.post(f"{AGENTS}/helpdesk/keys", json={}, headers=acme)).json()
    return {"key_id": key["id"]}


ENDPOINTS = [
    ("GET", "/api/v2/agents/helpdesk", None),
    ("PATCH", "/api/v2/agents/helpdesk", {"name": "mine now"}),
    ("POST", "/api/v2/agents/helpdesk/keys", {}),
    ("GET", "/api/v2/agents/helpdesk/keys", None),
    ("DELETE", "/api/v2/agents/helpdesk/keys/{key_id}", None),
    ("GET", "/api/v2/agents/helpdesk/models", None),
    ("POST", "/api/v2/agents/helpdesk/models", {"model_ids": ["p1/m1"]}),
    ("POST", "/api/v2/agents/helpdesk/models/disable", {"model_ids": ["p1/m1"]}),
    ("DELETE", "/api/v2/agents/helpdesk/models/p1/m1", None),
    ("PATCH", "/api/v2/agents/helpdesk/models/p1/m1", {"priority_override": 90}),
    ("GET", "/api/v2/agents/helpdesk/audit", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
async def test_agent_endpoints_hide_other_tenants(
    client: httpx.AsyncClient,
    make_token: Callable[..., str],
    acme_agent: dict[str, str],
    method: str,
    path: str,
    body: dict[str, object] | None,
) -> None:
    url = path.format(**acme_agent)
    resp = await client.request(method, url, json=body, headers=_hdr(make_token, "globex"))
    assert resp.status_code == 404, resp.text
    mine = await client.request(method, url, json=body, headers=_hdr(make_token, "acme"))
    assert mine.status_code < 300, mine.text
    assert (await client.get(AGENTS, headers=_hdr(make_token, "globex"))).json()["total"] == 0


async def test_agent_model_changes_are_audited(
    client: httpx.AsyncClient, make_token: Callable[..., str], acme_agent: dict[str, str]
) -> None:
    acme = _hdr(make_token, "acme")
    await client.patch(f"{AGENTS}/helpdesk/models/p1/m1", json={"priority_override": 90}, headers=acme)
    await client.post(f"{AGENTS}/helpdesk/models/disable", json={"model_ids": ["p1/m1"]}, headers=acme)
    entries = (await client.get(f"{AGENTS}/helpdesk/audit", headers=acme)).json()["entries"]
    assert [e["action"] for e in entries] == ["disable", "update", "enable"]
    assert entries[0]["before"] == {"is_enabled": True, "priority_override": 90}
    assert entries[0]["after"] == {"is_enabled": False, "priority_override": 90}
    assert entries[0]["actor"] == "acme-tenant_admin"
    models = (await client.get(f"{AGENTS}/helpdesk/models", headers=acme)).json()
    assert models["total_enabled"] == 0 and models["models"][0]["priority_override"] == 90


async def test_unknown_models_and_empty_selection(
    client: httpx.AsyncClient, make_token: Callable[..., str], acme_agent: dict[str, str]
) -> None:
    acme = _hdr(make_token, "acme")
    missing = await client.post(f"{AGENTS}/helpdesk/models", json={"model_ids": ["p1/nope"]}, headers=acme)
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "model_ids"
    empty = await client.post(f"{AGENTS}/helpdesk/models", json={}, headers=acme)
    assert empty.status_code == 400
    bulk = await client.post(
        f"{AGENTS}/helpdesk/models", json={"bulk_filter": {"provider": "p1"}}, headers=acme
    )
    assert bulk.status_code == 200


@pytest.fixture
async def acme_message(container: Container) -> str:
    message_id = str(uuid.uuid4())
    async with container.sessions.begin() as session:
        session.add(
            Message(
                id=message_id,
                tenant_id="acme",
                agent_id="helpdesk",
                model="p1/m1",
                provider="p1",
                dialect="openai",
                endpoint="chat",
                stream=False,
                status="ok",
                http_status=200,
                task_type="code",
                created_at=utcnow(),
                metadata_={"decision": {"task_type": "code", "reason": "test"}},
            )
        )
    return message_id


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v2/chat/messages/{id}/feedback", {"rating": 1.0}),
        ("/api/v2/chat/messages/{id}/events", {"event": "copy"}),
        ("/api/models/feedback", {"request_id": "{id}", "success": True}),
    ],
)
async def test_feedback_only_from_the_messages_tenant(
    client: httpx.AsyncClient,
    make_token: Callable[..., str],
    acme_message: str,
    path: str,
    body: dict[str, object],
) -> None:
    url = path.format(id=acme_message)
    payload = {k: (v.format(id=acme_message) if isinstance(v, str) else v) for k, v in body.items()}
    outsider = await client.post(url, json=payload, headers=_hdr(make_token, "globex", "user"))
    assert outsider.status_code == 404
    insider = await client.post(url, json=payload, headers=_hdr(make_token, "acme", "user"))
    assert insider.status_code == 200, insider.text


async def test_decisions_only_for_the_messages_tenant(
    client: httpx.AsyncClient, make_token: Callable[..., str], acme_message: str
) -> None:
    url = f"/api/v2/routing/decisions/{acme_message}"
    assert (await client.get(url, headers=_hdr(make_token, "globex", "user"))).status_code == 404
    mine = await client.get(url, headers=_hdr(make_token, "acme", "user"))
    assert mine.status_code == 200 and mine.json()["reason"] == "test"


@pytest.mark.parametrize("rating", [-0.1, 1.5, "good"])
async def test_bad_ratings(
    client: httpx.AsyncClient, make_token: Callable[..., str], acme_message: str, rating: object
) -> None:
    resp = await client.post(
        f"/api/v2/chat/messages/{acme_message}/feedback",
        json={"rating": rating},
        headers=_hdr(make_token, "acme", "user"),
    )
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "rating"
