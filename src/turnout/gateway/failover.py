"""Calling providers down a ranked list: retries with backoff and jitter, Retry-After, fallbacks,
circuit breakers and provider rate limits, all before the first byte reaches the client."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

from turnout.errors import RateLimited, ServiceUnavailable, TurnoutError
from turnout.gateway.keys import ProviderKeys
from turnout.gateway.limits import CircuitBreakers, RpmLimiter
from turnout.gateway.snapshot import ModelEntry, Snapshot
from turnout.providers.base import ChatAdapter, ProviderError, Target, UpstreamRequest
from turnout.providers.registry import adapter_for
from turnout.timeouts import Deadline, TimeoutWheel

CLIENT_ERRORS = frozenset({400, 413, 422})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 2
    base_delay_s: float = 0.2
    max_delay_s: float = 4.0
    max_retry_after_s: float = 10.0
    first_byte_timeout_s: float = 60.0

    def delay(self, attempt: int, retry_after_s: float | None) -> float | None:
        """Seconds to wait before retry ``attempt`` (1-based); None = don't retry this model."""
        if retry_after_s is not None:
            return retry_after_s if retry_after_s <= self.max_retry_after_s else None
        backoff = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return backoff / 2 + random.uniform(0, backoff / 2)


@dataclass(slots=True)
class Opened:
    """A successful upstream response whose body (or first stream chunk) has not been sent on yet."""

    model: ModelEntry
    target: Target
    adapter: ChatAdapter
    response: aiohttp.ClientResponse
    first_chunk: bytes
    attempts: int
    fallback_used: bool


@dataclass(slots=True)
class FailoverTrace:
    attempts: int = 0
    errors: list[str] = field(default_factory=list)


class Caller:
    """Opens an upstream response for the first model of a ranked list that answers."""

    def __init__(
        self,
        session: Callable[[], aiohttp.ClientSession],
        keys: ProviderKeys,
        breakers: CircuitBreakers,
        limiter: RpmLimiter,
        policy: RetryPolicy,
        timeouts: TimeoutWheel,
        on_outcome: Callable[[str, bool, float], None] = lambda model_id, ok, latency_ms: None,
    ) -> None:
        self._on_outcome = on_outcome
        self._timeouts = timeouts
        self._unbounded: tuple[aiohttp.ClientSession, aiohttp.ClientTimeout] | None = None
        self._session = session
        self._keys = keys
        self.breakers = breakers
        self.limiter = limiter
        self.policy = policy

    async def open(
        self,
        snapshot: Snapshot,
        plan: list[ModelEntry],
        build: Callable[[ChatAdapter, Target], UpstreamRequest],
        trace: FailoverTrace,
        *,
        whole_body: bool,
    ) -> Opened:
        """Try each model in order; raise the most telling error when none answers."""
        last_error: TurnoutError | None = None
        rate_limited_for: float | None = None
        for index, model in enumerate(plan):
            provider = snapshot.providers[model.provider_id]
            wait = self.limiter.try_acquire(provider.id, provider.rate_limit_rpm)
            if wait is not None:
                rate_limited_for = wait if rate_limited_for is None else min(rate_limited_for, wait)
                trace.errors.append(f"{model.id}: provider rate limit")
                continue
            if not self.breakers.allow(model.id):
                trace.errors.append(f"{model.id}: circuit open")
                last_error = last_error or ServiceUnavailable(
                    f"model '{model.id}' is temporarily unavailable (circuit open)"
                )
                continue
            try:
                key = await self._keys.get(provider)
            except TurnoutError as exc:
                self.breakers.release(model.id)
                trace.errors.append(f"{model.id}: {exc.message}")
                last_error = exc
                continue
            target = Target(
                model.id,
                model.external_id,
                provider.id,
                provider.provider_type,
                provider.api_base,
                key,
                provider.api_version,
            )
            adapter = adapter_for(provider.provider_type)
            try:
                opened = await self._try_model(
                    model, target, adapter, build(adapter, target), trace, whole_body
                )
            except ProviderError as exc:
                last_error = exc
                if exc.status_code in CLIENT_ERRORS:
                    raise
                continue
            opened.fallback_used = index > 0
            return opened
        if rate_limited_for is not None and (
            last_error is None or isinstance(last_error, ServiceUnavailable)
        ):
            raise _rate_limited(rate_limited_for)
        raise last_error or ServiceUnavailable("no model could serve the request")

    async def _try_model(
        self,
        model: ModelEntry,
        target: Target,
        adapter: ChatAdapter,
        request: UpstreamRequest,
        trace: FailoverTrace,
        whole_body: bool,
    ) -> Opened:
        retry = 0
        while True:
            trace.attempts += 1
            started = time.perf_counter()
            try:
                response, first = await self._send(request, whole_body)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                error: ProviderError = ProviderError(
                    f"provider {target.provider_id} unreachable: {type(exc).__name__}",
                    status=504 if isinstance(exc, TimeoutError) else 502,
                    retryable=True,
                )
            else:
                if response.status < 400:
                    self.breakers.success(model.id)
                    self._on_outcome(model.id, True, (time.perf_counter() - started) * 1000)
                    return Opened(model, target, adapter, response, first, trace.attempts, False)
                response.release()
                error = adapter.error(response.status, first, response.headers)
            trace.errors.append(f"{model.id}: {error.status_code} {error.message}")
            if error.status_code not in CLIENT_ERRORS:
                self._on_outcome(model.id, False, (time.perf_counter() - started) * 1000)
            if not error.retryable:
                self.breakers.release(model.id)
                raise error
            self.breakers.failure(model.id)
            retry += 1
            delay = (
                self.policy.delay(retry, error.retry_after_s) if retry <= self.policy.max_retries else None
            )
            if delay is None or not self.breakers.allow(model.id):
                raise error
            await asyncio.sleep(delay)

    async def _send(self, request: UpstreamRequest, whole_body: bool) -> tuple[aiohttp.ClientResponse, bytes]:
        """Send and wait for the first body bytes (or the whole body), within the first-byte timeout.

        A whole-body exchange lies entirely inside that deadline, so it runs without the session's
        total and read timeouts (timer handles armed and cancelled on every request and read); a
        stream keeps them for the reads after its first chunk."""
        session = self._session()
        timeout = self._timeout_within_deadline(session) if whole_body else session.timeout
        with Deadline(self._timeouts.lane(self.policy.first_byte_timeout_s)):
            response = await session.request(
                request.method,
                request.url,
                data=request.body,
                headers=request.headers,
                allow_redirects=False,
                timeout=timeout,
            )
            try:
                first = await (
                    response.read() if whole_body or response.status >= 400 else response.content.readany()
                )
            except BaseException:
                response.close()
                raise
        return response, first

    def _timeout_within_deadline(self, session: aiohttp.ClientSession) -> aiohttp.ClientTimeout:
        """``session``'s timeouts less the total and read ones (connecting keeps its own)."""
        if self._unbounded is None or self._unbounded[0] is not session:
            bounded = session.timeout
            self._unbounded = (
                session,
                aiohttp.ClientTimeout(sock_connect=bounded.sock_connect, connect=bounded.connect),
            )
        return self._unbounded[1]


def _rate_limited(wait_s: float) -> RateLimited:
    seconds = max(1, int(wait_s + 0.999))
    return RateLimited("provider rate limit reached; retry later", headers={"Retry-After": str(seconds)})
