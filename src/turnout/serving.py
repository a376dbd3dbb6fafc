"""Running the ASGI app under uvicorn (uvloop, httptools: ``http_protocol.py``), lifespan included.

The app is built by its factory in each worker (``TURNOUT_*`` settings from the environment); the
lifespan shutdown flushes records and feedback. Access logs, proxy-header rewriting and the
``server`` header are off: they cost per request and a gateway's records already say who called.
(Granian 2.8 was measured as the alternative: at one worker it served fewer requests per second
than this once the hot path stopped releasing the GIL, and its thread handoffs added latency.)

Idle clients must not take the server down: the soft file-descriptor limit is raised to the hard
one before workers start, the protocol caps client connections below it (keeping
``TURNOUT_FD_RESERVE`` descriptors for upstream calls) and closes connections that do not send a
header block in time. uvicorn's own logging configuration is skipped: its records go through the
redacting pipeline of ``logs.py`` like everyone else's.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import structlog
import uvicorn
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector
from uvicorn.supervisors import Multiprocess

from turnout.api.hot_path import HotPath
from turnout.app import create_app
from turnout.config import Settings
from turnout.http_protocol import PROTOCOL, connection_limit, raise_fd_limit
from turnout.logs import configure_logging
from turnout.metrics import MULTIPROC_ENV

APP_FACTORY = "turnout.serving:create_served_app"
STARTUP_FAILURE = 3  # uvicorn's exit status when the server could not start
log = structlog.get_logger(__name__)

# A request allocates a few hundred container objects, so the default 700 ran a young collection
# every couple of requests and a full one every second: ~10% of the CPU at saturation and 40 ms
# pauses (bench/gateway_profile.py). Cyclic garbage waits a little longer; memory stays bounded.
GC_THRESHOLDS = (20_000, 50, 100)


def tune_gc() -> None:
    """Process-wide: the start-up objects (snapshot, word vectors) leave the collector's scans, and
    young collections run less often. Done by ``turnout serve`` once the app has started (tests and
    embedders that build the app themselves keep Python's defaults)."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def create_served_app() -> HotPath:
    """The app as ``turnout serve`` runs it in each worker: the GC tuned once it has started."""
    return create_app(on_started=tune_gc)


class _AnnouncingServer(uvicorn.Server):
    """A uvicorn server that says where it listens once its socket is bound (not before: a busy
    port would print the address and then fail)."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[str, int], None]) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.servers and self.servers[0].sockets:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            self._on_ready(self.config.host if host in ("0.0.0.0", "::") else host, port)


class StartupError(Exception):
    """A setting that would stop the server once uvicorn runs, said before, naming the setting."""


def _bind_error(address: tuple[Any, ...], family: int = socket.AF_INET) -> OSError | None:
    """Bind ``address`` as the servers will (SO_REUSEADDR on) and let go: why it cannot be, or None."""
    try:
        with socket.create_server(address, family=family):
            return None
    except OSError as exc:
        return exc


def _reason(exc: OSError) -> str:
    return (exc.strerror or str(exc)).split(" (while attempting")[0].lower()


def _check_bind(host: str, port: int, addresses: list[tuple[Any, ...]]) -> None:
    """Bind each address ``host`` resolves to, as uvicorn's ``loop.create_server`` will: a port
    already taken is said before anything loads, naming the setting."""
    for family, _, _, _, sockaddr in dict.fromkeys(addresses):
        refused = _bind_error(sockaddr, family)
        if refused is None:
            continue
        where = f"[{sockaddr[0]}]:{port}" if family == socket.AF_INET6 else f"{sockaddr[0]}:{port}"
        if refused.errno == errno.EADDRNOTAVAIL:
            raise StartupError(
                f"cannot serve on {where}: the bind address {host!r} (--host or TURNOUT_HOST) "
                f"is not one of this machine's: {_reason(refused)}"
            )
        raise StartupError(f"cannot serve on {where} (--port or TURNOUT_PORT): {_reason(refused)}")


def preflight(host: str, port: int, settings: Settings) -> None:
    """What would otherwise fail inside uvicorn as a bare ``[Errno -2] Name or service not known``,
    an ``[Errno 98]`` log line after the app has loaded, or a lifespan traceback: a bind address
    that does not resolve, a port or a metrics port already taken."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise StartupError(
            f"the bind address {host!r} (--host or TURNOUT_HOST) does not resolve: {exc.strerror}"
        ) from None
    if port:
        _check_bind(host, port, addresses)
    if settings.metrics and settings.metrics_port:
        taken = _bind_error((settings.metrics_host, settings.metrics_port))
        if taken is not None:
            where = f"{settings.metrics_host}:{settings.metrics_port}"
            setting = "TURNOUT_METRICS_HOST:TURNOUT_METRICS_PORT"
            raise StartupError(f"cannot serve metrics on {where} ({setting}): {_reason(taken)}")


def serve(
    host: str,
    port: int,
    *,
    workers: int = 1,
    settings: Settings | None = None,
    on_ready: Callable[[str, int], None] = lambda host, port: None,
) -> None:
    """Serve Turnout until SIGINT/SIGTERM; ``on_ready(host, port)`` runs once the port is bound.
    The caller has run ``preflight`` first (the CLI does, before migrating)."""
    settings = settings or Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    fd_limit = raise_fd_limit()
    limit = connection_limit(settings.max_connections, settings.fd_reserve)
    log.info("serving", fd_limit=fd_limit, max_connections_per_worker=limit)
    config = uvicorn.Config(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http=PROTOCOL,
        log_config=None,
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        server_header=False,
        timeout_keep_alive=settings.keep_alive_timeout_s,
    )
    if config.workers > 1:
        sock = config.bind_socket()  # in this process, before the workers fork (exits if busy)
        bound_host, bound_port = sock.getsockname()[:2]
        with shared_metrics(settings):
            on_ready(host if bound_host in ("0.0.0.0", "::") else bound_host, bound_port)
            _ClosingMultiprocess(config, sockets=[sock]).run()
        return
    server = _AnnouncingServer(config, on_ready)
    server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)


class _ClosingMultiprocess(Multiprocess):
    """uvicorn's supervisor of ``--workers N``, which closes its own copy of the listening socket
    when it stops them: the port is closed once they have closed theirs, so a connection made
    while they drain is refused (safe to retry elsewhere) instead of waiting in the backlog of a
    socket nobody accepts on, then reset (a POST of unknown fate)."""

    def terminate_all(self) -> None:
        for sock in self.sockets:
            sock.close()
        super().terminate_all()


@contextlib.contextmanager
def shared_metrics(settings: Settings) -> Iterator[None]:
    """Several workers: their metrics go to a folder of this run's (unless one is given), which every
    scrape sums; ``metrics_port`` is served here, by the parent, from that folder."""
    if not settings.metrics:
        yield
        return
    owned = None
    if not os.environ.get(MULTIPROC_ENV):
        owned = tempfile.mkdtemp(prefix="turnout-metrics-")
        os.environ[MULTIPROC_ENV] = owned  # the workers, spawned after this, inherit it
    server = None
    if settings.metrics_port:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        server, _ = start_http_server(settings.metrics_port, addr=settings.metrics_host, registry=registry)
    try:
        yield
    finally:
        if server is not None:
            server.shutdown()
        if owned is not None:
            os.environ.pop(MULTIPROC_ENV, None)
            shutil.rmtree(owned, ignore_errors=True)
