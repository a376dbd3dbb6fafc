"""Calling providers down a ranked list: retries with backoff and jitter, Retry-After, fallbacks,
circuit breakers and provider rate limits, all before the first byte reaches the client."""

from __future__ import annotations

import asyncio
import enum
import errno
import math
import random
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import aiohttp
import orjson
import structlog

from turnout import tracing
from turnout.domain.snapshot import ModelEntry, ProviderEntry, Snapshot
from turnout.errors import InvalidRequest, NeedsNativeFormat, RateLimited, ServiceUnavailable, TurnoutError
from turnout.gateway.guards import CircuitBreakers, RateLimiter
from turnout.gateway.keys import ProviderKeys
from turnout.providers.base import ChatAdapter, ProviderError, StreamDecoder, Target, UpstreamRequest
from turnout.providers.credentials import Credentials
from turnout.providers.registry import adapter_for
from turnout.routing.deployments import DeploymentLoad
from turnout.timeouts import Deadline, TimeoutWheel
from turnout.translate.passthrough import NativeBody
from turnout.translate.types import Chunk, WholeAnswer

log = structlog.get_logger(__name__)
CLIENT_ERRORS = frozenset({400, 413, 422})
# Statuses that say the provider itself is unwell (gateway, overload, timeout at its edge): they open
# the model's breaker for everyone. Other 5xx (500 above all: llama.cpp and vLLM answer 500 for inputs
# they cannot handle) may be caused by the request, so they count for the caller's tenant only.
PROVIDER_FAULT_STATUSES = frozenset({502, 503, 504, 529})
# Errors of this machine, not the provider's: out of file descriptors, buffers or memory.
LOCAL_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
STREAM_TYPES = (
    "text/event-stream",
    "application/x-ndjson",
    "application/jsonl",
    "application/vnd.amazon.eventstream",  # Bedrock's ConverseStream
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 2
    base_delay_s: float = 0.2
    max_delay_s: float = 4.0
    max_retry_after_s: float = 10.0
    first_byte_timeout_s: float = 60.0
    whole_body_timeout_s: float = 600.0  # a non-streaming answer is a whole generation: give it time

    def delay(self, attempt: int, retry_after_s: float | None) -> float | None:
        """Seconds to wait before retry ``attempt`` (1-based); None = don't retry this model."""
        if retry_after_s is not None:
            return retry_after_s if retry_after_s <= self.max_retry_after_s else None
        backoff = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return backoff / 2 + random.uniform(0, backoff / 2)


@dataclass(slots=True, weakref_slot=True)
class Opened:
    """A successful upstream response whose body (or first stream chunk) has not been sent on yet.

    A whole-body call carries its parsed ``result``; a stream carries its ``decoder`` and the chunks
    its first bytes already decoded to (checked here, so a broken answer still fails over)."""

    model: ModelEntry
    target: Target
    adapter: ChatAdapter
    response: aiohttp.ClientResponse
    first_chunk: bytes
    attempts: int
    fallback_used: bool
    result: WholeAnswer | None = None
    decoder: StreamDecoder | None = None
    first_items: list[Chunk] = field(default_factory=list)
    native: bool = False  # the client's own body was sent (pass-through): its answer goes back as is
    done: Callable[[], object] | None = None  # ends a group member's stream in flight (see close)

    def close(self) -> None:
        """The stream ended (or broke, or its client left): close the upstream response, and a
        group member's request is no longer in flight (were it never closed, when this is freed)."""
        self.response.close()
        if self.done is not None:
            self.done()


@dataclass(slots=True)
class FailoverTrace:
    """What one request's failover did: attempts, errors, and the last model it tried (the one that
    served, or the one a failed request is recorded against)."""

    attempts: int = 0
    errors: list[str] = field(default_factory=list)
    last: ModelEntry | None = None
    models: int = 0  # distinct models tried: more than one, a fallback was attempted

    def passed_over(self, model: ModelEntry, why: str) -> None:
        """A model skipped without an attempt (its provider's rate limit, its open breaker, its
        key unreadable): a call that fails is still recorded against it and its provider."""
        self.errors.append(f"{model.id}: {why}")
        self.last = model


Parse = Callable[[ChatAdapter, Target, bytes], WholeAnswer]


class Caller:
    """Opens an upstream response for the first model of a ranked list that answers."""

    def __init__(
        self,
        session: Callable[[], aiohttp.ClientSession],
        keys: ProviderKeys,
        breakers: CircuitBreakers,
        limiter: RateLimiter,
        policy: RetryPolicy,
        timeouts: TimeoutWheel,
        on_outcome: Callable[[str, bool, float], None] = lambda model_id, ok, latency_ms: None,
        load: DeploymentLoad | None = None,
    ) -> None:
        self._on_outcome = on_outcome
        self.load = load or DeploymentLoad()  # group members' requests in flight and latency
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
        tenant_id: str | None = None,
        parse: Parse | None = None,
    ) -> Opened:
        """Try each model in order; raise the most telling error when none answers.

        With ``parse`` the call is whole-body: the answer is read and parsed here, so a malformed
        one fails over like an error. Without it the call streams.

        A deployment-group member (``snapshot.group_members``) is tracked (requests in flight,
        latency) and not retried while the plan has another model to try: failover moves on at
        once, and a provider fault cools it down at once (``CircuitBreakers.failure(trip=True)``)."""
        last_error: TurnoutError | None = None
        rate_limited_for: float | None = None
        members = snapshot.group_members
        for index, model in enumerate(plan):
            provider = snapshot.providers[model.provider_id]
            rpm = provider.rate_limit_rpm
            if rpm:  # no await at all for providers without a limit
                wait = await self.limiter.acquire(provider.id, rpm)
                if wait is not None:
                    rate_limited_for = wait if rate_limited_for is None else min(rate_limited_for, wait)
                    trace.passed_over(model, "provider rate limit")
                    continue
            if not self.breakers.allow(model.id, tenant_id):
                trace.passed_over(model, "circuit open")
                wait_s = self.breakers.retry_after_s(model.id, tenant_id)
                last_error = last_error or _circuit_open(model.id, wait_s)
                continue
            try:
                credentials = await self._keys.get(provider)
            except TurnoutError as exc:
                self.breakers.release(model.id, tenant_id)
                trace.passed_over(model, exc.message)
                last_error = exc
                continue
            except BaseException:
                self.breakers.release(model.id, tenant_id)
                raise
            target = _target(model, provider, credentials)
            adapter = adapter_for(provider.provider_type)
            try:
                request = build(adapter, target)
            except NeedsNativeFormat as exc:  # another format's model: the next one may take it
                self.breakers.release(model.id, tenant_id)
                trace.passed_over(model, exc.message)
                last_error = exc
                continue
            except orjson.JSONEncodeError:  # orjson writes at most 254 levels; parsing took more
                self.breakers.release(model.id, tenant_id)
                raise InvalidRequest(
                    "the request nests JSON more than 254 levels deep", code="nesting_too_deep"
                ) from None
            except BaseException:
                self.breakers.release(model.id, tenant_id)
                raise
            member = bool(members) and model.id in members
            try:
                opened = await self._try_model(
                    model, target, adapter, request, trace, tenant_id, parse, member, index + 1 < len(plan)
                )
            except ProviderError as exc:
                last_error = exc
                if exc.status_code in CLIENT_ERRORS:
                    raise
                continue
            opened.fallback_used, opened.native = index > 0, request.native
            if index:
                log.info("failover.fallback_served", model=model.id, skipped=[m.id for m in plan[:index]])
            return opened
        if rate_limited_for is not None and (
            last_error is None or isinstance(last_error, ServiceUnavailable)
        ):
            raise _rate_limited(rate_limited_for)
        if isinstance(last_error, ProviderError) and last_error.status_code == 500:
            last_error.status_code = 502  # the upstream's internal error; a 500 would say it was ours
        raise last_error or ServiceUnavailable("no model could serve the request")

    async def exchange(
        self, snapshot: Snapshot, model: ModelEntry, native: NativeBody, tenant_id: str | None = None
    ) -> bytes | None:
        """Send ``native`` once to ``model``'s provider, outside failover: no retries, and neither
        breakers nor performance hear of it (a token count says nothing of a model's health). The
        answer's body; None when the provider does not take the format or its breaker is open.
        Raises the provider's error (ProviderError) otherwise."""
        if self.breakers.is_open(model.id, tenant_id):
            return None
        provider = snapshot.providers[model.provider_id]
        adapter = adapter_for(provider.provider_type)
        make = getattr(adapter, "native_request", None)
        if make is None:
            return None
        target = _target(model, provider, await self._keys.get(provider))
        request = make(target, native, stream=False)
        if request is None:
            return None
        try:
            response, payload = await self._send(request, True, self.policy.first_byte_timeout_s)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _transport_error(target, exc, True).error from None
        response.release()
        if response.status >= 300:
            raise adapter.error(target, response.status, payload, response.headers)
        return payload

    async def _try_model(
        self,
        model: ModelEntry,
        target: Target,
        adapter: ChatAdapter,
        request: UpstreamRequest,
        trace: FailoverTrace,
        tenant_id: str | None,
        parse: Parse | None,
        member: bool = False,
        more: bool = False,
    ) -> Opened:
        """Attempts on one model, retried with backoff; its breaker hears one outcome per request.

        A group ``member`` with ``more`` models after it in the plan is tried once: the next
        deployment of the same model is as good as a retry, and does not wait out a backoff."""
        verdict = False  # whether the breaker heard this request's outcome (else its probe is released)
        held = member  # whether this attempt holds a request in flight on the member
        if member:
            self.load.begin(model.id)
        try:
            retry = 0
            if trace.last is not model:
                trace.models += 1
            trace.last = model
            while True:
                trace.attempts += 1
                started = time.perf_counter()
                span = None
                if tracing.ENABLED:  # the attempt's CLIENT span, named in the traceparent sent upstream
                    span = tracing.start_attempt(
                        model.id, target.external_id, target.provider_id, target.provider_type, trace.attempts
                    )
                try:
                    opened = await self._attempt(
                        model,
                        target,
                        adapter,
                        request,
                        trace,
                        parse,
                        None if span is None else tracing.with_traceparent(span, request.headers),
                    )
                except _Failed as failed:
                    error, fault = failed.error, failed.fault
                    if span is not None:
                        tracing.attempt_failed(
                            span, error.status_code, fault.value, error.message, failed.upstream_status
                        )
                    trace.errors.append(f"{model.id}: {error.status_code} {error.message}")
                    if fault not in _NO_HEALTH_VERDICT:
                        self._on_outcome(model.id, False, (time.perf_counter() - started) * 1000)
                    retry += 1
                    delay = (
                        self.policy.delay(retry, error.retry_after_s)
                        if error.retryable and retry <= self.policy.max_retries and not (member and more)
                        else None
                    )
                    log.warning(
                        "upstream.error",
                        model=model.id,
                        provider=target.provider_id,
                        tenant=tenant_id,
                        status=error.status_code,
                        fault=fault.value,
                        attempt=retry,
                        retry_in_s=None if delay is None else round(delay, 3),
                        error=error.message[:300],
                    )
                    if delay is None:
                        if fault in (Fault.PROVIDER, Fault.REQUEST):
                            shared = fault is Fault.PROVIDER
                            self.breakers.failure(model.id, tenant_id, shared=shared, trip=member and shared)
                            verdict = True
                        raise error from None
                    await asyncio.sleep(delay)
                    continue
                except BaseException as exc:
                    if span is not None:
                        tracing.attempt_ended(span, exc)
                    raise
                if span is not None:
                    tracing.attempt_answered(span, opened.response.status, _usage_of(opened.result))
                self.breakers.success(model.id, tenant_id)
                verdict = True
                latency_ms = (time.perf_counter() - started) * 1000
                self._on_outcome(model.id, True, latency_ms)
                if member:
                    self.load.observe(model.id, latency_ms)
                    if parse is None:  # a stream stays in flight until it is closed
                        opened.done = weakref.finalize(opened, self.load.end, model.id)
                        held = False
                return opened
        finally:
            if held:
                self.load.end(model.id)
            if not verdict:
                self.breakers.release(model.id, tenant_id)

    async def _attempt(
        self,
        model: ModelEntry,
        target: Target,
        adapter: ChatAdapter,
        request: UpstreamRequest,
        trace: FailoverTrace,
        parse: Parse | None,
        headers: dict[str, str] | None = None,
    ) -> Opened:
        """One exchange: an answer that can be passed on, or ``_Failed`` saying what went wrong.
        ``headers`` replace the request's own (they add the attempt's ``traceparent``)."""
        whole_body = parse is not None
        try:
            response, first = await self._send(request, whole_body, headers=headers)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _transport_error(target, exc, whole_body) from None
        if response.status >= 400:
            response.release()
            error = adapter.error(target, response.status, first, response.headers)
            raise _Failed(error, _status_fault(error.status_code), response.status)
        if response.status >= 300:
            response.release()
            redirect = ProviderError(
                f"provider {target.provider_id} answered with a redirect (HTTP {response.status}), "
                "which is not followed: check its api_base",
                status=502,
            )
            raise _Failed(redirect, Fault.PROVIDER, response.status)
        try:
            if parse is not None:
                result = parse(request.decoding or adapter, target, first)
                return Opened(model, target, adapter, response, first, trace.attempts, False, result)
            decoder = (request.decoding or adapter).stream_decoder(target)
            items = decoder.feed(first)
            if not items and not response.content_type.startswith(STREAM_TYPES):
                raise ProviderError(
                    f"provider {target.provider_id} answered a stream request with "
                    f"{response.content_type or 'no content type'}, not a stream",
                    status=502,
                    retryable=True,
                )
        except ProviderError as error:
            response.close()
            raise _Failed(error, Fault.REQUEST) from None
        except BaseException:
            response.close()
            raise
        return Opened(model, target, adapter, response, first, trace.attempts, False, None, decoder, items)

    async def _send(
        self,
        request: UpstreamRequest,
        whole_body: bool,
        limit_s: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[aiohttp.ClientResponse, bytes]:
        """Send and wait for the first body bytes (or the whole body) within the deadline: the
        first-byte timeout for a stream, the whole-body timeout for an answer read at once (or
        ``limit_s``).

        A whole-body exchange lies entirely inside its deadline, so it runs without the session's
        total and read timeouts (timer handles armed and cancelled on every request and read); a
        stream keeps them for the reads after its first chunk."""
        session = self._session()
        if whole_body:
            timeout, limit = self._timeout_within_deadline(session), self.policy.whole_body_timeout_s
        else:
            timeout, limit = session.timeout, self.policy.first_byte_timeout_s
        if limit_s is not None:
            limit = limit_s
        with Deadline(self._timeouts.lane(limit)):
            response = await session.request(
                request.method,
                request.url,
                data=request.body,
                headers=request.headers if headers is None else headers,
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


def _usage_of(result: WholeAnswer | None) -> Mapping[str, object] | None:
    """The usage a whole answer reported (a stream's comes later, on the server span)."""
    usage = result.get("usage") if result is not None else None
    return usage if isinstance(usage, dict) else None


def _target(model: ModelEntry, provider: ProviderEntry, credentials: Credentials) -> Target:
    return Target(
        model.id,
        model.external_id,
        provider.id,
        provider.provider_type,
        provider.api_base,
        credentials,
        provider.api_version,
    )


class Fault(enum.Enum):
    """Whose fault a failed attempt was, which decides what its breaker hears."""

    PROVIDER = "provider"  # the provider is unwell: counts for everyone
    REQUEST = "request"  # may have been caused by this request: counts for its tenant only
    CALLER_INPUT = "caller_input"  # a 4xx: the request is wrong, the provider is fine
    RATE_LIMITED = "rate_limited"  # a 429: the provider is busy (a rate limit says nothing about health)
    LOCAL = "local"  # this machine ran out of something: nobody's fault upstream


class _Failed(Exception):
    """A failed attempt: the error for the client, whose fault it was, and the HTTP status the
    upstream answered with (None: it did not answer, or its answer could not be used)."""

    def __init__(self, error: ProviderError, fault: Fault, upstream_status: int | None = None) -> None:
        super().__init__(error.message)
        self.error, self.fault, self.upstream_status = error, fault, upstream_status


_NO_HEALTH_VERDICT = frozenset({Fault.CALLER_INPUT, Fault.RATE_LIMITED, Fault.LOCAL})  # breakers hear nothing


def _status_fault(status: int) -> Fault:
    if status in PROVIDER_FAULT_STATUSES:
        return Fault.PROVIDER
    if status >= 500:
        return Fault.REQUEST
    return Fault.RATE_LIMITED if status == 429 else Fault.CALLER_INPUT


def _is_local(exc: BaseException) -> bool:
    """An OSError of this machine (EMFILE and kin), possibly wrapped by aiohttp."""
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            return False
        if isinstance(seen, OSError) and seen.errno in LOCAL_ERRNOS:
            return True
        seen = getattr(seen, "os_error", None) or seen.__cause__
    return False


def _transport_error(target: Target, exc: BaseException, whole_body: bool) -> _Failed:
    """A failed exchange (no HTTP answer), with its fault."""
    if _is_local(exc):
        error = ProviderError(
            f"the gateway is short of local resources ({type(exc).__name__}); try again shortly",
            status=503,
            error_type="api_error",
            code="local_resources_exhausted",
        )
        return _Failed(error, Fault.LOCAL)
    if isinstance(exc, TimeoutError) and whole_body:
        # a whole generation ran out of time: sending it again would only multiply a slow answer,
        # and a long generation says nothing about the provider's health for others
        error = ProviderError(f"provider {target.provider_id} did not finish the answer in time", status=504)
        return _Failed(error, Fault.REQUEST)
    error = ProviderError(
        f"provider {target.provider_id} unreachable: {type(exc).__name__}",
        status=504 if isinstance(exc, TimeoutError) else 502,
        retryable=True,
    )
    return _Failed(error, Fault.PROVIDER)


def _circuit_open(model_id: str, wait_s: float) -> ServiceUnavailable:
    seconds = max(1, math.ceil(wait_s))
    return ServiceUnavailable(
        f"model '{model_id}' is temporarily unavailable (circuit open)",
        code="circuit_open",
        headers={"Retry-After": str(seconds)},
    )


def _rate_limited(wait_s: float) -> RateLimited:
    seconds = max(1, int(wait_s + 0.999))
    return RateLimited("provider rate limit reached; retry later", headers={"Retry-After": str(seconds)})
