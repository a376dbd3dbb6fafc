"""Injected faults: what they are, how they are written, which request they hit.

Spec syntax (the ``x-sim-fault`` header, ``Fault.parse`` and ``POST /_sim/faults``; seconds are
floats):

- ``status:<code>``: answer ``<code>`` with an error body in the route's provider shape
- ``echo_key[:<code>]``: answer ``<code>`` (default 401) with an error whose message quotes the
  credential the request carried, as careless upstreams do (to prove it is scrubbed downstream)
- ``429[:<retry_after_s>]``: rate limited, ``Retry-After`` (default 1) and provider rate headers
- ``reset_before``: reset the TCP connection before any response byte
- ``reset_after:<n>``: send ``n`` stream chunks then reset (non-streamed: half the body)
- ``stall:<seconds>``: send nothing (not even headers) for that long, then answer normally
- ``stall_after:<n>:<seconds>``: send ``n`` chunks (non-streamed: half the body), stall, finish
- ``slow[:<seconds>[:<tokens_per_second>]]``: this request's latency (default 1) and pacing
"""

from __future__ import annotations

import contextlib
import socket
import struct
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

FaultKind = Literal[
    "status", "echo_key", "rate_limit", "reset_before", "reset_after", "stall", "stall_after", "slow"
]
KINDS: tuple[str, ...] = (
    "status",
    "echo_key",
    "rate_limit",
    "reset_before",
    "reset_after",
    "stall",
    "stall_after",
    "slow",
)
_ALIASES = {"429": "rate_limit", "rate_limited": "rate_limit", "reset": "reset_before"}
FAULT_HEADER = "x-sim-fault"


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault. ``count`` requests get it (``None``: every request until cleared); ``model``
    and ``path`` (a path prefix such as ``/v1/chat/completions``) narrow which ones."""

    kind: FaultKind
    status: int = 500
    after: int = 0
    seconds: float = 1.0
    tokens_per_second: float | None = None
    count: int | None = 1
    model: str | None = None
    path: str | None = None

    def __post_init__(self) -> None:
        kind = _ALIASES.get(self.kind, self.kind)
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r} (one of {', '.join(KINDS)}, 429)")
        object.__setattr__(self, "kind", kind)
        if kind == "rate_limit":
            object.__setattr__(self, "status", 429)
        if not 100 <= self.status <= 599:
            raise ValueError(f"status {self.status} is not an HTTP status code")
        if self.after < 0 or self.seconds < 0 or (self.count is not None and self.count < 1):
            raise ValueError("after and seconds must be >= 0 and count >= 1 (or None)")

    @classmethod
    def parse(
        cls, spec: str, *, count: int | None = 1, model: str | None = None, path: str | None = None
    ) -> Fault:
        """A fault from its spec string, e.g. ``"status:503"`` or ``"stall_after:3:2.5"``."""
        name, *args = spec.strip().split(":")
        kind = _ALIASES.get(name.strip(), name.strip())
        extra: dict[str, Any] = {"count": count, "model": model, "path": path}
        try:
            if kind == "status" and len(args) == 1:
                return cls("status", status=int(args[0]), **extra)
            if kind == "echo_key" and len(args) <= 1:
                return cls("echo_key", status=int(args[0]) if args else 401, **extra)
            if kind == "rate_limit" and len(args) <= 1:
                return cls("rate_limit", seconds=float(args[0]) if args else 1.0, **extra)
            if kind == "reset_before" and not args:
                return cls("reset_before", **extra)
            if kind == "reset_after" and len(args) == 1:
                return cls("reset_after", after=int(args[0]), **extra)
            if kind == "stall" and len(args) == 1:
                return cls("stall", seconds=float(args[0]), **extra)
            if kind == "stall_after" and len(args) == 2:
                return cls("stall_after", after=int(args[0]), seconds=float(args[1]), **extra)
            if kind == "slow" and len(args) <= 2:
                seconds = float(args[0]) if args else 1.0
                tps = float(args[1]) if len(args) == 2 else None
                return cls("slow", seconds=seconds, tokens_per_second=tps, **extra)
        except ValueError as exc:
            raise ValueError(f"invalid fault {spec!r}: {exc}") from None
        raise ValueError(f"invalid fault {spec!r}")

    @property
    def spec(self) -> str:
        """The fault in spec syntax."""
        if self.kind in ("status", "echo_key"):
            return f"{self.kind}:{self.status}"
        if self.kind == "rate_limit":
            return f"429:{self.seconds:g}"
        if self.kind in ("reset_after",):
            return f"reset_after:{self.after}"
        if self.kind == "stall":
            return f"stall:{self.seconds:g}"
        if self.kind == "stall_after":
            return f"stall_after:{self.after}:{self.seconds:g}"
        if self.kind == "slow":
            tail = f":{self.tokens_per_second:g}" if self.tokens_per_second is not None else ""
            return f"slow:{self.seconds:g}{tail}"
        return self.kind

    def matches(self, path: str, model: str | None) -> bool:
        """Whether a request for ``path`` and ``model`` is one this fault may hit."""
        if self.model is not None and self.model != model:
            return False
        return self.path is None or path.startswith(self.path)

    @classmethod
    def from_json(cls, data: Any) -> Fault:
        """From ``{"fault": "<spec>", "count", "model", "path"}`` or the dataclass fields."""
        if not isinstance(data, dict):
            raise ValueError("a fault is a JSON object")
        extra = {k: data[k] for k in ("count", "model", "path") if k in data}
        if "fault" in data:
            if not isinstance(data["fault"], str):
                raise ValueError("'fault' must be a spec string such as 'status:503'")
            return cls.parse(data["fault"], **extra)
        try:
            return cls(**data)
        except TypeError as exc:
            raise ValueError(str(exc)) from None


class FaultBook:
    """Registered faults, first match wins; each keeps its remaining count."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: list[list[Any]] = []  # [fault, remaining | None]

    def __bool__(self) -> bool:
        return bool(self._entries)

    def add(self, fault: Fault) -> Fault:
        """Register ``fault`` after those already there."""
        self._entries.append([fault, fault.count])
        return fault

    def clear(self) -> None:
        """Forget every fault."""
        self._entries.clear()

    def take(self, path: str, model: str | None) -> Fault | None:
        """The first fault matching the request, counting it as used."""
        for entry in self._entries:
            fault: Fault = entry[0]
            if fault.matches(path, model):
                if entry[1] is not None:
                    entry[1] -= 1
                    if entry[1] <= 0:
                        self._entries.remove(entry)
                return fault
        return None

    def describe(self) -> list[dict[str, Any]]:
        """The faults still armed, as JSON."""
        return [
            {
                "fault": f.spec,
                "kind": f.kind,
                "count": f.count,
                "remaining": left,
                "model": f.model,
                "path": f.path,
            }
            for f, left in self._entries
        ]


def header_fault(request: web.BaseRequest) -> Fault | None:
    """The fault asked for by the ``x-sim-fault`` header (``ValueError`` if malformed)."""
    spec = request.headers.get(FAULT_HEADER)
    return Fault.parse(spec) if spec else None


def reset_connection(request: web.BaseRequest) -> None:
    """Drop the connection with a TCP reset (``SO_LINGER`` 0), discarding unsent bytes."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
