"""Per-process guards on the hot path: provider requests-per-minute and per-model circuit breakers."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


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


@dataclass(slots=True)
class _Breaker:
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False


@dataclass
class CircuitBreakers:
    """Per-model breaker: after ``threshold`` consecutive failures the model is skipped for
    ``cooldown_s``; then one probe request is let through, and its outcome closes or re-opens it."""

    threshold: int = 5
    cooldown_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    _state: dict[str, _Breaker] = field(default_factory=dict)

    def allow(self, model_id: str) -> bool:
        """May a request go to this model now? (Claims the probe slot when half-open.)"""
        state = self._state.get(model_id)
        if state is None or state.opened_at is None:
            return True
        now: float = self.clock()
        if now - state.opened_at < self.cooldown_s or state.probing:
            return False
        state.probing = True
        return True

    def is_open(self, model_id: str) -> bool:
        """True while the model is being skipped (no side effect)."""
        state = self._state.get(model_id)
        if state is None or state.opened_at is None:
            return False
        now: float = self.clock()
        return state.probing or now - state.opened_at < self.cooldown_s

    def success(self, model_id: str) -> None:
        self._state.pop(model_id, None)

    def failure(self, model_id: str) -> None:
        state = self._state.setdefault(model_id, _Breaker())
        state.failures += 1
        if state.probing or state.failures >= self.threshold:
            state.opened_at = self.clock()
            state.probing = False

    def release(self, model_id: str) -> None:
        """A claimed probe ended without a verdict (e.g. client went away): let another probe try."""
        state = self._state.get(model_id)
        if state is not None:
            state.probing = False
