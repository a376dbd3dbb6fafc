"""`/v1/models` and `GET /api/models` list only what the caller may use: an agent's enabled models
within its capsule, so every listed model answers and no unlisted one does."""

from __future__ import annotations

from tests.gateway_env import OPENAI_MODEL, GatewayEnv, gw  # noqa: F401


async def test_an_agent_lists_exactly_the_models_it_may_use(gw: GatewayEnv) -> None:  # noqa: F811
    owner = {"Authorization": f"Bearer {gw.container.jwt.mint('ann', 'acme', ['tenant_admin'])}"}
    assert (await gw.http.post("/api/v2/agents", json={"id": "fresh", "name": "F"}, headers=owner)).is_success
    key = (await gw.http.post("/api/v2/agents/fresh/keys", json={}, headers=owner)).json()["key"]
    auth = {"Authorization": f"Bearer {key}"}
    assert (await gw.http.get("/v1/models", headers=auth)).json()["data"] == []
    assert (await gw.http.get("/api/models", headers=auth)).json()["models"] == []
    enabled = await gw.http.post(
        "/api/v2/agents/fresh/models", json={"model_ids": [OPENAI_MODEL]}, headers=owner
    )
    assert enabled.status_code == 200
    listed = [m["id"] for m in (await gw.http.get("/v1/models", headers=auth)).json()["data"]]
    assert listed == [OPENAI_MODEL]
    assert [m["id"] for m in (await gw.http.get("/api/models", headers=auth)).json()["models"]] == listed
    for model in listed:  # what is listed answers
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        assert (await gw.http.post("/v1/chat/completions", json=body, headers=auth)).status_code == 200
