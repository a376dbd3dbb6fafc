"""The data plane's front door: a plain ASGI dispatcher that serves `/v1/*` and `/api/models/*`
before FastAPI's router and middleware stack (about half the per-request CPU otherwise)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import orjson
import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from turnout import tracing
from turnout.api.body_guard import NUL, CheckedRequest
from turnout.api.body_size import BodySizeLimit
from turnout.api.rejections import DATA_PLANE, note_rejection
from turnout.errors import error_body

log = structlog.get_logger(__name__)
Handler = Callable[[Request], Awaitable[Response]]
_HANDLER = "turnout.handler"


class HotPath:
    """Exact-path dispatch to lean handlers; everything else goes to ``app`` (FastAPI)."""

    def __init__(
        self,
        app: ASGIApp,
        routes: list[Route],
        *,
        max_body_bytes: int,
        patterns: Sequence[tuple[str, str, str | None, Handler]] = (),
    ) -> None:
        self.app = app
        self._table: dict[tuple[str, str], Handler] = {}
        for route in routes:
            for method in route.methods or ():
                self._table[(method, route.path)] = route.endpoint
        # (method, prefix, suffix, handler): one path segment between, or (suffix None) the rest
        self._patterns = list(patterns)
        methods: dict[str, set[str]] = {}
        for method, path in self._table:
            methods.setdefault(path, set()).add(method)
        self._allowed = {path: ", ".join(sorted(m)) for path, m in methods.items()}  # for the 405
        self._limited = BodySizeLimit(self._serve, max_body_bytes, api=DATA_PLANE)

    def _match(self, method: str, path: str) -> Handler | None:
        handler = self._table.get((method, path))
        if handler is not None:
            return handler
        for verb, prefix, suffix, candidate in self._patterns:
            if method != verb or not path.startswith(prefix):
                continue
            if suffix is None:  # the rest of the path, slashes and all (a model id)
                if len(path) > len(prefix) and NUL not in path:
                    return candidate
            elif path.endswith(suffix):
                middle = path[len(prefix) : len(path) - len(suffix)]
                if middle and "/" not in middle and NUL not in middle:  # NUL: FastAPI's guard answers
                    return candidate
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)  # lifespan: start-up errors must reach uvicorn
            return
        handler = self._match(scope["method"], scope["path"])
        if handler is None:
            allowed = self._allowed.get(scope["path"])
            if allowed is not None:  # a data-plane path, another method: FastAPI would say 404
                scope["app"] = self.app
                await _method_not_allowed(Request(scope), allowed)(scope, receive, send)
                return
            try:
                await self.app(scope, receive, send)
            except Exception:  # noqa: S110
                # Starlette re-raises after its handler answered 500 and logged it (redacted, see
                # api/errors.py); passed on, uvicorn would log it again, unredacted, and drop the
                # keep-alive connection.
                pass
            return
        scope[_HANDLER] = handler
        scope["app"] = self.app  # handlers read request.app.state.container
        if tracing.ENABLED:  # off: one flag test, no tracer call, no context object
            served = tracing.SERVED.get(scope["path"])
            if served is not None:
                await self._traced(scope, receive, send, served)
                return
        if self._limited.declared_within(scope):  # the common case, without the wrapper's frame
            await self._serve(scope, receive, send)
        else:  # over the limit (413) or undeclared (bytes counted as they come)
            await self._limited(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler: Handler = scope[_HANDLER]
        try:
            response = await handler(CheckedRequest(scope, receive))
        except HTTPException as exc:  # the body-size guard (a body sent without its length)
            request, message = Request(scope), str(exc.detail)
            note_rejection(request, DATA_PLANE, exc.status_code, "payload_too_large", message)
            body = orjson.dumps(error_body(message, "invalid_request_error", None, "payload_too_large"))
            response = Response(body, exc.status_code, media_type="application/json")
        except Exception as exc:  # never a stack trace to the client
            log.error("unhandled_error", path=scope["path"], error_type=type(exc).__name__, exc_info=exc)
            body = orjson.dumps(error_body("internal error", "api_error", None, "internal_error"))
            response = Response(body, 500, media_type="application/json")
        if tracing.ENABLED:
            tracing.responded(response.status_code)
        await response(scope, receive, send)

    async def _traced(self, scope: Scope, receive: Receive, send: Send, served: tuple[str, str]) -> None:
        """Serve a data-plane request inside its server span, which ends after the answer's last
        byte (a stream's included) and is current for the pipeline's spans below it."""
        token = tracing.start_server(scope["headers"], served)
        try:
            if self._limited.declared_within(scope):
                await self._serve(scope, receive, send)
            else:
                await self._limited(scope, receive, send)
        except BaseException as exc:
            tracing.end_server(token, exc)
            raise
        tracing.end_server(token, None)

    @property
    def state(self) -> object:
        """The wrapped app's state (``app.state.container``), for callers holding this object."""
        return self.app.state  # type: ignore[attr-defined]


def _method_not_allowed(request: Request, allowed: str) -> Response:
    message = f"method {request.method} is not allowed here; use {allowed}"
    note_rejection(request, DATA_PLANE, 405, "method_not_allowed", message)
    body = error_body(message, "invalid_request_error", None, "method_not_allowed")
    return Response(orjson.dumps(body), 405, {"allow": allowed}, media_type="application/json")
