"""Processes of ``bench/gateway.py``: core pinning, subprocesses that always end, CPU time from
``/proc``, and Turnout set up the way a user would (provider, sync, agent, API key)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from common import API, BIN, ROOT, admin_token, call, free_port, wait_ready

SIM_KEY = "sk-sim-Bench7Upstream4Key"
TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Cores:
    """Where things run: the server under test alone on ``server``; load and upstream on ``load``."""

    server: int | None
    load: int | None

    @staticmethod
    def pick() -> Cores:
        cores = sorted(os.sched_getaffinity(0))
        if len(cores) < 2 or not Path("/usr/bin/taskset").exists():
            return Cores(None, None)
        return Cores(cores[-1], cores[0])

    def prefix(self, core: int | None) -> list[str]:
        return [] if core is None else ["taskset", "-c", str(core)]

    def describe(self) -> str:
        if self.server is None:
            return "no pinning (fewer than 2 cores or no taskset)"
        return (
            f"server under test alone on core {self.server}; load generator, upstream simulator "
            f"and this script on core {self.load}"
        )


@dataclass
class Proc:
    """A started subprocess and its base URL."""

    name: str
    popen: subprocess.Popen[bytes]
    url: str
    log: Path

    def cpu_s(self) -> float:
        """User + system CPU seconds of the process and its descendants (threads included)."""
        return sum(_own_cpu(pid) for pid in _tree(self.popen.pid)) / TICK


def _own_cpu(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def stop(popen: subprocess.Popen[bytes], sig: int = signal.SIGTERM, wait_s: float = 10.0) -> None:
    """``sig``, then SIGKILL after ``wait_s``; descendants left behind are killed too."""
    family = _tree(popen.pid)[1:]
    if popen.poll() is None:
        popen.send_signal(sig)
        try:
            popen.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()
    for pid in family:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass


@contextmanager
def started(
    name: str,
    cmd: Sequence[str],
    env: dict[str, str],
    log: Path,
    ready: str,
    timeout_s: float = 180.0,
    sig: int = signal.SIGTERM,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``cmd`` until the block ends (always stopped in ``finally``, by ``sig`` first); wait for
    ``ready`` to answer 200."""
    with log.open("ab") as out:
        popen = subprocess.Popen(list(cmd), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_ready(ready, popen, log, timeout_s)
        yield popen
    finally:
        stop(popen, sig, 10.0 if sig == signal.SIGTERM else 60.0)


@contextmanager
def simulator(tmp: Path, name: str, core: int | None, cores: Cores) -> Iterator[Proc]:
    """``python -m turnout.simulator`` with ``SIM_KEY`` (reconfigured per phase via ``/_sim/config``)."""
    port = free_port()
    cmd = [*cores.prefix(core), str(BIN / "python"), "-m", "turnout.simulator", "--port", str(port)]
    cmd += ["--api-key", SIM_KEY]
    url = f"http://127.0.0.1:{port}"
    log = tmp / f"{name}.log"
    with started(name, cmd, dict(os.environ), log, f"{url}/_sim/health") as popen:
        yield Proc(name, popen, url, log)


def configure_simulators(sims: Sequence[Proc], **config: object) -> None:
    """Change every simulator's settings (e.g. ``tokens_per_second``) while it runs."""
    for sim in sims:
        httpx.post(f"{sim.url}/_sim/config", json=config, timeout=10).raise_for_status()


@contextmanager
def redis_server(tmp: Path, cores: Cores) -> Iterator[Proc]:
    """A Redis of the benchmark's own on the load core, keeping nothing on disk: a production
    Redis runs on its own host, so its CPU must not be taken from the server under test's core
    (the system Redis here floats over both cores)."""
    port = free_port()
    cmd = [*cores.prefix(cores.load), "redis-server", "--port", str(port), "--bind", "127.0.0.1"]
    cmd += ["--save", "", "--appendonly", "no", "--dir", str(tmp)]
    log = tmp / "redis.log"
    with log.open("ab") as out:
        popen = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                if popen.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start: {log.read_text()[-500:]}") from None
                time.sleep(0.05)
        yield Proc("redis", popen, f"redis://127.0.0.1:{port}/0", log)
    finally:
        stop(popen, signal.SIGTERM, 10.0)


@contextmanager
def passthrough(tmp: Path, upstream: str, cores: Cores) -> Iterator[Proc]:
    """``bench/passthrough.py`` (aiohttp + uvloop) in front of ``upstream``."""
    port = free_port()
    cmd = [*cores.prefix(cores.server), str(BIN / "python"), str(ROOT / "bench" / "passthrough.py")]
    cmd += ["--port", str(port), "--upstream", upstream]
    url = f"http://127.0.0.1:{port}"
    log = tmp / "passthrough.log"
    with started("passthrough", cmd, dict(os.environ), log, f"{url}/healthz") as popen:
        yield Proc("passthrough", popen, url, log)


@contextmanager
def otlp_sink(tmp: Path, cores: Cores) -> Iterator[Proc]:
    """``bench/otlp_sink.py``, a trace receiver on the load core (it takes no CPU from the server's)."""
    port = free_port()
    cmd = [*cores.prefix(cores.load), str(BIN / "python"), str(ROOT / "bench" / "otlp_sink.py")]
    cmd += ["--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    with started("otlp-sink", cmd, dict(os.environ), tmp / "otlp-sink.log", f"{url}/healthz") as popen:
        yield Proc("otlp-sink", popen, url, tmp / "otlp-sink.log")


@contextmanager
def turnout(
    tmp: Path,
    env: dict[str, str],
    sim_url: str,
    cores: Cores,
    profile: Path | None = None,
    serve: Sequence[str] | None = None,
    spend_controls: bool = False,
) -> Iterator[tuple[Proc, str]]:
    """``turnout serve`` on SQLite with the simulator as provider ``sim``; yields it and an agent key.

    With ``profile`` it runs under ``python -m cProfile -o profile`` (written when it stops);
    ``serve`` replaces ``turnout serve`` (a script taking ``--port``, for experiments). With
    ``spend_controls`` the key gets a block budget and an rpm limit too high to refuse anything, so
    every call does the full reserve and settle (in Redis when ``TURNOUT_REDIS_URL`` is set).
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    wrap = [str(BIN / "python"), "-m", "cProfile", "-o", str(profile)] if profile else []
    program = list(serve) if serve else [str(BIN / "turnout"), "serve"]
    cmd = [*cores.prefix(cores.server), *wrap, *program, "--port", str(port)]
    log = tmp / "turnout.log"
    # uvicorn re-raises the signal after shutdown: SIGINT becomes KeyboardInterrupt, so cProfile writes
    with started(
        "turnout", cmd, env, log, f"{url}/healthz", sig=signal.SIGINT if profile else signal.SIGTERM
    ) as popen:
        root = {"Authorization": f"Bearer {admin_token(env)}"}
        with httpx.Client(base_url=url, headers=root, timeout=120.0) as http:
            body = {"id": "sim", "display_name": "sim", "provider_type": "openai"}
            body |= {"api_base": f"{sim_url}/v1", "api_key": SIM_KEY}
            call(http, "POST", f"{API}/providers", json=body)
            call(http, "POST", f"{API}/providers/sim/sync")
            tokens = [str(BIN / "turnout"), "token", "--sub", "ann", "--tenant", "acme"]
            tenant = subprocess.run(
                [*tokens, "--role", "tenant_admin"],
                env=env,
                cwd=ROOT,
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
            admin = {"Authorization": f"Bearer {tenant}"}
            call(http, "POST", "/api/v2/agents", json={"id": "bench", "name": "Bench"}, headers=admin)
            key = call(http, "POST", "/api/v2/agents/bench/keys", json={}, headers=admin)["key"]
            enable = {"model_ids": ["sim/gpt-4o-mini"]}  # agents use only the models enabled for them
            resp = http.post("/api/v2/agents/bench/models", json=enable, headers=admin)
            if resp.status_code >= 300 and resp.status_code not in (404, 405):  # 404/405: no such API
                raise RuntimeError(f"enabling the model for the agent: {resp.status_code} {resp.text[:300]}")
            if spend_controls:
                key_id = key.removeprefix("tk-").split(".")[0]
                budget = {"name": "bench", "scope": "api_key", "scope_id": key_id, "period": "daily"}
                budget |= {"amount_usd": 1_000_000, "action": "block"}
                call(http, "POST", "/api/v2/budgets", json=budget, headers=admin)
                limit = {"scope": "api_key", "scope_id": key_id, "rpm": 10_000_000}
                call(http, "POST", "/api/v2/limits", json=limit, headers=admin)
            _wait_usable(http, key)
        yield Proc("turnout", popen, url, log), key


def _wait_usable(http: httpx.Client, key: str, timeout_s: float = 30.0) -> None:
    """The key and model reach the data plane through a snapshot refresh; wait for a 200."""
    body = {"model": "sim/gpt-4o-mini", "messages": [{"role": "user", "content": "ready?"}]}
    deadline = time.monotonic() + timeout_s
    while True:
        resp = http.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"})
        if resp.status_code == 200:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"turnout never served the bench key: {resp.status_code} {resp.text[:300]}")
        time.sleep(0.2)
