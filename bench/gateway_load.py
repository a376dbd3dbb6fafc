"""Load for ``bench/gateway.py``: ``wrk`` (with a Lua script for the POST body and key) at
saturation, or an aiohttp closed loop when wrk is missing; a paced open-loop aiohttp client for
latency at a fixed rate and for streaming time to first token."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

LUA = """wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRKJSON {{\\"requests\\": %d, \\"duration_us\\": %d, \\"status\\": %d, "
    .. "\\"connect\\": %d, \\"read\\": %d, \\"write\\": %d, \\"timeout\\": %d}}\\n",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout))
end
"""


@dataclass
class Target:
    """One server to load: where, with which key and model."""

    name: str
    url: str
    key: str
    model: str
    api: str = "chat"  # chat: /v1/chat/completions; responses: /v1/responses, the same question

    def body(self, stream: bool = False) -> bytes:
        data: dict[str, object] = {"model": self.model}
        if self.api == "responses":  # store: false: the translation's cost, not the stored copy's
            data |= {"input": PROMPT, "max_output_tokens": 64, "store": False}
        else:
            data |= {"messages": [{"role": "user", "content": PROMPT}], "max_tokens": 64}
        if stream:
            data["stream"] = True
        return json.dumps(data).encode()

    @property
    def endpoint(self) -> str:
        return f"{self.url}/v1/responses" if self.api == "responses" else f"{self.url}/v1/chat/completions"


PROMPT = "Hello! How fast is this gateway today?"


@dataclass
class Saturation:
    ok: int
    errors: int
    seconds: float

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


@dataclass
class Paced:
    rate: float
    latencies_ms: list[float] = field(default_factory=list)
    ttfts_ms: list[float] = field(default_factory=list)
    errors: int = 0
    late: int = 0  # requests the client itself sent > 1 ms behind schedule
    seconds: float = 0.0
    cpu_s: float = 0.0  # the server's, filled in by the caller

    def merge(self, other: Paced) -> Paced:
        """This run and ``other`` as one (same rate)."""
        self.latencies_ms += other.latencies_ms
        self.ttfts_ms += other.ttfts_ms
        self.errors += other.errors
        self.late += other.late
        self.seconds += other.seconds
        self.cpu_s += other.cpu_s
        return self

    @property
    def cpu_per_call(self) -> float:
        done = len(self.latencies_ms)
        return self.cpu_s / done if done else 0.0


def ensure_wrk() -> str | None:
    """``wrk``'s path; installs Debian's package when missing and root. ``None``: use the fallback."""
    found = shutil.which("wrk")
    if found or shutil.which("apt-get") is None:
        return found
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
        try:
            subprocess.run(cmd, check=True, capture_output=True, timeout=600)
        except (subprocess.SubprocessError, OSError):
            return None
    return shutil.which("wrk")


def wrk(
    wrk_bin: str, target: Target, connections: int, seconds: float, tmp: Path, prefix: list[str]
) -> Saturation:
    """Closed-loop load from one wrk thread with ``connections`` keep-alive connections."""
    script = tmp / f"wrk-{target.name}.lua"
    script.write_text(LUA.format(body=target.body().decode(), key=target.key))
    cmd = [*prefix, wrk_bin, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s"]
    out = subprocess.run(
        [*cmd, "-s", str(script), target.endpoint], capture_output=True, text=True, check=True
    )
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{out.stdout}\n{out.stderr}")
    data = json.loads(line[8:])
    errors = data["status"] + data["connect"] + data["read"] + data["write"] + data["timeout"]
    return Saturation(data["requests"] - data["status"], errors, data["duration_us"] / 1e6)


async def closed_loop(target: Target, connections: int, seconds: float) -> Saturation:
    """The fallback without wrk: ``connections`` aiohttp workers posting back to back."""
    headers = {"Authorization": f"Bearer {target.key}", "Content-Type": "application/json"}
    body, ok, errors = target.body(), 0, 0
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        start = time.perf_counter()
        deadline = start + seconds

        async def worker() -> None:
            nonlocal ok, errors
            while time.perf_counter() < deadline:
                try:
                    async with session.post(target.endpoint, data=body) as resp:
                        await resp.read()
                        ok, errors = (ok + 1, errors) if resp.status == 200 else (ok, errors + 1)
                except aiohttp.ClientError:
                    errors += 1

        await asyncio.gather(*(worker() for _ in range(connections)))
        return Saturation(ok, errors, time.perf_counter() - start)


async def paced(target: Target, rate: float, seconds: float, stream: bool = False) -> Paced:
    """Open loop: request ``i`` starts at ``i / rate`` s whatever the answers before it did.

    Latency runs from just before the request is written until the whole body is read; with
    ``stream``, time to first token runs to the first chunk carrying ``data:``.
    """
    headers = {"Authorization": f"Bearer {target.key}", "Content-Type": "application/json"}
    body, result = target.body(stream), Paced(rate)
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
    async with aiohttp.ClientSession(connector=connector, headers=headers, timeout=timeout) as session:

        async def one() -> None:
            start = time.perf_counter()
            first: float | None = None
            try:
                async with session.post(target.endpoint, data=body) as resp:
                    if not stream:
                        await resp.read()
                    else:
                        async for chunk in resp.content.iter_any():
                            if first is None and b"data:" in chunk:
                                first = time.perf_counter()
                    end = time.perf_counter()
                    if resp.status != 200:
                        result.errors += 1
                        return
            except (aiohttp.ClientError, TimeoutError):
                result.errors += 1
                return
            result.latencies_ms.append((end - start) * 1000)
            if first is not None:
                result.ttfts_ms.append((first - start) * 1000)

        loop = asyncio.get_running_loop()
        tasks: list[asyncio.Task[None]] = []
        begin = loop.time() + 0.01
        for i in range(max(1, int(rate * seconds))):
            due = begin + i / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.001:
                result.late += 1
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
        result.seconds = loop.time() - begin
    return result
