"""Operators can see what happened: upstream errors, retries, fallbacks and breaker transitions
each leave a structured log line naming the model and provider they came from."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import sys
from typing import Any

import openai
import pytest

from tests.gateway_env import OPENAI_MODEL, OPENAI_MODEL_2, GatewayEnv, gw  # noqa: F401
from turnout.logs import configure_logging

HELLO: Any = [{"role": "user", "content": "hello"}]


def _events(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


async def test_failures_fallbacks_and_breaker_transitions_are_logged(
    capfd: pytest.CaptureFixture[str],  # first: capturing before the app configures its log stream
    gw: GatewayEnv,  # noqa: F811
) -> None:
    caller = gw.container.gateway.caller
    caller.policy = dataclasses.replace(caller.policy, max_retries=1)
    gw.sim.inject("status:503", count=None, model="gpt-4o-mini")
    client = gw.openai()
    for _ in range(3):  # the breaker threshold in the test settings
        raw = await client.chat.completions.with_raw_response.create(
            model=OPENAI_MODEL, messages=HELLO, extra_body={"fallbacks": [OPENAI_MODEL_2]}
        )
        assert raw.headers["x-turnout-model"] == OPENAI_MODEL_2
    gw.sim.clear_faults()
    await asyncio.sleep(1.1)  # the cool-down
    await client.chat.completions.create(model=OPENAI_MODEL, messages=HELLO)
    events = _events(capfd.readouterr().err)
    errors = [e for e in events if e.get("event") == "upstream.error"]
    assert len(errors) == 6, "each failed attempt: 3 requests x (1 try + 1 retry)"
    first = errors[0]
    assert (first["model"], first["provider"], first["status"], first["fault"]) == (
        OPENAI_MODEL,
        "oai",
        503,
        "provider",
    )
    assert first["retry_in_s"] is not None and errors[1]["retry_in_s"] is None
    served = [e for e in events if e.get("event") == "failover.fallback_served"]
    assert (
        len(served) == 3 and served[0]["model"] == OPENAI_MODEL_2 and served[0]["skipped"] == [OPENAI_MODEL]
    )
    kinds = [e["event"] for e in events if str(e.get("event", "")).startswith("breaker.")]
    assert kinds == ["breaker.opened", "breaker.probe", "breaker.closed"], kinds
    opened = next(e for e in events if e.get("event") == "breaker.opened")
    assert opened["model"] == OPENAI_MODEL and opened["level"] == "warning" and "timestamp" in opened


async def test_a_broken_log_stream_never_breaks_a_request(
    gw: GatewayEnv,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    closed = io.StringIO()
    closed.close()
    monkeypatch.setattr(sys, "stderr", closed)  # stderr gone: a closed pipe, a detached terminal
    configure_logging()
    gw.sim.inject("status:503", count=None, model="gpt-4o-mini")
    raw = await gw.openai().chat.completions.with_raw_response.create(
        model=OPENAI_MODEL, messages=HELLO, extra_body={"fallbacks": [OPENAI_MODEL_2]}
    )
    assert raw.status_code == 200 and raw.headers["x-turnout-model"] == OPENAI_MODEL_2


async def test_every_request_leaves_one_access_line(
    capfd: pytest.CaptureFixture[str],  # first: capturing before the app configures its log stream
    gw: GatewayEnv,  # noqa: F811
) -> None:
    client = gw.openai()
    ok = await client.chat.completions.with_raw_response.create(model=OPENAI_MODEL, messages=HELLO)
    gw.sim.inject("status:400", count=1)
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(
            model=OPENAI_MODEL, messages=HELLO, extra_headers={"X-Client-Request-Id": "job-42"}
        )
    await gw.records(2)
    lines = [e for e in _events(capfd.readouterr().err) if e.get("event") == "request"]
    assert len(lines) == 2, lines
    first, second = lines
    assert first["id"] == ok.headers["x-turnout-message-id"] and first["status"] == "ok"
    assert (first["tenant_id"], first["agent_id"], first["model"], first["provider"]) == (
        "acme",
        gw.agent_id,
        OPENAI_MODEL,
        "oai",
    )
    assert first["latency_ms"] is not None and first["attempts"] == 1 and first["timestamp"].endswith("Z")
    assert second["status"] == "error" and second["http_status"] == 400 and second["error"]
    assert "client_request_id" not in first and second["client_request_id"] == "job-42", "found by its name"
