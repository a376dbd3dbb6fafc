"""What every simulated route shares: reading JSON, applying faults and latency, sending answers.

A route reads and validates its request, then calls :func:`begin`, which picks the fault (the
``x-sim-fault`` header first, then the registered ones), waits the latency and either answers
for the fault itself (error status, reset, ...) or returns a :class:`Plan` telling
:func:`send_body` / :func:`send_stream` how to deliver the real answer (pacing, mid-body faults).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from aiohttp import web

from turnout.simulator.faults import FAULT_HEADER, Fault, header_fault, reset_connection

if TYPE_CHECKING:
    from turnout.simulator.server import Simulator

JSON_HEADERS = {"Content-Type": "application/json"}


class ErrorFactory(Protocol):
    """A provider's error answer: ``(status, message or default, Retry-After seconds)``."""

    def __call__(
        self, status: int, message: str | None = None, retry_after: float | None = None
    ) -> web.Response:
        """The error response in the provider's shape."""
        ...


@dataclass(slots=True)
class Plan:
    """How to deliver one answer: chunk pacing and a fault part-way through the body."""

    tps: float
    sleep: Callable[[float], Awaitable[None]]
    started: float = 0.0
    reset_after: int | None = None
    stall_after: int | None = None
    stall_seconds: float = 0.0


def random_id(prefix: str, length: int = 24) -> str:
    """``prefix`` + ``length`` random hex digits (the providers' ids are alphanumeric)."""
    return prefix + secrets.token_hex((length + 1) // 2)[:length]


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """``data`` serialised with orjson."""
    return web.Response(body=orjson.dumps(data), status=status, headers=headers or JSON_HEADERS)


async def read_json(request: web.Request) -> Any:
    """The JSON body, or ``None`` when it is not JSON."""
    try:
        return orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return None


def format_seconds(seconds: float) -> str:
    """A header value for a number of seconds: ``"2"`` or ``"0.5"``."""
    return f"{seconds:g}"


async def begin(
    sim: Simulator, request: web.Request, model: str | None, error: ErrorFactory
) -> Plan | web.StreamResponse:
    """Apply the request's fault and latency: a response to return as is, or the plan to answer with."""
    config = sim.config
    latency = config.latency_ms / 1000.0
    plan = Plan(config.tokens_per_second, sim.sleep, asyncio.get_running_loop().time())
    fault: Fault | None = None
    if FAULT_HEADER in request.headers:
        try:
            fault = header_fault(request)
        except ValueError as exc:
            return error(400, f"{FAULT_HEADER}: {exc}")
    elif sim.faults:
        fault = sim.faults.take(request.path, model)
    if fault is None:
        if latency > 0:
            await asyncio.sleep(latency)
        return plan
    sim.stats.faults[fault.kind] += 1
    kind = fault.kind
    if kind == "reset_before":
        reset_connection(request)
        return web.Response(status=204)  # never written: the connection is gone
    if kind == "stall":
        await sim.sleep(fault.seconds)
    elif kind == "slow":
        latency = fault.seconds
        if fault.tokens_per_second is not None:
            plan.tps = fault.tokens_per_second
    elif kind == "reset_after":
        plan.reset_after = fault.after
    elif kind == "stall_after":
        plan.stall_after, plan.stall_seconds = fault.after, fault.seconds
    if latency > 0:
        await asyncio.sleep(latency)
    if kind in ("status", "rate_limit"):
        return error(fault.status, None, fault.seconds if fault.status == 429 else None)
    if kind == "echo_key":
        return error(fault.status, f"Incorrect API key provided: {presented_key(request)}.", None)
    return plan


def presented_key(request: web.Request) -> str:
    """The credential a request carries, however its provider sends it (empty when none)."""
    headers = request.headers
    for name in ("x-api-key", "api-key", "x-goog-api-key"):
        if name in headers:
            return headers[name]
    bearer = headers.get("Authorization", "")
    return bearer[7:] if bearer[:7].lower() == "bearer " else bearer


async def _reset_when_flushed(request: web.Request) -> None:
    """Reset the connection once what was written has left (so the client sees it first)."""
    transport = request.transport
    for _ in range(200):
        if transport is None or transport.is_closing() or transport.get_write_buffer_size() == 0:
            break
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.01)
    reset_connection(request)


async def send_body(
    request: web.Request, plan: Plan, body: bytes, headers: dict[str, str], tokens: int = 0
) -> web.StreamResponse:
    """A complete (non-streamed) body; generation takes ``tokens / tps`` when paced."""
    if plan.tps > 0 and tokens > 0:
        await asyncio.sleep(tokens / plan.tps)
    if plan.reset_after is None and plan.stall_after is None:
        return web.Response(body=body, headers=headers)
    resp = web.StreamResponse(headers=headers)
    resp.content_length = len(body)
    half = len(body) // 2
    try:
        await resp.prepare(request)
        await resp.write(body[:half])
        if plan.reset_after is not None:
            await _reset_when_flushed(request)
            return resp
        await plan.sleep(plan.stall_seconds)
        await resp.write(body[half:])
        await resp.write_eof()
    except ConnectionError:
        pass
    return resp


async def send_stream(
    request: web.Request, plan: Plan, chunks: Sequence[bytes], headers: dict[str, str]
) -> web.StreamResponse:
    """A streamed body, one chunk per write, paced at ``plan.tps`` chunks a second."""
    resp = web.StreamResponse(headers=headers)
    try:
        await resp.prepare(request)  # raises if the client left (e.g. timed out during a stall)
        if plan.tps <= 0 and plan.reset_after is None and plan.stall_after is None:
            await resp.write(b"".join(chunks))  # one write: the fast path
        else:
            await _paced(request, resp, plan, chunks)
            if request.transport is None or request.transport.is_closing():
                return resp
        await resp.write_eof()
    except ConnectionError:
        pass
    return resp


async def _paced(request: web.Request, resp: web.StreamResponse, plan: Plan, chunks: Sequence[bytes]) -> None:
    loop = asyncio.get_running_loop()
    interval = 1.0 / plan.tps if plan.tps > 0 else 0.0
    start = loop.time()
    for i in range(len(chunks) + 1):
        if i == plan.reset_after:
            await _reset_when_flushed(request)
            return
        if i == plan.stall_after:
            await plan.sleep(plan.stall_seconds)
            start += plan.stall_seconds
        if i == len(chunks):
            return
        if interval and i:
            delay = start + i * interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        await resp.write(chunks[i])
