"""Coalesce concurrent calls into one batched call: callers that arrive while a batch runs (or
within a short window) share the next one, so N requests cost one database round trip, not N."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Generic, TypeVar

from turnout.tasks import cancel_and_wait

Item = TypeVar("Item")
Result = TypeVar("Result")
BatchFn = Callable[[list[Item]], Awaitable[Sequence[Result]]]


class Coalescer(Generic[Item, Result]):
    """``await submit(item)`` returns that item's result from ``run(batch)``; one batch at a time.

    ``run`` receives up to ``max_items`` items and returns one result per item, in order; if it
    raises, every caller of that batch gets the exception. ``guard`` (say, a write lock) is entered
    before the batch is taken, so callers that come while it waits still join this batch."""

    def __init__(
        self,
        run: BatchFn[Item, Result],
        *,
        window_s: float = 0.0,
        max_items: int = 500,
        name: str = "coalescer",
        guard: Callable[[], AbstractAsyncContextManager[None]] | None = None,
    ) -> None:
        self._run = run
        self._guard = guard
        self._window_s = window_s
        self._max_items = max_items
        self._name = name
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        """Queue ``item`` and wait for the batch that carries it."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name=self._name)
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        self._wake.set()
        return await future

    async def stop(self) -> None:
        """Stop the loop, then run what is still queued (nothing accepted is dropped)."""
        await cancel_and_wait(self._task)
        self._task = None
        while self._pending:
            await self._run_batch()

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if len(self._pending) < self._max_items:
                await asyncio.sleep(self._window_s)  # 0: one loop pass, so this tick's callers join
            await self._run_batch()

    async def _run_batch(self) -> None:
        async with self._guard() if self._guard is not None else contextlib.nullcontext():
            batch, self._pending = self._pending[: self._max_items], self._pending[self._max_items :]
            if self._pending:
                self._wake.set()
            if not batch:
                return
            try:
                results = await self._run([item for item, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
