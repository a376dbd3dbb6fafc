"""Coarse timeouts for the hot path: one ticking task per process, not a timer handle per request.

A request used to arm four or five event-loop timers (the first-byte deadline, the disconnect
watcher's start, aiohttp's total and read timeouts) and cancel them all a millisecond later: each
an allocation, a heap push and a removal in the loop, ~2 us apiece. Here each timeout length has a
``TimeoutLane``: an insertion-ordered dict whose entries fall due in the order they were added, so
setting and clearing a timeout is one dict operation and a ticker that wakes every ``tick_s``
fires only the entries at the front. A timeout fires up to ``tick_s`` late, which is nothing next
to the lengths used here (50 ms and up).

Measured alone against the library's mechanisms (``asyncio.timeout`` for the upstream deadline,
``loop.call_later`` for the disconnect watcher) with ``bench/gateway_ab.py`` on the 2-core sandbox
(2026-12-04): the library version's CPU per request was 1.069x and 1.134x this one's in two runs
(16 and 20 rounds), against an A/A floor of 1.016 that day (1.04-1.06 before), so it stays.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

from turnout.tasks import cancel_and_wait

TICK_S = 0.01


class TimeoutLane:
    """Timeouts of one length, ``delay_s``: ``add`` one, ``discard`` it if its work ended first."""

    __slots__ = ("_entries", "_wheel", "delay_s")

    def __init__(self, wheel: TimeoutWheel, delay_s: float) -> None:
        self._wheel = wheel
        self.delay_s = delay_s
        self._entries: OrderedDict[Hashable, tuple[float, Callable[[], None]]] = OrderedDict()

    def add(self, key: Hashable, callback: Callable[[], None]) -> None:
        """Call ``callback`` about ``delay_s`` from now unless ``key`` is discarded before."""
        if self._wheel.ticker is None:
            self._wheel.start()
        self._entries[key] = (time.monotonic() + self.delay_s, callback)

    def discard(self, key: Hashable) -> None:
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)

    def fire_due(self, now: float) -> None:
        """Call back (and drop) every entry due by ``now``; they sit at the front, in due order."""
        entries = self._entries
        while entries:
            key, (due, callback) = next(iter(entries.items()))
            if due > now:
                return
            del entries[key]
            try:
                callback()
            except Exception as exc:  # reported like a failing loop callback; the others still fire
                asyncio.get_running_loop().call_exception_handler(
                    {"message": "timeout callback failed", "exception": exc}
                )


class TimeoutWheel:
    """The process's lanes and the task that ticks them: started by an ``add``, it ends when every
    lane is empty (an idle gateway does not wake up 100 times a second)."""

    def __init__(self, tick_s: float = TICK_S) -> None:
        self.tick_s = tick_s
        self._lanes: dict[float, TimeoutLane] = {}
        self.ticker: asyncio.Task[None] | None = None

    def lane(self, delay_s: float) -> TimeoutLane:
        """The lane of timeouts ``delay_s`` long (one per length)."""
        lane = self._lanes.get(delay_s)
        if lane is None:
            lane = self._lanes[delay_s] = TimeoutLane(self, delay_s)
        return lane

    def start(self) -> None:
        """Start ticking in the running loop (idempotent)."""
        if self.ticker is None or self.ticker.done():
            self.ticker = asyncio.get_running_loop().create_task(self._tick(), name="timeout-wheel")

    async def stop(self) -> None:
        ticker, self.ticker = self.ticker, None
        await cancel_and_wait(ticker)

    async def _tick(self) -> None:
        lanes = self._lanes.values()
        try:
            while True:
                await asyncio.sleep(self.tick_s)
                now = time.monotonic()
                for lane in tuple(lanes):
                    lane.fire_due(now)
                if not any(lanes):  # the next add starts a new ticker
                    return
        finally:
            if self.ticker is asyncio.current_task():
                self.ticker = None


class Deadline:
    """``with Deadline(lane):`` inside a task raises TimeoutError if the block outlives the lane's
    length. The semantics of ``asyncio.timeout`` (an outer cancellation still propagates), for
    one dict entry instead of a timer handle and a coroutine."""

    __slots__ = ("_cancelling", "_fired", "_lane", "_task")

    def __init__(self, lane: TimeoutLane) -> None:
        self._lane = lane
        self._fired = False

    def __enter__(self) -> Deadline:
        task = asyncio.current_task()
        assert task is not None, "Deadline needs a running task"
        self._task = task
        self._cancelling = task.cancelling()
        self._lane.add(self, self._expire)
        return self

    def _expire(self) -> None:
        self._fired = True
        self._task.cancel()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        self._lane.discard(self)
        if self._fired and self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc
