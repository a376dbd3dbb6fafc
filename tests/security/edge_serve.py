"""Real ``turnout serve`` and ``turnout simulate`` processes for tests that need what only a real
server shows: its file-descriptor limit, its connection handling, its log output."""

from __future__ import annotations

import contextlib
import os
import resource
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.live_server import free_port
from turnout.auth.jwt_tokens import JwtCodec

BIN = Path(sys.executable).parent


@dataclass
class Process:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _wait_ready(proc: Process, path: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.process.poll() is not None:
            raise RuntimeError(f"{proc.url} exited: {proc.output()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(proc.url + path, timeout=1).status_code < 500:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{proc.url} not ready: {proc.output()[-2000:]}")


@contextlib.contextmanager
def running(args: list[str], env: dict[str, str], log: Path, ready_path: str, port: int,
            preexec: Callable[[], None] | None = None) -> Iterator[Process]:  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            args, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, preexec_fn=preexec
        )
    proc = Process(process, f"http://127.0.0.1:{port}", log)
    try:
        _wait_ready(proc, ready_path)
        yield proc
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def simulator(tmp: Path, *extra: str) -> Iterator[Process]:
    """The provider simulator, ``turnout simulate``'s code without the whole CLI's imports."""
    port = free_port()
    args = [sys.executable, "-m", "turnout.simulator", "--port", str(port), *extra]
    with running(args, {}, tmp / "simulate.log", "/_sim/stats", port) as proc:
        yield proc


@dataclass
class Gateway(Process):
    jwt: JwtCodec


@contextlib.contextmanager
def gateway(tmp: Path, env: dict[str, str], soft_fd_limit: int | None = None) -> Iterator[Gateway]:
    """``turnout serve`` on a fresh SQLite file; ``soft_fd_limit`` lowers its soft RLIMIT_NOFILE
    (the hard limit stays), as a distribution's default of 1024 would."""
    port = free_port()
    secret = secrets.token_hex(32)
    settings = {
        "TURNOUT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/serve.db",
        "TURNOUT_DATA_DIR": str(tmp / "data"),
        "TURNOUT_JWT_SECRET": secret,
        "TURNOUT_MASTER_KEY": secrets.token_hex(32),
        "TURNOUT_TASK_CLASSIFIER": "off",
        **env,
    }

    def lower_limit() -> None:
        if soft_fd_limit is not None:
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft_fd_limit, hard))

    args = [str(BIN / "turnout"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    with running(args, settings, tmp / "serve.log", "/healthz", port, lower_limit) as proc:
        yield Gateway(proc.process, proc.url, proc.log, JwtCodec(secret))


def setup_chat(url: str, jwt: JwtCodec, sim_url: str) -> str:
    """A provider on the simulator, synced, and an agent key allowed its models, made through the
    API of the gateway at ``url``; returns the key once a chat with it is answered."""
    root = {"Authorization": f"Bearer {jwt.mint('root', 'platform', ['platform_admin'])}"}
    ann = {"Authorization": f"Bearer {jwt.mint('ann', 'acme', ['tenant_admin'])}"}
    with httpx.Client(base_url=url, timeout=30) as http:
        provider = {
            "id": "sim",
            "display_name": "Sim",
            "provider_type": "openai",
            "api_base": f"{sim_url}/v1",
        }
        for method, path, body, headers in [
            ("POST", "/api/v2/admin/providers", provider, root),
            ("POST", "/api/v2/admin/providers/sim/sync", None, root),
            ("POST", "/api/v2/agents", {"id": "bot", "name": "Bot"}, ann),
            ("POST", "/api/v2/agents/bot/models", {"bulk_filter": {"provider": "sim"}}, ann),
        ]:
            resp = http.request(method, path, json=body, headers=headers)
            assert resp.status_code < 300, resp.text
        issued = http.post("/api/v2/agents/bot/keys", json={}, headers=ann)
        assert issued.status_code == 201, issued.text
        key = str(issued.json()["key"])
        chat = {"model": "sim/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
        deadline = time.monotonic() + 10
        while True:  # the gateway's snapshot takes the new agent, key and models in the background
            resp = http.post("/v1/chat/completions", json=chat, headers={"Authorization": f"Bearer {key}"})
            if resp.status_code == 200:
                return key
            assert time.monotonic() < deadline, resp.text
            time.sleep(0.1)


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))
