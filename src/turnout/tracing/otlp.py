"""OTLP/HTTP export with the JSON encoding: a finished request's spans encoded with one
``orjson.dumps`` (repeated attributes cached as fragments), appended to the body of the batch
being filled, and POSTed in batches by an asyncio task (``Exporter``), configured by the standard
``OTEL_*`` variables.

Encoding per request keeps the queue free of objects for the garbage collector to scan, so the loop
never stalls encoding a whole batch (~2 ms for 512 spans); the cache took the encoding from ~36 to
~11 us per request (``bench/gateway_profile.py``). A batch's body grows by an append per request
(a ``bytearray``), so sending it copies nothing: joining a 4096-span batch's 2.6 MB at export took
3-4 ms on this VM, a loop stall at every export (``bench/gateway_profile.py --stalls``)."""

from __future__ import annotations

import asyncio
import gzip
import time
from collections import deque
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

import aiohttp
import orjson
import structlog

from turnout import __version__
from turnout.tracing.spans import SERVER, STATUS_ERROR, Request

log = structlog.get_logger(__name__)

SERVICE_NAME = "turnout"  # unless OTEL_SERVICE_NAME (or OTEL_RESOURCE_ATTRIBUTES) names another
# spans per POST (the SDK's default) and spans held (the SDK's 2048 would drop spans when a
# collector is away for a second at a few hundred requests/s). A POST's cost on the loop grows with
# its body (~1.6 ms per MB on this VM, aiohttp's writelines copies it, the kernel copies it again;
# ~0.1 ms fixed), so small batches cost no more CPU than large ones and stall the loop less: a
# 4096-span batch (2.6 MB) was a 4 ms stall at each export.
EXPORT_BATCH = 512
EXPORT_QUEUE = 16384


def encode(request: Request) -> tuple[bytes, int]:
    """A finished request's spans as OTLP JSON objects, comma separated, and how many."""
    spans: list[dict[str, Any]] = []
    _spans(request, spans)
    return orjson.dumps(spans)[1:-1], len(spans)


def _value(value: Any) -> dict[str, Any]:
    """An attribute value as OTLP JSON's ``AnyValue`` (int64 as a decimal string, as proto3's JSON
    mapping writes it)."""
    kind = type(value)
    if kind is str:
        return {"stringValue": value}
    if kind is bool:
        return {"boolValue": value}
    if kind is int:
        return {"intValue": str(value)}
    if kind is float:
        return {"doubleValue": value}
    if kind is list or kind is tuple:
        return {"arrayValue": {"values": [_value(v) for v in value]}}
    return {"stringValue": str(value)}


# Encoded attributes by (key, value): most of a span's attributes repeat from one request to the
# next (operation, models, provider, status, attempt number...), and building their two dicts
# each time was most of the encoding's cost. Strings and ints only (a key's values keep one type).
_encoded: dict[tuple[str, Any], orjson.Fragment] = {}
_UNCACHED = frozenset(("turnout.message_id", "gen_ai.input.messages", "gen_ai.output.messages"))


def _attributes(attributes: Mapping[str, Any]) -> list[orjson.Fragment | dict[str, Any]]:
    """OTLP JSON's ``KeyValue`` list: cached fragments, plain dicts for the values seen once."""
    out: list[orjson.Fragment | dict[str, Any]] = []
    encoded = _encoded
    for item in attributes.items():
        try:
            fragment = encoded.get(item)
            hashable = True
        except TypeError:  # an unhashable value (a list)
            fragment, hashable = None, False
        if fragment is None:
            key, value = item
            pair: dict[str, Any] = {"key": key, "value": _value(value)}
            kind = type(value)
            if hashable and (kind is str or kind is int or kind is tuple) and key not in _UNCACHED:
                if len(encoded) >= 16384:  # bounded: a flood of distinct values starts it afresh
                    encoded.clear()
                encoded[item] = orjson.Fragment(orjson.dumps(pair))
            out.append(pair)
        else:
            out.append(fragment)
    return out


