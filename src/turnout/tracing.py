"""OpenTelemetry traces of the data plane, named after the GenAI semantic conventions, exported as
OTLP/HTTP with the JSON encoding only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``..._TRACES_ENDPOINT``) is set.

Callers test ``ENABLED`` (``tracing.ENABLED``, read at call time) before calling anything here, so a
gateway without an endpoint builds nothing per request. The spans of one request: the server span
(``api/hot_path.py``), its routing child (``gateway/pipeline``) and one CLIENT child per upstream
attempt (``gateway/failover``), whose ``traceparent`` goes upstream.

Why no OpenTelemetry SDK: on the 2-core bench (``bench/gateway.py``, rows h and i) the SDK took
~75 us of event-loop CPU per request for its three live spans (span objects, attribute validation,
locks, context attach) and its exporter thread ~110 us more of protobuf encoding while holding the
GIL: tracing on kept 53% of the requests/s (target: 90%). Here a span is a tuple or a slots object
written once (ids from ``random.getrandbits``, ``time.time_ns()`` stamps), and a request's spans are
encoded to OTLP JSON with one ``orjson.dumps`` when it ends, so the queue holds bytes (nothing for
the garbage collector to scan) and a batch is one join: the loop never stalls encoding a whole
batch (~2 ms for 512 spans). A background asyncio task POSTs the batches. Repeated attributes are
encoded once and cached (``_encoded``): that took the encoding from ~36 to ~11 us per request.
Measured with ``bench/gateway_profile.py`` (saturation, metrics off): ~330-340 us of CPU per
request off, ~390 on, of which ~20 us the hooks, ~17 the encoding, ~15 the POSTs.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import random
import time
from collections import deque
from collections.abc import Iterable, Mapping
from contextvars import ContextVar, Token
from typing import Any
from urllib.parse import unquote

import aiohttp
import orjson
import structlog

from turnout import __version__

log = structlog.get_logger(__name__)

ENABLED = False  # set by ``setup`` when an OTLP endpoint is configured; checked first by every caller
SERVICE_NAME = "turnout"  # unless OTEL_SERVICE_NAME (or OTEL_RESOURCE_ATTRIBUTES) names another
# spans per POST and spans held: larger than the SDK defaults (512, 2048), since each POST cost the
# loop ~2.4 ms whatever its size (a 4096-span batch saved ~14 us per request on the bench)
EXPORT_BATCH = 4096
EXPORT_QUEUE = 16384

# The traced data-plane paths: (server span name, gen_ai.operation.name)
SERVED: dict[str, tuple[str, str]] = {
    "/v1/chat/completions": ("POST /v1/chat/completions", "chat"),
    "/v1/messages": ("POST /v1/messages", "chat"),
    "/v1/responses": ("POST /v1/responses", "chat"),
    "/v1/completions": ("POST /v1/completions", "text_completion"),
    "/v1/embeddings": ("POST /v1/embeddings", "embeddings"),
    "/api/models/chat": ("POST /api/models/chat", "chat"),
    "/api/models/completion": ("POST /api/models/completion", "text_completion"),
    "/api/models/embeddings": ("POST /api/models/embeddings", "embeddings"),
}
# gen_ai.provider.name's well-known values, by Turnout provider type (others go as they are)
PROVIDER_NAMES = {
    "openai": "openai",
    "anthropic": "anthropic",
    "azure": "azure.ai.openai",
    "bedrock": "aws.bedrock",
    "gemini": "gcp.gemini",
}

# OTLP's Span.SpanKind and Status.StatusCode (the JSON encoding writes enums as integers)
INTERNAL, SERVER, CLIENT = 1, 2, 3
STATUS_ERROR = 2

_TRACE_HEADERS = (b"traceparent", b"tracestate")
_HEX = frozenset("0123456789abcdef")

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


_current: ContextVar[Request | None] = ContextVar("turnout_trace_request", default=None)
_exporter: Exporter | None = None


def configured(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether an OTLP endpoint for traces is set."""
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


