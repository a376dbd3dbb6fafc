"""Guards on the hot path: provider requests-per-minute and per-model circuit breakers.

Both live in process memory. With replicas, a breaker that opens or closes here is published
(``CircuitBreakers.publish``) and the others apply it (``on_event``), so the request path never
asks Redis; the rpm limit is then held by ``cluster.rate_limit.RedisRpmLimiter`` instead of
``RpmLimiter``."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

log = structlog.get_logger(__name__)
BREAKER_EVENT = "breaker"


class RateLimiter(Protocol):
    """A provider's requests-per-minute limit, asked only for providers that have one."""

    async def acquire(self, provider_id: str, rpm: int) -> float | None:
        """Take a slot; return None on success, else seconds until one frees up."""
        ...


def _nothing(event: dict[str, Any]) -> None:
    pass


class RpmLimiter:
    """Sliding 60-second window per provider; ``try_acquire`` never waits."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[str, deque[float]] = {}

    def try_acquire(self, provider_id: str, rpm: int | None) -> float | None:
        """Take a slot; return None on success, else seconds until one frees up."""
        if not rpm:
            return None
        now: float = self._clock()
        window = self._windows.setdefault(provider_id, deque())
        while window and now - window[0] >= 60.0:
            window.popleft()
        if len(window) >= rpm:
            return max(0.0, 60.0 - (now - window[0]))
        window.append(now)
        return None

    async def acquire(self, provider_id: str, rpm: int) -> float | None:
        """``try_acquire`` as a ``RateLimiter``: one process's own count."""
        return self.try_acquire(provider_id, rpm)


@dataclass(slots=True)
class _Breaker:
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False


BreakerKey = str | tuple[str, str]  # a model, or a (model, tenant) pair


