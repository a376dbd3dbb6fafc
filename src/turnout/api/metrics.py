"""``/metrics`` in the Prometheus text format: on the main port for a scraper holding the metrics
token (or a platform admin's JWT), and, when ``metrics_port`` is set, on a port of its own without
a token (bind it to an address only the scraper reaches)."""

from __future__ import annotations

import hmac
import threading
from wsgiref.simple_server import WSGIServer

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector

from turnout.api.auth import authenticate
from turnout.api.deps import container_of
from turnout.errors import Forbidden, NotFound
from turnout.metrics import CONTENT_TYPE, GatewayMetrics, multiprocess

router = APIRouter(tags=["ops"])


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Every counter, histogram and gauge of this process (of every worker, with several)."""
    container = container_of(request)
    if container.metrics is None:
        raise NotFound("metrics are off (TURNOUT_METRICS=false)", code="metrics_off")
    token = container.settings.metrics_token
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    presented = value.strip().encode()
    if not (
        token is not None
        and presented  # (an empty token is unset: Settings)
        and scheme.lower() == "bearer"
        and hmac.compare_digest(presented, token.get_secret_value().encode())
    ):
        principal = authenticate(request, container, agent_keys=False)  # 401 without a credential
        if not principal.has_any("platform_admin"):
            raise Forbidden("requires the metrics token or role platform_admin")
    return Response(await container.metrics.render(), media_type=CONTENT_TYPE)


def serve_port(metrics: GatewayMetrics, host: str, port: int) -> tuple[WSGIServer, threading.Thread]:
    """``/metrics`` on a port of its own (a daemon thread, prometheus_client's server): what the
    last flush counted (every second) and the last refresh sampled (every few seconds)."""
    registry = metrics.registry
    if multiprocess():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    return start_http_server(port, addr=host, registry=registry)
