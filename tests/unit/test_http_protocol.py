"""The guarded serving protocol answers like uvicorn's own."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn

from turnout.http_protocol import PROTOCOL


async def test_a_head_answer_gets_its_headers_over_a_real_connection() -> None:
    """HEAD and GET answers alternate on one keep-alive connection, each complete in its turn."""

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
