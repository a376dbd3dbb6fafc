"""Profile Turnout's hot path under load: ``turnout serve`` (pinned to its own core) in front of the
simulator, loaded by wrk at saturation or by the paced client, and either

- run under ``python -m cProfile`` (``--cprofile``): top functions by own and cumulative time,
  raw profile in ``bench/results/turnout.prof``; deterministic, so it inflates small calls; or
- sampled by an external ``py-spy`` binary (``--py-spy PATH``, e.g. from a throwaway venv; never
  installed by the project): top frames by own and inclusive samples, collapsed stacks in
  ``bench/results/turnout-pyspy.txt``; or
- neither: only req/s, latency and CPU per request (to try settings, e.g.
  ``TURNOUT_RECORD_BATCH_SIZE=50 .venv/bin/python bench/gateway_profile.py --rate 900``);
- and/or ``--stalls``: what the event loop was doing whenever it stalled (see gateway_stalls).

    .venv/bin/python bench/gateway_profile.py [--duration 15] [--rate 0 (=saturate)] [--stream]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pstats
import shutil
import sqlite3
import subprocess
from collections import Counter
from pathlib import Path

import uvloop

import gateway_stalls
from common import BIN, ROOT, SQLITE_FILE, no_gc, percentile, workspace
from gateway_load import Target, ensure_wrk, paced, wrk
from gateway_procs import Cores, Proc, configure_simulators, redis_server, simulator, turnout
from gateway_rawload import paced_raw

RESULTS = ROOT / "bench" / "results"


def load(args: argparse.Namespace, gateway: Proc, key: str, tmp: Path, cores: Cores) -> None:
    """Drive the gateway for ``args.duration`` s and print what it did."""
    target = Target("turnout", gateway.url, key, "sim/gpt-4o-mini")
    if args.preload > 0 and (wrk_bin := ensure_wrk()) is not None:  # history, as after a saturation phase
        print(f"preload: {wrk(wrk_bin, target, 32, args.preload, tmp, cores.prefix(cores.load)).ok} requests")
    if args.rate > 0:  # warm up: connections, lazy imports, caches
        uvloop.run(
            paced(target, args.rate, 2.0, stream=True) if args.stream else paced_raw(target, args.rate, 2.0)
        )
    before, rows_before = gateway.cpu_s(), stored_records(tmp)
    if args.rate > 0:
        work = paced(target, args.rate, args.duration, stream=True) if args.stream else None
        with no_gc():
            run = uvloop.run(work or paced_raw(target, args.rate, args.duration))
        values = run.ttfts_ms if args.stream else run.latencies_ms
        done, seconds = len(values), run.seconds
        what = "TTFT" if args.stream else "latency"
        p50, p99, p999 = (percentile(values, p) for p in (50, 99, 99.9))
        print(f"paced {args.rate:g}/s: {done} ok, {run.errors} errors, {what} p50 {p50:.2f} ms,")
        print(f"  p99 {p99:.2f} ms, p99.9 {p999:.2f} ms, max {max(values):.2f} ms")
    else:
        wrk_bin = ensure_wrk()
        if wrk_bin is None:
            raise SystemExit("saturation needs wrk")
        sat = wrk(wrk_bin, target, args.connections, args.duration, tmp, cores.prefix(cores.load))
        done, seconds = sat.ok, sat.seconds
        print(f"wrk -c{args.connections}: {sat.rps:.0f} req/s, {sat.errors} errors")
    cpu = gateway.cpu_s() - before
    per, busy = cpu / done * 1e6, 100 * cpu / seconds
    print(f"server CPU {cpu:.2f} s = {per:.0f} us/request, {busy:.0f}% busy")
    stored = stored_records(tmp) - rows_before  # a writer that falls behind defers its CPU cost
    print(f"records stored meanwhile: {stored} for {done} requests ({100 * stored / max(done, 1):.0f}%)")


def stored_records(tmp: Path) -> int:
    """Message rows in the gateway's SQLite file (read-only; WAL lets it read beside the writer)."""
    with contextlib.closing(sqlite3.connect(f"file:{tmp}/{SQLITE_FILE}?mode=ro", uri=True)) as db:
        return int(db.execute("SELECT count(*) FROM messages").fetchone()[0])


