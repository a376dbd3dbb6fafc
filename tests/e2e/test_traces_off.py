"""A gateway without an OTLP endpoint traces nothing: no spans, and no ``traceparent`` upstream,
not even when its client sent one. (Its own module: tracing is process-wide, and
``test_traces.py`` keeps a traced gateway for its whole module.)"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from tests.gateway_env import OPENAI_MODEL, gateway
from turnout import tracing

HELLO: Any = [{"role": "user", "content": "hello"}]


async def test_without_an_endpoint_no_trace_context_goes_upstream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    incoming = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
    async with gateway(tmp_path) as gw:
        client = gw.openai()
        raw = await client.chat.completions.with_raw_response.create(
            model=OPENAI_MODEL, messages=HELLO, extra_headers={"traceparent": incoming}
        )
        assert raw.status_code == 200
        stream = await client.chat.completions.create(model=OPENAI_MODEL, messages=HELLO, stream=True)
        async for _ in stream:
            pass
        assert len(gw.sim.requests) == 2
        for request in gw.sim.requests:
            assert "traceparent" not in request.headers and "tracestate" not in request.headers
        assert tracing.ENABLED is False  # the hot path's one check: no tracer, no context objects
