"""`requirements` reach the router (the OpenAI-dialect extension and the native API alike), unknown
ones are refused naming the field, and `/routing/explain` honours a top-level `agent_id`."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.gateway_env import OPENAI_MODEL, GatewayEnv, gw  # noqa: F401

HELLO: Any = [{"role": "user", "content": "hello"}]


def _vision_models(env: GatewayEnv) -> set[str]:
    snapshot = env.container.snapshots.current
    return {m.id for m in snapshot.models.values() if "vision" in m.capabilities and m.model_type == "chat"}


async def test_required_capabilities_filter_the_candidates(gw: GatewayEnv) -> None:  # noqa: F811
    vision = _vision_models(gw)
    assert vision and len(vision) < 5, "the simulator's catalog mixes vision and text-only models"
    for _ in range(5):
        raw = await gw.openai().chat.completions.with_raw_response.create(
            model="auto", messages=HELLO, extra_body={"requirements": {"capabilities": ["vision"]}}
        )
        assert raw.headers["x-turnout-model"] in vision
    native = await gw.http.post(
        "/api/models/chat",
        json={"messages": HELLO, "requirements": {"capabilities": ["vision"]}},
        headers={"Authorization": f"Bearer {gw.key}"},
    )
    assert native.status_code == 200 and native.headers["x-turnout-model"] in vision, native.text


async def test_cost_and_quality_requirements_filter_with_reasons(gw: GatewayEnv) -> None:  # noqa: F811
    owner = {"Authorization": f"Bearer {gw.container.jwt.mint('ann', 'acme', ['tenant_admin'])}"}
    body = {"agent_id": gw.agent_id, "messages": HELLO, "requirements": {"max_cost": 1e-12}}
    explained = (await gw.http.post("/api/v2/routing/explain", json=body, headers=owner)).json()
    reasons = [f["reason"] for f in explained["filtered"]]
    assert any(r.startswith("estimated cost") for r in reasons), explained
    with pytest.raises(openai.BadRequestError) as info:
        await gw.openai().chat.completions.create(
            model="auto",
            messages=HELLO,
            extra_body={"requirements": {"max_cost": 0, "capabilities": ["vision"]}},
        )
    assert "no enabled model satisfies" in info.value.message


@pytest.mark.parametrize(
    ("requirements", "param"),
    [
        ({"speed": 1}, "requirements.speed"),
        ({"capabilities": ["planning"]}, "requirements.capabilities[0]"),
        ({"min_quality_score": 2}, "requirements.min_quality_score"),
        ({"max_cost": -1}, "requirements.max_cost"),
        ("fast", "requirements"),
    ],
)
async def test_bad_requirements_are_refused_naming_the_field(
    gw: GatewayEnv,  # noqa: F811
    requirements: Any,
    param: str,
) -> None:
    before = gw.upstream_calls()
    with pytest.raises(openai.BadRequestError) as info:
        await gw.openai().chat.completions.create(
            model="auto", messages=HELLO, extra_body={"requirements": requirements}
        )
    assert info.value.body["param"] == param  # type: ignore[index]
    assert gw.upstream_calls() == before, "nothing was sent upstream"


async def test_explain_honours_a_top_level_agent_id(gw: GatewayEnv) -> None:  # noqa: F811
    owner = {"Authorization": f"Bearer {gw.container.jwt.mint('ann', 'acme', ['tenant_admin'])}"}
    assert (
        await gw.http.post("/api/v2/agents", json={"id": "narrow", "name": "N"}, headers=owner)
    ).is_success
    enabled = await gw.http.post(
        "/api/v2/agents/narrow/models", json={"model_ids": [OPENAI_MODEL]}, headers=owner
    )
    assert enabled.status_code == 200
    body = {"agent_id": "narrow", "messages": HELLO}
    explained = (await gw.http.post("/api/v2/routing/explain", json=body, headers=owner)).json()
    assert explained["agent_id"] == "narrow" and explained["plan"] == [OPENAI_MODEL], explained


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        # the OpenAI field on the native API: refused, not ignored (it routed as if no model were named)
        ("/api/models/chat", {"model": OPENAI_MODEL, "messages": HELLO}, "model"),
        ("/api/models/embeddings", {"model": "oai/text-embedding-3-small", "texts": ["hi"]}, "model"),
        ("/api/models/chat", {"messages": HELLO, "task_type": 5}, "task_type"),  # was routed as general
        ("/v1/chat/completions", {"model": "auto", "messages": HELLO, "task_type": ["code"]}, "task_type"),
    ],
)
async def test_a_misnamed_or_mistyped_routing_field_is_refused_naming_it(
    gw: GatewayEnv,  # noqa: F811
    path: str,
    body: dict[str, Any],
    param: str,
) -> None:
    before = gw.upstream_calls()
    answer = await gw.http.post(path, json=body, headers={"Authorization": f"Bearer {gw.key}"})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == param
    assert gw.upstream_calls() == before, "nothing was sent upstream"
