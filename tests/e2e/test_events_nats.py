"""Events to NATS JetStream through the outbox: every call's event arrives, with NATS restarted in
the middle of the load (none lost; a duplicate only ever repeats an event id), and ratings and
syncs publish theirs. The NATS server is this test's own (``nats-server -js``), so it can be killed
and restarted on the same port and store."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from tests.fixtures.nats_server import STREAM, NatsServer, nats_server, stream_events  # noqa: F401
from tests.gateway_env import OPENAI_MODEL, GatewayEnv, gateway

HELLO: Any = [{"role": "user", "content": "hello"}]


# FAST's 5 s total timeout turned a stall of the whole test process (5-6.5 s, seen twice in full
# suite runs on the 2-core sandbox, never alone or with the CPUs busy; cause not found) into 504s:
# these tests count events, not upstream timing
PATIENT = {"first_byte_timeout_s": 30.0, "http_read_timeout_s": 30.0, "http_total_timeout_s": 60.0}


@contextlib.asynccontextmanager
async def events_gateway(tmp_path: Path, server: NatsServer) -> AsyncIterator[GatewayEnv]:
    async with gateway(tmp_path, nats_url=server.url, nats_stream=STREAM, **PATIENT) as gw:
        yield gw


async def test_every_call_event_arrives_with_nats_restarted_midway(
    tmp_path: Path,
    nats_server: NatsServer,  # noqa: F811
) -> None:
    await nats_server.start()
    calls, answered = 1000, []
    async with events_gateway(tmp_path, nats_server) as gw:
        headers = {"Authorization": f"Bearer {gw.key}"}
        body = {"model": OPENAI_MODEL, "messages": HELLO}
        limits = httpx.Limits(max_connections=20)
        async with httpx.AsyncClient(base_url=gw.url, timeout=30, limits=limits) as http:

            async def call() -> None:
                resp = await http.post("/v1/chat/completions", json=body, headers=headers)
                assert resp.status_code == 200, resp.text
                answered.append(resp.headers["x-turnout-message-id"])

            for batch in range(10):
                if batch == 4:
                    nats_server.kill()  # down for the next batches: the outbox keeps their events
                if batch == 7:
                    await nats_server.start()
                await asyncio.gather(*(call() for _ in range(calls // 10)))
        rows = await gw.records(calls, timeout_s=20)
        assert len(rows) == calls
        events = await stream_events(nats_server.url, calls + 3)  # + the three providers' syncs
    completed = [e for e in events if e["type"] == "model.request.completed"]
    by_request: dict[str, set[str]] = {}
    for event in completed:
        by_request.setdefault(event["data"]["request_id"], set()).add(event["id"])
        assert event["msg_id"] == event["id"] and event["tenant_header"] == "acme"
        assert event["subject"] == "turnout.events.model.request.completed"
    assert set(by_request) == set(answered), f"lost: {len(set(answered) - set(by_request))}"
    assert all(len(ids) == 1 for ids in by_request.values()), "a duplicate carries another id"
    copies = Counter(e["id"] for e in completed)
    assert len(copies) == calls  # duplicates, if any, repeat an event id: consumers drop them by it
    sample = completed[0]["data"]
    assert sample["model_id"] == OPENAI_MODEL and sample["metrics"]["tokens"]["total"] > 0
    assert sample["metrics"]["cost"] > 0 and sample["metrics"]["latency_ms"] is not None
    synced = {e["data"]["provider_id"] for e in events if e["type"] == "provider.sync.completed"}
    assert synced == {"oai", "claude", "local"}


async def test_ratings_and_failures_publish_their_events(tmp_path: Path, nats_server: NatsServer) -> None:  # noqa: F811
    await nats_server.start()
    async with events_gateway(tmp_path, nats_server) as gw:
        client = gw.openai()
        raw = await client.chat.completions.with_raw_response.create(model=OPENAI_MODEL, messages=HELLO)
        message_id = raw.headers["x-turnout-message-id"]
        rated = await gw.http.post(
            "/api/models/feedback",
            json={"request_id": message_id, "quality_rating": 0.9, "success": True},
            headers={"Authorization": f"Bearer {gw.key}"},
        )
        assert rated.status_code < 300, rated.text
        gw.sim.inject("status:502", count=None)
        failed = await gw.http.post(  # no fallbacks: retried on its one model, then failed
            "/v1/chat/completions",
            json={
                "model": OPENAI_MODEL,
                "messages": HELLO,
                "metadata": {"project_id": "p1", "task_id": "t1"},
            },
            headers={"Authorization": f"Bearer {gw.key}"},
        )
        assert failed.status_code == 502
        await gw.records(2)
        events = await stream_events(nats_server.url, 3 + 3, timeout_s=15)
        for _ in range(50):  # the flags clear just after the server's acks (the stream has them)
            scrape = (await gw.http.get("/metrics", headers=gw.admin)).text
            backlog = {
                line.split('"')[1]: float(line.rsplit(" ", 1)[1])
                for line in scrape.splitlines()
                if line.startswith("turnout_outbox_backlog{")
            }
            if not any(backlog.values()):
                break
            await asyncio.sleep(0.1)
        assert backlog == {"nats": 0.0, "webhooks": 0.0}, backlog  # all delivered (no webhook: fanned out)
    kinds = {e["type"]: e["data"] for e in events}
    feedback = kinds["model.feedback.received"]
    assert feedback["request_id"] == message_id and feedback["feedback"]["quality_rating"] == 0.9
    assert feedback["model_id"] == OPENAI_MODEL
    error = kinds["model.request.failed"]
    assert error["request_id"] == failed.headers["x-turnout-message-id"]
    assert error["error"]["code"] == 502 and error["error"]["details"]["attempts"] > 1
    assert error["fallback_attempted"] is False, "retries on one model attempt no fallback"
    assert error["project_id"] == "p1" and error["task_id"] == "t1"
