"""The serving protocol sends a response's header block and body in one write."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from turnout.http_protocol import CoalescingTransport

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: application/json\r\n\r\n"
CHUNKED = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


class Wire:
    """The socket side: what was sent, one entry per send."""

    def __init__(self) -> None:
        self.sends: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.sends.append(bytes(data))

    def writelines(self, parts: Any) -> None:
        self.sends.append(b"".join(parts))

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def proxy() -> tuple[CoalescingTransport, Wire]:
    wire = Wire()
    return CoalescingTransport(cast(asyncio.Transport, wire), asyncio.get_running_loop()), wire


async def test_headers_and_body_leave_in_one_send() -> None:
    transport, wire = proxy()
    transport.write(HEAD)
    assert wire.sends == []
    transport.write(b"{}")
    assert wire.sends == [HEAD + b"{}"]
    await asyncio.sleep(0)  # the scheduled flush finds nothing held
    assert wire.sends == [HEAD + b"{}"]


async def test_headers_without_a_following_body_go_out_on_the_next_turn() -> None:
    transport, wire = proxy()
    transport.write(HEAD)  # e.g. a HEAD answer: uvicorn writes no body
    await asyncio.sleep(0)
    assert wire.sends == [HEAD]


async def test_streams_and_other_writes_are_never_held() -> None:
    transport, wire = proxy()
    transport.write(CHUNKED)  # streaming: the client sees the headers at once
    transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    full = HEAD + b"{}"  # a whole response in one write (uvicorn's own 400s)
    transport.write(full)
    assert wire.sends == [CHUNKED, b"HTTP/1.1 100 Continue\r\n\r\n", full]


async def test_close_sends_what_is_held_first_and_the_rest_passes_through() -> None:
    transport, wire = proxy()
    transport.write(HEAD)
    transport.close()
    assert wire.sends == [HEAD] and wire.closed
    assert transport.get_extra_info("peername") == "info:peername"
