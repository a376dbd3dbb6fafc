"""Shared helpers of the end-to-end benchmarks: ports, processes, databases, tokens, tables.

Everything here drives real subprocesses (the gateway via ``turnout serve``, the fake provider via
``python -m tests.upstreams.models_server``); nothing times internal functions.
"""

from __future__ import annotations

import asyncio
import gc
import math
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
API = "/api/v2/admin"
SQLITE_FILE = "bench.db"  # the gateway's database inside a workspace (sqlite)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pg(sql: str) -> None:
    import asyncpg  # only needed with --db postgres

    async def run() -> None:
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


@contextmanager
def no_gc() -> Iterator[None]:
    """The load generator's own garbage collector off while it times requests: a full collection
    of its heap stalled it ~25 ms, which showed up as a latency spike of whatever it measured."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@contextmanager
def workspace(db: str) -> Iterator[tuple[Path, dict[str, str]]]:
    """A temp dir and the gateway's environment; ``db`` is ``sqlite`` (a file) or ``postgres``
    (a fresh database next to ``PG_DSN``, dropped afterwards)."""
    with tempfile.TemporaryDirectory(prefix="turnout-bench-") as tmp:
        pg_name = f"turnout_bench_{secrets.token_hex(4)}" if db == "postgres" else None
        if pg_name is None:
            url = f"sqlite+aiosqlite:///{tmp}/{SQLITE_FILE}"
        else:
            _pg(f'CREATE DATABASE "{pg_name}"')
            url = PG_DSN.replace("postgresql://", "postgresql+asyncpg://").rsplit("/", 1)[0] + f"/{pg_name}"
        env = {
            **os.environ,
            "TURNOUT_DATABASE_URL": url,
            "TURNOUT_DATA_DIR": f"{tmp}/data",
            "TURNOUT_JWT_SECRET": secrets.token_hex(32),
            "TURNOUT_LOG_LEVEL": "WARNING",
        }
        try:
            yield Path(tmp), env
        finally:
            if pg_name is not None:
                _pg(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 120.0) -> None:
    """Poll ``url`` until it answers 200; fail early (with the log tail) if ``proc`` exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {timeout_s} s:\n{log.read_text()[-3000:]}")


@contextmanager
def process(cmd: Sequence[str], env: dict[str, str], log: Path, ready_url: str) -> Iterator[None]:
    """Run ``cmd`` (cwd = repo root, output to ``log``) until the block ends; always terminated."""
    with log.open("ab") as out:
        proc = subprocess.Popen(list(cmd), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_ready(ready_url, proc, log)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def upstream(tmp: Path, count: int, api_key: str, port: int | None = None) -> Iterator[str]:
    """The fake provider serving ``count`` OpenRouter models; yields its ``/api/v1`` base URL."""
    port = port or free_port()
    cmd = [sys.executable, "-m", "tests.upstreams.models_server", "--port", str(port)]
    cmd += ["--count", str(count), "--api-key", api_key]
    base = f"http://127.0.0.1:{port}"
    with process(cmd, dict(os.environ), tmp / f"upstream-{port}.log", f"{base}/api/tags"):
        yield f"{base}/api/v1"


@contextmanager
def gateway(tmp: Path, env: dict[str, str]) -> Iterator[httpx.Client]:
    """``turnout serve`` on a free port; yields a keep-alive client carrying a platform-admin token."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [str(BIN / "turnout"), "serve", "--port", str(port)]
    with process(cmd, env, tmp / "gateway.log", f"{base}/healthz"):
        headers = {"Authorization": f"Bearer {admin_token(env)}"}
        with httpx.Client(base_url=base, headers=headers, timeout=600.0) as client:
            yield client


def admin_token(env: dict[str, str]) -> str:
    """Mint a platform-admin JWT with the gateway's own CLI and secret."""
    cmd = [str(BIN / "turnout"), "token", "--sub", "bench", "--tenant", "platform"]
    cmd += ["--role", "platform_admin"]
    return subprocess.run(cmd, env=env, cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()


def call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    """One API call; non-2xx raises with the error body."""
    resp = client.request(method, path, **kwargs)
    if resp.status_code >= 300:
        raise RuntimeError(f"{method} {path} -> {resp.status_code}: {resp.text[:500]}")
    return resp.json()


def add_provider(client: httpx.Client, provider_id: str, api_base: str, api_key: str) -> None:
    """Register an OpenRouter-type provider (its key goes to the secret store)."""
    body = {"id": provider_id, "display_name": provider_id, "provider_type": "openrouter"}
    call(client, "POST", f"{API}/providers", json={**body, "api_base": api_base, "api_key": api_key})


def timed_sync(client: httpx.Client, provider_id: str) -> tuple[float, dict[str, Any]]:
    """``POST /providers/{id}/sync``; wall seconds seen by the client and the SyncResult."""
    started = time.perf_counter()
    result = call(client, "POST", f"{API}/providers/{provider_id}/sync")
    return time.perf_counter() - started, result


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A plain aligned text table (first column left-aligned, the others right-aligned)."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        pairs = enumerate(zip(row, widths, strict=True))
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs)

    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print(line(row))