def setup(environ: Mapping[str, str] = os.environ) -> bool:
    """Start exporting when an endpoint is configured (called in the running event loop: the
    exporter is a task of it); else do nothing at all. Returns whether tracing is on."""
    global ENABLED, _exporter
    if _exporter is not None or not configured(environ):
        return ENABLED
    _exporter = Exporter.from_environ(environ)
    _exporter.start()
    ENABLED = True
    return True


async def shutdown() -> None:
    """Stop tracing and flush the spans still queued."""
    global ENABLED, _exporter
    exporter = _exporter
    ENABLED, _exporter = False, None
    if exporter is not None:
        await exporter.stop()


def stats() -> dict[str, int]:
    """Spans exported, dropped (queue full or export failed) and queued so far; zeros when off."""
    exporter = _exporter
    if exporter is None:
        return {"exported": 0, "dropped": 0, "queued": 0}
    return {"exported": exporter.exported, "dropped": exporter.dropped, "queued": exporter.queued}


# -- the server span (api/hot_path.py) ------------------------------------------------------------


def start_server(headers: Iterable[tuple[bytes, bytes]], served: tuple[str, str]) -> Token[Request | None]:
    """Start the SERVER span of a data-plane request and make it current; a valid W3C
    ``traceparent`` among the ASGI ``headers`` makes it that span's child (and its sampled flag
    decides whether the request is exported). Returns the token ``end_server`` takes."""
    traceparent = tracestate = None
    for key, value in headers:
        if key in _TRACE_HEADERS:
            if key == b"traceparent":
                traceparent = value.decode("latin-1")
            else:
                text = value.decode("latin-1")
                tracestate = text if tracestate is None else f"{tracestate},{text}"
    parent = _parse_traceparent(traceparent) if traceparent is not None else None
    name, operation = served
    if parent is None:
        request = Request(random.getrandbits(128) or 1, 0, 1, None, name, operation)
    else:
        request = Request(parent[0], parent[1], parent[2], tracestate or None, name, operation)
    return _current.set(request)


def _parse_traceparent(value: str) -> tuple[int, int, int] | None:
    """(trace id, parent span id, flags) of a W3C ``traceparent``, or None when it is not valid."""
    value = value.strip().lower()
    parts = value.split("-")
    if len(parts) < 4 or len(parts[0]) != 2 or parts[0] == "ff" or (parts[0] == "00" and len(parts) != 4):
        return None
    version, trace_hex, span_hex, flags_hex = parts[:4]
    if len(trace_hex) != 32 or len(span_hex) != 16 or len(flags_hex) != 2:
        return None
    if not _HEX.issuperset(version + trace_hex + span_hex + flags_hex):
        return None
    trace_id, span_id = int(trace_hex, 16), int(span_hex, 16)
    if not trace_id or not span_id:
        return None
    return trace_id, span_id, int(flags_hex, 16) & 1


def responded(status: int) -> None:
    """The HTTP status of the current request's answer; a 5xx marks its server span failed."""
    request = _current.get()
    if request is None:
        return
    request.attributes["http.response.status_code"] = status
    if status >= 500:
        request.attributes["error.type"] = str(status)
        if request.error is None:
            request.error = ""


def end_server(token: Token[Request | None], exc: BaseException | None) -> None:
    """End the server span (after the answer's last byte) and queue the request's spans for
    export; ``exc`` broke the answer on its way."""
    request = _current.get()
    _current.reset(token)
    if request is None:
        return
    request.end = time.time_ns()
    if exc is not None:
        request.attributes["error.type"] = _error_type(exc)
        if request.error is None:
            request.error = ""
    exporter = _exporter
    if exporter is not None and request.flags & 1:
        spans: list[dict[str, Any]] = []
        _spans(request, spans)
        exporter.add(orjson.dumps(spans)[1:-1], len(spans))


def _error_type(exc: BaseException) -> str:
    return "cancelled" if isinstance(exc, asyncio.CancelledError) else type(exc).__name__


