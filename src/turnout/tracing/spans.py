"""A traced request's spans as plain objects, written once while the call goes: a slots object for
the server span (``Request``) and for an attempt while it runs (``Attempt``), a tuple for each
finished child. Ids come from ``random.getrandbits`` and stamps from ``time.time_ns()``: what the
OpenTelemetry SDK spent ~75 us a request on (span objects, attribute validation, locks, context)."""

from __future__ import annotations

import random
import time
from typing import Any

# OTLP's Span.SpanKind and Status.StatusCode (the JSON encoding writes enums as integers)
INTERNAL, SERVER, CLIENT = 1, 2, 3
STATUS_ERROR = 2

# A finished child span: (name, kind, span id, start ns, end ns, attributes, error message or None)
Child = tuple[str, int, int, int, int, dict[str, Any], str | None]


class Request:
    """One traced request: its server span (filled as the call goes) and its finished children.
    Queued whole for export when the server span ends."""

    __slots__ = (
        "attributes",
        "children",
        "end",
        "error",
        "flags",
        "name",
        "operation",
        "parent_id",
        "span_id",
        "start",
        "state",
        "trace_id",
    )

    def __init__(
        self, trace_id: int, parent_id: int, flags: int, state: str | None, name: str, operation: str
    ) -> None:
        self.trace_id = trace_id
        self.span_id = random.getrandbits(64) or 1
        self.parent_id = parent_id  # 0: a root span
        self.flags = flags  # the W3C trace flags: bit 0 says sampled
        self.state = state  # the incoming tracestate, passed on as it came
        self.name = name
        self.operation = operation
        self.start = time.time_ns()
        self.end = 0
        self.attributes: dict[str, Any] = {
            "http.request.method": "POST",
            "http.route": name[5:],
            "gen_ai.operation.name": operation,
        }
        self.error: str | None = None  # set: the span's status is ERROR with this message
        self.children: list[Child] = []


class Attempt:
    """An upstream attempt's CLIENT span while it runs."""

    __slots__ = ("attributes", "name", "request", "span_id", "start")

    def __init__(self, request: Request, name: str, attributes: dict[str, Any]) -> None:
        self.request = request
        self.span_id = random.getrandbits(64) or 1
        self.name = name
        self.attributes = attributes
        self.start = time.time_ns()

    def end(self, error: str | None) -> None:
        request = self.request
        if request.flags & 1:
            request.children.append(
                (self.name, CLIENT, self.span_id, self.start, time.time_ns(), self.attributes, error)
            )
