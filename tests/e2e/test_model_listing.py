"""`/v1/models` and `GET /api/models` list only what the caller may use: an agent's enabled models
within its capsule, so every listed model answers and no unlisted one does."""

from __future__ import annotations

import anthropic
import openai
import pytest

from tests.gateway_env import ANTHROPIC_MODEL, OPENAI_MODEL, GatewayEnv, gw  # noqa: F401


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


async def test_both_sdks_retrieve_a_model_by_its_name_and_list_in_their_own_shape(
    gw: GatewayEnv,  # noqa: F811
) -> None:
    """``client.models.retrieve`` in the official SDKs: the OpenAI SDK sends the id's slash as is,
    the Anthropic SDK escapes it, and both got 404 for every model. A model the caller may not use
    is a 404 in its dialect, as one that does not exist is; the Anthropic SDK's list has the
    fields its types declare (``display_name``, ``created_at``) and its pagination."""
    openai_sdk, anthropic_sdk = gw.openai(), gw.anthropic()
    model = await openai_sdk.models.retrieve(OPENAI_MODEL)
    assert (model.id, model.object, model.owned_by) == (OPENAI_MODEL, "model", "oai")
    assert model.created > 1_700_000_000  # when the catalog first had it
    info = await anthropic_sdk.models.retrieve(ANTHROPIC_MODEL)
    assert (info.id, info.type, info.display_name) == (ANTHROPIC_MODEL, "model", "claude-haiku-4-5")
    assert info.created_at.year >= 2024
    listed = [m async for m in anthropic_sdk.models.list(limit=2)]  # the SDK pages through
    assert [m.id for m in listed] == [m.id async for m in openai_sdk.models.list()]
    assert all(m.display_name and m.type == "model" for m in listed)
    first = await gw.http.get(
        "/v1/models", params={"limit": 2}, headers={"x-api-key": gw.key, "anthropic-version": "2023-06-01"}
    )
    page = first.json()
    assert page["has_more"] is True and len(page["data"]) == 2 and page["last_id"] == page["data"][-1]["id"]
    with pytest.raises(openai.NotFoundError) as missing:
        await openai_sdk.models.retrieve("oai/no-such-model")
    assert missing.value.body["code"] == "model_not_found", missing.value.body  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError) as missing_too:
        await anthropic_sdk.models.retrieve("oai/no-such-model")
    assert missing_too.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    owner = {"Authorization": f"Bearer {gw.container.jwt.mint('ann', 'acme', ['tenant_admin'])}"}
    created = await gw.http.post("/api/v2/agents", json={"id": "narrow", "name": "N"}, headers=owner)
    assert created.is_success, created.text
    key = (await gw.http.post("/api/v2/agents/narrow/keys", json={}, headers=owner)).json()["key"]
    narrow = openai.AsyncOpenAI(base_url=f"{gw.url}/v1", api_key=key, max_retries=0)
    try:
        with pytest.raises(openai.NotFoundError):  # it exists, but this agent may not use it
            await narrow.models.retrieve(OPENAI_MODEL)
    finally:
        await narrow.close()
    wrong = openai.AsyncOpenAI(base_url=f"{gw.url}/v1", api_key="tk-wrong.key", max_retries=0)
    try:
        with pytest.raises(openai.AuthenticationError):
            await wrong.models.retrieve(OPENAI_MODEL)
    finally:
        await wrong.close()
