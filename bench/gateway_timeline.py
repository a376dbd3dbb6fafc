"""When the slow requests happen: a paced run against ``turnout serve`` that prints each slow
request's completion time, so periodic causes show up as clusters (a flush every 0.2 s, a stall
3,000 requests in). This is how the record flush's 4-6 ms clusters and the load generator's own
GC stall were found.

    .venv/bin/python bench/gateway_timeline.py [--rate 1000] [--seconds 10] [--slow-ms 4]
"""

from __future__ import annotations

import argparse
import os
import time

import uvloop

from common import no_gc, percentile, workspace
from gateway_load import Paced, Target
from gateway_procs import Cores, simulator, turnout
from gateway_rawload import paced_raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--slow-ms", type=float, default=4.0, help="list requests slower than this")
    args = parser.parse_args()
    cores = Cores.pick()
    if cores.load is not None:
        os.sched_setaffinity(0, {cores.load})
    stamps: list[tuple[float, float]] = []  # (completion time, latency ms)

    def timed(latency_ms: float) -> None:
        stamps.append((time.perf_counter(), latency_ms))

    with workspace("sqlite") as (tmp, env), simulator(tmp, "sim", cores.load, cores) as sim:
        with turnout(tmp, env, sim.url, cores) as (gateway, key):
            target = Target("turnout", gateway.url, key, "sim/gpt-4o-mini")
            uvloop.run(paced_raw(target, args.rate, 2.0))  # warm-up
            with no_gc():
                run: Paced = uvloop.run(paced_raw(target, args.rate, args.seconds, on_done=timed))
    latencies = [latency for _, latency in stamps]
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    print(f"{args.rate:g}/s: {len(latencies)} ok, {run.errors} errors, {run.late} late;", end=" ")
    print(f"p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    start = stamps[0][0] if stamps else 0.0
    slow = [f"{(at - start) * 1000:.0f}:{ms:.1f}" for at, ms in stamps if ms > args.slow_ms]
    print(f"{len(slow)} requests over {args.slow_ms:g} ms (completed at ms:latency ms):")
    print(" ".join(slow))


if __name__ == "__main__":
    main()