def _spans(request: Request, out: list[dict[str, Any]]) -> None:
    """Append the request's spans, in OTLP JSON's shape, to ``out``."""
    trace_id = f"{request.trace_id:032x}"
    server_id = f"{request.span_id:016x}"
    state = request.state or ""
    server: dict[str, Any] = {
        "traceId": trace_id,
        "spanId": server_id,
        "name": request.name,
        "kind": SERVER,
        "startTimeUnixNano": str(request.start),
        "endTimeUnixNano": str(request.end),
        "attributes": _attributes(request.attributes),
    }
    if request.parent_id:
        server["parentSpanId"] = f"{request.parent_id:016x}"
    if state:
        server["traceState"] = state
    if request.error is not None:
        server["status"] = {"code": STATUS_ERROR, "message": request.error}
    out.append(server)
    for name, kind, span_id, start, end, attributes, error in request.children:
        span: dict[str, Any] = {
            "traceId": trace_id,
            "spanId": f"{span_id:016x}",
            "parentSpanId": server_id,
            "name": name,
            "kind": kind,
            "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(end),
            "attributes": _attributes(attributes),
        }
        if state:
            span["traceState"] = state
        if error is not None:
            span["status"] = {"code": STATUS_ERROR, "message": error}
        out.append(span)


def _pairs(text: str) -> dict[str, str]:
    """``k1=v1,k2=v2`` (values percent-encoded), as OTEL_EXPORTER_OTLP_HEADERS and
    OTEL_RESOURCE_ATTRIBUTES write them."""
    out: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            out[unquote(key.strip())] = unquote(value.strip())
    return out


