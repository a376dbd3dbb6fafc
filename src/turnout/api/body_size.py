"""ASGI middleware refusing request bodies over the configured size with a 413, and compressed
ones (``Content-Encoding``, which no route decodes) with a 415 rather than a misleading 400 from
the JSON parser."""

from __future__ import annotations

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from turnout.api.rejections import CONTROL_PLANE, note_rejection
from turnout.errors import PayloadTooLarge, TurnoutError, UnsupportedEncoding


class BodySizeLimit:
    """Checks Content-Length up front and counts streamed bytes for chunked bodies; its refusals
    are counted and logged as ``api``'s (``api.rejections``)."""

    def __init__(self, app: ASGIApp, max_bytes: int, api: str = CONTROL_PLANE) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.api = api

    def declared_within(self, scope: Scope) -> bool | None:
        """True/False if the declared Content-Length is within/over the limit (False too for an
        encoded body); None if undeclared."""
        within = None
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    within = int(value) <= self.max_bytes
                except ValueError:
                    within = None
            elif name == b"content-encoding" and value.strip().lower() != b"identity":
                return False
        return within

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        within = self.declared_within(scope)
        if within is False:
            await self._reject(scope, send, _encoded(scope))
            return
        if within:
            await self.app(scope, receive, send)  # the server never delivers more than declared
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reject(scope, send, None)

    async def _reject(self, scope: Scope, send: Send, encoding: bytes | None) -> None:
        err: TurnoutError = PayloadTooLarge(f"request body exceeds {self.max_bytes} bytes")
        if encoding is not None:
            err = UnsupportedEncoding(
                f"request bodies with Content-Encoding {encoding.decode('latin-1')} are not "
                "supported: send the body uncompressed"
            )
        note_rejection(Request(scope), self.api, err.status_code, err.code, err.message)
        body = orjson.dumps(err.body())
        await send(
            {
                "type": "http.response.start",
                "status": err.status_code,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(HTTPException):
    """Raised from ``receive``; FastAPI re-raises HTTPExceptions from body parsing unchanged."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"request body exceeds {max_bytes} bytes")


def _encoded(scope: Scope) -> bytes | None:
    """The request body's Content-Encoding, unless none or ``identity``."""
    for name, value in scope.get("headers", ()):
        if name == b"content-encoding" and value.strip().lower() != b"identity":
            return value.strip()
    return None
