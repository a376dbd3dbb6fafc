"""A failed call's event says what its attempts did: a fallback only when another model was tried
(retries on one model are no fallback), its HTTP status as a number, and the caller's project and
task ids from the request's metadata."""

from __future__ import annotations

from typing import Any

from tests.gateway_env import OPENAI_MODEL, OPENAI_MODEL_2, GatewayEnv, gw  # noqa: F401
from turnout.events.outbox import request_event
from turnout.store.messages import Message

HELLO: Any = [{"role": "user", "content": "hello"}]


def _row(message: Message) -> dict[str, Any]:
    return {column.key: getattr(message, column.key) for column in Message.__table__.columns} | {
        "metadata_": message.metadata_
    }


async def test_a_failed_calls_event_says_whether_a_fallback_was_tried(gw: GatewayEnv) -> None:  # noqa: F811
    gw.sim.inject("status:502", count=None)
    headers = {"Authorization": f"Bearer {gw.key}"}
    meta = {"project_id": "p1", "task_id": "t1"}
    alone = await gw.http.post(
        "/v1/chat/completions",
        json={"model": OPENAI_MODEL, "messages": HELLO, "metadata": meta},
        headers=headers,
    )
    with_fallback = await gw.http.post(
        "/v1/chat/completions",
        json={"model": OPENAI_MODEL, "messages": HELLO, "fallbacks": [OPENAI_MODEL_2]},
        headers=headers,
    )
    assert alone.status_code == with_fallback.status_code == 502
    rows = {r.id: r for r in await gw.records(2)}
    kind, alone_event = request_event(_row(rows[alone.headers["x-turnout-message-id"]]))
    assert kind == "model.request.failed"
    assert alone_event["error"]["code"] == 502 and alone_event["error"]["details"]["attempts"] > 1
    assert alone_event["fallback_attempted"] is False
    assert alone_event["project_id"] == "p1" and alone_event["task_id"] == "t1"
    _, fallback_event = request_event(_row(rows[with_fallback.headers["x-turnout-message-id"]]))
    assert fallback_event["fallback_attempted"] is True and fallback_event["model_id"] == OPENAI_MODEL_2


async def test_a_call_failed_before_any_attempt_is_recorded_against_its_model(gw: GatewayEnv) -> None:  # noqa: F811
    """Its breaker open (or its provider's rate limit, or its key unreadable), the model is passed
    over without an attempt: the failed call is still recorded against that model and provider
    (it read model and provider null, so an operator could not tell what failed)."""
    gw.sim.inject("status:503", count=None, model="gpt-4o-mini")
    headers = {"Authorization": f"Bearer {gw.key}"}
    body = {"model": OPENAI_MODEL, "messages": HELLO}
    for _ in range(3):  # the breaker threshold of these settings
        assert (await gw.http.post("/v1/chat/completions", json=body, headers=headers)).status_code >= 500
    gw.sim.clear_faults()
    before = gw.upstream_calls()
    refused = await gw.http.post("/v1/chat/completions", json=body, headers=headers)
    assert refused.status_code == 503 and gw.upstream_calls() == before, refused.text
    rows = {r.id: r for r in await gw.records(4)}
    row = rows[refused.headers["x-turnout-message-id"]]
    assert (row.model, row.provider, row.attempts) == (OPENAI_MODEL, "oai", 0)