# -- routing (gateway/pipeline.py) ----------------------------------------------------------------


def start_routing() -> int | None:
    """When the routing step starts (ns), or None outside a server span (a call from the UI's
    playground would otherwise start traces of its own)."""
    return time.time_ns() if _current.get() is not None else None


def end_routing(
    started: int, task_type: str | None, policy: str | None, plan: list[str], error: str | None = None
) -> None:
    """The routing span, from ``started`` to now, with what it decided (the ranked models) or why
    it could not."""
    request = _current.get()
    if request is None or not request.flags & 1:
        return
    if error is None:
        attributes: dict[str, Any] = {
            "turnout.task_type": task_type or "general",
            "turnout.route.models": tuple(plan),
        }
        if policy:
            attributes["turnout.policy"] = policy
    else:
        attributes = {"error.type": error}
    request.children.append(
        (
            "turnout.route",
            INTERNAL,
            random.getrandbits(64) or 1,
            started,
            time.time_ns(),
            attributes,
            None if error is None else "",
        )
    )


# -- upstream attempts (gateway/failover.py) ------------------------------------------------------


def start_attempt(
    model: str, upstream_model: str, provider_id: str, provider_type: str, attempt: int
) -> Attempt | None:
    """One upstream attempt's CLIENT span, a child of the current server span (None outside one):
    named ``{gen_ai.operation.name} {gen_ai.request.model}`` with the provider's model name."""
    request = _current.get()
    if request is None:
        return None
    name = PROVIDER_NAMES.get(provider_type, provider_type)
    return Attempt(
        request,
        f"{request.operation} {upstream_model}",
        {
            "gen_ai.operation.name": request.operation,
            "gen_ai.provider.name": name,
            "gen_ai.system": name,
            "gen_ai.request.model": upstream_model,
            "turnout.model_id": model,
            "turnout.provider_id": provider_id,
            "turnout.attempt": attempt,
        },
    )


def with_traceparent(span: Attempt, headers: dict[str, str]) -> dict[str, str]:
    """``headers`` plus the W3C ``traceparent`` (and ``tracestate``) naming the attempt ``span``:
    a new dict, the request's own is shared by its retries."""
    request = span.request
    out = {**headers, "traceparent": f"00-{request.trace_id:032x}-{span.span_id:016x}-{request.flags:02x}"}
    if request.state:
        out["tracestate"] = request.state
    return out


def attempt_failed(span: Attempt, status: int, fault: str, message: str) -> None:
    """End a failed attempt's span: error status, ``error.type`` the HTTP status it maps to."""
    span.attributes["error.type"] = str(status)
    span.attributes["turnout.fault"] = fault
    span.end(message[:300])


def attempt_answered(span: Attempt, status: int, usage: Mapping[str, Any] | None) -> None:
    """End an attempt that answered (whole, with its ``usage``, or a stream's first bytes)."""
    attributes = span.attributes
    attributes["http.response.status_code"] = status
    if usage:
        tokens_in, tokens_out = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if isinstance(tokens_in, int):
            attributes["gen_ai.usage.input_tokens"] = tokens_in
        if isinstance(tokens_out, int):
            attributes["gen_ai.usage.output_tokens"] = tokens_out
    span.end(None)


def attempt_ended(span: Attempt, exc: BaseException) -> None:
    """End an attempt cut short (cancelled with its client, or a local error)."""
    span.attributes["error.type"] = _error_type(exc)
    span.end("")


# -- the call's outcome on the server span (gateway/pipeline.py) ----------------------------------


