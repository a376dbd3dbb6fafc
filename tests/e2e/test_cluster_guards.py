"""Guards across replicas, with real gateways in front of the simulator: a provider's rpm limit
holds for A and B together (counted in Redis), and a breaker opened on A is open on B."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.cluster_env import Replica, two_replicas, until
from tests.gateway_env import OPENAI_MODEL, SIM_KEY, provision
from turnout.simulator import Simulator, SimulatorConfig

pytestmark = pytest.mark.postgres
HELLO = [{"role": "user", "content": "hello"}]


async def _chat(replica: Replica, key: str) -> int:
    resp = await replica.http.post(
        "/v1/chat/completions",
        json={"model": OPENAI_MODEL, "messages": HELLO},
        headers={"Authorization": f"Bearer {key}"},
    )
    return resp.status_code


async def _set_up(a: Replica, b: Replica, sim_url: str) -> tuple[dict[str, str], str]:
    """Providers and an agent key made through A's admin API, known to B by event."""
    jwt = a.container.jwt
    admin, _agent, key = await provision(
        a.http, lambda sub, tenant, roles: jwt.mint(sub, tenant, roles), sim_url
    )
    await until(lambda: OPENAI_MODEL in b.container.snapshots.current.models)
    await until(lambda: b.container.snapshots.current.agent_models.get(("acme", "bot")))
    return admin, key


async def test_a_provider_rpm_limit_holds_across_replicas(tmp_path: Path) -> None:
    sim = Simulator(SimulatorConfig(api_key=SIM_KEY))
    sim_url = await sim.start()
    try:
        async with two_replicas(tmp_path, with_redis=True, retry_max=0) as (a, b):
            admin, key = await _set_up(a, b, sim_url)
            patched = await a.http.patch(
                "/api/v2/admin/providers/oai", json={"rate_limit_rpm": 10}, headers=admin
            )
            assert patched.is_success
            await until(lambda: b.container.snapshots.current.providers["oai"].rate_limit_rpm == 10)
            sim.reset_stats()
            statuses = [await _chat(a if i % 2 else b, key) for i in range(20)]
            assert statuses.count(200) == 10, statuses
            assert statuses.count(429) == 10, statuses
            assert int(sim.stats.routes["POST /v1/chat/completions"]) == 10, (
                "the upstream saw 10 calls in all"
            )
    finally:
        await sim.stop()


async def test_a_breaker_opened_on_one_replica_is_open_on_the_other_within_a_second(tmp_path: Path) -> None:
    sim = Simulator(SimulatorConfig(api_key=SIM_KEY))
    sim_url = await sim.start()
    try:
        overrides = {"retry_max": 0, "breaker_threshold": 3, "breaker_cooldown_s": 30.0}
        async with two_replicas(tmp_path, with_redis=True, **overrides) as (a, b):
            _admin, key = await _set_up(a, b, sim_url)
            sim.inject("status:503", count=None, model="gpt-4o-mini")  # the provider is down
            assert [await _chat(a, key) for _ in range(2)] == [503, 503]
            assert not b.container.gateway.caller.breakers.is_open(OPENAI_MODEL), "not yet: 2 failures of 3"
            assert await _chat(a, key) == 503  # the third opens it on A
            opened = time.monotonic()
            assert a.container.gateway.caller.breakers.is_open(OPENAI_MODEL)
            await until(lambda: b.container.gateway.caller.breakers.is_open(OPENAI_MODEL), every_s=0.001)
            took = time.monotonic() - opened
            print(f"\nbreaker open on B {took * 1000:.1f} ms after A's third 503 reached its client")
            assert took < 1.0
            sim.reset_stats()
            resp = await b.http.post(
                "/v1/chat/completions",
                json={"model": OPENAI_MODEL, "messages": HELLO},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert resp.status_code == 503 and resp.json()["error"]["code"] == "circuit_open", resp.text
            assert sim.stats.routes["POST /v1/chat/completions"] == 0, (
                "B skipped the model without calling it"
            )
            sim.clear_faults()
    finally:
        await sim.stop()


async def test_rotated_provider_credentials_are_used_by_the_other_replica_at_once(tmp_path: Path) -> None:
    sim = Simulator(SimulatorConfig(api_key=SIM_KEY))
    sim_url = await sim.start()
    try:
        async with two_replicas(tmp_path, with_redis=True, retry_max=0) as (a, b):
            admin, key = await _set_up(a, b, sim_url)
            assert await _chat(b, key) == 200  # B has the credential cached now
            rotated = await a.http.patch(
                "/api/v2/admin/providers/oai", json={"api_key": "sk-revoked"}, headers=admin
            )
            assert rotated.is_success

            async def refused_upstream() -> bool:  # the simulator refuses the new, wrong key
                return await _chat(b, key) != 200

            took = await until(refused_upstream, timeout_s=1.0)
            print(f"\nB stopped using the old upstream credential {took * 1000:.0f} ms after A's PATCH")
    finally:
        await sim.stop()
