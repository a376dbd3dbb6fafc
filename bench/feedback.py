"""Benchmark: feedback submission latency at a fixed rate through the HTTP API, end to end.

A real ``turnout serve`` (SQLite by default) answers ``POST /api/v2/chat/messages/{id}/feedback``
for messages that were recorded beforehand; a paced aiohttp client sends ``--rate`` ratings per
second for ``--seconds`` and measures each one. Same-run baseline: ``GET /healthz`` at the same pace.
Target (issue): p99 <= 20 ms at 500 ratings/s.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import subprocess
import time
import uuid
from pathlib import Path

import aiohttp

from common import BIN, gateway, percentile, print_table, workspace
from turnout.store.db import make_engine, make_sessionmaker
from turnout.store.messages import Message
from turnout.store.migrate import upgrade
from turnout.store.models import utcnow

TARGET_P99_MS = 20.0


async def seed_messages(url: str, count: int) -> list[str]:
    """Record ``count`` answered messages of tenant ``acme`` (as the gateway's writer would)."""
    engine = make_engine(url)
    await upgrade(engine)
    ids = [str(uuid.uuid4()) for _ in range(count)]
    sessions = make_sessionmaker(engine)
    async with sessions.begin() as session:
        for i, mid in enumerate(ids):
            session.add(
                Message(id=mid, tenant_id="acme", agent_id="bot", model=f"sim/model-{i % 8}", provider="sim",
                        dialect="openai", endpoint="chat", stream=False, status="ok", http_status=200,
                        task_type=("code", "general", "math")[i % 3], created_at=utcnow())
            )  # fmt: skip
    await engine.dispose()
    return ids


async def paced(base: str, rate: float, seconds: float, make: object) -> list[float]:
    """Send ``rate`` requests per second for ``seconds``; each request's latency in ms."""
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(base_url=base, connector=connector) as http:

        async def one(i: int) -> None:
            method, path, kwargs = make(i)  # type: ignore[operator]
            started = time.perf_counter()
            async with http.request(method, path, **kwargs) as resp:
                await resp.read()
                assert resp.status == 200, (resp.status, await resp.text())
            latencies.append((time.perf_counter() - started) * 1000)

        tasks = []
        start = time.perf_counter()
        total = int(rate * seconds)
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    with workspace(args.db) as (tmp, env):
        ids = asyncio.run(seed_messages(env["TURNOUT_DATABASE_URL"], args.messages))
        with gateway(Path(tmp), env) as client:
            base = str(client.base_url)

            cmd = [str(BIN / "turnout"), "token", "--sub", "rater", "--tenant", "acme", "--role", "user"]
            token = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout.strip()
            headers = {"Authorization": f"Bearer {token}"}
            rng = random.Random(7)

            def rating(i: int) -> tuple[str, str, dict[str, object]]:
                body = {"rating": rng.choice((0.0, 0.5, 1.0))}
                path = f"/api/v2/chat/messages/{rng.choice(ids)}/feedback"
                return "POST", path, {"json": body, "headers": headers}

            def health(i: int) -> tuple[str, str, dict[str, object]]:
                return "GET", "/healthz", {}

            try:
                asyncio.run(paced(base, args.rate, 2.0, rating))  # warm-up
            except AssertionError:
                print((Path(tmp) / "gateway.log").read_text()[-4000:])
                raise
            baseline = asyncio.run(paced(base, args.rate, args.seconds, health))
            feedback = asyncio.run(paced(base, args.rate, args.seconds, rating))
    rows = []
    for name, values in (("healthz (baseline)", baseline), ("feedback", feedback)):
        rows.append([name, len(values), f"{percentile(values, 50):.2f}", f"{percentile(values, 95):.2f}",
                     f"{percentile(values, 99):.2f}"])  # fmt: skip
    print(f"\nfeedback at {args.rate:g}/s for {args.seconds:g} s, end to end over HTTP ({args.db})")
    print_table(["endpoint", "requests", "p50 ms", "p95 ms", "p99 ms"], rows)
    p99 = percentile(feedback, 99)
    ratio = p99 / max(percentile(baseline, 99), 1e-9)
    verdict = "PASS" if p99 <= TARGET_P99_MS else "FAIL"
    print(
        f"\nfeedback p99 {p99:.2f} ms (x{ratio:.1f} healthz p99), target <= {TARGET_P99_MS:g} ms: {verdict}"
    )
    raise SystemExit(0 if verdict == "PASS" else 1)


if __name__ == "__main__":
    main()
