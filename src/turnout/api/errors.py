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

from turnout.api.rejections import CONTROL_PLANE, note_rejection
from turnout.errors import TurnoutError, error_body, fields_message

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


_SOURCES = frozenset({"body", "query", "path", "header"})  # where FastAPI found a value, not a field


def validation_message(errors: Sequence[Mapping[str, Any]]) -> tuple[str, str | None]:
    """A request's validation errors as one line naming every bad field, and the first such field
    (the error's ``param``); a malformed JSON body says so instead. ``errors``: pydantic's or
    FastAPI's ``errors()``."""
    if errors and errors[0].get("type") == "json_invalid":
        return f"malformed JSON body: {errors[0].get('ctx', {}).get('error', 'invalid JSON')}", None
    return fields_message(errors, drop=_SOURCES)


def turnout_error_response(request: Request, exc: TurnoutError) -> Response:
    """A control-plane error as JSON; a refusal (4xx) is counted and logged (``api.rejections``)."""
    note_rejection(request, CONTROL_PLANE, exc.status_code, exc.code, exc.message)
    return json_error(exc.status_code, exc.body(), exc.headers)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(TurnoutError)
    async def _turnout_error(request: Request, exc: TurnoutError) -> Response:
        return turnout_error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        message, param = validation_message(exc.errors())
        note_rejection(request, CONTROL_PLANE, 400, "invalid_value", message)
        return json_error(400, error_body(message, "invalid_request_error", param, "invalid_value"))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        kind = _STATUS_TYPES.get(exc.status_code, "api_error")
        note_rejection(request, CONTROL_PLANE, exc.status_code, None, str(exc.detail))
        return json_error(exc.status_code, error_body(str(exc.detail), kind, None, None), exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.error("unhandled_error", path=request.url.path, error_type=type(exc).__name__, exc_info=exc)
        return json_error(500, error_body("internal error", "api_error", None, "internal_error"))
