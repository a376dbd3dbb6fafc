"""Errors that reach clients, always in the OpenAI error shape.

``{"error": {"message": ..., "type": ..., "param": ..., "code": ...}}``
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any


class TurnoutError(Exception):
    """Base of every error Turnout turns into an HTTP answer."""

    status_code = 500
    error_type = "api_error"
    code: str | None = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = headers or {}

    def final(self) -> TurnoutError:
        """Mark this answer as one the caller's SDK must not retry on its own (``x-should-retry:
        false``, which the official OpenAI and Anthropic SDKs obey): retrying cannot change it, and
        the Anthropic SDK would otherwise sleep through any ``Retry-After``, hours included."""
        self.headers["x-should-retry"] = "false"
        return self

    def body(self) -> dict[str, Any]:
        """The JSON body sent to the client."""
        return error_body(self.message, self.error_type, self.param, self.code)


def error_body(message: str, error_type: str, param: str | None, code: str | None) -> dict[str, Any]:
    """Build an OpenAI-shaped error body."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def fields_message(
    errors: Sequence[Mapping[str, Any]], *, drop: Collection[str] = (), whole: str | None = None
) -> tuple[str, str | None]:
    """One line naming every bad field and why (``"a: field required; b: Input should be ..."``), so a
    caller fixes them all in one try, and the first such field (the error's ``param``). One wording
    for every surface (the API, the UI, NATS commands, templates), so the same body reads the same.

    ``errors``: pydantic's ``errors()``; ``drop``: location parts that name no field (FastAPI's
    ``body``, ``query``, ...); ``whole``: the name an error about no one field (a model validator's)
    goes under, else its message stands alone."""
    if not errors:
        return "invalid request", None
    parts: list[str] = []
    for error in errors:
        field = _field(error.get("loc", ()), drop)
        msg = str(error.get("msg", "invalid value"))
        if error.get("type") == "missing":
            msg = "field required"
        elif error.get("type") == "value_error":  # a validator's own message, without pydantic's prefix
            msg = msg.removeprefix("Value error, ")
        name = field or whole
        part = f"{name}: {msg}" if name else msg
        if part not in parts:
            parts.append(part)
    return "; ".join(parts), _field(errors[0].get("loc", ()), drop)


def _field(loc: Sequence[Any], drop: Collection[str]) -> str | None:
    return ".".join(str(p) for p in loc if p not in drop) or None


class InvalidRequest(TurnoutError):
    status_code = 400
    error_type = "invalid_request_error"
    code = "invalid_request"


class NeedsNativeFormat(InvalidRequest):
    """A request holding what only a provider of the client's own format can take, since only that
    provider gets the body untouched (an Anthropic ``document`` block or server tool): failover
    passes over models of other formats with this error, and answers it when none is left."""

    code = "unsupported_for_model_format"


class Unauthenticated(TurnoutError):
    status_code = 401
    error_type = "authentication_error"
    code = "invalid_token"


class Forbidden(TurnoutError):
    status_code = 403
    error_type = "permission_error"
    code = "forbidden"


class NotFound(TurnoutError):
    status_code = 404
    error_type = "not_found_error"
    code = "not_found"


class Conflict(TurnoutError):
    status_code = 409
    error_type = "invalid_request_error"
    code = "conflict"


class RequestCancelled(TurnoutError):
    """The call was cancelled by a ``model.request.cancel`` command while in flight."""

    status_code = 409
    error_type = "invalid_request_error"
    code = "request_cancelled"


class PayloadTooLarge(TurnoutError):
    status_code = 413
    error_type = "invalid_request_error"
    code = "payload_too_large"


class UnsupportedEncoding(TurnoutError):
    status_code = 415
    error_type = "invalid_request_error"
    code = "unsupported_content_encoding"


class RateLimited(TurnoutError):
    status_code = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"


class UpstreamError(TurnoutError):
    """A provider answered badly or not at all."""

    status_code = 502
    error_type = "api_error"
    code = "upstream_error"


class ServiceUnavailable(TurnoutError):
    status_code = 503
    error_type = "api_error"
    code = "service_unavailable"
