"""Exception handlers: every error leaves as OpenAI-shaped JSON, never a stack trace."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from turnout.errors import TurnoutError, error_body

log = structlog.get_logger(__name__)

_STATUS_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


def json_error(status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None) -> Response:
    """A JSON error response."""
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def _param_of(loc: tuple[Any, ...]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


def validation_message(errors: Sequence[Mapping[str, Any]]) -> tuple[str, str | None]:
    """One line naming every offending field and why (``"a: field required; b: ..."``), and the
    first such field (the error's ``param``). ``errors``: pydantic's ``errors()``."""
    if not errors:
        return "invalid request", None
    first = errors[0]
    if first.get("type") == "json_invalid":
        return f"malformed JSON body: {first.get('ctx', {}).get('error', 'invalid JSON')}", None
    parts: list[str] = []
    for error in errors:
        param = _param_of(tuple(error.get("loc", ())))
        msg = str(error.get("msg", "invalid value"))
        if error.get("type") == "missing":
            msg = "field required"
        elif error.get("type") == "value_error":  # a validator's own message, without pydantic's prefix
            msg = msg.removeprefix("Value error, ")
        part = f"{param}: {msg}" if param else msg
        if part not in parts:
            parts.append(part)
    return "; ".join(parts), _param_of(tuple(first.get("loc", ())))


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(TurnoutError)
    async def _turnout_error(_: Request, exc: TurnoutError) -> Response:
        return json_error(exc.status_code, exc.body(), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> Response:
        message, param = validation_message(exc.errors())
        return json_error(400, error_body(message, "invalid_request_error", param, "invalid_value"))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> Response:
        kind = _STATUS_TYPES.get(exc.status_code, "api_error")
        return json_error(exc.status_code, error_body(str(exc.detail), kind, None, None), exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.error("unhandled_error", path=request.url.path, error_type=type(exc).__name__, exc_info=exc)
        return json_error(500, error_body("internal error", "api_error", None, "internal_error"))
