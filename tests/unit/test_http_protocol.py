"""The serving protocol sends a response's header block and body in one write."""

from __future__ import annotations

import asyncio
import socket
from typing import Any, cast

import uvicorn

from turnout.http_protocol import PROTOCOL, CoalescingTransport

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
    return CoalescingTransport(cast(asyncio.Transport, wire)), wire


async def test_headers_and_body_leave_in_one_send() -> None:
    transport, wire = proxy()
    transport.write(HEAD)
    assert wire.sends == []
    transport.write(b"{}")
    assert wire.sends == [HEAD + b"{}"]
    transport.flush()  # at the response's end: nothing left
    assert wire.sends == [HEAD + b"{}"]


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


async def test_a_head_answer_gets_its_headers_over_a_real_connection() -> None:
    """No body write follows a HEAD answer's headers: they go out when the response completes."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b'{"ok":true}'
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    config = uvicorn.Config(app, host="127.0.0.1", port=0, http=PROTOCOL, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    sockets = [socket.create_server(("127.0.0.1", 0))]
    port = sockets[0].getsockname()[1]
    task = asyncio.create_task(server.serve(sockets=sockets))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for method in (b"HEAD", b"GET", b"HEAD"):  # keep-alive: each answer complete before the next
            writer.write(method + b" / HTTP/1.1\r\nHost: x\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200 OK") and b"content-length: 11" in head
            if method == b"GET":
                assert await asyncio.wait_for(reader.readexactly(11), 5) == b'{"ok":true}'
        writer.close()
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
