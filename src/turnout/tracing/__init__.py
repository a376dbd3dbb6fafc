"""OpenTelemetry traces of the data plane, named after the GenAI semantic conventions, exported as
OTLP/HTTP with the JSON encoding only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or
``..._TRACES_ENDPOINT``) is set.

Callers test ``ENABLED`` (``tracing.ENABLED``, read at call time) before calling anything here, so a
gateway without an endpoint builds nothing per request. The spans of one request: the server span
(``api/hot_path.py``), its routing child (``gateway/pipeline``) and one CLIENT child per upstream
attempt (``gateway/failover``), whose ``traceparent`` goes upstream.

This module is the hooks callers use and the exporter's life cycle; ``spans`` holds the span objects
and ``otlp`` their encoding and export. Why no OpenTelemetry SDK: on the 2-core bench
(``bench/gateway.py``, rows h and i) the SDK took ~75 us of event-loop CPU per request for its three
live spans and its exporter thread ~110 us more of protobuf encoding while holding the GIL: tracing
on kept 53% of the requests/s (target: 90%). Measured with ``bench/gateway_profile.py``
(saturation, metrics off): ~330-340 us of CPU per request off, ~390 on, of which ~20 us the hooks,
~17 the encoding, ~15 the POSTs.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Iterable, Mapping
from contextvars import ContextVar, Token
from typing import Any

import orjson

from turnout.tracing.otlp import Exporter, encode
from turnout.tracing.sampling import Sampler
from turnout.tracing.spans import INTERNAL, Attempt, Request

ENABLED = False  # set by ``setup`` when an OTLP endpoint is configured; checked first by every caller

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

_TRACE_HEADERS = (b"traceparent", b"tracestate")
_HEX = frozenset("0123456789abcdef")

_current: ContextVar[Request | None] = ContextVar("turnout_trace_request", default=None)
_exporter: Exporter | None = None
_sampler = Sampler()


def configured(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether an OTLP endpoint for traces is set."""
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


def setup(environ: Mapping[str, str] = os.environ) -> bool:
    """Start exporting when an endpoint is configured (called in the running event loop: the
    exporter is a task of it); else do nothing at all. Returns whether tracing is on."""
    global ENABLED, _exporter, _sampler
    if _exporter is not None or not configured(environ):
        return ENABLED
    _sampler = Sampler.from_environ(environ)
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
    ``traceparent`` among the ASGI ``headers`` makes it that span's child; the sampler
    (``OTEL_TRACES_SAMPLER``, ``sampling``) decides whether the request is exported, by default
    following that parent's sampled flag. Returns the token ``end_server`` takes."""
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
        trace_id = random.getrandbits(128) or 1
        request = Request(trace_id, 0, _sampler.flags(trace_id, None), None, name, operation)
    else:
        flags = _sampler.flags(parent[0], parent[2])
        request = Request(parent[0], parent[1], flags, tracestate or None, name, operation)
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
        exporter.add(*encode(request))


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


def attempt_failed(span: Attempt, status: int, fault: str, message: str, upstream_status: int | None) -> None:
    """End a failed attempt's span: error status, ``error.type`` the HTTP status it maps to, and
    ``http.response.status_code`` the upstream's own, when it answered."""
    span.attributes["error.type"] = str(status)
    if upstream_status is not None:
        span.attributes["http.response.status_code"] = upstream_status
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
