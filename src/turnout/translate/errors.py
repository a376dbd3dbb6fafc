"""The canonical error of a provider call (``ProviderError``, OpenAI-shaped) and the mapping of
provider error answers to it: status -> OpenAI error type, retryability, ``Retry-After`` parsing,
and scrubbing of credentials out of provider messages.

Every function that turns provider text into an error takes the credential's values as
``secrets``, so each of them is scrubbed, whatever form of it the provider echoes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import orjson

from turnout.errors import TurnoutError
from turnout.redaction import redact_text

RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504, 529})
MAX_MESSAGE_CHARS = 2000
_NOT_RETRYABLE_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached"})
_TYPES = {
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


class ProviderError(TurnoutError):
    """A provider answered with an error; status and message mapped to the OpenAI shape.

    ``retryable`` marks 429/5xx/timeouts; ``retry_after_s`` carries the provider's Retry-After,
    which the client is told too (whole seconds, rounded up) when the error reaches it, so its SDK
    waits as long as the provider asked. The provider's message is kept; its credential never
    appears.
    """

    error_type = "api_error"
    code = "upstream_error"

    def __init__(
        self,
        message: str,
        *,
        status: int,
        error_type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        retryable: bool = False,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message, param=param, code=code)
        self.status_code = status
        if error_type is not None:
            self.error_type = error_type
        self.retryable = retryable
        self.retry_after_s = retry_after_s
        if retry_after_s is not None:
            self.headers["retry-after"] = str(max(1, math.ceil(retry_after_s)))


def malformed(what: str, provider: str = "provider") -> ProviderError:
    """A provider answered 2xx with something that is not the expected JSON."""
    return ProviderError(f"{provider} returned a malformed {what}", status=502, retryable=True)


def load_object(payload: bytes, what: str) -> dict[str, Any]:
    """Parse a JSON object or raise ``malformed``."""
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise malformed(what) from None
    if not isinstance(obj, dict):
        raise malformed(what)
    return obj


def openai_type_for_status(status: int) -> str:
    """The OpenAI error ``type`` for an HTTP status (5xx and timeouts -> ``api_error``)."""
    found = _TYPES.get(status)
    if found is not None:
        return found
    if 400 <= status < 500 and status != 408:
        return "invalid_request_error"
    return "api_error"


def is_retryable_status(status: int) -> bool:
    """Whether the same request may succeed later: timeouts, 425, 429 and 5xx overloads."""
    return status in RETRYABLE_STATUSES


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)  # case-insensitive on aiohttp's CIMultiDictProxy
    if value is not None:
        return value
    for key, item in headers.items():
        if key.lower() == name:
            return item
    return None


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (delta-seconds or HTTP-date)."""
    raw_ms = _header(headers, "retry-after-ms")
    if raw_ms:
        try:
            ms = float(raw_ms)
        except ValueError:
            pass
        else:
            if ms >= 0 and ms == ms and ms != float("inf"):
                return ms / 1000.0
    raw = _header(headers, "retry-after")
    if not raw:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
        return max(0.0, seconds)
    if seconds != seconds or seconds < 0 or seconds == float("inf"):
        return None
    return seconds


def scrub(text: str, *secrets: str | None) -> str:
    """Remove ``secrets`` (every form of each), every key this process has read, and anything
    shaped like a key or bearer token from ``text``."""
    return redact_text(text, *secrets)


def _message_from(payload: bytes) -> tuple[str, Any, Any, Any]:
    """(message, provider type, code, param) from an error body of any usual shape."""
    try:
        obj = orjson.loads(payload) if payload else None
    except orjson.JSONDecodeError:
        obj = None
    if isinstance(obj, dict):
        err = obj.get("error")
        if isinstance(err, dict):  # OpenAI / Azure / OpenRouter
            return str(err.get("message") or ""), err.get("type"), err.get("code"), err.get("param")
        if isinstance(err, str):  # Ollama, some proxies
            return err, None, None, None
        if isinstance(obj.get("message"), str):  # vLLM {"object": "error", "message": ...}
            return obj["message"], obj.get("type"), obj.get("code"), obj.get("param")
        if isinstance(obj.get("detail"), str):  # FastAPI-based servers
            return obj["detail"], None, None, None
    text = payload.decode("utf-8", "replace").strip() if payload else ""
    return text, None, None, None


def error_from_response(
    status: int,
    payload: bytes,
    headers: Mapping[str, str],
    *,
    secrets: tuple[str, ...] = (),
    provider: str = "provider",
) -> ProviderError:
    """An HTTP error answer -> ProviderError keeping the provider's (scrubbed) message."""
    message, _, code, param = _message_from(payload)
    message = scrub(message, *secrets)[:MAX_MESSAGE_CHARS] or f"{provider} returned HTTP {status}"
    code = code if isinstance(code, str) and code else None  # a provider's code is text, or nothing
    retryable = is_retryable_status(status) and code not in _NOT_RETRYABLE_CODES
    return ProviderError(
        message,
        status=status,
        error_type=openai_type_for_status(status),
        code=code,
        param=param if isinstance(param, str) else None,
        retryable=retryable,
        retry_after_s=parse_retry_after(headers) if retryable else None,
    )


def error_from_stream(error: Any, *, secrets: tuple[str, ...] = ()) -> ProviderError:
    """An ``error`` value met inside a stream (OpenRouter/OpenAI chunk, Ollama line) -> ProviderError.

    OpenRouter puts an HTTP-like number in ``error.code``; it becomes the status when it is one.
    """
    code: Any = None
    if isinstance(error, dict):
        message, code = str(error.get("message") or ""), error.get("code")
    else:
        message = str(error)
    status = code if isinstance(code, int) and 400 <= code <= 599 else 502
    return ProviderError(
        scrub(message, *secrets)[:MAX_MESSAGE_CHARS] or "provider reported an error mid-stream",
        status=status,
        error_type=openai_type_for_status(status),
        code=code if isinstance(code, str) and code else None,
        retryable=is_retryable_status(status),
    )
