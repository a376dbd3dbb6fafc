"""A local OTLP/HTTP trace receiver: what an OpenTelemetry collector would get from the gateway.

It runs in a thread (the gateway's exporter posts from its own thread, and the shutdown flush must
not wait on the test's event loop) and decodes each ``POST /v1/traces`` body as an
``ExportTraceServiceRequest``, keeping every span as a plain ``SpanView``."""

from __future__ import annotations

import asyncio
import gzip
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

SERVER, CLIENT, INTERNAL = 2, 3, 1  # opentelemetry.proto.trace.v1.Span.SpanKind
ERROR = 2  # Status.StatusCode.STATUS_CODE_ERROR


@dataclass
class SpanView:
    """One received span, ids as hex strings as a W3C ``traceparent`` writes them."""

    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]
    status: int
    status_message: str
    trace_state: str
    service: str


def _value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, which) if which else None


class Receiver:
    """Spans received so far (thread-safe), and a way to wait for the ones a test expects."""

    def __init__(self) -> None:
        self.spans: list[SpanView] = []
        self.posts = 0
        self._lock = threading.Lock()

    def take(self, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        views = []
        for resource_spans in request.resource_spans:
            service = next(
                (_value(a.value) for a in resource_spans.resource.attributes if a.key == "service.name"), ""
            )
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    views.append(
                        SpanView(
                            span.name,
                            span.kind,
                            span.trace_id.hex(),
                            span.span_id.hex(),
                            span.parent_span_id.hex(),
                            {a.key: _value(a.value) for a in span.attributes},
                            span.status.code,
                            span.status.message,
                            span.trace_state,
                            service,
                        )
                    )
        with self._lock:
            self.posts += 1
            self.spans.extend(views)

    def snapshot(self) -> list[SpanView]:
        with self._lock:
            return list(self.spans)

    async def wait_for(
        self, found: Callable[[list[SpanView]], bool], timeout_s: float = 10.0
    ) -> list[SpanView]:
        """The spans received once ``found`` holds for them (or at the timeout)."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            spans = self.snapshot()
            if found(spans) or asyncio.get_running_loop().time() > deadline:
                return spans
            await asyncio.sleep(0.05)

    async def trace_of(self, message_id: str, spans_at_least: int = 3) -> list[SpanView]:
        """The spans of the trace whose server span names ``message_id``, once it has at least
        ``spans_at_least`` of them."""

        def complete(spans: list[SpanView]) -> bool:
            return len(_trace(spans, message_id)) >= spans_at_least

        return _trace(await self.wait_for(complete), message_id)


def _trace(spans: list[SpanView], message_id: str) -> list[SpanView]:
    server = next((s for s in spans if s.attributes.get("turnout.message_id") == message_id), None)
    return [] if server is None else [s for s in spans if s.trace_id == server.trace_id]


@contextmanager
def otlp_receiver() -> Iterator[tuple[str, Receiver]]:
    """Serve on a free loopback port; yields its base URL (an ``OTEL_EXPORTER_OTLP_ENDPOINT``)."""
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            if self.headers.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            if self.path != "/v1/traces":
                self.send_response(404)
                self.end_headers()
                return
            receiver.take(body)
            out = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", receiver
    finally:
        server.shutdown()
        server.server_close()
