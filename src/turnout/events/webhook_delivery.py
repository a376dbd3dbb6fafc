"""Takes the outbox's events to the tenants' webhooks: fan-out, then signed POSTs with retries.

Fan-out turns each event still ``hooks_pending`` (oldest ``seq`` first) into one delivery row per
active webhook of the event's own tenant that subscribes to its type, and clears the flag in the
same transaction, so an event is fanned out exactly once; a platform-wide event (no tenant) goes
to no tenant's webhook. On PostgreSQL the rows are read ``FOR UPDATE SKIP LOCKED``: two replicas
never fan out the same event. Due deliveries are then claimed the same way, with a lease (their
next attempt moved past the request timeout) so no other replica takes them while they are in
flight, and POSTed, a bounded number at a time, through the process's pooled aiohttp session,
whose resolver refuses blocked addresses at connect time.

Each request is signed the Standard Webhooks way (standardwebhooks.com, as Svix does):
``webhook-signature: v1,<base64 HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>")>``,
the key being the base64 after the secret's ``whsec_`` prefix. A 2xx answer is a delivery;
anything else, a connection error or a timeout is retried with exponential backoff (with jitter,
capped at ``retry_max_s``), and after ``max_attempts`` the delivery is ``dead``: the dead-letter
list, retried only by hand. Delivery is at least once and unordered: receivers deduplicate on
``webhook-id``, the event's id.

A failing receiver is logged by state, not by attempt (a webhook on a dead port otherwise wrote a
warning per retry of every event): ``webhook_failing`` (a warning, with the error and the next
attempt) when a webhook starts failing, ``webhook_dead_letter`` when its first delivery goes dead,
``webhook_recovered`` (failed attempts and dead letters meanwhile) at its next 2xx; each retry in
between is a debug line. The state is this process's: each replica logs what it saw.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Any, cast

import aiohttp
import orjson
import structlog
from sqlalchemy import Table, select, update
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from turnout.errors import TurnoutError
from turnout.events.webhooks import ALL_EVENTS, SECRET_PREFIX, check_webhook_url, secret_ref
from turnout.ids import new_id
from turnout.secrets.base import SecretStore
from turnout.store.dml import conflict_insert
from turnout.store.events import Event, Webhook, WebhookDelivery
from turnout.store.models import utcnow
from turnout.store.sqlite.gate import engine_of, write_gate
from turnout.tasks import cancel_and_wait, wait_event

log = structlog.get_logger(__name__)
LEASE_MARGIN_S = 5.0  # a claimed delivery's lease outlasts its request by this much
ERROR_CHARS = 500  # WebhookDelivery.last_error's width


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one request (Standard Webhooks, version 1)."""
    key = secret.removeprefix(SECRET_PREFIX)
    mac = hmac.new(base64.b64decode(key), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode("ascii")


def event_body(event: Event) -> bytes:
    """The JSON body every webhook gets for ``event``: the same bytes on every attempt."""
    created = event.created_at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return orjson.dumps(
        {
            "id": event.id,
            "type": event.type,
            "tenant_id": event.tenant_id,
            "created_at": created,
            "data": event.payload,
        }
    )


@dataclass(slots=True)
class _Failing:
    """A webhook whose last delivery failed: since when, and what failed since."""

    since: float  # time.monotonic()
    attempts: int = 0
    dead_letters: int = 0


@dataclass(frozen=True, slots=True)
class _Claim:
    """A due delivery this replica holds the lease on."""

    id: str
    webhook_id: str
    event_id: str
    url: str
    attempts: int


class WebhookDispatcher:
    """The background loop that fans events out and delivers them (start, stop, wake)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        secrets: SecretStore,
        http: Callable[[], aiohttp.ClientSession],
        *,
        allow_private: bool,
        retry_base_s: float = 1.0,
        retry_max_s: float = 3600.0,
        max_attempts: int = 8,
        timeout_s: float = 10.0,
        concurrency: int = 16,
        interval_s: float = 0.2,
        idle_interval_s: float = 2.0,
        hooks_active: Callable[[], bool] | None = None,
        batch: int = 200,
    ) -> None:
        self._sessions = sessions
        self._secrets = secrets
        self._http = http
        self._allow_private = allow_private
        self._retry_base_s = retry_base_s
        self._retry_max_s = retry_max_s
        self._max_attempts = max_attempts
        self._timeout_s = timeout_s
        self._concurrency = concurrency
        self._interval_s = interval_s
        self._idle_interval_s = idle_interval_s
        self._hooks_active = hooks_active  # the events hub's: is any webhook active? (None: assume so)
        self._batch = batch
        engine = engine_of(sessions)
        self._dialect = engine.dialect.name if engine is not None else "sqlite"
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._inflight: dict[str, asyncio.Task[None]] = {}  # delivery id -> its request
        self._failing: dict[str, _Failing] = {}  # webhook id -> its failure, logged once (see module doc)

    def wake(self) -> None:
        """Run the next tick now: an event was staged, a test sent, a delivery retried."""
        self._wake.set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="webhook-dispatcher")

    async def stop(self) -> None:
        """Stop the loop and the requests in flight; their deliveries are due again at once (the
        attempt not counted), for the next start or another replica."""
        await cancel_and_wait(self._task)
        self._task = None
        held = list(self._inflight)
        for task in list(self._inflight.values()):
            task.cancel()
        await asyncio.gather(*self._inflight.values(), return_exceptions=True)
        self._inflight.clear()
        if held:
            async with write_gate(self._sessions), self._sessions.begin() as session:
                await session.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.id.in_(held), WebhookDelivery.status == "pending")
                    .values(next_attempt_at=utcnow())
                )

    async def _loop(self) -> None:
        while True:
            more = False
            try:
                more = await self.run_once()
            except Exception as exc:  # the database is down, say: try again next tick
                log.warning("webhook_dispatch_failed", error_type=type(exc).__name__, error=str(exc)[:200])
            if not more:
                await wait_event(self._wake, self._pace())
            self._wake.clear()

    def _pace(self) -> float:
        """Seconds to the next tick unless woken: ``interval_s`` while a webhook is active or a
        request is in flight; otherwise ``idle_interval_s``, since with no active webhook anywhere
        a tick only clears the fan-out flag of events no one receives (the sync's, the budgets'),
        and whatever arrives for a webhook wakes the loop (the copier, a test, a retry by hand)."""
        if self._inflight or self._hooks_active is None or self._hooks_active():
            return self._interval_s
        return self._idle_interval_s

    async def run_once(self) -> bool:
        """One tick: fan out a batch, start the due deliveries there is room for. True when a
        full batch was fanned out (more may be waiting)."""
        fanned = await self.fan_out()
        await self.deliver_due()
        return fanned >= self._batch

    # -- fan-out ---------------------------------------------------------------------------------

    async def fan_out(self) -> int:
        """Turn up to one batch of pending events into delivery rows; the number of events taken."""
        async with write_gate(self._sessions), self._sessions.begin() as session:
            events = (
                await session.execute(
                    select(Event.seq, Event.id, Event.type, Event.tenant_id)
                    .where(Event.hooks_pending)
                    .order_by(Event.seq)
                    .limit(self._batch)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not events:
                return 0
            hooks = await _subscribers(session, {e.tenant_id for e in events if e.tenant_id is not None})
            now = utcnow()
            rows = [
                {
                    "id": new_id(),
                    "webhook_id": hook_id,
                    "event_id": event.id,
                    "tenant_id": event.tenant_id,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for event in events
                if event.tenant_id is not None  # platform-wide: no tenant's webhook
                for hook_id, types in hooks.get(event.tenant_id, ())
                if ALL_EVENTS in types or event.type in types
            ]
            if rows:
                await session.execute(self._insert_deliveries(), rows)
            await session.execute(
                update(Event).where(Event.seq.in_([e.seq for e in events])).values(hooks_pending=False)
            )
        return len(events)

    def _insert_deliveries(self) -> Any:
        """``INSERT ... ON CONFLICT DO NOTHING``: a delivery that exists already is kept as it is."""
        stmt = conflict_insert(cast(Table, WebhookDelivery.__table__), self._dialect)
        if isinstance(stmt, PgInsert | SqliteInsert):
            return stmt.on_conflict_do_nothing(index_elements=["webhook_id", "event_id"])
        return stmt

    # -- delivery --------------------------------------------------------------------------------

    async def deliver_due(self) -> int:
        """Claim as many due deliveries as there are free request slots, and start them."""
        room = self._concurrency - len(self._inflight)
        if room <= 0:
            return 0
        claims = await self._claim(room)
        for claim in claims:
            task = asyncio.create_task(self._deliver(claim), name=f"webhook-delivery-{claim.id}")
            self._inflight[claim.id] = task
            task.add_done_callback(functools.partial(self._done, claim.id))
        return len(claims)

    def _done(self, delivery_id: str, _: asyncio.Task[None]) -> None:
        self._inflight.pop(delivery_id, None)
        self._wake.set()  # a slot is free

    async def _claim(self, limit: int) -> list[_Claim]:
        now = utcnow()
        lease = now + timedelta(seconds=self._timeout_s + LEASE_MARGIN_S)
        async with write_gate(self._sessions), self._sessions.begin() as session:
            rows = (
                await session.execute(
                    select(
                        WebhookDelivery.id,
                        WebhookDelivery.webhook_id,
                        WebhookDelivery.event_id,
                        Webhook.url,
                        WebhookDelivery.attempts,
                    )
                    .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                    .where(
                        WebhookDelivery.status == "pending",
                        WebhookDelivery.next_attempt_at <= now,
                        Webhook.active,  # an inactive webhook's deliveries wait for it
                    )
                    .order_by(WebhookDelivery.next_attempt_at)
                    .limit(limit)
                    .with_for_update(skip_locked=True, of=WebhookDelivery)
                )
            ).all()
            claims = [_Claim(*row) for row in rows if row.id not in self._inflight]
            if claims:
                await session.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.id.in_([c.id for c in claims]))
                    .values(next_attempt_at=lease)
                )
        return claims

    async def _deliver(self, claim: _Claim) -> None:
        try:
            await self._attempt(claim)
        except Exception as exc:  # the database failed, say: the lease runs out and it is retried
            log.warning(
                "webhook_delivery_error", delivery_id=claim.id, webhook_id=claim.webhook_id,
                error_type=type(exc).__name__,
            )  # fmt: skip

    async def _attempt(self, claim: _Claim) -> None:
        """One attempt: POST, then record the outcome (delivered, retry later, or dead)."""
        async with self._sessions() as session:
            event = await session.scalar(select(Event).where(Event.id == claim.event_id))
        if event is None:
            await self._finish(claim, status="dead", error="the event is no longer in the outbox")
            return
        try:
            secret = await self._secrets.get(secret_ref(self._secrets, claim.webhook_id))
        except TurnoutError as exc:  # the store is down, say: not the receiver's fault, not counted
            log.warning(
                "webhook_secret_unavailable", webhook_id=claim.webhook_id, error_type=type(exc).__name__
            )
            await self._reschedule(claim, self._retry_base_s)
            return
        status, error = await self._post(claim, event, secret)
        if status is not None and 200 <= status < 300:
            await self._finish(claim, status="delivered", http_status=status)
            self._log_recovery(claim.webhook_id)
            return
        attempts = claim.attempts + 1
        dead = attempts >= self._max_attempts
        delay_s = None if dead else self.backoff_s(attempts)
        error = error or f"HTTP {status}"
        self._log_failure(claim, status, error, attempts, delay_s)
        await self._finish(
            claim,
            status="dead" if dead else "pending",
            http_status=status,
            error=error,
            attempts=attempts,
            delay_s=delay_s,
        )

    def _log_failure(
        self, claim: _Claim, status: int | None, error: str, attempts: int, delay_s: float | None
    ) -> None:
        """A warning when the webhook starts failing and at its first dead letter; debug otherwise."""
        fields: dict[str, Any] = {
            "webhook_id": claim.webhook_id, "event_id": claim.event_id, "delivery_id": claim.id,
            "status": status, "error": error, "attempts": attempts,
        }  # fmt: skip
        if delay_s is not None:
            fields["next_attempt_at"] = (utcnow() + timedelta(seconds=delay_s)).isoformat()
        failing = self._failing.get(claim.webhook_id)
        if failing is None:
            failing = self._failing[claim.webhook_id] = _Failing(time.monotonic())
            log.warning("webhook_failing", **fields, note="its retries are logged at debug until it recovers")
        else:
            log.debug("webhook_delivery_failed", **fields)
        failing.attempts += 1
        if delay_s is None:
            failing.dead_letters += 1
            say = log.warning if failing.dead_letters == 1 else log.debug  # the rest: on recovery
            say("webhook_dead_letter", **fields, dead_letters=failing.dead_letters)

    def _log_recovery(self, webhook_id: str) -> None:
        failing = self._failing.pop(webhook_id, None)
        if failing is not None:
            log.warning(
                "webhook_recovered", webhook_id=webhook_id, failed_attempts=failing.attempts,
                dead_letters=failing.dead_letters, failing_for_s=round(time.monotonic() - failing.since, 1),
            )  # fmt: skip

    async def _post(self, claim: _Claim, event: Event, secret: str) -> tuple[int | None, str | None]:
        """The receiver's HTTP status, or (None, why) when there was none."""
        try:
            url = await asyncio.to_thread(check_webhook_url, claim.url, allow_private=self._allow_private)
        except TurnoutError as exc:  # allowed when it was saved; not any more (settings, DNS)
            return None, exc.message[:ERROR_CHARS]
        body = event_body(event)
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": event.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, event.id, timestamp, body),
        }
        try:
            async with self._http().post(
                url,
                data=body,
                headers=headers,
                allow_redirects=False,  # a redirect could point anywhere the URL check never saw
                timeout=aiohttp.ClientTimeout(total=self._timeout_s),
            ) as resp:
                await resp.content.read(64 * 1024)  # let the connection go back to the pool
                return resp.status, None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return None, f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]

    def backoff_s(self, attempts: int) -> float:
        """Seconds before the next attempt after ``attempts`` failed ones: the base doubling each
        time, capped, with up to 10% jitter so a recovering receiver is not hit by every retry at once."""
        delay = min(self._retry_base_s * 2 ** (attempts - 1), self._retry_max_s)
        return delay * (1 + random.uniform(0, 0.1))

    async def _finish(
        self,
        claim: _Claim,
        *,
        status: str,
        http_status: int | None = None,
        error: str | None = None,
        attempts: int | None = None,
        delay_s: float | None = None,
    ) -> None:
        now = utcnow()
        values: dict[str, Any] = {"status": status, "last_status": http_status, "last_error": error}
        if attempts is not None:
            values["attempts"] = attempts
        if status == "delivered":
            values.update(attempts=claim.attempts + 1, delivered_at=now, last_error=None)
        if delay_s is not None:
            values["next_attempt_at"] = now + timedelta(seconds=delay_s)
        async with write_gate(self._sessions), self._sessions.begin() as session:
            await session.execute(
                update(WebhookDelivery).where(WebhookDelivery.id == claim.id).values(**values)
            )

    async def _reschedule(self, claim: _Claim, delay_s: float) -> None:
        async with write_gate(self._sessions), self._sessions.begin() as session:
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == claim.id)
                .values(next_attempt_at=utcnow() + timedelta(seconds=delay_s))
            )


async def _subscribers(
    session: AsyncSession, tenants: set[str]
) -> dict[str, list[tuple[str, frozenset[str]]]]:
    """Each tenant's active webhooks with the event types they take."""
    found: dict[str, list[tuple[str, frozenset[str]]]] = defaultdict(list)
    if tenants:
        rows = await session.execute(
            select(Webhook.id, Webhook.tenant_id, Webhook.event_types).where(
                Webhook.active, Webhook.tenant_id.in_(tenants)
            )
        )
        for hook_id, tenant_id, types in rows:
            found[tenant_id].append((hook_id, frozenset(types)))
    return found
