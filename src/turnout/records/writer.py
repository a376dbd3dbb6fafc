"""RecordWriter: batches Message rows into the database without blocking requests or losing a record.

``submit`` only appends to an in-memory queue. A background task inserts batches (``RowInserter``:
short transactions, ``ON CONFLICT (id) DO NOTHING`` so a replay is idempotent). When the database
is unreachable the batch goes to an fsynced JSONL journal instead, and a replay loop brings the
journal back into the database (with backoff) once it answers again. Records the database refuses
while it *does* answer (bad data) are kept in ``rejected.jsonl`` rather than blocking the rest. One
writer per journal_dir.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from turnout.ids import new_id
from turnout.records.insert import RowInserter
from turnout.records.journal import Journal, JournalReader, is_transient
from turnout.store.models import utcnow
from turnout.store.polite import PoliteWorker
from turnout.tasks import wait_event

log = structlog.get_logger(__name__)

SPILL_BATCH = 5000  # records per journal write when spilling or while the database is down
# Records turned into rows on the loop between yields: a 0.2 s batch at 1,000 requests/s prepared
# in one go held the loop ~2 ms, and the requests arriving meanwhile queued behind it.
PREPARE_CHUNK = 25


class RecordWriter:
    """Writes Message records in batches; journals them while the database is down (see module doc)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        journal_dir: Path,
        *,
        batch_size: int = 500,
        flush_interval_s: float = 0.2,
        replay_interval_s: float = 1.0,
        max_backoff_s: float = 30.0,
        db_timeout_s: float = 5.0,
        max_pending: int = 100_000,
        catch_up_rows: int | None = None,
    ) -> None:
        self._sessions = sessions
        self._inserter = RowInserter(sessions)
        self._journal = Journal(journal_dir)
        self._batch_size = max(1, batch_size)
        self._flush_interval = flush_interval_s
        self._replay_interval = replay_interval_s
        self._max_backoff = max(max_backoff_s, replay_interval_s)
        self._db_timeout = db_timeout_s
        self._max_pending = max_pending
        # inserts yield the CPU to requests until this many records wait (default: 4 batches)
        self._catch_up_rows = 4 * self._batch_size if catch_up_rows is None else catch_up_rows
        self._queue: deque[dict[str, Any]] = deque()
        self._inflight = 0
        self._db_ok = True
        self._wake = asyncio.Event()
        self._spill = asyncio.Event()
        self._stopping = asyncio.Event()
        self._journal_lock = asyncio.Lock()
        self._stop_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._abandoned: set[asyncio.Task[None]] = set()
        self._offsets: dict[Path, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread_id = 0
        self._stopped = False
        self._written = self._journaled = self._replayed = self._rejected = 0

    @property
    def pending(self) -> int:
        """Records accepted but not yet stored in the database or the journal."""
        return len(self._queue) + self._inflight

    @property
    def written(self) -> int:
        """Records inserted straight from the queue."""
        return self._written

    @property
    def journaled(self) -> int:
        """Records written to the journal (database down, queue over its bound, or after stop)."""
        return self._journaled

    @property
    def replayed(self) -> int:
        """Journal records brought into the database."""
        return self._replayed

    @property
    def rejected(self) -> int:
        """Records the database refused as bad data (kept in ``rejected.jsonl``)."""
        return self._rejected

    @property
    def db_available(self) -> bool:
        """False while the writer considers the database unreachable."""
        return self._db_ok

    @property
    def journal_bytes(self) -> int:
        """Bytes waiting in the journal for replay."""
        return self._journal.size()

    @property
    def insert_worker(self) -> PoliteWorker:
        """The threads inserting on SQLite files (polite, or urgent while catching up)."""
        return self._inserter.worker

    @property
    def stats(self) -> dict[str, int | bool]:
        """All counters at once."""
        names = ("pending", "written", "journaled", "replayed", "rejected", "db_available")
        return {name: getattr(self, name) for name in names}

    def submit(self, record: dict[str, Any]) -> None:
        """Accept one record (Message attribute names; the writer owns the dict). Never blocks or raises."""
        try:
            if "created_at" not in record:
                record["created_at"] = utcnow()
            if "id" not in record:
                record["id"] = new_id()
            if self._stopped:
                self._journal.append([record])  # after stop(): straight to the journal
                self._journaled += 1
                return
            self._queue.append(record)
            size = len(self._queue)
            if size >= self._batch_size:
                self._notify(size > self._max_pending)
        except Exception:
            log.exception("records.submit_failed")

    async def start(self) -> None:
        """Replay any journal left by a previous run, then start the background tasks."""
        if self._tasks or self._stopped:
            return
        self._loop = asyncio.get_running_loop()
        self._thread_id = threading.get_ident()
        await asyncio.to_thread(self._journal.ensure)
        if await asyncio.to_thread(self._journal.size) and not await self._replay():
            log.warning("records.replay_deferred", journal_bytes=self._journal.size())
        self._tasks = [
            asyncio.create_task(self._flush_loop(), name="records-flush"),
            asyncio.create_task(self._replay_loop(), name="records-replay"),
            asyncio.create_task(self._spill_loop(), name="records-spill"),
        ]

    async def stop(self, *, replay_timeout_s: float = 10.0) -> None:
        """Store everything accepted (database, or journal if it is down); replay the journal if possible."""
        async with self._stop_lock:
            if not self._stopped:
                await self._stop(replay_timeout_s)

    async def _stop(self, replay_timeout_s: float) -> None:
        self._stopping.set()
        self._wake.set()
        self._spill.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self._stopped = True  # from here on submit() journals directly
        leftover = self._take(len(self._queue))
        if leftover and self._db_ok:
            stored, leftover = await self._write(leftover)
            self._written += stored
        if leftover and not await self._journal_append(leftover):
            log.error("records.lost", count=len(self._queue))
        if self._journal.size():
            await self._replay(deadline=time.monotonic() + replay_timeout_s)
        if self._abandoned:
            await asyncio.wait(set(self._abandoned), timeout=self._db_timeout)
        await self._inserter.close()

    def _notify(self, spill: bool) -> None:
        if self._loop is not None and threading.get_ident() != self._thread_id:
            self._loop.call_soon_threadsafe(self._notify, spill)  # submit() from another thread
            return
        self._wake.set()
        if spill:
            self._spill.set()

    def _take(self, count: int) -> list[dict[str, Any]]:
        count = min(count, len(self._queue))
        return [self._queue.popleft() for _ in range(count)]

    async def _flush_loop(self) -> None:
        while True:
            stopping = self._stopping.is_set()
            if not stopping and len(self._queue) < self._batch_size:
                await wait_event(self._wake, self._flush_interval)
            self._wake.clear()
            try:
                while self._queue:
                    batch = self._take(self._batch_size if self._db_ok else SPILL_BATCH)
                    if not await self._deliver(batch):
                        break  # journal unwritable: records are back in the queue, retry later
            except Exception:
                log.exception("records.flush_failed")
            if stopping:
                return

    async def _deliver(self, batch: list[dict[str, Any]]) -> bool:
        """Store one batch in the database, else in the journal; False if neither took it."""
        self._inflight += len(batch)
        try:
            remaining = batch
            if self._db_ok:
                stored, remaining = await self._write(batch)
                self._written += stored
            return not remaining or await self._journal_append(remaining)
        except BaseException:
            self._queue.extendleft(reversed(batch))  # never drop: ids make a second insert harmless
            raise
        finally:
            self._inflight -= len(batch)

    async def _spill_loop(self) -> None:
        low_water = self._max_pending // 2
        while not self._stopping.is_set():
            await self._spill.wait()
            self._spill.clear()
            while len(self._queue) > low_water and not self._stopping.is_set():
                batch = self._take(min(SPILL_BATCH, len(self._queue) - low_water))
                self._inflight += len(batch)
                try:
                    ok = await self._journal_append(batch)
                finally:
                    self._inflight -= len(batch)
                if not ok:
                    break

    async def _replay_loop(self) -> None:
        delay = self._replay_interval
        while not await wait_event(self._stopping, delay):
            if self._db_ok and not self._journal.size():
                delay = self._replay_interval
                continue
            try:
                ok = await self._replay()
            except Exception:
                log.exception("records.replay_failed")
                ok = False
            delay = self._replay_interval if ok else min(delay * 2, self._max_backoff)

    async def _journal_append(self, records: list[dict[str, Any]]) -> bool:
        """Append to the journal; on failure put the records back in the queue and return False."""
        try:
            async with self._journal_lock:
                await asyncio.to_thread(self._journal.append, records)
        except Exception as exc:
            log.error("records.journal_failed", error=str(exc), count=len(records))
            self._queue.extendleft(reversed(records))
            return False
        self._journaled += len(records)
        return True

    async def _bounded(self, work: Coroutine[Any, Any, None]) -> None:
        """Run one database attempt for at most db_timeout_s; a late one is cancelled and abandoned."""
        task = asyncio.ensure_future(work)
        try:
            done, _ = await asyncio.wait({task}, timeout=self._db_timeout)
        except asyncio.CancelledError:
            self._abandon(task)
            raise
        if not done:
            self._abandon(task)
            raise TimeoutError(f"database did not answer within {self._db_timeout:g}s")
        task.result()

    def _abandon(self, task: asyncio.Task[None]) -> None:
        task.cancel()
        self._abandoned.add(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._abandoned.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a late failure is already handled

    async def _ping(self) -> None:
        async with self._sessions() as session:
            await session.execute(text("SELECT 1"))

    async def _probe(self) -> bool:
        """True when the database answers ``SELECT 1`` within db_timeout_s."""
        try:
            await self._bounded(self._ping())
        except Exception:
            return False
        return True

    def _outage(self, exc: BaseException | None) -> None:
        if self._db_ok:
            log.warning("records.db_unreachable", error=str(exc) if exc else None)
        self._db_ok = False

    async def _reject(self, record: dict[str, Any], exc: BaseException) -> None:
        log.error("records.rejected", id=record.get("id"), error=str(exc)[:500])
        self._rejected += 1
        try:
            await asyncio.to_thread(self._journal.reject, record, f"{type(exc).__name__}: {exc}")
        except Exception:
            log.exception("records.reject_failed", id=record.get("id"))

    async def _write(self, records: list[dict[str, Any]]) -> tuple[int, list[dict[str, Any]]]:
        """Insert in one transaction: (records stored, records left because the database is down)."""
        rows: list[dict[str, Any]] = []
        kept: list[dict[str, Any]] = []
        for index, record in enumerate(records, 1):
            try:
                rows.append(self._inserter.prepare(record))
                kept.append(record)
            except Exception as exc:
                await self._reject(record, exc)
            if index % PREPARE_CHUNK == 0:  # ~9 us a row: let requests in between chunks
                await asyncio.sleep(0)
        if not rows:
            return 0, []
        try:
            await self._bounded(self._inserter.insert(rows, urgent=self._behind()))
            return len(rows), []
        except Exception as exc:
            if is_transient(exc) or not await self._probe():
                self._outage(exc)
                return 0, kept
        # the database answers but refuses the batch: find the bad rows one by one
        stored = 0
        for index, row in enumerate(rows):
            try:
                await self._bounded(self._inserter.insert([row], urgent=self._behind()))
                stored += 1
            except Exception as exc:
                if is_transient(exc) or not await self._probe():
                    self._outage(exc)
                    return stored, kept[index:]
                await self._reject(kept[index], exc)
        return stored, []

    def _behind(self) -> bool:
        """Stopping, or the queue outgrew ``catch_up_rows``: insert at normal priority."""
        return self._stopping.is_set() or len(self._queue) >= self._catch_up_rows

    async def _replay(self, deadline: float | None = None) -> bool:
        """Bring the journal into the database; True when it is empty afterwards."""
        if not await self._probe():
            self._outage(None)
            return False
        if not self._db_ok:
            log.info("records.db_back", journal_bytes=self._journal.size())
            self._db_ok = True
        async with self._journal_lock:
            await asyncio.to_thread(self._journal.rotate)
        for path in await asyncio.to_thread(self._journal.rotated):
            if not await self._replay_file(path, deadline):
                return False
        return True

    async def _replay_file(self, path: Path, deadline: float | None) -> bool:
        reader = await asyncio.to_thread(JournalReader, path, self._offsets.get(path, 0))
        try:
            while True:
                if (self._stopping.is_set() and deadline is None) or (
                    deadline is not None and time.monotonic() > deadline
                ):
                    return False
                batch = await asyncio.to_thread(reader.next_batch, self._batch_size)
                if not batch:
                    break
                stored, remaining = await self._write(batch)
                self._replayed += stored
                if remaining:
                    return False
                self._offsets[path] = reader.offset
        finally:
            reader.close()
        await asyncio.to_thread(self._journal.remove, path)
        self._offsets.pop(path, None)
        log.info("records.replayed_file", path=path.name)
        return True
