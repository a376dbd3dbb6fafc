"""Change events over Redis pub/sub, for replicas that share a Redis."""

from __future__ import annotations

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from turnout.cluster.bus import QueuedBus, pause

log = structlog.get_logger(__name__)


class RedisBus(QueuedBus):
    """Publishes on ``channel`` and listens on a dedicated pub/sub connection of ``redis``.

    redis-py reconnects and resubscribes a dropped pub/sub connection by itself; every subscribe
    confirmation after the first therefore means a reconnect, and triggers ``RESYNC``. When that
    fails (Redis down) the loop here starts over with a fresh connection."""

    def __init__(self, redis: Redis, channel: str, *, ready_timeout_s: float = 2.0) -> None:
        super().__init__(ready_timeout_s=ready_timeout_s)
        self._redis = redis
        self._channel = channel

    async def _send(self, payload: bytes) -> None:
        await self._redis.publish(self._channel, payload)

    async def _receive(self) -> None:
        attempt = 0
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        attempt = 0
                        self._subscribed()
                    elif message["type"] == "message":
                        self._accept(message["data"])
            except (RedisError, OSError) as exc:
                log.warning("cluster.bus_down", transport="redis", error_type=type(exc).__name__)
            finally:
                try:
                    await pubsub.aclose()
                except (RedisError, OSError):
                    pass
            await pause(attempt)
            attempt += 1
