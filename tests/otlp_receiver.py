"""A local OTLP/HTTP trace receiver: what an OpenTelemetry collector would get from the gateway.

It runs in a thread (the shutdown flush must not wait on the test's event loop) and decodes each
``POST /v1/traces`` body as an ``ExportTraceServiceRequest`` in OTLP's JSON encoding (the one the
gateway sends: hex ids, enums as integers, int64 as strings), keeping every span as a plain
``SpanView``. It can be taken down and brought back on the same port, or made to hang, to stand
for a collector that is away."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

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
    start_ns: int
    end_ns: int


def _value(value: dict[str, Any]) -> Any:
    """An OTLP JSON ``AnyValue``: int64 may come as a string or a number (proto3's JSON mapping)."""
    ((which, inner),) = value.items()
    if which == "intValue":
        return int(inner)
    if which == "doubleValue":
        return float(inner)
    if which == "arrayValue":
        return [_value(v) for v in inner.get("values", [])]
    if which in ("stringValue", "boolValue"):
        return inner
    raise AssertionError(f"unexpected AnyValue {value!r}")


def _attributes(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {a["key"]: _value(a["value"]) for a in items}


def _hex_id(value: str, size: int) -> str:
    """A trace or span id as OTLP JSON writes it: lowercase hex of the id's bytes (never base64)."""
    assert len(value) == size * 2 and value == value.lower(), value
    bytes.fromhex(value)
    return value


def decode(body: bytes) -> list[SpanView]:
    """The spans of an OTLP/HTTP JSON ``ExportTraceServiceRequest``."""
    views = []
    for resource_spans in json.loads(body)["resourceSpans"]:
        resource = _attributes(resource_spans.get("resource", {}).get("attributes", []))
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                assert isinstance(span["kind"], int), "enums are integers in OTLP JSON"
                assert isinstance(span["startTimeUnixNano"], str), "fixed64 is a string in OTLP JSON"
                parent = span.get("parentSpanId", "")
                status = span.get("status", {})
                views.append(
                    SpanView(
                        span["name"],
                        span["kind"],
                        _hex_id(span["traceId"], 16),
                        _hex_id(span["spanId"], 8),
                        _hex_id(parent, 8) if parent else "",
                        _attributes(span.get("attributes", [])),
                        status.get("code", 0),
                        status.get("message", ""),
                        span.get("traceState", ""),
                        resource.get("service.name", ""),
                        int(span["startTimeUnixNano"]),
                        int(span["endTimeUnixNano"]),
                    )
                )
    return views


class Receiver:
    """Spans received so far (thread-safe), and a way to wait for the ones a test expects."""

    def __init__(self) -> None:
        self.spans: list[SpanView] = []
        self.posts = 0
        self.content_types: set[str] = set()
        self.hang = threading.Event()  # set: posts get no answer until it is cleared
        self._lock = threading.Lock()

    def take(self, body: bytes, content_type: str) -> None:
        views = decode(body)
        with self._lock:
            self.posts += 1
            self.content_types.add(content_type)
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


class Collector:
    """The receiver's HTTP side, on one loopback port that stays its own while it is down."""

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self._server: ThreadingHTTPServer | None = None
        self.port = 0
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        """Listen (on the port it had before, once it has had one)."""
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self.receiver))
        server.daemon_threads = True
        self.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._server = server

    def down(self) -> None:
        """Stop listening: the gateway's exports are refused."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            if receiver.hang.is_set():  # no answer until it clears (the client has given up by then)
                while receiver.hang.is_set():
                    time.sleep(0.05)
                self.close_connection = True
                return
            if self.headers.get("content-encoding") == "gzip":
                body = gzip.decompress(body)
            content_type = self.headers.get("content-type", "")
            if self.path != "/v1/traces" or content_type != "application/json":
                self.send_response(404 if self.path != "/v1/traces" else 415)
                self.send_header("content-length", "0")
                self.end_headers()
                return
            receiver.take(body, content_type)
            out = b"{}"  # an ExportTraceServiceResponse with nothing rejected
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@contextmanager
def otlp_collector() -> Iterator[Collector]:
    """A collector on a free loopback port; its ``url`` is an ``OTEL_EXPORTER_OTLP_ENDPOINT``."""
    collector = Collector(Receiver())
    try:
        yield collector
    finally:
        collector.receiver.hang.clear()
        collector.down()


@contextmanager
def otlp_receiver() -> Iterator[tuple[str, Receiver]]:
    """Serve on a free loopback port; yields its base URL (an ``OTEL_EXPORTER_OTLP_ENDPOINT``)."""
    with otlp_collector() as collector:
        yield collector.url, collector.receiver
