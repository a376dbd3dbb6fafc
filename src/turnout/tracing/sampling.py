"""Which requests are traced: OpenTelemetry's standard sampler settings, so an operator sends a
share of the traffic to the collector as with any OTel SDK.

``OTEL_TRACES_SAMPLER`` is ``always_on``, ``always_off``, ``traceidratio`` or their
``parentbased_`` forms (the default, ``parentbased_always_on``, traces every request); a
``parentbased_`` sampler follows the sampled flag of an incoming ``traceparent`` and samples only
the requests that start a trace. ``OTEL_TRACES_SAMPLER_ARG`` is the ratio of ``traceidratio``
(0 to 1, default 1). As the SDKs do, the ratio sampler keeps a trace whose id's low 64 bits fall
under ``ratio * 2**64``, so every service with the same ratio keeps the same traces. An unsampled
request still passes its trace context upstream, flagged unsampled; its spans cost nothing more.
Unknown values are logged and the default used, as the SDKs do."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import structlog

log = structlog.get_logger(__name__)

_LOW64 = (1 << 64) - 1
_ROOTS = {"always_on": 1.0, "always_off": 0.0, "traceidratio": None}  # None: the ratio argument
DEFAULT = "parentbased_always_on"


@dataclass(frozen=True, slots=True)
class Sampler:
    """Samples by the trace id under ``bound`` (of 2**64); ``parent_based`` follows a parent."""

    parent_based: bool = True
    bound: int = 1 << 64

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Sampler:
        """The sampler the ``OTEL_TRACES_SAMPLER`` variables name."""
        name = environ.get("OTEL_TRACES_SAMPLER", DEFAULT).strip().lower() or DEFAULT
        parent_based = name.startswith("parentbased_")
        root = name.removeprefix("parentbased_")
        if root not in _ROOTS:
            log.warning("tracing.unknown_sampler", sampler=name, used=DEFAULT)
            return cls()
        ratio = _ROOTS[root]
        if ratio is None:
            ratio = _ratio(environ.get("OTEL_TRACES_SAMPLER_ARG"))
        return cls(parent_based, round(ratio * (1 << 64)))

    def flags(self, trace_id: int, parent_flags: int | None) -> int:
        """The W3C trace flags (1: sampled) of a request in ``trace_id``, whose incoming
        ``traceparent`` had ``parent_flags`` (None: it starts the trace)."""
        if parent_flags is not None and self.parent_based:
            return parent_flags & 1
        return 1 if trace_id & _LOW64 < self.bound else 0


def _ratio(raw: str | None) -> float:
    """``OTEL_TRACES_SAMPLER_ARG`` as a ratio; 1 (with a log line) when it is not one in [0, 1]."""
    if raw is None or not raw.strip():
        return 1.0
    try:
        ratio = float(raw)
    except ValueError:
        ratio = -1.0
    if not 0.0 <= ratio <= 1.0:  # NaN included
        log.warning("tracing.bad_sampler_arg", value=raw[:50], used=1.0)
        return 1.0
    return ratio
