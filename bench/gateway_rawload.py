"""A lean open-loop HTTP/1.1 client for latency at a fixed rate (``bench/gateway.py``).

aiohttp's client spends a few hundred microseconds of Python per request; at ~1000 req/s on a
shared core that is the noise the measurement is about. This one sends pre-built request bytes
over keep-alive connections (a new one only when none is idle) and reads just the status line,
``Content-Length`` or the end of a chunked body: tens of microseconds per request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import cast
from urllib.parse import urlsplit

from gateway_load import Paced, Target


class _Conn(asyncio.Protocol):
    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.started = 0.0
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio.Transport subclasses

    def send(self, request: bytes) -> None:
        assert self.transport is not None
        self.busy, self.started = True, time.perf_counter()
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buf[:end]).lower()
        at = head.find(b"\r\ncontent-length:")
        if at >= 0:
            stop = head.find(b"\r\n", at + 2)
            length = int(head[at + 17 : stop if stop >= 0 else len(head)])
            if len(self.buf) < end + 4 + length:
                return
            rest = self.buf[end + 4 + length :]
        else:  # chunked: the body ends with the zero-length chunk
            tail = self.buf.find(b"0\r\n\r\n", end + 4)
            if tail < 0:
                return
            rest = self.buf[tail + 5 :]
        status = int(head[9:12])
        self.buf = bytearray(rest)
        self.busy = False
        self.pool.done(self, (time.perf_counter() - self.started) * 1000, status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.busy:
            self.busy = False
            self.pool.done(self, 0.0, 0)


class _Pool:
    def __init__(self, host: str, port: int, result: Paced, on_done: Callable[[float], None] | None) -> None:
        self.host, self.port, self.result, self.on_done = host, port, result, on_done
        self.idle: list[_Conn] = []
        self.pending = 0
        self.finished: asyncio.Future[None] | None = None

    async def get(self) -> _Conn:
        while self.idle:
            conn = self.idle.pop()
            if conn.transport is not None:
                return conn
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(lambda: _Conn(self), self.host, self.port)
        return conn

    def done(self, conn: _Conn, latency_ms: float, status: int) -> None:
        self.pending -= 1
        if status == 200:
            self.result.latencies_ms.append(latency_ms)
            if self.on_done is not None:
                self.on_done(latency_ms)
        else:
            self.result.errors += 1
        if conn.transport is not None:
            self.idle.append(conn)
        if self.pending == 0 and self.finished is not None and not self.finished.done():
            self.finished.set_result(None)


async def paced_raw(
    target: Target, rate: float, seconds: float, on_done: Callable[[float], None] | None = None
) -> Paced:
    """Open loop: request ``i`` is written at ``i / rate`` s; latency is write to last byte read.
    ``on_done(latency_ms)`` is called as each answer completes (``gateway_timeline``)."""
    url = urlsplit(target.endpoint)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    body = target.body()
    head = f"POST {url.path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {target.key}\r\n"
    request = (
        head + f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    result = Paced(rate)
    pool = _Pool(host, port, result, on_done)
    loop = asyncio.get_running_loop()
    begin = loop.time() + 0.01
    for i in range(max(1, int(rate * seconds))):
        delay = begin + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.001:
            result.late += 1
        conn = await pool.get()
        pool.pending += 1
        conn.send(request)
    if pool.pending:
        pool.finished = loop.create_future()
        await asyncio.wait_for(pool.finished, 60)
    result.seconds = loop.time() - begin
    for conn in pool.idle:
        if conn.transport is not None:
            conn.transport.close()
    return result
