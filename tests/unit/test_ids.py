"""Ids: random version-4 UUIDs, and time-ordered version-7 message ids."""

from __future__ import annotations

import os
import time
import uuid

import pytest

from turnout.ids import new_id, new_ordered_id, ordered_id_time


def test_ids_are_canonical_random_v4_uuids_and_never_repeat() -> None:
    ids = [new_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    for value in ids[:600]:
        parsed = uuid.UUID(value)
        assert str(parsed) == value and parsed.version == 4 and parsed.variant == uuid.RFC_4122
    # every random bit varies: no position is stuck across the sample (version nibble aside)
    hex_digits = [value.replace("-", "") for value in ids[:2000]]
    varying = [len({h[i] for h in hex_digits}) > 1 for i in range(32)]
    assert varying.count(False) == 1 and not varying[12]


def test_message_ids_are_v7_uuids_that_sort_by_creation_time() -> None:
    before = time.time_ns() // 1_000_000
    first = [new_ordered_id() for _ in range(5_000)]
    time.sleep(0.003)
    later = [new_ordered_id() for _ in range(5_000)]
    after = time.time_ns() // 1_000_000
    assert len(set(first + later)) == 10_000
    for value in first[:300] + later[:300]:
        parsed = uuid.UUID(value)
        assert str(parsed) == value and parsed.version == 7 and parsed.variant == uuid.RFC_4122
        assert before <= parsed.int >> 80 <= after  # the leading 48 bits are Unix milliseconds
    assert max(first) < min(later)  # appended at the index's right edge, not on a random page
    # the 74 bits after the timestamp are random: no position is stuck across ids of one millisecond
    tails = [value.replace("-", "")[13:] for value in first[:2000]]
    assert all(len({t[i] for t in tails}) > 1 for i in range(19) if i != 3)  # 3: the variant digit


def test_a_message_ids_time_is_read_back_and_no_other_string_has_one() -> None:
    before = time.time()
    made = ordered_id_time(new_ordered_id())
    assert made is not None and before - 0.002 <= made <= time.time() + 0.002
    for other in (new_id(), str(uuid.uuid4()), "", "x" * 36, "zzzzzzzz-zzzz-7zzz-8zzz-zzzzzzzzzzzz"):
        assert ordered_id_time(other) is None


def test_a_forked_child_never_repeats_its_parents_ids() -> None:
    """Workers fork from one process: a record whose id another took is dropped by ON CONFLICT (id)."""
    new_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids go to the parent through the pipe
        os.close(read)
        os.write(write, ",".join(new_id() for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    parent = {new_id() for _ in range(50)}
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split(","))
    os.waitpid(pid, 0)
    assert len(child) == 50 and not parent & child


def test_ids_do_not_make_a_system_call_each(monkeypatch: pytest.MonkeyPatch) -> None:
    """os.urandom releases the GIL, and on a busy gateway a background thread then holds the loop
    thread up (it was caught inside uuid4 in 30 of 82 loop stalls over 3 ms): one call per 256 ids.
    (It was once reverted for showing no gain in CPU per request, which is not what it is for.)"""
    calls: list[int] = []
    real = os.urandom

    def counted(n: int) -> bytes:
        calls.append(n)
        return real(n)

    monkeypatch.setattr(os, "urandom", counted)
    ids = {new_ordered_id() for _ in range(1000)} | {new_id() for _ in range(1000)}
    assert len(ids) == 2000
    assert len(calls) <= 2000 // 256 + 1
