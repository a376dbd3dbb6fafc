"""A gateway sampling its traces as ``OTEL_TRACES_SAMPLER`` says: here ``parentbased_traceidratio``
with ratio 0, so only requests whose caller's ``traceparent`` is sampled are exported, and every
request still passes its trace context upstream with the flag it was given. (Its own module:
tracing is process-wide.)"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.gateway_env import OPENAI_MODEL, GatewayEnv, gateway
from tests.otlp_receiver import Receiver, otlp_receiver

HELLO: Any = [{"role": "user", "content": "hello"}]


@pytest.fixture
async def sampled(tmp_path: Path) -> AsyncIterator[tuple[GatewayEnv, Receiver]]:
    with otlp_receiver() as (url, receiver), pytest.MonkeyPatch.context() as env:
        env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
        env.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
        env.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
        env.setenv("OTEL_TRACES_SAMPLER_ARG", "0")
        env.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
        async with gateway(tmp_path) as gw:
            yield gw, receiver


async def _call(gw: GatewayEnv, traceparent: str | None) -> tuple[str, str]:
    """A chat with ``traceparent`` (if any): its record's id and the ``traceparent`` sent upstream."""
    headers = {"traceparent": traceparent} if traceparent else {}
    raw = await gw.openai().chat.completions.with_raw_response.create(
        model=OPENAI_MODEL, messages=HELLO, extra_headers=headers
    )
    return raw.headers["x-turnout-message-id"], gw.sim.requests[-1].headers["traceparent"]


async def test_only_the_sampled_requests_are_exported_and_all_propagate(
    sampled: tuple[GatewayEnv, Receiver],
) -> None:
    gw, receiver = sampled
    root_id, root_upstream = await _call(gw, None)  # starts a trace: ratio 0, not sampled
    assert root_upstream.startswith("00-") and root_upstream.endswith("-00"), root_upstream
    unsampled_trace = secrets.token_hex(16)
    quiet_id, quiet_upstream = await _call(gw, f"00-{unsampled_trace}-{secrets.token_hex(8)}-00")
    assert quiet_upstream.split("-")[1] == unsampled_trace and quiet_upstream.endswith("-00")
    sampled_trace = secrets.token_hex(16)
    loud_id, loud_upstream = await _call(gw, f"00-{sampled_trace}-{secrets.token_hex(8)}-01")
    assert loud_upstream.split("-")[1] == sampled_trace and loud_upstream.endswith("-01")
    spans = await receiver.trace_of(loud_id)  # exported in order: the others would have come first
    assert spans and {s.trace_id for s in spans} == {sampled_trace}
    exported = {s.attributes.get("turnout.message_id") for s in receiver.snapshot()}
    assert loud_id in exported and not exported & {root_id, quiet_id}
