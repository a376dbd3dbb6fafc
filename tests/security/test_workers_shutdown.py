"""``turnout serve --workers 2`` told to stop (SIGTERM to the parent, as an orchestrator sends it):
the calls in flight are answered, and a new connection meanwhile is refused at once, which a client
or load balancer can safely retry elsewhere. Before, the parent kept its copy of the listening
socket open while the workers drained: new connections waited in its backlog, then were reset (a
POST of unknown fate), while a one-worker server refused them at once."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import httpx

from tests.gateway_env import OPENAI_MODEL, SIM_KEY, provision
from tests.security.test_records_crash import HELLO, _env, _kill, _serve, _until_every_worker_knows
from turnout.auth.jwt_tokens import JwtCodec
from turnout.simulator import Simulator, SimulatorConfig


async def test_a_stopping_multi_worker_server_refuses_new_connections_while_it_drains(tmp_path: Path) -> None:
    sim = Simulator(SimulatorConfig(api_key=SIM_KEY))
    sim_url = await sim.start()
    env = _env(f"sqlite+aiosqlite:///{tmp_path}/gw.db", tmp_path, workers=2)
    served = await _serve(env, tmp_path, "workers")
    try:
        codec = JwtCodec(env["TURNOUT_JWT_SECRET"])
        async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
            _, _, key = await provision(
                http, lambda sub, tenant, roles: codec.mint(sub, tenant, roles), sim_url
            )
        await _until_every_worker_knows(served.url, key)
        sim.config.latency_ms = 3000  # calls in flight when the stop comes
        body: Any = {"model": OPENAI_MODEL, "messages": HELLO}

        async def slow_call() -> int:
            async with httpx.AsyncClient(base_url=served.url, timeout=30) as http:
                resp = await http.post(
                    "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
                )
                return resp.status_code

        in_flight = [asyncio.create_task(slow_call()) for _ in range(4)]
        await asyncio.sleep(1.0)
        served.proc.send_signal(signal.SIGTERM)  # the parent only
        await asyncio.sleep(0.8)  # the workers are draining
        outcomes = []
        for _ in range(3):
            started = time.monotonic()
            try:
                async with httpx.AsyncClient(base_url=served.url, timeout=10) as http:
                    await http.get("/healthz")
                outcomes.append(("answered", time.monotonic() - started))
            except httpx.ConnectError:
                outcomes.append(("refused", time.monotonic() - started))
            except httpx.TransportError as exc:
                outcomes.append((type(exc).__name__, time.monotonic() - started))
            await asyncio.sleep(0.3)
        assert all(kind == "refused" and waited < 1.0 for kind, waited in outcomes), outcomes
        assert await asyncio.gather(*in_flight) == [200] * 4, "the calls in flight were answered"
    finally:
        await _kill(served, signal.SIGTERM)
        await sim.stop()
