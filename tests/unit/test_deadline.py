"""Deadline: a block that outlives it raises TimeoutError; outer cancellation still propagates."""

from __future__ import annotations

import asyncio

import pytest

from turnout.tasks import Deadline


async def test_a_slow_block_times_out_and_the_task_goes_on() -> None:
    with pytest.raises(TimeoutError):
        with Deadline(0.02):
            await asyncio.sleep(1)
    await asyncio.sleep(0.01)  # no cancellation left pending on the task
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_a_fast_block_keeps_its_result() -> None:
    with Deadline(1.0):
        await asyncio.sleep(0.001)
        value = 42
    await asyncio.sleep(0.05)  # the timer was cancelled: nothing fires later
    assert value == 42


async def test_an_outer_cancellation_is_not_turned_into_a_timeout() -> None:
    async def work() -> None:
        with Deadline(5.0):
            await asyncio.sleep(1)

    task = asyncio.create_task(work())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