class Exporter:
    """Batches of finished requests' spans, POSTed as OTLP/HTTP JSON by a task of the event loop:
    every ``delay_s`` or as soon as ``batch_size`` spans wait. The queue holds at most
    ``max_queue`` spans; past that the oldest requests are dropped (counted, and warned about at
    most every 10 s), so a collector that is down or slow never blocks or slows a request."""

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str],
        resource: Mapping[str, str],
        *,
        delay_s: float = 1.0,
        batch_size: int = 512,
        max_queue: int = 2048,
        timeout_s: float = 10.0,
        gzip_body: bool = False,
    ) -> None:
        self.url = url
        self.headers = {**headers, "Content-Type": "application/json"}
        if gzip_body:
            self.headers["Content-Encoding"] = "gzip"
        self.gzip = gzip_body
        self.delay_s = delay_s
        self.batch_size = batch_size
        self.max_queue = max(max_queue, batch_size)
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        head = {
            "resource": {"attributes": _attributes(resource)},
            "scopeSpans": [{"scope": {"name": "turnout", "version": __version__}, "spans": []}],
        }
        self._head = b'{"resourceSpans":[' + orjson.dumps(head)[:-4]  # ends in '"spans":['
        self.ready: deque[tuple[bytearray, int]] = deque()  # full batches' bodies (no tail); spans
        self._filling: bytearray | None = None  # the body of the batch being filled
        self._filled = 0  # spans in it
        self.queued = 0  # spans in the ready batches and the one being filled
        self.dropped = 0  # spans dropped (queue full, or their export failed), ever
        self.exported = 0  # spans the collector took, ever
        self._warned_dropped = 0
        self._warned_at = 0.0
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Exporter:
        """The standard OTEL_* variables: endpoint (``/v1/traces`` appended to the generic one),
        headers, timeout (ms), compression, service name and resource attributes, OTEL_BSP_*."""
        url = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        if not url:
            url = environ["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/") + "/v1/traces"
        protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get(
            "OTEL_EXPORTER_OTLP_PROTOCOL"
        )
        if protocol and protocol != "http/json":
            log.warning("tracing.protocol_ignored", protocol=protocol, used="http/json")
        headers = _pairs(environ.get("OTEL_EXPORTER_OTLP_HEADERS", ""))
        headers.update(_pairs(environ.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "")))
        resource = _pairs(environ.get("OTEL_RESOURCE_ATTRIBUTES", ""))
        resource["service.name"] = (
            environ.get("OTEL_SERVICE_NAME") or resource.get("service.name") or SERVICE_NAME
        )
        resource.setdefault("telemetry.sdk.language", "python")
        resource.setdefault("telemetry.sdk.name", "turnout")
        resource.setdefault("telemetry.sdk.version", __version__)
        compression = (
            environ.get("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION")
            or environ.get("OTEL_EXPORTER_OTLP_COMPRESSION")
            or ""
        )
        timeout_ms = environ.get("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT") or environ.get(
            "OTEL_EXPORTER_OTLP_TIMEOUT"
        )
        return cls(
            url,
            headers,
            resource,
            delay_s=_number(environ, "OTEL_BSP_SCHEDULE_DELAY", 1000) / 1000,
            batch_size=int(_number(environ, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", EXPORT_BATCH)),
            max_queue=int(_number(environ, "OTEL_BSP_MAX_QUEUE_SIZE", EXPORT_QUEUE)),
            timeout_s=(float(timeout_ms) if timeout_ms else 10000) / 1000,
            gzip_body=compression.strip().lower() == "gzip",
        )

    def start(self) -> None:
        """Start the export task (in the running loop)."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="turnout-otlp-export")

    def add(self, spans: bytes, count: int) -> None:
        """Queue a finished request's ``count`` spans (``spans``: their JSON objects, comma
        separated); never waits. Past ``max_queue`` spans the oldest full batch is dropped (the
        batch being filled, when it is the only one)."""
        while self.queued + count > self.max_queue and self.queued:
            if self.ready:
                lost = self.ready.popleft()[1]
            else:
                lost, self._filling, self._filled = self._filled, None, 0
            self.queued -= lost
            self.dropped += lost
        body = self._filling
        if body is None:
            self._filling = body = bytearray(self._head)
        else:
            body += b","
        body += spans
        self._filled += count
        self.queued += count
        if self._filled >= self.batch_size:
            self._seal()
            self._wake.set()

    def _seal(self) -> None:
        """The batch being filled is ready to send."""
        if self._filling is not None:
            self.ready.append((self._filling, self._filled))
            self._filling, self._filled = None, 0

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await asyncio.wait_for(self._wake.wait(), self.delay_s)
            except TimeoutError:
                pass
            self._wake.clear()
            if self._stopping:
                return
            if self.queued:
                await self._export_batch()
            self._warn_dropped()

    async def _export_batch(self) -> bool:
        """Send the oldest batch (``batch_size`` spans or a little more: a request's spans stay
        together), or the one being filled. Returns whether the collector took them."""
        if not self.ready:
            self._seal()
        filled, count = self.ready.popleft()
        self.queued -= count
        filled += b"]}]}]}"
        body = gzip.compress(filled, 1) if self.gzip else filled
        try:
            try:
                await self._post(body)
            except aiohttp.ServerDisconnectedError:  # a pooled connection the collector had closed
                await self._post(body)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self.dropped += count
            self._warn_dropped(f"{type(exc).__name__}: {exc}")
            return False
        self.exported += count
        return True

    async def _post(self, body: bytes | bytearray) -> None:
        async with self.session().post(
            self.url, data=body, headers=self.headers, timeout=self.timeout
        ) as response:
            await response.read()
            if response.status >= 300:
                raise aiohttp.ClientResponseError(
                    response.request_info, (), status=response.status, message=response.reason or ""
                )

    def _warn_dropped(self, error: str | None = None) -> None:
        """One warning per 10 s at most while spans are being lost, with how many so far."""
        if self.dropped == self._warned_dropped:
            return
        now = time.monotonic()
        if now - self._warned_at < 10 and self._warned_at:
            return
        log.warning(
            "tracing.spans_dropped",
            dropped=self.dropped - self._warned_dropped,
            dropped_total=self.dropped,
            collector=self.url,
            error=error,
        )
        self._warned_dropped, self._warned_at = self.dropped, now

    def session(self) -> aiohttp.ClientSession:
        """The exporter's own session: the gateway's refuses private addresses (its SSRF guard),
        where a collector usually is, and it closes before the last spans are flushed."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=2), cookie_jar=aiohttp.DummyCookieJar()
            )
        return self._session

    async def stop(self) -> None:
        """Stop the task, send what is queued (giving up on the first failure), close the session."""
        if self._task is not None:  # it ends after the export under way, if any
            self._stopping = True
            self._wake.set()
            await self._task
            self._task = None
        while self.queued:
            if not await self._export_batch():
                self.dropped += self.queued
                self.ready.clear()
                self._filling, self._filled, self.queued = None, 0, 0
                break
        self._warned_at = 0.0
        self._warn_dropped()
        if self._session is not None:
            await self._session.close()
            self._session = None


def _number(environ: Mapping[str, str], name: str, default: float) -> float:
    value = environ.get(name)
    try:
        return float(value) if value else default
    except ValueError:
        log.warning("tracing.bad_setting", name=name, value=value, used=default)
        return default
