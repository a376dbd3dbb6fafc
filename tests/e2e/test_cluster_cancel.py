"""``model.request.cancel`` behind a load balancer: two replicas on one PostgreSQL database and one
NATS, calls in flight on both. A by-name cancel must report every call it cancelled, on whichever
replica it sat; before, the reply was the first replica's and listed only its own calls."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nats
import orjson
import pytest

from tests.cluster_env import Replica, two_replicas, until
from tests.e2e.test_commands_nats import command
from tests.fixtures.nats_server import STREAM, NatsServer, nats_server  # noqa: F401
from tests.gateway_env import OPENAI_MODEL, SIM_KEY, provision
from turnout.auth.jwt_tokens import JwtCodec
from turnout.events.cancel_command import INTERNAL, WINDOW_S
from turnout.simulator import Simulator, SimulatorConfig

pytestmark = pytest.mark.postgres
HELLO = [{"role": "user", "content": "hello"}]


@dataclass
class Cluster:
    a: Replica
    b: Replica
    sim: Simulator
    key: str
    nc: nats.NATS

    def token(self, sub: str, tenant: str, role: str) -> str:
        return self.a.container.jwt.mint(sub, tenant, [role])  # the replicas share the secret

    def call(self, http: httpx.AsyncClient, name: str | None = None) -> asyncio.Future[httpx.Response]:
        """A chat call through ``http``'s replica, named ``name`` (``X-Client-Request-Id``)."""
        headers = {"Authorization": f"Bearer {self.key}"}
        if name is not None:
            headers["X-Client-Request-Id"] = name
        body = {"model": OPENAI_MODEL, "messages": HELLO}
        return asyncio.ensure_future(http.post("/v1/chat/completions", json=body, headers=headers))

    async def held(self, replica: Replica, count: int) -> list[str]:
        """Wait until ``replica`` holds ``count`` calls in flight; their message ids."""
        await until(lambda: len(replica.container.gateway.inflight) >= count, timeout_s=10)
        return list(replica.container.gateway.inflight)


@contextlib.asynccontextmanager
async def cluster(tmp_path: Path, server: NatsServer) -> AsyncIterator[Cluster]:
    """Replicas A and B on one NATS, provisioned through A, B's snapshot caught up, both serving
    commands."""
    await server.start()
    sim = Simulator(SimulatorConfig(api_key=SIM_KEY))
    sim_url = await sim.start()
    try:
        async with two_replicas(
            tmp_path, with_redis=False, nats_url=server.url, nats_stream=STREAM, first_byte_timeout_s=20.0
        ) as (a, b):
            jwt = a.container.jwt
            _admin, _agent, key = await provision(
                a.http, lambda sub, tenant, roles: jwt.mint(sub, tenant, roles), sim_url
            )
            await until(lambda: b.container.snapshots.current.agent_models.get(("acme", "bot")), timeout_s=40)
            for replica in (a, b):
                await until(lambda r=replica: r.container.commands and r.container.commands.serving, 10)
            nc = await nats.connect(server.url)
            try:
                yield Cluster(a, b, sim, key, nc)
            finally:
                await nc.close()
    finally:
        await sim.stop()


async def cancel(cl: Cluster, body: dict[str, Any], token: str) -> tuple[dict[str, Any], float]:
    """The command's reply, and how long it took."""
    started = asyncio.get_running_loop().time()
    reply = await command(cl.nc, "model.request.cancel", body, token)
    return reply, asyncio.get_running_loop().time() - started


def refused_409(resp: httpx.Response) -> bool:
    return resp.status_code == 409 and resp.json()["error"]["code"] == "request_cancelled"


async def statuses(replica: Replica, ids: list[str]) -> dict[str, str]:
    """The stored status of each call (a cancelled call's record is written as it ends)."""
    found: dict[str, str] = {}
    admin = {"Authorization": "Bearer " + replica.container.jwt.mint("ann", "acme", ["tenant_admin"])}

    async def stored() -> bool:
        for message_id in ids:
            resp = await replica.http.get(f"/api/v2/messages/{message_id}", headers=admin)
            if resp.status_code == 200:
                found[message_id] = resp.json()["status"]
        return len(found) == len(ids)

    await until(stored, timeout_s=10, every_s=0.1)
    return found


async def test_a_cancel_by_name_reports_the_calls_it_cancelled_on_every_replica(
    tmp_path: Path,
    nats_server: NatsServer,  # noqa: F811
) -> None:
    """One call named ``batch-1`` in flight on each replica; one command cancels both, whichever
    replica takes it, and its reply lists both."""
    async with cluster(tmp_path, nats_server) as cl:
        cl.sim.inject("stall:10", count=2)
        on_a = cl.call(cl.a.http, "batch-1")
        (held_a,) = await cl.held(cl.a, 1)
        on_b = cl.call(cl.b.http, "batch-1")
        (held_b,) = await cl.held(cl.b, 1)
        stranger, _ = await cancel(
            cl, {"client_request_id": "batch-1"}, cl.token("eve", "globex", "tenant_admin")
        )
        assert stranger["ok"] is False and stranger["error"]["code"] == "not_found", stranger
        assert stranger["error"]["param"] == "client_request_id", stranger

        done, took = await cancel(
            cl, {"client_request_id": "batch-1"}, cl.token("ann", "acme", "tenant_admin")
        )
        assert done["ok"] is True, done
        assert sorted(done["result"]["request_ids"]) == sorted([held_a, held_b]), (done, held_a, held_b)
        assert done == {
            "ok": True,
            "command": "model.request.cancel",
            "result": {
                "client_request_id": "batch-1",
                "request_ids": done["result"]["request_ids"],
                "status": "cancelled",
            },
        }
        assert took < 3, took
        answers = await asyncio.gather(on_a, on_b)
        assert all(refused_409(resp) for resp in answers), [r.text for r in answers]
        assert [r.headers["x-turnout-message-id"] for r in answers] == [held_a, held_b]
        assert await statuses(cl.a, [held_a, held_b]) == {held_a: "cancelled", held_b: "cancelled"}
        gone, _ = await cancel(cl, {"client_request_id": "batch-1"}, cl.token("ann", "acme", "tenant_admin"))
        assert gone["ok"] is False and gone["error"]["code"] == "not_found", gone


