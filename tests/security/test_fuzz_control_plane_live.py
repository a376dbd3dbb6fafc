"""Schemathesis against the control plane of a gateway with things in it: each operation's path
names a resource that exists (the agent, the provider, a model, a budget, a limit, a webhook, a
call's record...), so generated bodies reach the code that changes them, not only the 404 that an
empty store answers (``tests/integration/test_openapi_fuzz.py``): also the agent's key, a provider
template, a deployment group and a routing policy. Each case is sent as the platform
admin and as the tenant admin: no input may cause a 5xx. It found ``PATCH /api/v2/admin/models``
with ``cost_tier: null`` writing NULL to a NOT NULL column (a 500)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from tests.security.edge_thread import ThreadedGateway, threaded_gateway
from tests.security.test_fuzz_data_plane import _document
from turnout.api.openapi import HOT_PATH_OPERATIONS

schema = schemathesis.openapi.from_dict(_document()).exclude(path=HOT_PATH_OPERATIONS)


def _made(http: httpx.Client, path: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    resp = http.post(path, json=body, headers=headers)
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[ThreadedGateway, dict[str, str], list[dict[str, str]]]]:
    """The gateway, the ids its resources have (by path parameter name) and the admins' headers."""
    with tempfile.TemporaryDirectory() as folder, threaded_gateway(Path(folder)) as gw:
        root = {"Authorization": f"Bearer {gw.jwt.mint('root', 'platform', ['platform_admin'])}"}
        ann = {"Authorization": f"Bearer {gw.jwt.mint('ann', 'acme', ['tenant_admin'])}"}
        with httpx.Client(base_url=gw.url, timeout=30) as http:
            budget = {"name": "daily", "scope": "tenant", "period": "daily", "amount_usd": 10}
            hook = {"url": "http://127.0.0.1:9/hook", "event_types": ["model.request.completed"]}
            chat = {"model": "sim/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
            agent = {"Authorization": f"Bearer {gw.key}"}
            answered = http.post("/v1/chat/completions", json=chat, headers=agent)
            ids = {
                "agent_id": "bot",
                "provider_id": "sim",
                "model_id": "sim/gpt-4o-mini",
                "budget_id": _made(http, "/api/v2/budgets", budget, ann),
                "limit_id": _made(http, "/api/v2/limits", {"scope": "tenant", "rpm": 1000}, ann),
                "webhook_id": _made(http, "/api/v2/webhooks", hook, ann),
                "message_id": answered.headers["x-turnout-message-id"],
                "key_id": gw.key.removeprefix("tk-").split(".")[0],
                "template_id": "vllm",
                "name": "fast",  # a deployment group and a routing policy
            }
            group = {"name": "fast", "strategy": "weighted", "members": [{"model_id": "sim/gpt-4o-mini"}]}
            assert http.post("/api/v2/admin/deployment-groups", json=group, headers=root).status_code == 201
            policy = {"name": "fast", "cost_tradeoff": 0.05}
            assert http.post("/api/v2/routing/policies", json=policy, headers=root).status_code == 201
        yield gw, ids, [root, ann]


@schema.parametrize()
@hypothesis_settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_on_existing_resources_causes_a_server_error(
    case: Any, live: tuple[ThreadedGateway, dict[str, str], list[dict[str, str]]]
) -> None:
    gw, ids, admins = live
    for name in case.path_parameters or {}:
        if name in ids:
            case.path_parameters[name] = ids[name]
    for headers in admins:
        response = case.call(base_url=gw.url, headers=headers, timeout=30)
        where = f"{case.method} {case.formatted_path} {str(case.body)[:300]} {case.query}"
        assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:300]}"