@dataclass
class CircuitBreakers:
    """Per-model breakers: after ``threshold`` consecutive failed requests the model is skipped for
    ``cooldown_s``; then one probe request is let through, and its outcome closes or re-opens it.

    Failures are counted once per request, in one of two scopes. A failure of the provider itself
    (unreachable, 502/503/504, a redirect) opens the model for everyone. A failure a request may have
    caused (a 500 the upstream raised on that input, a malformed answer, a long generation running
    out of time) opens it only for the caller's tenant, so no tenant can take a model away from the
    others. Callers pass ``tenant_id``; without it only the model's own breaker is consulted.

    A deployment-group member's breaker opens at the first failure of its provider (``trip``): the
    group has other members to send traffic to, so it is cooled down at once rather than after
    ``threshold`` failed requests. After the cooldown routing sends it the next request first
    (``probe_due``), whose outcome closes or re-opens it.

    Every opening and closing is handed to ``publish`` (other replicas apply it in ``on_event``)."""

    threshold: int = 5
    cooldown_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    publish: Callable[[dict[str, Any]], None] = _nothing
    _state: dict[BreakerKey, _Breaker] = field(default_factory=dict)

    def on_event(self, event: dict[str, Any]) -> None:
        """Another replica opened or closed a breaker: the same here, for what is left of its
        cooldown (durations travel, not clock readings, since replicas' clocks differ)."""
        if event.get("type") != BREAKER_EVENT:
            return
        model, tenant = str(event["model"]), event.get("tenant")
        key: BreakerKey = model if tenant is None else (model, str(tenant))
        if not event.get("open"):
            if self._state.pop(key, None) is not None:
                log.info("breaker.closed", **_scope(key), remote=True)
            return
        left = min(float(event.get("for_s", self.cooldown_s)), self.cooldown_s)
        self._state[key] = _Breaker(self.threshold, self.clock() - (self.cooldown_s - left))
        log.info("breaker.opened", **_scope(key), remote=True, cooldown_s=left)

    def _announce(self, key: BreakerKey, opened: bool) -> None:
        model, tenant = (key, None) if isinstance(key, str) else key
        self.publish(
            {
                "type": BREAKER_EVENT,
                "model": model,
                "tenant": tenant,
                "open": opened,
                "for_s": self.cooldown_s,
            }
        )

    def allow(self, model_id: str, tenant_id: str | None = None) -> bool:
        """May a request go to this model now? (Claims the probe slot when half-open.)"""
        if tenant_id is not None:
            scoped = (model_id, tenant_id)
            if not self._allow(scoped):
                return False
            if not self._allow(model_id):
                self._release(scoped)
                return False
            return True
        return self._allow(model_id)

    def open_models(self) -> list[str]:
        """The models skipped for everyone right now (tenant-scoped breakers aside)."""
        return [key for key in self._state if isinstance(key, str) and self._is_open(key)]

    def is_open(self, model_id: str, tenant_id: str | None = None) -> bool:
        """True while the model is being skipped for this caller (no side effect)."""
        return self._is_open(model_id) or (tenant_id is not None and self._is_open((model_id, tenant_id)))

    def probe_due(self, model_id: str, tenant_id: str | None = None) -> bool:
        """True when the model was open, its cooldown is over and no probe is in flight: the next
        request to it is the probe (no side effect)."""
        if self.is_open(model_id, tenant_id):
            return False
        state = self._state.get(model_id)
        if state is not None and state.opened_at is not None:
            return True
        scoped = self._state.get((model_id, tenant_id)) if tenant_id is not None else None
        return scoped is not None and scoped.opened_at is not None

    def retry_after_s(self, model_id: str, tenant_id: str | None = None) -> float:
        """Seconds until the model may be probed again for this caller (0 when it may be now)."""
        now: float = self.clock()
        keys: list[BreakerKey] = [model_id] if tenant_id is None else [model_id, (model_id, tenant_id)]
        waits = [
            self.cooldown_s - (now - state.opened_at)
            for key in keys
            if (state := self._state.get(key)) is not None and state.opened_at is not None
        ]
        return max([0.0, *waits])

    def success(self, model_id: str, tenant_id: str | None = None) -> None:
        for key in (model_id,) if tenant_id is None else (model_id, (model_id, tenant_id)):
            state = self._state.pop(key, None)
            if state is not None and state.opened_at is not None:
                log.info("breaker.closed", **_scope(key))
                self._announce(key, False)

    def failure(
        self, model_id: str, tenant_id: str | None = None, *, shared: bool = True, trip: bool = False
    ) -> None:
        """One failed request: ``shared`` for a failure of the provider itself, otherwise one the
        request may have caused (counted for its tenant only; the model's own probe is released).
        ``trip`` opens the breaker now, whatever the count (a group member's provider fault)."""
        key: BreakerKey = model_id if shared or tenant_id is None else (model_id, tenant_id)
        if key != model_id:
            self._release(model_id)
        elif tenant_id is not None:
            self._release((model_id, tenant_id))
        state = self._state.setdefault(key, _Breaker())
        state.failures += 1
        if state.probing or state.failures >= self.threshold or trip:
            log.warning(
                "breaker.opened",
                **_scope(key),
                failures=state.failures,
                cooldown_s=self.cooldown_s,
                after_probe=state.probing,
                tripped=trip,
            )
            state.opened_at = self.clock()
            state.probing = False
            self._announce(key, True)

    def release(self, model_id: str, tenant_id: str | None = None) -> None:
        """A claimed probe ended without a verdict (client went away, a local fault, a client
        error): let another probe try."""
        self._release(model_id)
        if tenant_id is not None:
            self._release((model_id, tenant_id))

    def _allow(self, key: BreakerKey) -> bool:
        state = self._state.get(key)
        if state is None or state.opened_at is None:
            return True
        now: float = self.clock()
        if now - state.opened_at < self.cooldown_s or state.probing:
            return False
        state.probing = True
        log.info("breaker.probe", **_scope(key))
        return True

    def _is_open(self, key: BreakerKey) -> bool:
        state = self._state.get(key)
        if state is None or state.opened_at is None:
            return False
        now: float = self.clock()
        return state.probing or now - state.opened_at < self.cooldown_s

    def _release(self, key: BreakerKey) -> None:
        state = self._state.get(key)
        if state is not None:
            state.probing = False


def _scope(key: BreakerKey) -> dict[str, str | None]:
    """A breaker's key as log fields: the model, and the tenant when it is one tenant's breaker."""
    if isinstance(key, tuple):
        return {"model": key[0], "tenant": key[1]}
    return {"model": key, "tenant": None}
