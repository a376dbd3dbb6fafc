"""Worker threads for database work no request waits on, yielding the CPU to the event loop.

Record inserts and WAL checkpoints run in a thread beside the event loop. At the default priority
the kernel shares a core evenly between that thread and the loop while SQLite writes, so the
requests arriving meanwhile wait: on the 2-core sandbox at 1,000 req/s, each 0.2 s record flush
delayed the ten-odd requests behind it by 4-6 ms, most of the gateway's p99. A ``PoliteWorker``
runs such work on a thread at the lowest scheduling priority (nice 19, Linux), so the kernel runs
the loop first whenever it has work and the writes fill the idle time. Under sustained overload
that thread gets almost no CPU; when its caller falls behind it passes ``urgent=True`` and the work
runs on a second thread at normal priority until it has caught up.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
POLITE_NICE = 19


def lower_priority(nice: int = POLITE_NICE) -> bool:
    """Give the calling thread (not its process) niceness ``nice``; False where unsupported."""
    if sys.platform != "linux":  # elsewhere setpriority(PRIO_PROCESS, tid) is not per thread
        return False
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except OSError:
        return False
    return True


class PoliteWorker:
    """One low-priority thread for background work, and one normal-priority thread to catch up."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._executors: dict[bool, ThreadPoolExecutor] = {}
        self.runs: Counter[str] = Counter()  # "polite" / "urgent": units of work run on each thread

    async def run(self, work: Callable[[], T], *, urgent: bool = False) -> T:
        """Run ``work`` on the polite thread, or on the normal-priority one when ``urgent``."""
        executor = self._executors.get(urgent) or self._start(urgent)
        self.runs["urgent" if urgent else "polite"] += 1
        return await asyncio.get_running_loop().run_in_executor(executor, work)

    def _start(self, urgent: bool) -> ThreadPoolExecutor:
        kind = "urgent" if urgent else "polite"
        executor = ThreadPoolExecutor(
            1, f"{self._name}-{kind}", initializer=None if urgent else lower_priority
        )
        self._executors[urgent] = executor
        return executor

    async def close(self) -> None:
        """Let queued work finish and end the threads (a later ``run`` starts new ones)."""
        executors, self._executors = list(self._executors.values()), {}
        for executor in executors:
            await asyncio.to_thread(executor.shutdown, wait=True)
