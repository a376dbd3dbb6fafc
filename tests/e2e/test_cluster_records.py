"""A call's record is found through any replica right after its answer: a client behind a load
balancer takes ``x-turnout-message-id`` from the answer and asks whichever replica it reaches.
Before, the other replica answered 404 until the answering one's record writer stored the record
(its batch interval, 0.2 s by default)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.cluster_env import Replica, two_replicas, until
from tests.gateway_env import OPENAI_MODEL, SIM_KEY, provision
from turnout.ids import new_ordered_id
from turnout.simulator import Simulator, SimulatorConfig

pytestmark = pytest.mark.postgres
HELLO = [{"role": "user", "content": "hello"}]


async def test_a_record_is_found_through_the_other_replica_right_after_the_answer(tmp_path: Path) -> None:
    sim = Simulator(SimulatorConfig(api_key=SIM_KEY))
    sim_url = await sim.start()
    try:
        # A stores its records a second after the answer: B is asked well before that
        async with two_replicas(tmp_path, with_redis=False, record_flush_interval_s=1.0) as (a, b):
            jwt = a.container.jwt
            admin, _agent, key = await provision(
                a.http, lambda sub, tenant, roles: jwt.mint(sub, tenant, roles), sim_url
            )
            await until(lambda: b.container.snapshots.current.agent_models.get(("acme", "bot")), timeout_s=40)
            answer = await a.http.post(
                "/v1/chat/completions",
                json={"model": OPENAI_MODEL, "messages": HELLO},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert answer.status_code == 200, answer.text
            message_id = answer.headers["x-turnout-message-id"]
            record = await b.http.get(f"/api/v2/messages/{message_id}", headers=admin)
            assert record.status_code == 200, record.text
            assert (record.json()["id"], record.json()["model"]) == (message_id, OPENAI_MODEL)
            await _an_unknown_call_is_not_waited_for(b, admin)
    finally:
        await sim.stop()


async def _an_unknown_call_is_not_waited_for(b: Replica, admin: dict[str, str]) -> None:
    """An id no call had, made now, is waited for a few seconds at most; an old or random one not at all."""
    started = time.monotonic()
    missing = await b.http.get(f"/api/v2/messages/{new_ordered_id()}", headers=admin)
    assert missing.status_code == 404 and time.monotonic() - started < 5
    started = time.monotonic()
    random_id = await b.http.get("/api/v2/messages/0b7e9c2e-8c11-4a3e-9a57-3c1f3c9f3b10", headers=admin)
    assert random_id.status_code == 404 and time.monotonic() - started < 1