def sampled(path: Path, top: int) -> None:
    """Own and inclusive sample shares per frame from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames, n = stack.split(";"), int(count)
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            incl[frame] += n
    for title, counter in (("own", own), ("inclusive", incl)):
        print(f"\ntop {top} frames by {title} samples (of {total} samples while busy)")
        for frame, n in counter.most_common(top):
            print(f"{100 * n / total:6.1f}%  {frame}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rate", type=float, default=0.0, help="paced req/s (0: saturate with wrk)")
    parser.add_argument("--stream", action="store_true", help="paced streaming requests (needs --rate)")
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument("--preload", type=float, default=0.0, help="seconds of saturation load first")
    parser.add_argument("--cprofile", action="store_true", help="run turnout under cProfile")
    parser.add_argument("--py-spy", type=Path, help="sample turnout with this py-spy binary")
    parser.add_argument("--stalls", action="store_true", help="catch what blocks the event loop")
    parser.add_argument("--serve", type=Path, help="a script serving Turnout instead of `turnout serve`")
    parser.add_argument(
        "--redis",
        action="store_true",
        help="spend control on (a budget and an rpm limit on the key) in a Redis of its own on the load core",
    )
    args = parser.parse_args()
    cores = Cores.pick()
    if cores.load is not None:
        os.sched_setaffinity(0, {cores.load})
    RESULTS.mkdir(parents=True, exist_ok=True)
    with workspace("sqlite") as (tmp, env):
        prof = tmp / "turnout.prof" if args.cprofile else None
        stacks = RESULTS / "turnout-pyspy.txt"
        stall_report = RESULTS / "turnout-stalls.json"
        if args.stalls:
            stall_report.unlink(missing_ok=True)
            env = gateway_stalls.install(env, tmp, stall_report)
        with contextlib.ExitStack() as stack:
            sim = stack.enter_context(simulator(tmp, "sim", cores.load, cores))
            redis = stack.enter_context(redis_server(tmp, cores)) if args.redis else None
            if redis is not None:
                env = env | {"TURNOUT_REDIS_URL": redis.url}
            if args.stream:
                configure_simulators([sim], tokens_per_second=200, reply_tokens=50)
            serve = [str(BIN / "python"), str(args.serve)] if args.serve else None
            with turnout(tmp, env, sim.url, cores, profile=prof, serve=serve, spend_controls=args.redis) as (
                gateway,
                key,
            ):
                spy = None
                if args.py_spy:
                    cmd = [
                        *cores.prefix(cores.load),
                        str(args.py_spy),
                        "record",
                        "-p",
                        str(gateway.popen.pid),
                    ]
                    cmd += [
                        "--nonblocking",
                        "--subprocesses",
                        "--gil",
                        "--threads",
                        "-r",
                        "500",
                        "-d",
                        str(round(args.duration)),
                        "-f",
                        "raw",
                        "-o",
                        str(stacks),
                    ]
                    spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                redis_before = redis.cpu_s() if redis is not None else 0.0
                try:
                    load(args, gateway, key, tmp, cores)
                    if redis is not None:
                        print(f"Redis server CPU meanwhile: {redis.cpu_s() - redis_before:.2f} s")
                finally:
                    if spy is not None and spy.wait(timeout=60) != 0:
                        print(f"py-spy failed: {spy.stderr.read().decode() if spy.stderr else ''}")
        if prof is not None:
            shutil.copy(prof, RESULTS / "turnout.prof")
            stats = pstats.Stats(str(prof))
            stats.sort_stats("tottime").print_stats(args.top)
            stats.sort_stats("cumulative").print_stats(args.top)
        if args.py_spy and stacks.exists():
            sampled(stacks, args.top)
        if args.stalls:
            gateway_stalls.summary(stall_report)


if __name__ == "__main__":
    main()
