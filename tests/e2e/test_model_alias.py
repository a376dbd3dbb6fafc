"""An admin gives a model a readable alias: clients send it as `model`, see it in `/v1/models` and
`/api/models`, and get it back in the answer's `model`; `x-turnout-model` keeps the catalog id."""

from __future__ import annotations

from typing import Any

from tests.gateway_env import OLLAMA_MODEL, OPENAI_MODEL, OPENAI_MODEL_2, GatewayEnv, gw  # noqa: F401

ALIAS = "mini"
HELLO: Any = [{"role": "user", "content": "hello"}]


async def _set_alias(env: GatewayEnv, model_id: str, alias: Any) -> Any:
    return await env.http.patch(f"/api/v2/admin/models/{model_id}", json={"alias": alias}, headers=env.admin)


async def test_clients_use_and_see_the_alias(gw: GatewayEnv) -> None:  # noqa: F811
    resp = await _set_alias(gw, OPENAI_MODEL, ALIAS)
    assert resp.status_code == 200 and resp.json()["alias"] == ALIAS, resp.text

    raw = await gw.openai().chat.completions.with_raw_response.create(model=ALIAS, messages=HELLO)
    assert raw.parse().model == ALIAS, "the answer names the model as the client knows it"
    assert raw.headers["x-turnout-model"] == OPENAI_MODEL, "the header keeps the catalog id"

    listed = [m.id async for m in gw.openai().models.list()]
    assert ALIAS in listed and OPENAI_MODEL not in listed
    native = await gw.http.get("/api/models", headers={"Authorization": f"Bearer {gw.key}"})
    assert ALIAS in [m["id"] for m in native.json()["models"]]

    claude = await gw.anthropic().messages.create(model=ALIAS, max_tokens=50, messages=HELLO)
    assert claude.model == ALIAS
    streamed = await gw.openai().chat.completions.create(model=ALIAS, messages=HELLO, stream=True)
    assert {chunk.model async for chunk in streamed} == {ALIAS}, "streams name it too"

    resp = await _set_alias(gw, OPENAI_MODEL, None)  # cleared: back to the catalog id
    assert resp.status_code == 200 and resp.json()["alias"] is None
    listed = [m.id async for m in gw.openai().models.list()]
    assert OPENAI_MODEL in listed and ALIAS not in listed


async def test_an_alias_wins_over_a_providers_own_model_id(gw: GatewayEnv) -> None:  # noqa: F811
    """`gpt-4o` alone names OpenAI's model (a provider's own id); an admin may point it elsewhere."""
    assert (await _set_alias(gw, OLLAMA_MODEL, "gpt-4o")).status_code == 200
    raw = await gw.openai().chat.completions.with_raw_response.create(model="gpt-4o", messages=HELLO)
    assert raw.headers["x-turnout-model"] == OLLAMA_MODEL


async def test_a_taken_or_malformed_alias_is_refused_naming_the_field(gw: GatewayEnv) -> None:  # noqa: F811
    assert (await _set_alias(gw, OPENAI_MODEL, ALIAS)).status_code == 200
    taken = await _set_alias(gw, OPENAI_MODEL_2, ALIAS)
    assert taken.status_code == 409, taken.text
    assert taken.json()["error"]["param"] == "alias" and OPENAI_MODEL in taken.json()["error"]["message"]
    assert (await _set_alias(gw, OPENAI_MODEL, ALIAS)).status_code == 200, "a model may keep its own alias"
    for alias in ["has space", "oai/gpt-4o", "-dash", "", "x" * 101, "auto", 7]:
        resp = await _set_alias(gw, OPENAI_MODEL_2, alias)
        assert resp.status_code == 400, (alias, resp.text)
        assert resp.json()["error"]["param"] == "alias"
    second = await gw.http.get(f"/api/v2/admin/models/{OPENAI_MODEL_2}", headers=gw.admin)
    assert second.json()["alias"] is None
