"""Requests carrying characters no route can store get a 400 naming where, before any route sees
them: NUL (PostgreSQL stores none in text or JSON, and no id, name, prompt or query parameter
means one) and unpaired UTF-16 surrogates (no UTF-8 encoder takes them; the control plane's JSON
parser lets them through). Let through, each became a 500 deep inside whichever route met it.

Checked once for every route: the control plane's path, query and JSON body in ``BodyGuard``
(ASGI, in front of FastAPI), the data plane's JSON bodies in ``CheckedRequest`` (its handlers
answer the error in the caller's dialect; orjson, their parser, already refuses lone
surrogates). Headers never get here: the HTTP parser refuses NUL in them with a 400.

A body is parsed again only when a substring search finds what it takes: the escape ``\\u0000``
(a NUL in a JSON string can be nothing else) or, on the control plane, a surrogate escape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from turnout.api.errors import json_error
from turnout.errors import InvalidRequest

NUL = "\x00"
_JSON_NUL = b"\\u0000"
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATES = re.compile("[\ud800-\udfff]")


def _refused(where: str | None, why: str) -> InvalidRequest:
    return InvalidRequest(f"{where or 'the request body'} {why}", param=where, code="invalid_value")


def _first_problem(document: Any) -> InvalidRequest | None:
    """The first string or key holding NUL or an unpaired surrogate, named in parse.py's style
    (``messages[0].content``, ``capsule.a\\u0000`` for a key). Iterative: JSON nests deeper than
    Python recurses."""
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if NUL in item:
                return _refused(path or None, "must not contain NUL characters")
            if _SURROGATES.search(item):
                return _refused(path or None, "must not contain unpaired surrogates")
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", v) for i, v in reversed(list(enumerate(item))))
        elif isinstance(item, dict):
            children = []
            for key, value in item.items():
                where = f"{path}.{key}" if path else str(key)
                if NUL in key or _SURROGATES.search(key):
                    shown = _SURROGATES.sub("?", where.replace(NUL, "\\u0000"))
                    return _refused(shown, "is a key with NUL or unpaired surrogates")
                children.append((where, value))
            stack.extend(reversed(children))
    return None


def json_body_error(raw: bytes, loads: Callable[[bytes], Any] = orjson.loads) -> InvalidRequest | None:
    """The error for a JSON body holding one of the problems above, naming the field; ``None`` for
    any other body (malformed JSON is left to the route's parser, which says what is wrong)."""
    try:
        return _first_problem(loads(raw))
    except ValueError:  # orjson's and json's decode errors both
        return None


def url_error(scope: Scope) -> InvalidRequest | None:
    """The error for a path or query parameter holding NUL (percent-encoded or not)."""
    if NUL in scope["path"]:
        return _refused("path", "must not contain NUL characters")
    query: bytes = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if NUL in name or NUL in value:
                return _refused(name.replace(NUL, "\\u0000"), "must not contain NUL characters")
    return None


class CheckedRequest(Request):
    """The data plane's request: reading the body raises ``InvalidRequest`` when it holds NUL,
    inside the handler, so the answer comes in the handler's dialect."""

    async def body(self) -> bytes:
        raw = await super().body()
        if _JSON_NUL in raw:
            error = json_body_error(raw)
            if error is not None:
                raise error
        return raw


class BodyGuard:
    """ASGI middleware for the control plane: path, query and JSON body are checked before the
    app runs. The body is read whole (under ``BodySizeLimit``, which must wrap this) and replayed.
    Bodies are parsed as FastAPI parses them (``json``), which lets lone surrogates through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        error = url_error(scope)
        if error is not None:
            await json_error(error.status_code, error.body())(scope, receive, send)
            return
        chunks: list[bytes] = []
        pending: list[Message] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left: let the app see it
                pending.append(message)
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if _JSON_NUL in body or _SURROGATE_ESCAPE.search(body):
            error = json_body_error(body, json.loads)
            if error is not None:
                await json_error(error.status_code, error.body())(scope, receive, send)
                return
        pending.insert(0, {"type": "http.request", "body": body, "more_body": False})

        async def replay() -> Message:
            return pending.pop(0) if pending else await receive()

        await self.app(scope, replay, send)
