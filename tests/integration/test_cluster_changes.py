"""Changes made through one replica reach the other by event, well inside the 2 s poll: a revoked
key is refused everywhere within a second (Redis pub/sub, or PostgreSQL LISTEN/NOTIFY without Redis)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.cluster_env import two_replicas, until
from tests.services import PG_DSN, create_pg_database, drop_pg_database, redis_url
from turnout.cluster.pg_bus import PostgresBus, asyncpg_connect_kwargs
from turnout.cluster.rate_limit import RedisRpmLimiter
from turnout.cluster.redis import connect
from turnout.cluster.redis_bus import RedisBus
from turnout.errors import ServiceUnavailable

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("transport", ["redis", "postgres"])
async def test_a_key_revoked_on_one_replica_is_refused_by_the_other_within_a_second(
    tmp_path: Path, transport: str
) -> None:
    async with two_replicas(tmp_path, with_redis=transport == "redis") as (a, b):
        token = a.container.jwt.mint("ann", "acme", ("tenant_admin",))
        admin = {"Authorization": f"Bearer {token}"}
        assert (
            await a.http.post("/api/v2/agents", json={"id": "bot", "name": "Bot"}, headers=admin)
        ).is_success
        issued = (await a.http.post("/api/v2/agents/bot/keys", json={}, headers=admin)).json()
        as_agent = {"Authorization": f"Bearer {issued['key']}"}

        async def accepted_by_b() -> bool:
            return (await b.http.get("/v1/models", headers=as_agent)).status_code == 200

        issued_in = await until(accepted_by_b, timeout_s=5)  # the new key reaches B by a rebuild
        assert (await b.http.get("/v1/models", headers=as_agent)).status_code == 200  # and B caches it

        revoked = await a.http.delete(f"/api/v2/agents/bot/keys/{issued['id']}", headers=admin)
        assert revoked.is_success
        done = time.monotonic()
        refused: list[httpx.Response] = []

        async def refused_by_b() -> bool:
            resp = await b.http.get("/v1/models", headers=as_agent)
            refused.append(resp)
            return resp.status_code == 401

        await until(refused_by_b, timeout_s=5, every_s=0.002)
        took = time.monotonic() - done
        print(
            f"\n[{transport}] new key usable on B after {issued_in * 1000:.0f} ms; "
            f"revocation refused by B {took * 1000:.1f} ms after A answered"
        )
        assert took < 1.0
        assert refused[-1].json()["error"]["code"] == "revoked_api_key"


async def test_the_redis_bus_reconnects_after_its_connection_is_killed() -> None:
    url = await redis_url()
    name = f"turnout-test-{uuid.uuid4().hex[:12]}"
    channel = f"{name}:changes"
    listening = connect(url)
    listening.connection_pool.connection_kwargs["client_name"] = name  # to find its connection below
    sending, admin = connect(url), connect(url)
    sender, listener = RedisBus(sending, channel), RedisBus(listening, channel)
    heard: list[dict[str, object]] = []
    listener.subscribe(heard.append)
    await sender.start()
    await listener.start()
    try:
        sender.publish({"type": "ping", "n": 1})
        await until(lambda: {"type": "ping", "n": 1} in heard)
        killed = 0
        for client in await admin.client_list():
            if client.get("name") == name:
                killed += await admin.client_kill_filter(_id=client["id"])
        assert killed, "the listener's connection was found and killed"
        await until(lambda: {"type": "resync"} in heard)  # it knows it may have missed events
        sender.publish({"type": "ping", "n": 2})
        await until(lambda: {"type": "ping", "n": 2} in heard)
        sender.publish({"type": "ping", "n": 3})
        await until(lambda: {"type": "ping", "n": 3} in heard)
        assert [e for e in heard if e["type"] == "ping"] == [{"type": "ping", "n": n} for n in (1, 2, 3)]
    finally:
        await listener.stop()
        await sender.stop()
        for client_ in (listening, sending, admin):
            await client_.aclose()


@pytest.mark.parametrize("down", ["open", "closed"])
async def test_with_redis_down_the_shared_rpm_limit_fails_open_or_closed(down: str) -> None:
    unreachable = connect("redis://127.0.0.1:1/0", timeout_s=0.2)  # nothing listens on port 1
    limiter = RedisRpmLimiter(unreachable, "turnout-test:", down=down)  # type: ignore[arg-type]
    try:
        if down == "open":
            assert await limiter.acquire("p", 1) is None and await limiter.acquire("p", 1) is None
        else:
            with pytest.raises(ServiceUnavailable) as info:
                await limiter.acquire("p", 1)
            assert info.value.status_code == 503
    finally:
        await unreachable.aclose()


async def test_the_postgres_bus_reconnects_after_its_connection_is_terminated() -> None:
    url, name = await create_pg_database()
    sender, listener = (
        PostgresBus(asyncpg_connect_kwargs(url), "changes"),
        PostgresBus(asyncpg_connect_kwargs(url), "changes"),
    )
    heard: list[dict[str, object]] = []
    sender_heard: list[dict[str, object]] = []
    listener.subscribe(heard.append)
    sender.subscribe(sender_heard.append)
    await sender.start()
    await listener.start()
    try:
        sender.publish({"type": "ping", "n": 1})
        await until(lambda: {"type": "ping", "n": 1} in heard)
        assert sender_heard == [], "a replica ignores its own events"
        admin = await asyncpg.connect(PG_DSN)
        try:  # both buses' connections are the only ones to this database
            ended = await admin.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
            )
        finally:
            await admin.close()
        assert len(ended) == 2
        await until(lambda: {"type": "resync"} in heard, timeout_s=10)
        await until(lambda: {"type": "resync"} in sender_heard, timeout_s=10)  # the sender is back too
        sender.publish({"type": "ping", "n": 2})
        await until(lambda: {"type": "ping", "n": 2} in heard)
    finally:
        await listener.stop()
        await sender.stop()
        await drop_pg_database(name)
