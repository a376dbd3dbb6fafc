"""RecordWriter: every record journaled before its answer ends, then stored in the database in batches.

``submit`` checks the record against the Message table (``sanitize.py``: a record that does not
fit is cleaned, so the database never refuses it and never fails its batch), appends it to the
write-ahead log (``wal.py``) and returns the future its request awaits before the answer's last
byte. Once its group is on disk, the record joins an in-memory queue; a background task inserts
the queue in batches (``RowInserter``: short transactions, ``ON CONFLICT (id) DO NOTHING``, so a
record stored twice is stored once). A segment of the log is deleted when every record in it is
stored. Whatever memory does not keep (the database is down, the queue is full, the process
stopped or died) stays in its segment and is replayed from the file: by this process once the
database answers, or by the next one (or a sibling worker) that finds the segment unlocked. A
batch the database refuses anyway is split in halves until the refused row is found, and that row
is stored in a minimal form; its neighbours are not slowed down row by row.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Coroutine
from itertools import repeat
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from turnout.ids import new_id
from turnout.records.access_log import AccessLog
from turnout.records.insert import RowInserter
from turnout.records.journal import NUL_ESCAPE, JournalReader, encode, encode_line, is_transient
from turnout.records.sanitize import RecordShape
from turnout.records.wal import SEGMENT_BYTES, Durability, DurableFuture, RecordLog, Segment
from turnout.store.models import utcnow
from turnout.store.sqlite.polite import PoliteWorker
from turnout.tasks import wait_event

log = structlog.get_logger(__name__)

# Records turned into rows on the loop between yields: a 0.2 s batch at 1,000 requests/s prepared
# in one go held the loop ~2 ms, and the requests arriving meanwhile queued behind it.
PREPARE_CHUNK = 25
SEGMENT_MAX_AGE_S = 60.0  # a live segment whose records are all stored is closed (and deleted) after this
Entry = tuple[dict[str, Any], Segment | None]  # a record and the segment holding it (None: write failed)


class RecordWriter:
    """Journals each record, then stores records in batches (see the module doc). One writer per
    process; processes may share ``journal_dir``."""

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
        durability: Durability = "write",
        segment_bytes: int = SEGMENT_BYTES,
        drain_s: float = 5.0,
        access_log: AccessLog | None = None,
    ) -> None:
        self._sessions = sessions
        self._access_log = access_log or AccessLog(enabled=False)
        self._inserter = RowInserter(sessions)
        self._log = RecordLog(journal_dir, self._durable, durability=durability, segment_bytes=segment_bytes)
        self._shape = RecordShape.of_messages()
        self._batch_size = max(1, batch_size)
        self._flush_interval = flush_interval_s
        self._replay_interval = replay_interval_s
        self._max_backoff = max(max_backoff_s, replay_interval_s)
        self._db_timeout = db_timeout_s
        self._max_pending = max_pending
        self._drain_s = drain_s
        # inserts yield the CPU to requests until this many records wait (default: 4 batches)
        self._catch_up_rows = 4 * self._batch_size if catch_up_rows is None else catch_up_rows
        self._queue: deque[Entry] = deque()
        self._inflight = 0
        self._db_ok = True
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._deadline: float | None = None  # while stopping: when to leave the rest to the journal
        self._stop_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._abandoned: set[asyncio.Task[None]] = set()
        self._flush_waiters: list[asyncio.Future[None]] = []  # resolved after the flush loop's next pass
        self._started = self._stopped = False
        self._written = self._journaled = self._replayed = 0
        self._sanitised = self._refused = self._left = 0

    # -- counters ---------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Records in memory, not yet in the database."""
        return len(self._queue) + self._inflight

    @property
    def written(self) -> int:
        """Records inserted from memory."""
        return self._written

    @property
    def journaled(self) -> int:
        """Records submitted to the journal (every record)."""
        return self._journaled

    @property
    def replayed(self) -> int:
        """Records inserted from journal files (dropped from memory, or left by another process)."""
        return self._replayed

    @property
    def left_to_journal(self) -> int:
        """Records memory let go of, for a replay from their segment (database down, queue full, stop)."""
        return self._left

    @property
    def sanitised(self) -> int:
        """Records that did not fit their row and were stored cleaned (``metadata.sanitised``)."""
        return self._sanitised

    @property
    def refused(self) -> int:
        """Records the database refused even cleaned, stored in a minimal form (``metadata.refused``)."""
        return self._refused

    @property
    def db_available(self) -> bool:
        """False while the writer considers the database unreachable."""
        return self._db_ok

    @property
    def journal_bytes(self) -> int:
        """Bytes of journal files waiting for a replay (records memory let go of, or another
        process left), not counting segments whose records are stored from memory."""
        return self._log.backlog_bytes()

    @property
    def journal_failures(self) -> int:
        """Groups of records the journal could not write (they were stored from memory only)."""
        return self._log.failures

    @property
    def insert_worker(self) -> PoliteWorker:
        """The threads inserting on SQLite files (polite, or urgent while catching up)."""
        return self._inserter.worker

    @property
    def stats(self) -> dict[str, int | bool]:
        """All counters at once."""
        names = ("pending", "written", "journaled", "replayed", "left_to_journal", "sanitised", "refused")
        return {name: getattr(self, name) for name in names} | {"db_available": self._db_ok}

    # -- the request path -------------------------------------------------------------------------

    def submit(self, record: dict[str, Any]) -> DurableFuture | None:
        """Journal one record (Message attribute names; the writer owns the dict). Never blocks on
        the disk or raises; returns the future that is done once the record is durable (None when
        there is nothing to wait for: ``durability=async``, another thread, or after ``stop``)."""
        try:
            if "created_at" not in record:
                record["created_at"] = utcnow()
            if "id" not in record:
                record["id"] = new_id()
            line = encode_line(record)
            if line is None or NUL_ESCAPE in line or not self._shape.fits(record):
                record = self._clean(record)
                line = encode_line(record) or encode([record])
            self._journaled += 1
            return self._log.append(record, line)
        except Exception:
            log.exception("records.submit_failed")
            return None

    def _clean(self, record: dict[str, Any]) -> dict[str, Any]:
        cleaned, changed = self._shape.clean(record)
        if changed:
            self._sanitised += 1
            if self._sanitised == 1 or self._sanitised % 1000 == 0:  # a steady source would flood the log
                log.warning("records.sanitised", id=cleaned.get("id"), fields=changed, total=self._sanitised)
        return cleaned

    def _durable(self, segment: Segment | None, records: list[dict[str, Any]]) -> None:
        """A group is on disk (the WAL's hand-over, on the loop): queue its records for insert."""
        self._access_log.write(records)
        if segment is not None and (
            not self._db_ok or self._stopped or self.pending + len(records) > self._max_pending
        ):
            segment.dirty = True  # safe in the file: replayed from there
            self._left += len(records)
            return
        self._queue.extend(zip(records, repeat(segment)))
        if len(self._queue) >= self._batch_size:
            self._wake.set()

    async def flush(self, timeout_s: float | None = None) -> None:
        """Store the records held in memory now, not at the next batch interval; return once the
        flush loop has passed over them (stored, or left to the journal) or after ``timeout_s``
        (default: db_timeout_s). For a read that missed a record just answered, never the request path."""
        if not self.pending or not self._tasks or self._stopping.is_set():
            return
        waiter = asyncio.get_running_loop().create_future()
        self._flush_waiters.append(waiter)
        self._wake.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._db_timeout if timeout_s is None else timeout_s):
                await asyncio.shield(waiter)

    def _flushed(self) -> None:
        waiters, self._flush_waiters = self._flush_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- life cycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the journal and start the background tasks; segments left by a process that is gone
        are replayed in the background."""
        if self._started or self._stopped:
            return
        self._started = True
        self._log.start()
        self._tasks = [
            asyncio.create_task(self._flush_loop(), name="records-flush"),
            asyncio.create_task(self._maintain_loop(), name="records-maintain"),
        ]

    async def stop(self, *, drain_s: float | None = None) -> None:
        """Store what was accepted, for at most ``drain_s`` seconds (default: the writer's); what is
        left stays in the journal for the next start. Later submits are journaled directly."""
        async with self._stop_lock:
            if not self._stopped:
                await self._stop(self._drain_s if drain_s is None else drain_s)

    async def _stop(self, drain_s: float) -> None:
        deadline = time.monotonic() + drain_s
        await self._log.close()  # the last groups: written, synced, handed over
        if not self._started:  # nothing ran: what was submitted is in a journal file now
            self._stopped = True
            await self._inserter.close()
            return
        self._deadline = deadline
        self._stopping.set()
        self._wake.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._db_ok and time.monotonic() < deadline:
            try:
                await self._maintain(deadline)
            except Exception:
                log.exception("records.replay_failed")
        self._stopped = True
        leftover = list(self._queue)
        self._queue.clear()
        memory_only = [record for record, segment in leftover if segment is None]
        for _, segment in leftover:
            if segment is not None:
                segment.dirty = True
        self._left += len(leftover)
        if memory_only:
            await asyncio.to_thread(self._log.append_detached, encode(memory_only))
        if leftover:
            log.warning("records.left_in_journal", count=len(leftover))
        await asyncio.to_thread(self._release_all)
        if self._abandoned:
            await asyncio.wait(set(self._abandoned), timeout=self._db_timeout)
        await self._inserter.close()

    def _release_all(self) -> None:
        for segment in self._log.held():
            self._log.release(segment, delete=segment.done)

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() > self._deadline

    # -- inserting from memory --------------------------------------------------------------------

    def _take(self, count: int) -> list[Entry]:
        count = min(count, len(self._queue))
        return [self._queue.popleft() for _ in range(count)]

    async def _flush_loop(self) -> None:
        while True:
            stopping = self._stopping.is_set()
            if not stopping and len(self._queue) < self._batch_size:
                await wait_event(self._wake, self._flush_interval)
            self._wake.clear()
            try:
                while self._queue and self._db_ok and not self._past_deadline():
                    if not await self._deliver(self._take(self._batch_size)):
                        break  # records kept in memory only (their journal write failed): later
                if not self._db_ok:
                    self._let_go()
            except Exception:
                log.exception("records.flush_failed")
            self._flushed()
            if stopping:
                return

    def _let_go(self) -> None:
        """The database is down: leave the queued records to their segments (kept: those only here)."""
        kept: deque[Entry] = deque()
        for entry in self._queue:
            if entry[1] is None:
                kept.append(entry)
            else:
                entry[1].dirty = True
                self._left += 1
        self._queue = kept

    async def _deliver(self, batch: list[Entry]) -> bool:
        """Store one batch; False when some records stay in memory for later."""
        self._inflight += len(batch)
        try:
            left = await self._write([record for record, _ in batch])
        except BaseException:
            self._queue.extendleft(reversed(batch))  # never drop: ids make a second insert harmless
            raise
        finally:
            self._inflight -= len(batch)
        missed = set(left)
        done: set[Segment] = set()
        retry: list[Entry] = []
        for index, entry in enumerate(batch):
            segment = entry[1]
            if index in missed:
                if segment is None:
                    retry.append(entry)
                else:
                    segment.dirty = True
                    self._left += 1
            elif segment is not None:
                segment.stored += 1
                if segment.done:
                    done.add(segment)
        self._written += len(batch) - len(missed)
        for segment in done:
            self._log.release(segment, delete=True)
        self._queue.extendleft(reversed(retry))
        return not retry

    # -- inserting: one statement per slice, the refused row found by halving ----------------------

    async def _write(self, records: list[dict[str, Any]], *, journaled: bool = False) -> list[int]:
        """Insert ``records`` (cleaned first when read back from the journal); the indices of those
        not stored because the database is unreachable."""
        rows: list[Any] = []
        prepare = self._inserter.prepare
        for index, record in enumerate(records, 1):
            if journaled:
                record = records[index - 1] = self._clean(record)
            try:
                rows.append(prepare(record))
            except Exception as exc:  # not expected once cleaned; never a reason to lose the record
                rows.append(prepare(self._minimal(record, exc)))
            if index % PREPARE_CHUNK == 0:  # ~10 us a row: let requests in between chunks
                await asyncio.sleep(0)
        return await self._insert(rows, records, 0) if rows else []

    async def _insert(self, rows: list[Any], records: list[dict[str, Any]], offset: int) -> list[int]:
        try:
            await self._bounded(self._inserter.insert(rows, urgent=self._behind()))
            return []
        except Exception as exc:
            if is_transient(exc) or not await self._probe():
                self._outage(exc)
                return list(range(offset, offset + len(rows)))
            refusal = exc
        if len(rows) == 1:
            return await self._insert_minimal(records[offset], refusal, offset)
        half = len(rows) // 2
        left = await self._insert(rows[:half], records, offset)
        if not self._db_ok:
            return left + list(range(offset + half, offset + len(rows)))
        return left + await self._insert(rows[half:], records, offset + half)

    def _minimal(self, record: dict[str, Any], exc: BaseException) -> dict[str, Any]:
        reason = f"{type(exc).__name__}: {exc}"[:500]
        self._refused += 1
        log.error("records.refused", id=record.get("id"), error=reason)
        return self._shape.minimal(record, reason)

    async def _insert_minimal(self, record: dict[str, Any], refusal: BaseException, index: int) -> list[int]:
        row = self._inserter.prepare(self._minimal(record, refusal))
        try:
            await self._bounded(self._inserter.insert([row], urgent=self._behind()))
            return []
        except Exception as exc:
            if is_transient(exc) or not await self._probe():
                self._outage(exc)
            else:  # the database refuses even this: the record stays in the journal, retried later
                log.error("records.minimal_refused", id=record.get("id"), error=str(exc)[:500])
            return [index]

    def _behind(self) -> bool:
        """Stopping, or the queue outgrew ``catch_up_rows``: insert at normal priority."""
        return self._stopping.is_set() or len(self._queue) >= self._catch_up_rows

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

    # -- the journal's files: replay, adoption, clean-up --------------------------------------------

    async def _maintain_loop(self) -> None:
        delay = 0.0  # the first round at once: segments a dead process left
        while not await wait_event(self._stopping, delay):
            try:
                ok = await self._maintain()
            except Exception:
                log.exception("records.replay_failed")
                ok = False
            delay = (
                self._replay_interval if ok else min(max(delay, self._replay_interval) * 2, self._max_backoff)
            )

    async def _maintain(self, deadline: float | None = None) -> bool:
        """Adopt orphaned segments, delete stored ones, replay those memory let go of; True when
        nothing is left to replay."""
        await asyncio.to_thread(self._log.adopt_orphans)
        segments = self._log.held()
        if not self._db_ok or any(segment.dirty for segment in segments):
            if not await self._probe():
                self._outage(None)
                return False
            if not self._db_ok:
                log.info("records.db_back", journal_bytes=self._log.backlog_bytes())
                self._db_ok = True
        now = time.monotonic()
        for segment in segments:
            if segment.done:
                await asyncio.to_thread(self._log.release, segment, delete=True)
            elif not segment.closed:
                if segment.dirty or (
                    segment.records
                    and segment.stored >= segment.records
                    and now - segment.opened > SEGMENT_MAX_AGE_S
                ):
                    self._log.rotate()  # replayed or deleted in a later round
            elif segment.dirty and segment.settled and not await self._replay(segment, deadline):
                return False
        return True

    async def _replay(self, segment: Segment, deadline: float | None) -> bool:
        """Store a segment's records from its file, then delete it; False when stopped part-way."""
        reader = await asyncio.to_thread(JournalReader, segment.path, segment.replayed_to)
        try:
            while True:
                if (self._stopping.is_set() and deadline is None) or (
                    deadline is not None and time.monotonic() > deadline
                ):
                    return False
                batch = await asyncio.to_thread(reader.next_batch, self._batch_size)
                if not batch:
                    break
                left = await self._write(batch, journaled=True)
                if left:
                    return False
                self._replayed += len(batch)
                segment.replayed_to = reader.offset
        finally:
            reader.close()
        await asyncio.to_thread(self._log.release, segment, delete=True)
        log.info("records.replayed_file", path=segment.path.name)
        return True
