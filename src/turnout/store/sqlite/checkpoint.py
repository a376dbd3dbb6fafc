"""SQLite WAL checkpoints off the commit path, small and often.

By default SQLite checkpoints inside the ``COMMIT`` that pushes the WAL past 1,000 pages: that one
commit copies the pages back into the database file and syncs it, tens of milliseconds on a busy
machine, and every rating or record waiting on that commit waits too. So Turnout's connections
checkpoint on their own only as a safety net (past 10,000 pages, ``store/db.py``), and
``WalCheckpointer`` runs a ``PASSIVE`` checkpoint every ``interval_s`` in a worker thread, on its
own connection: it never blocks a reader or a writer, and SQLite releases the GIL while it copies.
Keep the interval short: a checkpoint's writes and sync slow the commits beside it in proportion
to its size. Feedback at 500 ratings/s on a slow 2-core VM (``bench/feedback.py``), p99 median:
37.8 ms with SQLite's own checkpoints (7 runs), 28.0 ms with one every 0.1 s (8 runs, 19-42 ms);
one every second did no better (42 and 47 ms). The checkpoints run on a ``PoliteWorker``'s thread,
which yields the CPU to the event loop, unless the WAL has grown past ``URGENT_FRAMES``.
A round whose WAL file is unchanged (size and modification time) since a checkpoint that copied
all of it back is skipped, up to ``MAX_SKIPS`` in a row: an idle gateway used to hop to a thread
and checkpoint ten times a second for nothing.
"""

from __future__ import annotations

import asyncio
import os
from typing import NamedTuple

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from turnout.store.sqlite.one_hop import blocking_twin
from turnout.store.sqlite.polite import PoliteWorker
from turnout.tasks import cancel_and_wait

log = structlog.get_logger(__name__)
URGENT_FRAMES = 4000  # a WAL this long means polite checkpoints fall behind: run them at normal priority
# an unchanged WAL is still checkpointed every this many rounds: a write within the file system's
# timestamp tick that left the size as it was (a WAL restarted from its start) is not missed for long
MAX_SKIPS = 50


class Checkpoint(NamedTuple):
    """``PRAGMA wal_checkpoint`` 's answer: busy flag, frames in the WAL, frames copied back."""

    busy: int
    log_frames: int
    checkpointed: int


class WalCheckpointer:
    """Background ``PASSIVE`` checkpoints of an SQLite file's WAL (a no-op for other databases)."""

    def __init__(self, engine: AsyncEngine, interval_s: float = 0.1) -> None:
        self._twin = blocking_twin(engine)
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self.worker = PoliteWorker("wal-checkpoint")
        self._wal_frames = 0
        self.runs = 0
        database = self._twin.url.database if self._twin is not None else None
        self._wal_path = f"{database}-wal" if database else None
        self._clean: tuple[int, int] | None = None  # the WAL's stamp when a checkpoint left it all copied

    @property
    def active(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        if self._twin is not None and self._interval_s > 0 and self._task is None:
            self._task = asyncio.create_task(self._loop(), name="wal-checkpoint")

    async def stop(self) -> None:
        """Stop the loop, checkpoint what the last writes left, close the connection (if started)."""
        if self._task is None or self._twin is None:
            return
        await cancel_and_wait(self._task)
        self._task = None
        try:
            await self.checkpoint(urgent=True)
        except Exception as exc:  # the next start, or SQLite's own close, checkpoints it
            log.warning("wal_checkpoint_failed", error_type=type(exc).__name__)
        await self.worker.close()
        await asyncio.to_thread(self._twin.dispose)

    async def checkpoint(self, *, urgent: bool = False) -> Checkpoint | None:
        """One PASSIVE checkpoint now, in a worker thread (None for other databases); at normal
        priority when ``urgent`` or when the last one found the WAL past ``URGENT_FRAMES``."""
        if self._twin is None:
            return None
        urgent = urgent or self._wal_frames >= URGENT_FRAMES
        result = await self.worker.run(self._blocking_checkpoint, urgent=urgent)
        self._wal_frames = result.log_frames
        self.runs += 1
        return result

    def _stamp(self) -> tuple[int, int] | None:
        """The WAL file's modification time and size (None when it cannot be read)."""
        if self._wal_path is None:
            return None
        try:
            stat = os.stat(self._wal_path)
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def caught_up(self) -> bool:
        """The last checkpoint copied the whole WAL back and nothing was written since."""
        return self._clean is not None and self._stamp() == self._clean

    def _blocking_checkpoint(self) -> Checkpoint:
        assert self._twin is not None
        with self._twin.connect() as connection:
            row = connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
            connection.commit()
        return Checkpoint(*row)

    async def _loop(self) -> None:
        failing = False  # log the first failure and the recovery, not ten warnings a second
        skipped = 0
        while True:
            await asyncio.sleep(self._interval_s)
            stamp = self._stamp()
            if stamp is not None and stamp == self._clean and skipped < MAX_SKIPS:
                skipped += 1
                continue
            skipped = 0
            self._clean = None
            try:
                result = await self.checkpoint()
            except Exception as exc:  # a locked or missing file: try again next interval
                if not failing:
                    log.warning("wal_checkpoint_failed", error_type=type(exc).__name__)
                failing = True
            else:
                if result is not None and not result.busy and result.checkpointed >= result.log_frames:
                    self._clean = stamp  # taken before: a write during the checkpoint changes it
                if failing:
                    log.info("wal_checkpoint_recovered")
                failing = False
