"""Where events start: whether calls produce them, and the loop that copies flagged call records
into the outbox and wakes the sinks (NATS, webhooks).

Calls produce events while anyone can receive them: NATS is configured, or some tenant has an
active webhook (checked every couple of seconds, so a new webhook hears from calls a moment after
it is made). Then each call's record is stored flagged (``FlaggedSink``: one dictionary write on
the request path) and copied into the outbox off it. While events are off the copier leaves the
database alone, after a drain window (``DRAIN_S``) that copies what was flagged before they went off,
or, at start, what a previous run left; anything flagged later still is copied when events come
back on."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from turnout.events.outbox import Outbox
from turnout.gateway.records import RecordSink
from turnout.store.events import Webhook
from turnout.tasks import cancel_and_wait, wait_event

log = structlog.get_logger(__name__)

WEBHOOKS_CHECK_S = 2.0
PURGE_S = 3600.0
# after events go off (and after start), flagged records are still copied this long: the records
# writer stores a flagged record within its flush interval (0.2 s), or a few seconds when behind
DRAIN_S = 10.0


class EventHub:
    """The events switch and the outbox's copy loop."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        outbox: Outbox,
        *,
        nats: bool,
        interval_s: float = 0.2,
        drain_s: float = DRAIN_S,
    ) -> None:
        self._sessions = sessions
        self.outbox = outbox
        self._nats = nats
        self._interval_s = interval_s
        self._drain_s = drain_s
        self.hooks = False  # is any tenant's webhook active? (see check_webhooks)
        self._wakers: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def notify(self, waker: Callable[[], None]) -> None:
        """Call ``waker`` whenever new events are in the outbox (a sink's early wake-up)."""
        self._wakers.append(waker)

    def wake(self) -> None:
        self._wake.set()

    @property
    def on(self) -> bool:
        """Do calls produce events? With NATS, or while some tenant has an active webhook."""
        return self._nats or self.hooks

    def subscribed(self) -> None:
        """A webhook was just made here: calls produce events from now on (the other replicas
        follow at their next check)."""
        self.hooks = True

    async def check_webhooks(self) -> None:
        """Switch events on while any tenant has an active webhook (always on with NATS); when one
        appears (made on another replica), wake the sinks so the dispatcher picks up its pace."""
        async with self._sessions() as session:
            found = await session.scalar(select(Webhook.id).where(Webhook.active.is_(True)).limit(1))
        appeared = found is not None and not self.hooks
        self.hooks = found is not None
        if appeared:
            for waker in self._wakers:
                waker()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="events-outbox")

    async def stop(self) -> None:
        """Copy what the records writer stored last, then stop (the sinks deliver it next start)."""
        await cancel_and_wait(self._task)
        self._task = None
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._copy_all(), 2.0)

    async def _copy_all(self) -> int:
        total = 0
        while moved := await self.outbox.copy_requests():
            total += moved
        if total:
            for waker in self._wakers:
                waker()
        return total

    async def _loop(self) -> None:
        checked = purged = 0.0
        last_on = time.monotonic()  # start: a previous run's flagged records are copied too
        failing = False
        while True:
            try:
                now = time.monotonic()
                if now - checked >= WEBHOOKS_CHECK_S:
                    checked = now
                    await self.check_webhooks()
                if self.on:
                    last_on = now
                if now - last_on < self._drain_s:  # events off: no query five times a second
                    await self._copy_all()
                if now - purged >= PURGE_S:
                    purged = now
                    await self.outbox.purge(nats=self._nats)
                if failing:
                    failing = False
                    log.info("events.outbox_back")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away: the records stay flagged until it is back
                if not failing:
                    failing = True
                    log.warning("events.outbox_failed", error_type=type(exc).__name__)
            self._wake.clear()
            await wait_event(self._wake, self._interval_s)  # not wait_for: it can swallow a cancellation


class FlaggedSink:
    """The record sink the gateway writes to, flagging each record for its event while events are on."""

    def __init__(self, sink: RecordSink, hub: EventHub) -> None:
        self._submit = sink.submit
        self._hub = hub

    def submit(self, record: dict[str, Any]) -> Awaitable[None] | None:
        if self._hub.on:
            record["event_pending"] = True
        return self._submit(record)
