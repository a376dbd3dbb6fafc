"""The records' write-ahead log: every record is on disk before its answer's last byte is sent.

``append`` adds a record's line to the current *group*: everything submitted in one turn of the
event loop. The group is written at the loop's next turn with one ``os.write`` (in the page
cache: it survives the process, ``kill -9`` included). With ``fsync`` durability one thread, the
syncer, then runs one ``fdatasync`` for every group written since its previous one (group
commit) and hands them back with one ``call_soon_threadsafe``; the group's one shared future is
resolved and its records go to the batch writer. A request awaits that future: nothing per
request but a list append, no timer. (The write stays on the loop: a thread doing it too needed
the GIL three times per group, and on a busy loop each of those waits could last a switch
interval.)

The log is a directory of *segments*, ``wal-<pid>-<ns>-<seq>.jsonl``. A process writes only its
own; each is created under a hidden name, locked (``fcntl.flock``, held until the segment is
deleted or the process ends) and only then renamed into view, so a segment nobody holds a lock on
was left by a process that is gone: any live process (``turnout serve --workers N`` shares one
directory) adopts it and replays it into the database. The live segment is closed at
``segment_bytes`` or on request; a closed one is deleted once the batch writer has stored every
record in it, and replayed from the file when some of them had to be dropped from memory (database
down, queue full). Files of earlier versions (``records.jsonl``, ``replay-*.jsonl``,
``rejected.jsonl``) are adopted the same way.

Durability modes: ``write``, the default (written before the answer ends: survives the process's
end, ``kill -9`` included; the syncer fdatasyncs what was written every ``BACKGROUND_SYNC_S``,
unawaited, so a crash of the machine loses at most about that much), ``fsync`` (written and
fdatasynced before the answer ends: survives a crash of the machine, for ~1 ms more per answer
and +6 ms at p99 on this VM's disk, bench/gateway.py) and ``async`` (answers do not wait for the
write; a ``kill -9`` can lose the last loop turn's records).
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import itertools
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import structlog

log = structlog.get_logger(__name__)

Durability = Literal["fsync", "write", "async"]
SEGMENT_GLOB = "wal-*.jsonl"
LEGACY_NAMES = ("records.jsonl", "replay-*.jsonl", "rejected.jsonl")  # earlier versions' journal
PART_GLOB = ".wal-*.part"
SEGMENT_BYTES = 8 * 1024 * 1024
BACKGROUND_SYNC_S = 0.1  # write durability: how often written groups are fdatasynced
_seq = itertools.count()


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (a created, renamed or removed file) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:  # one write, unless the kernel takes less (a full disk)
        view = view[os.write(fd, view) :]


class Segment:
    """One file of the log, held (locked) by this process until its records are stored."""

    __slots__ = (
        "bytes", "closed", "dirty", "fd", "handed", "new",
        "opened", "path", "records", "released", "replayed_to", "stored", "syncing",
    )  # fmt: skip

    def __init__(self, path: Path, fd: int, *, closed: bool = False, dirty: bool = False) -> None:
        self.path = path
        self.fd = fd  # holds the flock
        self.records = 0  # records written into it
        self.handed = 0  # of those, how many are durable and handed to the batch writer
        self.new = True  # its directory entry is not synced yet
        self.stored = 0  # of those, how many the batch writer has in the database
        self.bytes = 0
        self.closed = closed  # nothing more will be written to it
        self.dirty = dirty  # some records are only in the file: replay it before deleting it
        self.replayed_to = 0  # offset up to which a replay has stored it
        self.opened = time.monotonic()
        # under the log's lock: the syncer is syncing its fd / it was let go (its fd is closed, or
        # closed by the syncer when that sync ends): a fd is never synced after its close, when
        # its number may already name another file or a socket
        self.syncing = False
        self.released = False

    @property
    def settled(self) -> bool:
        """Closed, and every group written to it handed over: its file is complete."""
        return self.closed and self.handed >= self.records

    @property
    def done(self) -> bool:
        """Closed, and every record in it stored from memory: the file can go."""
        return self.closed and not self.dirty and self.stored >= self.records


class DurableFuture(asyncio.Future[None]):
    """A group's future, awaited by all its requests: one of them being cancelled must not cancel
    it for the others (the cancelled task then ends once the group is on disk, a moment later)."""

    def cancel(self, msg: Any = None) -> bool:
        return False


class Group:
    """Records submitted in one turn of the loop: written together."""

    __slots__ = ("future", "lines", "records")

    def __init__(self, future: DurableFuture | None) -> None:
        self.future = future
        self.lines: list[bytes] = []
        self.records: list[dict[str, Any]] = []


# (segment or None when the write failed, the group's records), called on the event loop
DurableCallback = Callable[[Segment | None, list[dict[str, Any]]], None]


class RecordLog:
    """The write-ahead log of one process (see the module doc)."""

    def __init__(
        self,
        directory: Path,
        on_durable: DurableCallback,
        *,
        durability: Durability = "fsync",
        segment_bytes: int = SEGMENT_BYTES,
    ) -> None:
        self.directory = Path(directory)
        self._on_durable = on_durable
        self._sync = durability != "async"  # the syncer runs: fdatasync after each written group
        self._await_sync = durability == "fsync"  # ... and answers wait for it (else for the write)
        self._wait = durability != "async"
        self._segment_bytes = segment_bytes
        self._lock = threading.Lock()  # the open group and the segment table (appends may come from threads)
        self._group: Group | None = None
        self._closed = False  # close() was called: appends go to files of their own
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._live: Segment | None = None
        self._unsynced = threading.Condition(threading.Lock())  # the syncer's queue
        self._written: list[tuple[Group | None, Segment]] = []  # None: handed over already
        self._syncer: threading.Thread | None = None
        self._syncer_stop = False
        self.segments: dict[Path, Segment] = {}  # every segment this process holds, by path
        self.failures = 0  # groups whose write or sync failed (their records stayed in memory only)

    # -- the request path ------------------------------------------------------------------------

    def append(self, record: dict[str, Any], line: bytes) -> DurableFuture | None:
        """Add one record (and its encoded line) to this turn's group; the future to await before
        the answer ends (None: nothing to wait for)."""
        on_loop = threading.get_ident() == self._loop_thread
        with self._lock:
            if not self._closed:
                group = self._group
                loop = self._loop
                if group is None:
                    group = self._group = Group(DurableFuture(loop=loop) if self._wait and loop else None)
                    if loop is not None:
                        if on_loop:
                            loop.call_soon(self._write)
                        else:
                            loop.call_soon_threadsafe(self._write)
                group.lines.append(line)
                group.records.append(record)
                return group.future if on_loop else None
        self.append_detached(line)
        return None

    # -- life cycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Open the first segment (and the syncer); call it on the event loop's thread, where the
        groups are written and their futures resolve. A few milliseconds of file work, once."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._clear_parts()
        self._live = self._open_segment()
        self._live.new = False
        fsync_dir(self.directory)
        if self._sync:
            self._syncer = threading.Thread(target=self._sync_loop, name="records-fsync", daemon=True)
            self._syncer.start()
        with self._lock:
            self._loop, self._loop_thread = asyncio.get_running_loop(), threading.get_ident()
            pending = self._group is not None  # appended before start
        if pending:
            self._loop.call_soon(self._write)

    async def close(self) -> None:
        """Write what was appended, wait for its sync, close the live segment. Later appends go
        straight to a file of their own, which the next process adopts."""
        with self._lock:
            self._closed = True
            leftover = self._group if self._loop is None else None
        if leftover is not None:  # appended, but never started: nothing writes them but this
            self._group = None
            await asyncio.to_thread(self.append_detached, b"".join(leftover.lines))
            return
        self._write()
        if self._syncer is not None:
            with self._unsynced:
                self._syncer_stop = True
                self._unsynced.notify()
            await asyncio.to_thread(self._syncer.join)
            await asyncio.sleep(0)  # the syncer's last hand-over runs first
        self._close_live()

    def rotate(self) -> None:
        """Close the live segment now (so that it can be replayed or deleted) and open the next."""
        if self._live is not None and not self._closed:
            self._close_live()
            self._live = self._try_open()

    def held(self) -> list[Segment]:
        """The segments this process holds, oldest first."""
        with self._lock:
            return sorted(self.segments.values(), key=lambda segment: segment.path.name)

    # -- writing (on the loop) and syncing (on the syncer) -----------------------------------------

    def _write(self) -> None:
        with self._lock:
            group, self._group = self._group, None
        if group is None:
            return
        segment = self._live or self._try_open()
        self._live = segment
        if segment is not None:
            data = b"".join(group.lines)
            try:
                _write_all(segment.fd, data)
            except OSError as exc:  # a full or failing disk: the records stay in memory only
                self.failures += 1
                log.error("records.wal_write_failed", path=segment.path.name, error=str(exc))
                segment.dirty = True  # what reached the file is replayed, never trusted as complete
                self._close_live()
                segment = None
            else:
                segment.records += len(group.records)
                segment.bytes += len(data)
                if segment.bytes >= self._segment_bytes:
                    self.rotate()
        else:
            self.failures += 1
        if segment is None or not self._sync:
            self._durable([(group, segment, segment is not None)])
            return
        handed: Group | None = group
        if not self._await_sync:  # written: safe from the process's end; the sync follows unawaited
            self._durable([(group, segment, True)])
            handed = None
        with self._unsynced:
            self._written.append((handed, segment))
            if self._await_sync:  # an answer waits: sync now; else the syncer comes by on its period
                self._unsynced.notify()

    def _sync_loop(self) -> None:
        while True:
            with self._unsynced:
                if not self._await_sync and not self._syncer_stop:
                    # unawaited syncs, one a period: a thread taking the GIL for every group delays
                    # the busy event loop (p99 +70 ms at 600 requests/s, bench/gateway.py)
                    self._unsynced.wait(BACKGROUND_SYNC_S)
                while not self._written and not self._syncer_stop:
                    self._unsynced.wait()
                written, self._written = self._written, []
                stop = self._syncer_stop and not written
            if stop:
                return
            failed: set[Segment] = set()
            for segment in dict.fromkeys(segment for _, segment in written):
                with self._lock:
                    if segment.released:  # its records are stored and its fd closed: nothing to sync
                        continue
                    segment.syncing = True
                try:
                    if segment.new:  # its name must survive a crash before its records count
                        fsync_dir(self.directory)
                        segment.new = False
                    os.fdatasync(segment.fd)
                except OSError as exc:
                    self.failures += 1
                    log.error("records.wal_sync_failed", path=segment.path.name, error=str(exc))
                    segment.dirty = True
                    failed.add(segment)
                finally:
                    with self._lock:
                        segment.syncing = False
                        let_go = segment.released
                    if let_go:  # released while this sync ran: its close was left to this thread
                        os.close(segment.fd)
            done: list[tuple[Group, Segment | None, bool]] = [
                (group, segment, segment not in failed) for group, segment in written if group is not None
            ]
            if not done:  # write durability: these groups were handed over when written
                continue
            loop = self._loop
            assert loop is not None
            try:
                loop.call_soon_threadsafe(self._durable, done)
            except RuntimeError:  # the loop is closed: nobody waits any more; the files keep the records
                return

    def _durable(self, groups: list[tuple[Group, Segment | None, bool]]) -> None:
        """Groups are durable (or failed: their records stay in memory only): resolve, hand over."""
        for group, segment, ok in groups:
            if group.future is not None:
                group.future.set_result(None)
            if segment is not None:
                segment.handed += len(group.records)
            self._on_durable(segment if ok else None, group.records)

    # -- segments --------------------------------------------------------------------------------

    def _try_open(self) -> Segment | None:
        try:
            return self._open_segment()
        except OSError as exc:
            log.error("records.wal_open_failed", error=str(exc))
            return None

    def _open_segment(self) -> Segment:
        """A new segment: created hidden, locked, then renamed into view (adoptable only once locked)."""
        for _ in range(10):
            name = f"wal-{os.getpid()}-{time.time_ns():020d}-{next(_seq):06d}.jsonl"
            part = self.directory / f".{name}.part"
            fd = os.open(part, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.rename(part, self.directory / name)
            except OSError as exc:  # another process's clean-up took the hidden file first: again
                os.close(fd)
                if exc.errno not in (errno.EWOULDBLOCK, errno.ENOENT):
                    raise
                continue
            segment = Segment(self.directory / name, fd)
            with self._lock:
                self.segments[segment.path] = segment
            return segment
        raise OSError("could not create a journal segment")

    def _close_live(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            live.closed = True

    def append_detached(self, data: bytes) -> None:
        """Records appended after ``close``: a segment of their own, synced, left unlocked for the
        next process (or a live sibling) to adopt."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        name = f"wal-{os.getpid()}-{time.time_ns():020d}-{next(_seq):06d}.jsonl"
        part = self.directory / f".{name}.part"
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # a starting process's clean-up leaves it alone
            _write_all(fd, data)
            os.fsync(fd)
            os.rename(part, self.directory / name)
        finally:
            os.close(fd)
        fsync_dir(self.directory)

    def _clear_parts(self) -> None:
        """Hidden files of processes that died while creating a segment (empty: nothing lost)."""
        for path in self.directory.glob(PART_GLOB):
            fd = self._lock_unheld(path)
            if fd is not None:
                path.unlink(missing_ok=True)
                os.close(fd)

    @staticmethod
    def _lock_unheld(path: Path) -> int | None:
        """An fd holding ``path``'s lock, or None when a live process holds it (or it is gone)."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(fd).st_ino != os.stat(path).st_ino:  # replayed and removed meanwhile
                raise FileNotFoundError(path)
        except OSError:
            os.close(fd)
            return None
        return fd

    def adopt_orphans(self) -> list[Segment]:
        """Lock and take over the segments no live process holds (blocking file work)."""
        patterns = (SEGMENT_GLOB, *LEGACY_NAMES)
        found = sorted({path for pattern in patterns for path in self.directory.glob(pattern)})
        adopted: list[Segment] = []
        for path in found:
            if path in self.segments:
                continue
            fd = self._lock_unheld(path)
            if fd is None:
                continue
            segment = Segment(path, fd, closed=True, dirty=True)
            with self._lock:
                self.segments[path] = segment
            adopted.append(segment)
        return adopted

    def release(self, segment: Segment, *, delete: bool) -> None:
        """Let go of a segment: removed when every record in it is stored, else only unlocked
        (left for the next process). Blocking file work."""
        with self._lock:
            if self.segments.pop(segment.path, None) is None:
                return
            segment.released = True
            syncing = segment.syncing  # then the syncer closes the fd when its sync ends
        if delete:
            segment.path.unlink(missing_ok=True)  # before unlocking: nobody adopts it in between
        if not syncing:
            os.close(segment.fd)

    def backlog_bytes(self) -> int:
        """Bytes of the files a replay must read: this process's segments marked for replay, and
        those no process holds (blocking file work; for stats and tests)."""
        with self._lock:
            held = dict(self.segments)
        total = 0
        for pattern in (SEGMENT_GLOB, *LEGACY_NAMES):
            for path in self.directory.glob(pattern):
                segment = held.get(path)
                if segment is not None and not segment.dirty:
                    continue
                if segment is None and self._held_elsewhere(path):
                    continue
                try:
                    total += path.stat().st_size
                except FileNotFoundError:
                    pass
        return total

    def _held_elsewhere(self, path: Path) -> bool:
        fd = self._lock_unheld(path)
        if fd is None:
            return path.exists()
        os.close(fd)
        return False
