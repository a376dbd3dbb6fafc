"""Events to NATS JetStream: the outbox's pending events published to ``turnout.events.<type>`` in
a stream Turnout creates on start, each acknowledged by the server before its pending flag is
cleared. The event id travels as ``Nats-Msg-Id``, so the server drops a re-publish within its
duplicate window, and consumers that see one later can drop it by the same id (at-least-once).

While NATS is down nothing is lost: the events stay pending in the database, and the loop resumes
from the oldest when the connection is back (nats-py reconnects by itself)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import nats
import orjson
import structlog
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from turnout.events.outbox import Outbox
from turnout.logs import Throttle
from turnout.redaction import url_for_logs
from turnout.store.events import Event
from turnout.tasks import cancel_and_wait, wait_event

log = structlog.get_logger(__name__)

SUBJECT_PREFIX = "turnout.events."
TENANT_HEADER = "Turnout-Tenant"
BATCH = 500
DUPLICATE_WINDOW_S = 120.0
ERROR_LOG_EVERY_S = 30.0  # connection errors are logged at most this often (nats-py retries forever)


def subject_of(event_type: str) -> str:
    return SUBJECT_PREFIX + event_type


def envelope(event: Event) -> bytes:
    """What a consumer receives: the event's identity and type around its payload."""
    return orjson.dumps(
        {
            "id": event.id,
            "type": event.type,
            "tenant_id": event.tenant_id,
            "created_at": event.created_at.isoformat().replace("+00:00", "Z"),
            "data": event.payload,
        }
    )


class NatsEvents:
    """Publishes the outbox to JetStream from a background loop (one per process)."""

    def __init__(
        self,
        url: str,
        sessions: async_sessionmaker[AsyncSession],
        outbox: Outbox,
        *,
        stream: str = "TURNOUT_EVENTS",
        interval_s: float = 0.2,
    ) -> None:
        self._url = url
        self._sessions = sessions
        self._outbox = outbox
        self.stream = stream
        self._interval_s = interval_s
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._down = False  # logged once per outage
        self._errors = Throttle(ERROR_LOG_EVERY_S)  # connection errors: a line per 30 s at most
        self.published = 0
        self._on_connect: list[Callable[[Client], Awaitable[None]]] = []
        self._ready = False  # connected and the stream made sure of

    def on_connect(self, hook: Callable[[Client], Awaitable[None]]) -> None:
        """Run ``hook`` with the connection once it is first made (commands subscribe there)."""
        self._on_connect.append(hook)

    @property
    def client(self) -> Client | None:
        """The connection (also used to serve commands), once made."""
        return self._nc

    async def connect(self) -> Client:
        """Connect (retrying forever after the first failure, in the background) and make sure
        the stream exists."""
        if self._nc is None:
            self._nc = await nats.connect(
                self._url,
                name="turnout",
                connect_timeout=2,
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,
                error_cb=self._on_error,
                disconnected_cb=self._on_disconnected,
                reconnected_cb=self._on_reconnected,
            )
            self._js = self._nc.jetstream(timeout=2)
            for hook in self._on_connect:
                await hook(self._nc)
        await self._ensure_stream()
        self._ready = True
        return self._nc

    async def _ensure_stream(self) -> None:
        assert self._js is not None
        try:
            await self._js.stream_info(self.stream)
        except NotFoundError:
            await self._js.add_stream(
                StreamConfig(
                    name=self.stream,
                    subjects=[SUBJECT_PREFIX + ">"],
                    duplicate_window=DUPLICATE_WINDOW_S,
                )
            )
            log.info("events.stream_created", stream=self.stream)

    async def _on_error(self, exc: Exception) -> None:
        """A connection error (NATS unreachable at start-up is only this: nats-py's first connect
        retries forever): a warning, then one every ``ERROR_LOG_EVERY_S`` while they go on."""
        errors = self._errors.due(asyncio.get_running_loop().time())
        if errors is not None:
            log.warning(
                "events.nats_error",
                url=url_for_logs(self._url),
                error=str(exc) or type(exc).__name__,
                errors=errors,
            )

    async def _on_disconnected(self) -> None:
        log.warning("events.nats_disconnected", url=url_for_logs(self._url))

    async def _on_reconnected(self) -> None:
        log.info("events.nats_reconnected", url=url_for_logs(self._url))
        self.wake()

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="events-nats")

    async def stop(self) -> None:
        """Publish what is pending once more (briefly), then close the connection."""
        await cancel_and_wait(self._task)
        self._task = None
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.publish_pending(), 2.0)
            with contextlib.suppress(Exception):
                await self._nc.close()
            self._nc = self._js = None
            self._ready = False

    async def _loop(self) -> None:
        backoff = self._interval_s
        while True:
            try:
                if not self._ready:
                    await self.connect()
                sent = await self.publish_pending()
                if self._down:
                    self._down = False
                    log.info("events.nats_back")
                backoff = self._interval_s
                if sent >= BATCH:
                    continue  # more waiting: no sleep
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not self._down:
                    self._down = True
                    log.warning("events.publish_failed", error_type=type(exc).__name__, error=str(exc)[:200])
                backoff = min(backoff * 2, 5.0)
            self._wake.clear()
            await wait_event(self._wake, backoff)  # not wait_for: it can swallow a cancellation

    async def publish_pending(self) -> int:
        """Publish up to one batch of pending events, oldest first; clear the flags of those the
        server acknowledged. Returns how many were acknowledged."""
        if self._js is None:
            return 0
        async with self._sessions() as session:
            events = list(
                (
                    await session.scalars(
                        select(Event).where(Event.nats_pending.is_(True)).order_by(Event.seq).limit(BATCH)
                    )
                ).all()
            )
        if not events:
            return 0
        js = self._js
        results = await asyncio.gather(*(self._publish(js, e) for e in events), return_exceptions=True)
        acked = [e.id for e, r in zip(events, results, strict=True) if r is True]
        if acked:
            async with self._sessions() as session, session.begin():
                await session.execute(
                    update(Event)
                    .where(Event.id.in_(acked))
                    .values(nats_pending=False)
                    .execution_options(synchronize_session=False)
                )
            self.published += len(acked)
        failed = next((r for r in results if isinstance(r, BaseException)), None)
        if failed is not None:
            raise failed
        return len(acked)

    async def _publish(self, js: JetStreamContext, event: Event) -> Any:
        headers = {"Nats-Msg-Id": event.id}
        if event.tenant_id is not None:
            headers[TENANT_HEADER] = event.tenant_id
        await js.publish(subject_of(event.type), envelope(event), stream=self.stream, headers=headers)
        return True
