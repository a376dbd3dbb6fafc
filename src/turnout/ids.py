"""UUID strings: random (version 4) ones for the ids the dialect translators give answers, tool
calls and streams; time-ordered (version 7) ones for message ids.

Random bits come from a 4 KiB ``os.urandom`` buffer, refilled when spent (one system call per 256
ids), not from ``uuid.uuid4()``'s ``os.urandom(16)`` per id. That call releases the GIL, and on the
gateway's one core a background thread (the SQLite driver's, the WAL checkpointer's) then runs
until the loop thread gets it back: ``bench/gateway_profile.py --stalls`` at 869 requests/s caught
the loop thread inside ``uuid4`` in 30 of 82 stalls over 3 ms. CPU per request is the same either
way (``bench/gateway_ab.py``); the tail latency is not. A forked worker starts a buffer of its own.
"""

from __future__ import annotations

import os
import threading
import time

_BUFFER_IDS = 256
_lock = threading.Lock()
_buffer = b""
_offset = 0


def _forget() -> None:
    """In a forked child: never hand out the parent's remaining bytes."""
    global _buffer, _offset, _lock
    _buffer, _offset, _lock = b"", 0, threading.Lock()


os.register_at_fork(after_in_child=_forget)


def new_hex() -> str:
    """A random UUID (version 4, RFC 9562 variant) as 32 hex digits."""
    global _buffer, _offset
    with _lock:
        if _offset >= len(_buffer):
            _buffer, _offset = os.urandom(16 * _BUFFER_IDS), 0
        raw = _buffer[_offset : _offset + 16]
        _offset += 16
    value = (int.from_bytes(raw) & ~(0xF000 << 64) | (0x4000 << 64)) & ~(0xC000 << 48) | (0x8000 << 48)
    return f"{value:032x}"


def new_id() -> str:
    """A random UUID (version 4, RFC 9562 variant) in its canonical 36-character form."""
    h = new_hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_ordered_id() -> str:
    """A time-ordered UUID (version 7, RFC 9562): 48 bits of Unix milliseconds, then 74 random bits.

    Message ids are primary keys: ids that grow with time are appended at the right edge of the
    index instead of landing on a random page, so an insert dirties about half as many pages
    (measured: 22 -> 11-14 us per row into a 55,000-row SQLite table) and the WAL stays smaller."""
    h = new_hex()  # its version and variant digits are replaced or kept (the variant is 10 either way)
    stamp = f"{time.time_ns() // 1_000_000 & 0xFFFF_FFFF_FFFF:012x}"
    return f"{stamp[:8]}-{stamp[8:]}-7{h[13:16]}-{h[16:20]}-{h[20:]}"


def ordered_id_time(value: str) -> float | None:
    """When a ``new_ordered_id`` was made (Unix seconds, to the millisecond); None for any other
    string (a version-4 id, a typo)."""
    if len(value) != 36 or value[14] != "7" or value[8] != "-":
        return None
    try:
        return int(value[:8] + value[9:13], 16) / 1000.0
    except ValueError:
        return None
