"""Failures are recorded against the model and provider they failed on, so performance reports show
them; the decision log says which model finally served, fallbacks included."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.gateway_env import OPENAI_MODEL, OPENAI_MODEL_2, GatewayEnv, gw  # noqa: F401

HELLO: Any = [{"role": "user", "content": "hello"}]


async def test_a_failed_call_is_recorded_against_the_model_it_failed_on(gw: GatewayEnv) -> None:  # noqa: F811
    gw.sim.inject("status:502", count=None)  # every model at the upstream fails
    with pytest.raises(openai.APIStatusError):
        await gw.openai().chat.completions.create(
            model=OPENAI_MODEL, messages=HELLO, extra_body={"fallbacks": [OPENAI_MODEL_2]}
        )
    row = (await gw.records(1))[-1]
    assert (row.status, row.model, row.provider) == ("error", OPENAI_MODEL_2, "oai"), "the last model tried"
    gw.sim.clear_faults()
    gw.sim.inject("status:503", count=None, model="gpt-4o-mini")
    with pytest.raises(openai.APIStatusError):
        await gw.openai().chat.completions.create(model=OPENAI_MODEL, messages=HELLO)
    await gw.records(2)
    admin = {"Authorization": f"Bearer {gw.container.jwt.mint('ann', 'acme', ['tenant_admin'])}"}
    report = await gw.http.get(
        "/api/v2/admin/models/performance", params={"model_id": OPENAI_MODEL}, headers=admin
    )
    rows = report.json()["performance"]
    assert rows and rows[0]["error_rate"] == 1.0 and rows[0]["usage_count"] == 1, rows


async def test_the_decision_log_says_which_model_finally_served(gw: GatewayEnv) -> None:  # noqa: F811
    gw.sim.inject("status:503", count=None, model="gpt-4o-mini")
    raw = await gw.openai().chat.completions.with_raw_response.create(
        model=OPENAI_MODEL, messages=HELLO, extra_body={"fallbacks": [OPENAI_MODEL_2]}
    )
    message_id = raw.headers["x-turnout-message-id"]
    admin = {"Authorization": f"Bearer {gw.container.jwt.mint('ann', 'acme', ['tenant_admin'])}"}
    for when in ("before it is stored", "once it is stored"):
        if when == "once it is stored":
            await gw.records(1)
            gw.container.recent.__init__()  # forget the in-memory copy: read the stored record
        decision = (await gw.http.get(f"/api/v2/routing/decisions/{message_id}", headers=admin)).json()
        outcome = decision["outcome"]
        assert decision["chosen"] == OPENAI_MODEL, when
        assert outcome["served_by"] == OPENAI_MODEL_2 and outcome["fallback_used"] is True, when
        assert outcome["attempts"] == 4 and outcome["status"] == "ok", when