async def test_a_cancel_by_id_is_answered_by_the_replica_holding_the_call_at_once(
    tmp_path: Path,
    nats_server: NatsServer,  # noqa: F811
) -> None:
    """Three calls in flight on each replica, each cancelled by its id; the replica taking a
    command is the queue group's pick, so about half the commands reach the call through the other
    replica. Each is answered as soon as the holder cancels it, not after the fan-out's window;
    another tenant's admin finds no call, a platform admin cancels any tenant's."""
    async with cluster(tmp_path, nats_server) as cl:
        cl.sim.inject("stall:10", count=6)
        pending = [cl.call(replica.http) for replica in (cl.a, cl.b) for _ in range(3)]
        held = {"a": await cl.held(cl.a, 3), "b": await cl.held(cl.b, 3)}
        admin, root = cl.token("ann", "acme", "tenant_admin"), cl.token("root", "platform", "platform_admin")
        for request_id in (held["a"][0], held["b"][0]):
            stranger, took = await cancel(
                cl, {"request_id": request_id}, cl.token("eve", "globex", "tenant_admin")
            )
            assert stranger["ok"] is False and stranger["error"]["code"] == "not_found", stranger
            assert stranger["error"]["param"] == "request_id" and took < 1, (stranger, took)
        assert len(cl.a.container.gateway.inflight) == len(cl.b.container.gateway.inflight) == 3
        for n, request_id in enumerate(held["a"] + held["b"]):
            done, took = await cancel(cl, {"request_id": request_id}, admin if n % 2 else root)
            assert done == {
                "ok": True,
                "command": "model.request.cancel",
                "result": {"request_id": request_id, "status": "cancelled"},
            }
            assert took < WINDOW_S, f"waited out the window ({took:.3f} s): the holder had answered"
        answers = await asyncio.gather(*pending)
        assert all(refused_409(resp) for resp in answers), [r.text for r in answers]
        everyone = held["a"] + held["b"]
        assert await statuses(cl.b, everyone) == dict.fromkeys(everyone, "cancelled")
        unknown, took = await cancel(cl, {"request_id": held["b"][0]}, root)
        assert unknown["ok"] is False and unknown["error"]["param"] == "request_id", unknown
        assert WINDOW_S <= took < 1, "not in flight anywhere: the window is waited out, no longer"


async def test_a_fan_out_message_without_a_valid_token_cancels_nothing(
    tmp_path: Path,
    nats_server: NatsServer,  # noqa: F811
) -> None:
    """Anyone on NATS can publish to the replicas' internal subject: each replica verifies the
    token it carries, so a message with none, one signed with another secret, a claimed principal
    in a header, or a valid token without an admin role gets no answer and cancels nothing."""
    async with cluster(tmp_path, nats_server) as cl:
        cl.sim.inject("stall:10", count=2)
        pending = [cl.call(replica.http, "batch-1") for replica in (cl.a, cl.b)]
        held = [*await cl.held(cl.a, 1), *await cl.held(cl.b, 1)]
        body = orjson.dumps({"client_request_id": "batch-1"})
        stranger = JwtCodec("not-the-replicas-secret-" + "x" * 16).mint(
            "root", "platform", ["platform_admin"]
        )
        forged: list[dict[str, str] | None] = [
            None,
            {"Authorization": f"Bearer {stranger}"},
            {"X-Turnout-Principal": "root platform platform_admin", "X-Tenant-Id": "acme"},
            {"Authorization": f"Bearer {cl.token('bob', 'acme', 'user')}"},
        ]
        for headers in forged:
            with pytest.raises(nats.errors.TimeoutError):  # no replica answers it
                await cl.nc.request(INTERNAL, body, timeout=0.5, headers=headers)
        for request_id in held:
            with pytest.raises(nats.errors.TimeoutError):
                await cl.nc.request(INTERNAL, orjson.dumps({"request_id": request_id}), timeout=0.5)
        assert [list(r.container.gateway.inflight) for r in (cl.a, cl.b)] == [held[:1], held[1:]]
        assert not any(p.done() for p in pending), "no call was cancelled"

        done, _ = await cancel(cl, {"client_request_id": "batch-1"}, cl.token("ann", "acme", "tenant_admin"))
        assert sorted(done["result"]["request_ids"]) == sorted(held), done
        assert all(refused_409(resp) for resp in await asyncio.gather(*pending))
