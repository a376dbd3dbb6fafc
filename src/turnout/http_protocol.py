"""uvicorn's httptools protocol, with each response's header block and body sent in one write.

uvicorn writes the status line and headers when the app sends ``http.response.start`` and the
body when it sends ``http.response.body``: two ``send`` calls and two TCP segments per response
(``strace`` of a served request: 260 bytes, then 682). On loopback and in VMs a segment is costly
for both ends. This protocol wraps the connection's transport so that a header block announcing a
``content-length`` is held until the body's write, and both leave in one ``writelines``. A response
without a body write (a ``HEAD`` answer) sends its held headers when it completes, as does a
connection that closes; a chunked response (streaming) is never held. (Scheduling a flush with
``call_soon`` instead would cost a loop turn, one more ``epoll_wait``, per response.)
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

PROTOCOL = "turnout.http_protocol:CoalescingHttpToolsProtocol"  # uvicorn's ``http`` setting


class CoalescingTransport:
    """A transport proxy that sends a held header block together with the next write."""

    __slots__ = ("_held", "_transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.writelines((held, data))
        elif _is_sized_header_block(data):
            self._held = data
        else:
            self._transport.write(data)

    def flush(self) -> None:
        """Write a held header block now (nothing when none is held)."""
        held, self._held = self._held, None
        if held is not None:
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _is_sized_header_block(data: bytes) -> bool:
    """A response's status line and headers only (uvicorn lowercases the names), with a length."""
    return data.startswith(b"HTTP/1.1 ") and data.endswith(b"\r\n\r\n") and b"\r\ncontent-length: " in data


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` over a ``CoalescingTransport``."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.coalescing = CoalescingTransport(transport)
        super().connection_made(cast(asyncio.Transport, self.coalescing))

    def on_response_complete(self) -> None:
        self.coalescing.flush()  # a response that wrote no body (HEAD)
        super().on_response_complete()
