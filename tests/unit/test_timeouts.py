"""Hot-path timeouts (TimeoutLane, Deadline): they fire about on time, in order, only when not
cleared first; a deadline turns its own expiry into TimeoutError and nothing else; the ticker
stops when idle and comes back with the next timeout."""

from __future__ import annotations

import asyncio
import time

import pytest

from turnout.timeouts import Deadline, TimeoutWheel


async def test_a_slow_block_times_out_and_the_task_goes_on() -> None:
    wheel = TimeoutWheel()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        with Deadline(wheel.lane(0.05)):
            await asyncio.sleep(1)
    assert 0.05 <= time.monotonic() - started < 0.5
    await asyncio.sleep(0.02)  # no cancellation left pending on the task
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
    await wheel.stop()


async def test_a_fast_block_keeps_its_result_and_nothing_fires_later() -> None:
    wheel = TimeoutWheel()
    lane = wheel.lane(0.03)
    with Deadline(lane):
        await asyncio.sleep(0.001)
        value = 42
    assert len(lane) == 0
    await asyncio.sleep(0.08)  # past the deadline: a leftover entry would cancel this task now
    assert value == 42
    await wheel.stop()


async def test_an_outer_cancellation_is_not_turned_into_a_timeout() -> None:
    wheel = TimeoutWheel()

    async def work() -> None:
        with Deadline(wheel.lane(5.0)):
            await asyncio.sleep(1)

    task = asyncio.create_task(work())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wheel.stop()


async def test_callbacks_fire_in_order_only_for_entries_not_discarded() -> None:
    wheel = TimeoutWheel()
    lane = wheel.lane(0.04)
    fired: list[str] = []
    for name in ("a", "b", "c"):
        lane.add(name, lambda name=name: fired.append(name))
    lane.discard("b")
    await asyncio.sleep(0.02)
    assert fired == []  # not due yet
    await asyncio.sleep(0.08)
    assert fired == ["a", "c"]
    await wheel.stop()


async def test_a_failing_callback_does_not_stop_the_others() -> None:
    wheel = TimeoutWheel()
    lane = wheel.lane(0.02)
    fired: list[int] = []
    lane.add(1, lambda: 1 / 0)  # type: ignore[func-returns-value]
    lane.add(2, lambda: fired.append(2))
    await asyncio.sleep(0.1)
    assert fired == [2]
    await wheel.stop()


async def test_the_ticker_stops_when_idle_and_restarts_on_the_next_timeout() -> None:
    wheel = TimeoutWheel()
    lane = wheel.lane(0.02)
    lane.add("x", lambda: None)
    assert wheel.ticker is not None
    await asyncio.sleep(0.1)
    assert wheel.ticker is None  # everything fired: no more wake-ups
    fired: list[str] = []
    lane.add("y", lambda: fired.append("y"))
    await asyncio.sleep(0.1)
    assert fired == ["y"]
    await wheel.stop()
