"""Against a real ``turnout serve`` in front of the simulator: idle connections cannot take the
gateway down (issue 15, item 5), and unhandled errors are logged redacted (item 7).

One client holding thousands of idle sockets used to exhaust the server's file descriptors:
``/healthz`` stopped answering and upstream connects failed with EMFILE. Now the server raises
its soft descriptor limit, caps client connections below it (a reserve stays for upstream
calls), closes sockets that send no header block in time, evicts the oldest idle connection
when full and refuses cleanly (503) when every connection is busy.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import resource
import socket
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from tests.security.edge_env import EdgeEnv, RawConnection, edge  # noqa: F401
from tests.security.edge_serve import Gateway, gateway, open_fds, setup_chat, simulator
from tests.services import service_missing

IDLE_SOCKETS = 5000
CHAT = {"model": "sim/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def enough_descriptors() -> None:
    """This process must hold the idle sockets itself: its soft limit is raised as far as allowed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < IDLE_SOCKETS + 1000 <= hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < IDLE_SOCKETS + 1000:
        service_missing("file descriptors", f"RLIMIT_NOFILE hard limit {hard} < {IDLE_SOCKETS + 1000}")


@contextlib.contextmanager
def idle_sockets(url: str, count: int, partial: bytes = b"") -> Iterator[list[socket.socket]]:
    """``count`` connections that send nothing (or only ``partial``) and wait."""
    host, port = url.removeprefix("http://").split(":")
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket()
            socks.append(sock)
            if partial:
                sock.settimeout(5)
                sock.connect((host, int(port)))
                sock.sendall(partial)
                sock.setblocking(False)
            else:
                sock.setblocking(False)
                sock.connect_ex((host, int(port)))
        yield socks
    finally:
        for sock in socks:
            sock.close()


def closed_by_server(sock: socket.socket) -> tuple[bool, bytes]:
    """Whether the server closed ``sock``, and what it sent first."""
    try:
        data = sock.recv(4096)
    except BlockingIOError:
        return False, b""
    except ConnectionResetError:
        return True, b""
    except OSError as exc:
        return exc.errno in (errno.ECONNRESET, errno.EPIPE), b""
    if data:
        with contextlib.suppress(BlockingIOError, OSError):
            data += sock.recv(4096)
    return True, data


