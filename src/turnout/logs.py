"""Structured JSON logs with a processor that redacts secrets wherever they appear (``turnout.redaction``)."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from turnout.redaction import REDACTED, redact_text

SENSITIVE_KEYS = frozenset(
    {
        "api_key",
        "apikey",
        "authorization",
        "x-api-key",
        "api-key",
        "token",
        "secret",
        "password",
        "master_key",
        "jwt_secret",
        "vault_token",
        "x-vault-token",
    }
)


def _redact(value: Any, depth: int = 0) -> Any:
    if depth > 6:
        return value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {
            k: REDACTED if str(k).lower() in SENSITIVE_KEYS else _redact(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_redact(v, depth + 1) for v in value)
    return value


def redact_processor(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: drop sensitive keys and scrub key-shaped strings."""
    for key in list(event.keys()):
        event[key] = REDACTED if key.lower() in SENSITIVE_KEYS else _redact(event[key])
    return event


class StderrLogger:
    """Writes each rendered line to the process's current ``sys.stderr``; a failed write (a closed
    or broken stream) loses that line, never the request that logged it."""

    def __init__(self, *args: Any) -> None:
        pass

    def msg(self, message: str) -> None:
        try:
            print(message, file=sys.stderr, flush=True)
        except (OSError, ValueError):  # EPIPE, a closed stream: nothing sensible to do but go on
            pass

    log = debug = info = warn = warning = error = critical = exception = fatal = failure = err = msg


_STDLIB_HANDLER = "turnout"
_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


def configure_logging(level: str = "INFO", *, json: bool = True) -> None:
    """Route stdlib and structlog output through the redacting JSON pipeline."""
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            timestamper,
            structlog.processors.format_exc_info,
            redact_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=StderrLogger,
        cache_logger_on_first_use=False,
    )
    _route_stdlib(level, renderer, timestamper)


class _StderrHandler(logging.StreamHandler):
    """A stream handler writing to the current ``sys.stderr``, like ``StderrLogger``."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _route_stdlib(level: str, renderer: Any, timestamper: Any) -> None:
    """Records of stdlib loggers (uvicorn's "Exception in ASGI application" with its traceback,
    asyncio's, libraries') leave through the same redacting processors: one handler on the root
    logger, replacing an earlier one of ours (other handlers, such as pytest's, are kept), and
    uvicorn's own plain-text handlers removed so its records propagate there."""
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name, timestamper],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_processor,
            renderer,
        ],
    )
    handler = _StderrHandler()
    handler.set_name(_STDLIB_HANDLER)
    handler.setFormatter(formatter)
    handler.setLevel(level.upper())
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if h.get_name() != _STDLIB_HANDLER] + [handler]
    for name in _UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True


class Throttle:
    """Lets a line repeated while something stays broken through at most once per ``every_s``
    (the first at once), saying how many occurrences it stands for: an outage logged once per
    occurrence floods the logs."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self._at: float | None = None
        self._count = 0

    def due(self, now: float) -> int | None:
        """Count one occurrence at ``now``; the occurrences since the last line (this one
        included) when a line is due, else None."""
        self._count += 1
        if self._at is not None and now - self._at < self.every_s:
            return None
        count, self._at, self._count = self._count, now, 0
        return count
