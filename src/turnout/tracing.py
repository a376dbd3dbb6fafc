"""OpenTelemetry traces of the data plane, named after the GenAI semantic conventions, exported over
OTLP/HTTP only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) is set.

Callers test ``ENABLED`` (``tracing.ENABLED``, read at call time) before calling anything here, so a
gateway without an endpoint makes no tracer call and builds no context object per request. The
spans of one request: the server span (``api/hot_path.py``), its routing child (``gateway/pipeline``)
and one CLIENT child per upstream attempt (``gateway/failover``), whose ``traceparent`` goes upstream.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable, Mapping
from contextvars import ContextVar, Token
from typing import Any

import orjson
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

ENABLED = False  # set by ``setup`` when an OTLP endpoint is configured; checked first by every caller
SERVICE_NAME = "turnout"  # unless OTEL_SERVICE_NAME (or OTEL_RESOURCE_ATTRIBUTES) names another

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

_tracer: Tracer | None = None
_provider: Any = None  # the SDK's TracerProvider, imported only when tracing is on
_propagator = TraceContextTextMapPropagator()
_operation: ContextVar[str] = ContextVar("turnout_gen_ai_operation", default="chat")
_TRACE_HEADERS = (b"traceparent", b"tracestate")


def configured(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether an OTLP endpoint for traces is set."""
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


def setup() -> bool:
    """Start exporting (BatchSpanProcessor -> OTLP/HTTP) when an endpoint is configured; else do
    nothing at all. The exporter reads the standard OTEL_* variables (endpoint, headers, timeouts,
    OTEL_BSP_*). Returns whether tracing is on."""
    global ENABLED, _tracer, _provider
    if _provider is not None or not configured():
        return ENABLED
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create()
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
    provider = TracerProvider(resource=resource)  # sampler from OTEL_TRACES_SAMPLER (default: always on)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    _provider, _tracer = provider, provider.get_tracer("turnout")
    ENABLED = True
    return True


async def shutdown() -> None:
    """Flush the spans still batched and stop exporting (in a thread: the export is blocking)."""
    global ENABLED, _tracer, _provider
    provider = _provider
    ENABLED, _tracer, _provider = False, None, None
    if provider is not None:
        await asyncio.to_thread(provider.shutdown)


# -- the server span (api/hot_path.py) ------------------------------------------------------------


def start_server(
    headers: Iterable[tuple[bytes, bytes]], served: tuple[str, str]
) -> tuple[Span, Token[Context]]:
    """Start the SERVER span of a data-plane request and make it current; a W3C ``traceparent``
    among the ASGI ``headers`` makes it that span's child. Returns the span and the context token
    that ``end_server`` restores."""
    assert _tracer is not None
    carrier: dict[str, str] | None = None
    for key, value in headers:
        if key in _TRACE_HEADERS:
            if carrier is None:
                carrier = {}
            carrier[key.decode()] = value.decode("latin-1")
    parent = _propagator.extract(carrier) if carrier is not None else None
    name, operation = served
    span = _tracer.start_span(
        name,
        parent,
        SpanKind.SERVER,
        {"http.request.method": "POST", "http.route": name[5:], "gen_ai.operation.name": operation},
    )
    _operation.set(operation)  # for the attempt spans' names (the request's task has its own copy)
    return span, otel_context.attach(trace.set_span_in_context(span, parent))


def responded(status: int) -> None:
    """The HTTP status of the current request's answer; a 5xx marks its server span failed."""
    span = trace.get_current_span()
    if status < 500:
        span.set_attribute("http.response.status_code", status)
    else:
        span.set_attributes({"http.response.status_code": status, "error.type": str(status)})
        span.set_status(StatusCode.ERROR)


def end_server(span: Span, token: Token[Context], exc: BaseException | None) -> None:
    """End the server span (after the answer's last byte); ``exc`` broke the answer on its way."""
    if exc is not None:
        span.set_attribute(
            "error.type", "cancelled" if isinstance(exc, asyncio.CancelledError) else type(exc).__name__
        )
        span.set_status(StatusCode.ERROR)
    span.end()
    otel_context.detach(token)


# -- routing (gateway/pipeline.py) ----------------------------------------------------------------