def wait_until(condition: object, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def answers(url: str, key: str) -> tuple[int, int]:
    """Status of ``/healthz`` and of one chat call through the simulator (-1: no answer in time)."""
    statuses = []
    with httpx.Client(base_url=url, timeout=5) as http:
        for method, path, body in (("GET", "/healthz", None), ("POST", "/v1/chat/completions", CHAT)):
            try:
                resp = http.request(method, path, json=body, headers={"Authorization": f"Bearer {key}"})
                statuses.append(resp.status_code)
            except httpx.HTTPError:
                statuses.append(-1)
    return statuses[0], statuses[1]


HEADER_TIMEOUT_S = 6.0


@dataclass
class Served:
    gw: Gateway
    key: str
    db: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One ``turnout serve`` for this module, with a distribution's default soft descriptor limit."""
    tmp = tmp_path_factory.mktemp("served")
    env = {"TURNOUT_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S)}
    with simulator(tmp) as sim, gateway(tmp, env, soft_fd_limit=1024) as gw:
        yield Served(gw, setup_chat(gw.url, gw.jwt, sim.url), tmp / "serve.db")


def test_thousands_of_idle_sockets_leave_the_gateway_answering(
    enough_descriptors: None, served: Served
) -> None:
    gw, key = served.gw, served.key
    assert answers(gw.url, key) == (200, 200)
    baseline = open_fds(gw.process.pid)
    started = time.monotonic()
    with (
        idle_sockets(gw.url, IDLE_SOCKETS) as silent,
        idle_sockets(gw.url, 20, partial=b"GET /healthz HTTP/1.1\r\nhost: x\r\n") as slow,
    ):
        wait_until(lambda: open_fds(gw.process.pid) >= baseline + IDLE_SOCKETS, 5)
        assert answers(gw.url, key) == (200, 200), "healthz and chat while the sockets are held"
        held = open_fds(gw.process.pid) - baseline
        assert held >= IDLE_SOCKETS, f"the server holds only {held} of the idle sockets"
        assert time.monotonic() - started < HEADER_TIMEOUT_S, "checked before the header timeout"
        assert not any(closed_by_server(s)[0] for s in silent[:50]), "not closed before the timeout"
        time.sleep(max(0.0, started + HEADER_TIMEOUT_S - time.monotonic()))
        open_ = list(silent)  # each one's clock started when the server accepted it

        def all_closed() -> bool:
            open_[:] = [s for s in open_ if not closed_by_server(s)[0]]
            return not open_

        assert wait_until(all_closed, 10), f"{len(open_)} silent sockets still open after the timeout"
        partial = [closed_by_server(s) for s in slow]
        assert all(c and data.startswith(b"HTTP/1.1 408") for c, data in partial), partial[:3]
    assert wait_until(lambda: open_fds(gw.process.pid) <= baseline + 10, 5)
    assert answers(gw.url, key) == (200, 200)


def _exchange(sock: socket.socket, request: bytes) -> tuple[int, bytes]:
    """One request and its (content-length framed) answer on a blocking socket."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "connection closed with no answer"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(
            v
            for k, _, v in (h.partition(b":") for h in head.split(b"\r\n"))
            if k.lower() == b"content-length"
        )
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-answer"
        body += chunk
    return int(head.split(b" ")[1]), body


def test_unhandled_errors_are_logged_redacted_and_keep_the_connection(served: Served) -> None:
    """A failing database under the running server: the 500's traceback reaches the log only
    through the redacting JSON pipeline, without SQL parameters, and the keep-alive connection
    serves the next request. (Before: uvicorn printed the traceback as plain text, with the
    parameters, and dropped the connection.)"""
    gw = served.gw
    token = gw.jwt.mint("root", "platform", ["platform_admin"])
    canary, key_shaped = "Canary7d1fQueryText", "sk-live-0123456789abcdefXYZ"
    with sqlite3.connect(served.db) as db:
        db.execute("ALTER TABLE llm_model_catalog RENAME TO catalog_gone")
    sock = socket.create_connection(("127.0.0.1", int(gw.url.rsplit(":", 1)[1])), timeout=10)
    try:
        target = f"/api/v2/admin/models?q={canary}&provider={key_shaped}".encode()
        auth = f"authorization: Bearer {token}\r\n".encode()
        status, body = _exchange(sock, b"GET " + target + b" HTTP/1.1\r\nhost: x\r\n" + auth + b"\r\n")
        assert status == 500 and orjson.loads(body)["error"]["code"] == "internal_error"
        assert _exchange(sock, b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")[0] == 200, "same connection"
    finally:
        sock.close()
        with sqlite3.connect(served.db) as db:
            db.execute("ALTER TABLE catalog_gone RENAME TO llm_model_catalog")
    time.sleep(0.2)
    log = gw.output()
    assert canary not in log and key_shaped not in log
    assert "Exception in ASGI application" not in log
    errors = [orjson.loads(line) for line in log.splitlines() if "unhandled_error" in line]
    assert len(errors) == 1, log[-3000:]
    assert "OperationalError" in errors[0]["exception"] and errors[0]["path"] == "/api/v2/admin/models"


LIMIT = 4
MAX_REFUSING = 16  # http_protocol.ConnectionGuard's floor


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """Connection handling does not depend on the database: SQLite only."""
    return f"sqlite+aiosqlite:///{tmp_path}/turnout.db"


@pytest.fixture
def small_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read by the server's protocol at its first connection (before ``edge`` connects)."""
    monkeypatch.setenv("TURNOUT_MAX_CONNECTIONS", str(LIMIT))


async def test_a_full_server_evicts_the_oldest_idle_connection(small_limit: None, edge: EdgeEnv) -> None:  # noqa: F811
    with idle_sockets(edge.url, 3 * LIMIT) as silent:
        await asyncio.sleep(0.5)
        evicted = [s for s in silent if closed_by_server(s)[0]]
        assert len(evicted) >= 2 * LIMIT, f"{len(evicted)} of {len(silent)} idle sockets closed"
        assert not any(closed_by_server(s)[0] for s in silent[-LIMIT + 1 :]), "the newest stay"
        healthz = await edge.http.get("/healthz")
        assert healthz.status_code == 200
        chat = await edge.http.post("/v1/chat/completions", json=CHAT, headers=edge.agent)
        assert chat.status_code == 200, chat.text


async def test_a_server_busy_on_every_connection_refuses_with_503(small_limit: None, edge: EdgeEnv) -> None:  # noqa: F811
    edge.sim.config.latency_ms = 1500
    limits = httpx.Limits(max_connections=LIMIT, max_keepalive_connections=LIMIT)
    async with httpx.AsyncClient(base_url=edge.url, timeout=10, limits=limits) as busy:
        calls = asyncio.gather(
            *(busy.post("/v1/chat/completions", json=CHAT, headers=edge.agent) for _ in range(LIMIT)),
            return_exceptions=True,
        )
        try:
            await asyncio.sleep(0.5)  # every connection now waits on the slow upstream
            conn = await RawConnection.open(edge.url)
            try:
                refused = await conn.request("GET", b"/healthz")
            finally:
                await conn.close()
            await asyncio.sleep(0.1)
            flood = [await RawConnection.open(edge.url) for _ in range(MAX_REFUSING + 4)]
            try:  # refusals linger to be read; past MAX_REFUSING at once they are reset instead
                answers = await asyncio.gather(*(c.request("GET", b"/healthz") for c in flood))
            finally:
                await asyncio.gather(*(c.close() for c in flood))
        finally:
            done = await calls
        assert refused is not None and refused.status == 503
        assert refused.headers["retry-after"] == "1" and refused.headers["connection"] == "close"
        assert refused.json()["error"]["code"] == "connection_limit"
        assert [a.status if a else None for a in answers] == [503] * MAX_REFUSING + [None] * 4
        assert [getattr(r, "status_code", r) for r in done] == [200] * LIMIT
    edge.sim.config.latency_ms = 0
    assert (await edge.http.get("/healthz")).status_code == 200