def record_call(
    row: Mapping[str, Any],
    requested_model: str,
    served_model: str | None,
    provider_type: str | None,
    error_type: str | None = None,
    messages: Any = None,
    answer: str | None = None,
) -> None:
    """Put a finished call's record on the current server span: models, provider, tokens, cost and
    how it ended. ``messages`` and ``answer`` are given only where text may be stored."""
    request = _current.get()
    if request is None or not request.flags & 1:  # no server span (the UI's playground), or not sampled
        return
    attributes = request.attributes
    attributes["gen_ai.request.model"] = requested_model
    attributes["turnout.message_id"] = row["id"]
    attributes["turnout.attempts"] = row["attempts"]
    attributes["turnout.fallback_used"] = row["fallback_used"]
    if row["task_type"]:
        attributes["turnout.task_type"] = row["task_type"]
    if served_model is not None:
        attributes["gen_ai.response.model"] = served_model
        attributes["turnout.model_id"] = row["model"]
        attributes["turnout.provider_id"] = row["provider"]
    if provider_type is not None:
        attributes["gen_ai.provider.name"] = attributes["gen_ai.system"] = PROVIDER_NAMES.get(
            provider_type, provider_type
        )
    if row["prompt_tokens"] is not None:
        attributes["gen_ai.usage.input_tokens"] = row["prompt_tokens"]
    if row["completion_tokens"] is not None:
        attributes["gen_ai.usage.output_tokens"] = row["completion_tokens"]
    if row["cost_usd"] is not None:
        attributes["turnout.cost_usd"] = float(row["cost_usd"])
    if row["finish_reason"]:
        attributes["gen_ai.response.finish_reasons"] = (row["finish_reason"],)
    if row["cache_hit"]:
        attributes["turnout.cache_hit"] = True
    if row["status"] != "ok":
        attributes["turnout.status"] = row["status"]  # error, or cancelled (the client left)
    if messages is not None:
        attributes["gen_ai.input.messages"] = orjson.dumps(input_messages(messages)).decode()
    if answer is not None:
        output: dict[str, Any] = {"role": "assistant", "parts": [{"type": "text", "content": answer}]}
        if row["finish_reason"]:
            output["finish_reason"] = row["finish_reason"]
        attributes["gen_ai.output.messages"] = orjson.dumps([output]).decode()
    if row["status"] == "error":
        attributes["error.type"] = error_type or str(row["http_status"])
        request.error = (row["error"] or "")[:300]


def input_messages(messages: Any) -> list[dict[str, Any]]:
    """Chat messages in the GenAI conventions' shape: ``{"role", "parts": [{"type": "text", ...}]}``
    (text parts only: attachments stay out of spans)."""
    out: list[dict[str, Any]] = []
    for message in messages if isinstance(messages, list) else ():
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            texts = [content]
        elif isinstance(content, list):
            texts = [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
        else:
            texts = []
        parts = [{"type": "text", "content": text} for text in texts]
        out.append({"role": str(message.get("role", "user")), "parts": parts})
    return out


# -- OTLP/HTTP JSON export ------------------------------------------------------------------------


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
        self.queue: deque[tuple[bytes, int]] = deque()  # (a request's spans, encoded; how many)
        self.queued = 0  # spans in the queue
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
        separated); never waits."""
        self.queue.append((spans, count))
        self.queued += count
        while self.queued > self.max_queue:
            lost = self.queue.popleft()[1]
            self.queued -= lost
            self.dropped += lost
        if self.queued >= self.batch_size:
            self._wake.set()

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await asyncio.wait_for(self._wake.wait(), self.delay_s)
            except TimeoutError:
                pass
            self._wake.clear()
            if self._stopping:
                return
            if self.queue:
                await self._export_batch()
            self._warn_dropped()

    async def _export_batch(self) -> bool:
        """Send the oldest queued requests (``batch_size`` spans or a little more: a request's
        spans stay together). Returns whether the collector took them."""
        chunks: list[bytes] = []
        count = 0
        while self.queue and count < self.batch_size:
            spans, n = self.queue.popleft()
            chunks.append(spans)
            count += n
        self.queued -= count
        body = b"".join((self._head, b",".join(chunks), b"]}]}]}"))
        if self.gzip:
            body = gzip.compress(body, 1)
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

    async def _post(self, body: bytes) -> None:
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
        while self.queue:
            if not await self._export_batch():
                self.dropped += self.queued
                self.queue.clear()
                self.queued = 0
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
