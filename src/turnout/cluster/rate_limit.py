"""A provider's requests-per-minute limit held across replicas: one sliding window in Redis."""

from __future__ import annotations

import itertools
import uuid
from typing import Literal

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from turnout.errors import ServiceUnavailable

log = structlog.get_logger(__name__)

# One round trip, atomic: drop stamps older than 60 s, then take a slot if one is free, else return
# the milliseconds until the oldest one frees up. Redis's clock, so replicas' clocks may disagree.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 60000)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[2])
  redis.call('PEXPIRE', KEYS[1], 60000)
  return -1
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return 60000 - (now - tonumber(oldest[2]))
"""


class RedisRpmLimiter:
    """Same contract as the in-process ``RpmLimiter.acquire``, counted in Redis so the limit holds
    for all replicas together. Only called for providers that have a limit.

    With Redis down, ``down="open"`` lets calls through (logged once per outage) and ``"closed"``
    refuses them with 503."""

    def __init__(self, redis: Redis, prefix: str, *, down: Literal["open", "closed"] = "open") -> None:
        self._redis = redis
        self._prefix = prefix
        self._down = down
        self._script = redis.register_script(_ACQUIRE)
        self._origin = uuid.uuid4().hex  # window members must be unique across replicas
        self._counter = itertools.count()
        self._failing = False

    async def acquire(self, provider_id: str, rpm: int) -> float | None:
        """Take a slot; None on success, else seconds until one frees up."""
        try:
            wait_ms = await self._script(
                keys=[f"{self._prefix}rpm:{provider_id}"], args=[rpm, f"{self._origin}:{next(self._counter)}"]
            )
        except (RedisError, OSError) as exc:
            if not self._failing:
                self._failing = True
                log.warning(
                    "rate_limit.redis_down",
                    provider=provider_id,
                    error_type=type(exc).__name__,
                    down=self._down,
                )
            if self._down == "closed":
                raise ServiceUnavailable(
                    "provider rate limits are unavailable (Redis is down); retry later",
                    code="rate_limits_unavailable",
                ) from None
            return None
        if self._failing:
            self._failing = False
            log.info("rate_limit.redis_back")
        return None if int(wait_ms) < 0 else max(0.0, int(wait_ms) / 1000)
