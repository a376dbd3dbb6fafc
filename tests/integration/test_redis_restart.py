"""Redis restarts empty under two replicas (a cache-only Redis: no snapshot, no append-only file).
While it is down a block budget refuses with a 503 that names the cause; once it is back, the
budget's counters are rebuilt from the call records, so what was spent before still counts (the
budget still holds), and change events flow again: a key revoked on A is refused by B within a
second. The other Redis tests only kill connections or point at a port nothing listens on."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlalchemy import func, select

from tests.cluster_env import two_replicas, until
from tests.gateway_env import FAST, OPENAI_MODEL, SIM_KEY, provision
from tests.live_server import free_port
from tests.services import service_missing
from turnout.simulator import Simulator, SimulatorConfig
from turnout.store.messages import Message

pytestmark = pytest.mark.postgres

PATIENT = {**FAST, "first_byte_timeout_s": 30.0, "http_read_timeout_s": 30.0, "http_total_timeout_s": 60.0}
MAX_TOKENS = 16


@dataclass
class OwnRedis:
    """A redis-server of the test's own, with nothing persisted: a restart starts empty."""

    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            service_missing("redis", "redis-server is not installed")
        assert binary is not None
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            cwd=self.workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = aioredis.Redis.from_url(self.url)
        try:

            async def answers() -> bool:
                try:
                    return bool(await client.ping())
                except (aioredis.ConnectionError, OSError):
                    return False

            await until(answers, timeout_s=10, every_s=0.05)
        finally:
            await client.aclose()

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


@asynccontextmanager
async def own_redis(workdir: Path) -> AsyncIterator[OwnRedis]:
    server = OwnRedis(free_port(), workdir)
    await server.start()
    try:
        yield server
    finally:
        server.kill()


def chat() -> dict[str, Any]:
    return {
        "model": OPENAI_MODEL,
        "max_tokens": MAX_TOKENS,
        "messages": [{"role": "user", "content": "Say hi"}],
    }


async def test_a_redis_restart_loses_no_spend_and_events_flow_again(tmp_path: Path) -> None:
    sim = Simulator(SimulatorConfig(api_key=SIM_KEY))
    sim_url = await sim.start()
    try:
        async with (
            own_redis(tmp_path) as redis,
            two_replicas(tmp_path, with_redis=True, redis_url=redis.url, redis_timeout_s=0.3, **PATIENT) as (
                a,
                b,
            ),
        ):
            mint: Callable[..., str] = lambda sub, tenant, roles: a.container.jwt.mint(sub, tenant, roles)  # noqa: E731
            _, agent_id, key = await provision(a.http, mint, sim_url)
            admin = {"Authorization": f"Bearer {mint('ann', 'acme', ('tenant_admin',))}"}
            agent = {"Authorization": f"Bearer {key}"}
            key_id = key.removeprefix("tk-").split(".")[0]
            await until(lambda: all(key_id in r.container.snapshots.current.keys for r in (a, b)))
            body = {
                "name": "acme daily",
                "scope": "tenant",
                "period": "daily",
                "amount_usd": 100,
                "action": "block",
            }
            made = await a.http.post("/api/v2/budgets", json=body, headers=admin)
            assert made.status_code == 201, made.text
            budget_id = made.json()["id"]

            for client in (a.http, b.http, a.http, b.http):
                answer = await client.post("/v1/chat/completions", json=chat(), headers=agent)
                assert answer.status_code == 200, answer.text
            spent = await _records_cost(a, 4)
            model = a.container.snapshots.current.models[OPENAI_MODEL]
            reservation = Decimal(str(MAX_TOKENS * (model.pricing_output or 0) / 1e6))
            assert spent > 0 and reservation > 0

            redis.kill()
            down = await b.http.post("/v1/chat/completions", json=chat(), headers=agent)
            assert down.status_code == 503, down.text
            assert (
                "Redis" in down.json()["error"]["message"] and "acme daily" in down.json()["error"]["message"]
            )

            await redis.start()  # empty: no counter, no script, no subscriber
            room = float(spent + reservation / 2)  # what was spent, and half a reservation more
            patched = await a.http.patch(
                f"/api/v2/budgets/{budget_id}", json={"amount_usd": room}, headers=admin
            )
            assert patched.status_code == 200, patched.text

            async def seen_spent() -> bool:
                shown = (await a.http.get(f"/api/v2/budgets/{budget_id}", headers=admin)).json()
                return shown["ledger"] == "ok" and abs(Decimal(str(shown["spent_usd"])) - spent) < Decimal(
                    "0.000001"
                )

            await until(seen_spent, timeout_s=10, every_s=0.1)  # rebuilt from the records

            def b_knows_the_amount() -> bool:
                views = b.container.snapshots.current.budgets.get(("tenant", "acme"), ())
                return any(v.id == budget_id and v.amount_usd == pytest.approx(room) for v in views)

            took = await until(b_knows_the_amount, timeout_s=5, every_s=0.01)
            print(f"\nB learned the new amount {took * 1000:.0f} ms after A answered, Redis just restarted")
            assert took < 1.0, f"B learned the new amount {took:.2f} s after A changed it"
            refused = await b.http.post("/v1/chat/completions", json=chat(), headers=agent)
            assert refused.status_code == 429, refused.text  # the spend before the restart still counts
            assert "acme daily" in refused.json()["error"]["message"]

            revoked = await a.http.delete(f"/api/v2/agents/{agent_id}/keys/{key_id}", headers=admin)
            assert revoked.is_success, revoked.text

            async def refused_by_b() -> bool:
                return (await b.http.get("/v1/models", headers=agent)).status_code == 401

            assert await until(refused_by_b, timeout_s=5, every_s=0.01) < 1.0  # by event, not the 30 s poll
    finally:
        await sim.stop()


async def _records_cost(replica: Any, count: int) -> Decimal:
    """The summed cost of the first ``count`` call records, once they are all stored."""

    async def stored() -> bool:
        async with replica.container.sessions() as session:
            return bool(await session.scalar(select(func.count()).select_from(Message)) >= count)

    await until(stored, timeout_s=10, every_s=0.05)
    async with replica.container.sessions() as session:
        total = await session.scalar(select(func.sum(Message.cost_usd)))
    return Decimal(str(total))
