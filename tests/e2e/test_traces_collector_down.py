"""A collector that is away costs spans, never requests: while its port is closed, and while it
takes posts without answering, every call is answered at once, the spans that do not fit the
bounded queue are dropped and counted, and once it is back the new spans reach it. (Its own
module: tracing is process-wide.)"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from tests.gateway_env import OPENAI_MODEL, GatewayEnv, gateway
from tests.otlp_receiver import SERVER, otlp_collector
from turnout import tracing

HELLO: Any = [{"role": "user", "content": "hello"}]
EXPORT_TIMEOUT_S = 2.0  # a post to a hanging collector gives up after this long


async def _calls(gw: GatewayEnv, count: int) -> list[float]:
    """``count`` calls, one after another: how long each took (s); all answered 200."""
    client = gw.openai()
    took = []
    for _ in range(count):
        started = time.perf_counter()
        raw = await client.chat.completions.with_raw_response.create(model=OPENAI_MODEL, messages=HELLO)
        took.append(time.perf_counter() - started)
        assert raw.status_code == 200
    return took


async def test_a_collector_away_loses_spans_without_failing_or_slowing_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with otlp_collector() as collector:
        for name in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
        monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "30")  # about ten requests' spans
        monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "30")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", str(int(EXPORT_TIMEOUT_S * 1000)))
        collector.down()  # the port is closed: every export is refused
        async with gateway(tmp_path) as gw:
            await _calls(gw, 3)  # warm: the first call pays for connections and caches
            took = await _calls(gw, 20)
            await asyncio.sleep(0.3)  # a few export rounds, all refused
            refused = tracing.stats()
            assert refused["dropped"] > 0 and refused["exported"] == 0
            assert refused["queued"] <= 30 + 4  # bounded (a request's spans are queued together)
            assert max(took) < EXPORT_TIMEOUT_S / 2, took

            collector.receiver.hang.set()  # listening again, but answering nothing
            collector.up()
            await asyncio.sleep(0.2)  # an export is now waiting on the collector
            took = await _calls(gw, 20)
            assert max(took) < EXPORT_TIMEOUT_S / 2, took  # nothing waits on the stuck export
            await asyncio.sleep(EXPORT_TIMEOUT_S + 0.3)  # the stuck export gave up
            assert tracing.stats()["dropped"] > refused["dropped"]
            assert collector.receiver.posts == 0

            collector.receiver.hang.clear()  # back
            raw = await gw.openai().chat.completions.with_raw_response.create(
                model=OPENAI_MODEL, messages=HELLO
            )
            spans = await collector.receiver.trace_of(raw.headers["x-turnout-message-id"])
            assert len(spans) == 3 and sum(s.kind == SERVER for s in spans) == 1
            assert tracing.stats()["exported"] >= 3
