"""Deployment groups across replicas: a group made on A routes on B, and a member cooled down on A
at its first failure is skipped by B without being called."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster_env import Replica, two_replicas, until
from tests.gateway_env import OPENAI_MODEL, SIM_KEY, provision
from turnout.simulator import Simulator, SimulatorConfig

pytestmark = pytest.mark.postgres
HELLO = [{"role": "user", "content": "hello"}]
AZ = "az/gpt-4o-mini"


async def _served(replica: Replica, key: str) -> str:
    resp = await replica.http.post(
        "/v1/chat/completions",
        json={"model": "mini", "messages": HELLO},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert resp.status_code == 200, resp.text
    return resp.headers["x-turnout-model"]


async def test_a_member_cooled_down_on_one_replica_is_skipped_by_the_other(tmp_path: Path) -> None:
    sim = Simulator(SimulatorConfig(api_key=SIM_KEY))
    sim_url = await sim.start()
    try:
        async with two_replicas(tmp_path, with_redis=True, breaker_cooldown_s=30.0) as (a, b):
            jwt = a.container.jwt
            admin, agent_id, key = await provision(
                a.http, lambda sub, tenant, roles: jwt.mint(sub, tenant, roles), sim_url
            )
            azure = {
                "id": "az",
                "display_name": "Azure",
                "provider_type": "azure",
                "api_base": sim_url,
                "api_version": "2024-10-21",
                "api_key": SIM_KEY,
            }
            assert (await a.http.post("/api/v2/admin/providers", json=azure, headers=admin)).is_success
            assert (await a.http.post("/api/v2/admin/providers/az/sync", headers=admin)).is_success
            tenant_admin = {"Authorization": f"Bearer {jwt.mint('ann', 'acme', ['tenant_admin'])}"}
            enabled = await a.http.post(
                f"/api/v2/agents/{agent_id}/models",
                json={"bulk_filter": {"provider": "az"}},
                headers=tenant_admin,
            )
            assert enabled.is_success
            members = [{"model_id": OPENAI_MODEL, "weight": 1000}, {"model_id": AZ}]
            made = await a.http.post(
                "/api/v2/admin/deployment-groups", json={"name": "mini", "members": members}, headers=admin
            )
            assert made.status_code == 201, made.text
            await a.container.snapshots.reload()  # A's sync rebuilds soon: here, at once
            snapshot_b = b.container.snapshots
            await until(lambda: "mini" in snapshot_b.current.groups and AZ in snapshot_b.current.models)

            sim.inject("status:503", count=None, path="/v1/chat/completions")  # OpenAI is down
            sim.reset_stats()
            assert await _served(a, key) == AZ, "A's request failed over to Azure"
            await until(lambda: b.container.gateway.caller.breakers.is_open(OPENAI_MODEL), every_s=0.001)
            assert [await _served(b, key) for _ in range(10)] == [AZ] * 10
            assert sim.stats.routes["POST /v1/chat/completions"] == 1, "B never called the dead member"
    finally:
        await sim.stop()