def start_routing() -> Span:
    """The routing step's span, a child of the current (server) span; none outside one (a call
    from the UI's playground would otherwise start traces of its own)."""
    assert _tracer is not None
    if trace.get_current_span() is INVALID_SPAN:
        return INVALID_SPAN
    return _tracer.start_span("turnout.route")


def end_routing(
    span: Span, task_type: str | None, policy: str | None, plan: list[str], error: str | None = None
) -> None:
    """End the routing span with what it decided (the ranked models), or why it could not."""
    if error is None:
        attributes: dict[str, Any] = {
            "turnout.task_type": task_type or "general",
            "turnout.route.models": plan,
        }
        if policy:
            attributes["turnout.policy"] = policy
        span.set_attributes(attributes)
    else:
        span.set_attribute("error.type", error)
        span.set_status(StatusCode.ERROR)
    span.end()


# -- upstream attempts (gateway/failover.py) ------------------------------------------------------


def start_attempt(
    model: str, upstream_model: str, provider_id: str, provider_type: str, attempt: int
) -> Span:
    """One upstream attempt's CLIENT span, a child of the current (server) span: named
    ``{gen_ai.operation.name} {gen_ai.request.model}`` with the provider's model name."""
    assert _tracer is not None
    if trace.get_current_span() is INVALID_SPAN:  # no server span: see ``start_routing``
        return INVALID_SPAN
    operation = _operation.get()
    name = PROVIDER_NAMES.get(provider_type, provider_type)
    return _tracer.start_span(
        f"{operation} {upstream_model}",
        kind=SpanKind.CLIENT,
        attributes={
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": name,
            "gen_ai.system": name,
            "gen_ai.request.model": upstream_model,
            "turnout.model_id": model,
            "turnout.provider_id": provider_id,
            "turnout.attempt": attempt,
        },
    )


def with_traceparent(span: Span, headers: dict[str, str]) -> dict[str, str]:
    """``headers`` plus the W3C ``traceparent`` (and ``tracestate``) naming the attempt ``span``:
    a new dict, the request's own is shared by its retries."""
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return headers
    out = {**headers, "traceparent": f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"}
    if ctx.trace_state:
        out["tracestate"] = ctx.trace_state.to_header()
    return out


def attempt_failed(span: Span, status: int, fault: str, message: str) -> None:
    """End a failed attempt's span: error status, ``error.type`` the HTTP status it maps to."""
    span.set_attributes({"error.type": str(status), "turnout.fault": fault})
    span.set_status(Status(StatusCode.ERROR, message[:300]))
    span.end()


def attempt_answered(span: Span, status: int, usage: Mapping[str, Any] | None) -> None:
    """End an attempt that answered (whole, with its ``usage``, or a stream's first bytes)."""
    if not usage:
        span.set_attribute("http.response.status_code", status)
    else:
        attributes: dict[str, Any] = {"http.response.status_code": status}
        tokens_in, tokens_out = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if isinstance(tokens_in, int):
            attributes["gen_ai.usage.input_tokens"] = tokens_in
        if isinstance(tokens_out, int):
            attributes["gen_ai.usage.output_tokens"] = tokens_out
        span.set_attributes(attributes)
    span.end()


def attempt_ended(span: Span, exc: BaseException) -> None:
    """End an attempt cut short (cancelled with its client, or a local error)."""
    span.set_attribute(
        "error.type", "cancelled" if isinstance(exc, asyncio.CancelledError) else type(exc).__name__
    )
    span.set_status(StatusCode.ERROR)
    span.end()


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
    how it ended. ``messages`` and ``answer`` are given only where text may be stored. One
    ``set_attributes`` call: the SDK takes its locks once, not once per attribute."""
    span = trace.get_current_span()
    if not span.is_recording():  # no server span (a call from the UI's playground), or not sampled
        return
    attributes: dict[str, Any] = {
        "gen_ai.request.model": requested_model,
        "turnout.message_id": row["id"],
        "turnout.attempts": row["attempts"],
        "turnout.fallback_used": row["fallback_used"],
    }
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
        span.set_status(Status(StatusCode.ERROR, (row["error"] or "")[:300]))
    span.set_attributes(attributes)


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
