"""Concurrent callers share one batch; failures reach every caller of that batch; stop drains."""

from __future__ import annotations

import asyncio

import pytest

from turnout.coalesce import Coalescer


async def test_concurrent_calls_share_a_batch_and_get_their_own_results() -> None:
    batches: list[list[int]] = []

    async def double(items: list[int]) -> list[int]:
        batches.append(items)
        await asyncio.sleep(0.01)
        return [i * 2 for i in items]

    group: Coalescer[int, int] = Coalescer(double, max_items=4)
    results = await asyncio.gather(*(group.submit(i) for i in range(10)))
    assert results == [i * 2 for i in range(10)]
    assert sorted(i for batch in batches for i in batch) == list(range(10))
    assert len(batches) <= 4 and max(len(b) for b in batches) <= 4
    await group.stop()


async def test_a_failed_batch_fails_its_callers_and_the_next_batch_runs() -> None:
    calls = 0

    async def flaky(items: list[str]) -> list[str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database away")
        return [s.upper() for s in items]

    group: Coalescer[str, str] = Coalescer(flaky)
    first = await asyncio.gather(group.submit("a"), group.submit("b"), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in first)
    assert await group.submit("c") == "C"
    await group.stop()


async def test_stop_runs_what_is_queued() -> None:
    seen: list[int] = []

    async def record(items: list[int]) -> list[None]:
        seen.extend(items)
        return [None] * len(items)

    group: Coalescer[int, None] = Coalescer(record, window_s=10.0)
    waiting = asyncio.gather(*(group.submit(i) for i in range(3)))
    await asyncio.sleep(0.01)
    await group.stop()
    await asyncio.wait_for(waiting, 1.0)
    assert seen == [0, 1, 2]


async def test_guard_is_held_while_a_batch_runs() -> None:
    lock = asyncio.Lock()
    held: list[bool] = []

    async def check(items: list[int]) -> list[None]:
        held.append(lock.locked())
        return [None] * len(items)

    group: Coalescer[int, None] = Coalescer(check, guard=lambda: lock)
    await group.submit(1)
    assert held == [True]
    await group.stop()


@pytest.mark.parametrize("count", [1, 501])
async def test_large_bursts_are_split_by_max_items(count: int) -> None:
    sizes: list[int] = []

    async def size(items: list[int]) -> list[int]:
        sizes.append(len(items))
        return items

    group: Coalescer[int, int] = Coalescer(size, max_items=500)
    assert await asyncio.gather(*(group.submit(i) for i in range(count))) == list(range(count))
    assert max(sizes) <= 500 and sum(sizes) == count
    await group.stop()
