"""Change events between replicas: a write in one replica becomes a refresh in the others.

A ``ChangeBus`` carries small JSON events (``{"type": ...}``). ``publish`` never waits: it queues
the event for a background sender, so it may be called from the request path (a breaker opening)
and from synchronous code. Listeners run on the event loop and must not block. After the bus
reconnects it delivers ``RESYNC`` locally, since events sent while it was away are lost."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import structlog

from turnout.tasks import cancel_and_wait

Event = dict[str, Any]
Listener = Callable[[Event], None]
RESYNC_TYPE = "resync"
QUEUE_MAX = 10_000  # events waiting for the sender; beyond this they are dropped (the poll catches up)
RETRY_S = (0.1, 0.25, 0.5, 1.0)  # reconnect back-off, then every second

log = structlog.get_logger(__name__)


class ChangeBus:
    """The bus of a single process: nothing to tell anyone. Subclasses send for real."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener`` for every event another replica publishes (and for ``RESYNC``)."""
        self._listeners.append(listener)

    def publish(self, event: Event) -> None:
        """Tell the other replicas (no-op here)."""

    async def start(self) -> None:
        """Connect and subscribe."""

    async def stop(self) -> None:
        """Disconnect."""

    def _deliver(self, event: Event) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:  # one broken listener must not starve the others
                log.exception("cluster.listener_failed", event_type=event.get("type"))


class QueuedBus(ChangeBus):
    """A bus with a background sender and a background receiver; events carry the sender's
    ``origin`` so a replica ignores its own."""

    def __init__(self, *, ready_timeout_s: float = 2.0) -> None:
        super().__init__()
        self.origin = uuid.uuid4().hex
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(QUEUE_MAX)
        self._ready = asyncio.Event()
        self._ready_timeout_s = ready_timeout_s
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribed_before = False

    def publish(self, event: Event) -> None:
        try:
            self._queue.put_nowait(orjson.dumps({**event, "origin": self.origin}))
        except asyncio.QueueFull:
            log.warning("cluster.event_dropped", event_type=event.get("type"), reason="queue full")

    async def start(self) -> None:
        """Start sending and receiving; wait (briefly) until subscribed, so no event sent after
        ``start`` returns is missed. With the service down, start anyway and keep retrying."""
        if self._tasks:
            return
        self._tasks = [
            asyncio.create_task(self._receive(), name="cluster-bus-receive"),
            asyncio.create_task(self._send_loop(), name="cluster-bus-send"),
        ]
        try:
            async with asyncio.timeout(self._ready_timeout_s):
                await self._ready.wait()
        except TimeoutError:
            log.warning("cluster.bus_not_ready", waited_s=self._ready_timeout_s)

    async def stop(self) -> None:
        for task in self._tasks:
            await cancel_and_wait(task)
        self._tasks = []

    def _subscribed(self) -> None:
        """The receiver is (again) subscribed: after the first time, events may have been missed."""
        if self._subscribed_before:
            log.info("cluster.bus_reconnected")
            self._deliver({"type": RESYNC_TYPE})
        self._subscribed_before = True
        self._ready.set()

    def _accept(self, payload: bytes | str) -> None:
        """An event from the wire: ours are dropped, malformed ones logged."""
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError:
            log.warning("cluster.event_malformed")
            return
        if not isinstance(event, dict) or event.pop("origin", None) == self.origin:
            return
        self._deliver(event)

    async def _send_loop(self) -> None:
        while True:
            payload = await self._queue.get()
            try:
                await self._send(payload)
            except Exception as exc:  # the service is away: receivers resync when it is back
                log.warning("cluster.event_lost", error_type=type(exc).__name__)

    async def _send(self, payload: bytes) -> None:
        raise NotImplementedError

    async def _receive(self) -> None:
        raise NotImplementedError


async def pause(attempt: int) -> None:
    """Back off before reconnect attempt ``attempt`` (0-based)."""
    await asyncio.sleep(RETRY_S[min(attempt, len(RETRY_S) - 1)])
