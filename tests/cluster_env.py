"""Two replicas of Turnout (real containers under uvicorn) on one PostgreSQL database, sharing one
Redis or not: what a deployment with several gateway processes looks like."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.live_server import serve
from tests.services import create_pg_database, drop_pg_database, drop_redis_keys, redis_prefix, redis_url
from turnout.app import create_app
from turnout.config import Settings
from turnout.container import Container
from turnout.store.migrate import upgrade


@dataclass
class Replica:
    url: str
    container: Container
    http: httpx.AsyncClient


@asynccontextmanager
async def two_replicas(
    tmp_path: Path, *, with_redis: bool, **overrides: Any
) -> AsyncIterator[tuple[Replica, Replica]]:
    """Replicas A and B on a fresh PostgreSQL database (and a Redis, under a prefix of their own).
    The snapshot poll is set to 30 s, so whatever reaches the other replica sooner came by event."""
    database_url, name = await create_pg_database()
    prefix = redis_prefix()
    values: dict[str, Any] = {
        "database_url": database_url,
        "jwt_secret": secrets.token_hex(32),
        "master_key": secrets.token_hex(32),
        "task_classifier": "off",
        "snapshot_interval_s": 30.0,
        "redis_url": await redis_url() if with_redis else None,
        "redis_prefix": prefix,
        **overrides,
    }
    base = Settings(data_dir=tmp_path / "a", _env_file=None, **values)  # type: ignore[call-arg]
    first = Container.build(base)
    second = Container.build(base.model_copy(update={"data_dir": tmp_path / "b"}))
    try:
        await upgrade(first.engine)
        async with (
            serve(create_app(container=first)) as url_a,
            serve(create_app(container=second)) as url_b,
            httpx.AsyncClient(base_url=url_a, timeout=30) as http_a,
            httpx.AsyncClient(base_url=url_b, timeout=30) as http_b,
        ):
            yield Replica(url_a, first, http_a), Replica(url_b, second, http_b)
    finally:
        await second.aclose()
        await first.aclose()
        await drop_pg_database(name)
        if with_redis:
            await drop_redis_keys(prefix)


async def until(check: Callable[[], Any], timeout_s: float = 5.0, every_s: float = 0.005) -> float:
    """Seconds until ``check()`` is true (awaited when it returns an awaitable); fails after ``timeout_s``."""
    started = time.monotonic()
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return time.monotonic() - started
        assert time.monotonic() - started < timeout_s, f"not within {timeout_s} s"
        await asyncio.sleep(every_s)
