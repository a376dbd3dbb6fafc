"""The Redis client the replicas share (``redis-py``'s asyncio client, one pool per process)."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

POOL_SIZE = 64  # connections per process; a burst of calls waits for one instead of failing


def connect(url: str, *, timeout_s: float = 0.5) -> Redis:
    """A client for ``url`` that opens connections on first use. A command that takes longer than
    ``timeout_s`` raises (``redis.exceptions.TimeoutError``), so a Redis outage costs a request at most
    about that long before the configured Redis-down behaviour applies. The pool blocks (up to
    ``timeout_s``) when all its connections are busy, rather than failing the call."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=POOL_SIZE,
        timeout=timeout_s,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        health_check_interval=30,
    )
    return Redis.from_pool(pool)  # closing the client closes its pool
