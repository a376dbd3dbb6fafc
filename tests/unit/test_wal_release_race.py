"""A journal segment let go (its records stored) while the syncer is syncing it: its fd is closed
after that sync, by the syncer, never synced after its close. (At shutdown the writer released
segments under a running sync: ``records.wal_sync_failed`` with EBADF, or EINVAL once the fd's
number named a socket; with a file behind that number, the sync would have gone to it.)"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from turnout.records import wal
from turnout.records.wal import RecordLog


def _open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


async def test_a_segment_released_during_its_sync_is_closed_when_the_sync_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_sync, finish = threading.Event(), threading.Event()
    synced: list[int] = []
    fdatasync = os.fdatasync

    def held_sync(fd: int) -> None:  # the syncer's sync, held open until the segment is let go
        synced.append(fd)
        in_sync.set()
        assert finish.wait(5)
        fdatasync(fd)

    monkeypatch.setattr(wal.os, "fdatasync", held_sync)
    log = RecordLog(tmp_path, lambda segment, records: None, durability="fsync")
    log.start()
    durable = log.append({"id": "1"}, b'{"id": "1"}\n')
    assert durable is not None
    assert await asyncio.to_thread(in_sync.wait, 5)
    segment = log.held()[0]
    log.rotate()  # the segment is closed to writes; its records are stored: let it go
    log.release(segment, delete=True)
    assert _open(segment.fd), "the fd stays open while the syncer syncs it"
    assert not segment.path.exists()
    finish.set()
    await asyncio.wait_for(durable, 5)
    assert synced == [segment.fd] and log.failures == 0
    assert not _open(segment.fd), "closed by the syncer once its sync ended"
    await log.close()


async def test_a_segment_released_before_its_sync_is_not_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []  # the inodes synced
    fdatasync = os.fdatasync

    def counted(fd: int) -> None:
        synced.append(os.fstat(fd).st_ino)
        fdatasync(fd)

    monkeypatch.setattr(wal.os, "fdatasync", counted)
    handed: list[Any] = []
    log = RecordLog(tmp_path, lambda segment, records: handed.append(segment), durability="write")
    log.start()
    log.append({"id": "1"}, b'{"id": "1"}\n')
    await asyncio.sleep(0.02)  # written and handed over; its sync waits for the syncer's period
    segment = log.held()[0]
    inode = os.fstat(segment.fd).st_ino
    assert handed == [segment] and inode not in synced
    log.rotate()
    log.release(segment, delete=True)  # stored: let go before the syncer came by
    await asyncio.sleep(3 * wal.BACKGROUND_SYNC_S)
    await log.close()
    assert inode not in synced and log.failures == 0, "a released segment's fd is never synced"
