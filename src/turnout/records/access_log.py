"""The access log: one structured JSON line per answered call, for operators.

The lines are written from the record writer, a journal group at a time (one write for the whole
group), not from the request path: a structlog call per request costs tens of microseconds of a
~350 us request. The fields come from the call's record: who called, which model and provider
served (or failed), status, latency, attempts, tokens and cost. Upstream error texts in them were
scrubbed of credentials where they arose (``turnout.redaction``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

FIELDS = (
    "id", "tenant_id", "agent_id", "subject", "model", "provider", "endpoint", "dialect", "stream",
    "status", "http_status", "latency_ms", "ttft_ms", "attempts", "fallback_used", "task_type",
    "prompt_tokens", "completion_tokens", "usage_estimated", "cost_usd", "cost_estimated", "api_key_id",
    "policy",
)  # fmt: skip
ERROR_CHARS = 300


def _timestamp(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else None


def access_line(record: dict[str, Any]) -> bytes:
    """One record as an access-log line (the same shape as the structured log's lines)."""
    line: dict[str, Any] = {
        "event": "request",
        "level": "info",
        "timestamp": _timestamp(record.get("created_at")),
    }
    for name in FIELDS:
        line[name] = record.get(name)
    named = (record.get("metadata_") or {}).get("client_request_id")
    if named is not None:  # the caller's own id of the call, to find its line by
        line["client_request_id"] = named
    error = record.get("error")
    if error:
        line["error"] = str(error)[:ERROR_CHARS]
    return orjson.dumps(line, default=_plain) + b"\n"


def _plain(value: Any) -> Any:
    """A record's exact cost (a Decimal) as a JSON number; anything else odd as its text."""
    return float(value) if isinstance(value, Decimal) else str(value)


class AccessLog:
    """Writes the access lines of a group of records to the current ``sys.stderr``."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled

    def write(self, records: Sequence[dict[str, Any]]) -> None:
        if not self.enabled or not records:
            return
        try:
            text = b"".join(access_line(record) for record in records).decode()
            sys.stderr.write(text)
            sys.stderr.flush()
        except Exception:  # a closed or broken stream loses these lines, never the records  # noqa: S110
            pass
