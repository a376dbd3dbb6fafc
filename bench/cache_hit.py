"""Response-cache hits against the provider simulator answering directly, in one run.

A live Turnout (``turnout serve`` on SQLite, agent-key auth, records on; alone on the server core)
whose agent has ``response_cache`` on, in front of the simulator (on the load core). The same
open-loop paced client (``gateway_rawload``) at the same moderate rate, in interleaved rounds, asks:

- (a) the simulator directly (the baseline: what a client pays with no gateway at all);
- (b) Turnout, a request the cache holds (``temperature: 0``): every one is a hit, no upstream call;
- (c) Turnout, the same question sampled (no ``temperature``: not cached), proxied as usual.

It prints p50/p99 per target, what (b) and (c) add over (a), the ratio of Turnout's CPU per hit to
its CPU per proxied call, and checks the target: a hit adds < 1 ms p50 over the simulator itself.
The simulator's own request counter proves (b) never reached it.

    .venv/bin/python bench/cache_hit.py [--duration 10] [--rate 200] [--rounds 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import uvloop

from common import BIN, ROOT, no_gc, percentile, print_table, workspace
from gateway_load import Paced, Target
from gateway_procs import SIM_KEY, Cores, Proc, configure_simulators, simulator, turnout
from gateway_rawload import paced_raw

RESULTS = ROOT / "bench" / "results" / "cache_hit.json"
TARGET_ADDED_P50_MS = 1.0


@dataclass
class CachedTarget(Target):
    """The same question with ``temperature: 0``, which the agent's cache holds."""

    def body(self, stream: bool = False) -> bytes:
        data = json.loads(super().body(stream))
        data["temperature"] = 0
        return json.dumps(data).encode()


def _sim_calls(sim: Proc) -> int:
    stats = httpx.get(f"{sim.url}/_sim/stats", timeout=10).json()
    return int(sum(stats.get("routes", {}).values()))


def _enable_cache(url: str, env: dict[str, str]) -> None:
    """The agent's ``response_cache`` on, through the agents API, as a tenant admin would."""
    cmd = [str(BIN / "turnout"), "token", "--sub", "ann", "--tenant", "acme", "--role", "tenant_admin"]
    token = subprocess.run(cmd, env=env, cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()
    resp = httpx.patch(
        f"{url}/api/v2/agents/bench",
        json={"response_cache": {"ttl_s": 3600}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    resp.raise_for_status()


def _warm(target: Target) -> None:
    """Two calls: the first keeps the answer, the second must be a hit."""
    headers = {"Authorization": f"Bearer {target.key}", "Content-Type": "application/json"}
    seen = []
    for _ in range(2):
        resp = httpx.post(target.endpoint, content=target.body(), headers=headers, timeout=30)
        resp.raise_for_status()
        seen.append(resp.headers.get("x-turnout-cache"))
    if seen != ["miss", "hit"]:
        raise RuntimeError(f"the cache did not take: x-turnout-cache was {seen}")


def _paced(target: Target, proc: Proc, rate: float, seconds: float, into: Paced | None) -> Paced:
    before = proc.cpu_s()
    with no_gc():
        result = uvloop.run(paced_raw(target, rate, seconds))
    result.cpu_s = proc.cpu_s() - before
    return result if into is None else into.merge(result)


def measure(args: argparse.Namespace, cores: Cores) -> dict[str, Any]:
    with workspace("sqlite") as (tmp, env), ExitStack() as stack:
        sim = stack.enter_context(simulator(tmp, "sim-upstream", cores.load, cores))
        configure_simulators([sim], tokens_per_second=0, reply_tokens=args.reply_tokens)
        gateway, key = stack.enter_context(turnout(tmp, env, sim.url, cores))
        _enable_cache(gateway.url, env)
        targets: dict[str, tuple[Target, Proc]] = {
            "direct": (Target("direct", sim.url, SIM_KEY, "gpt-4o-mini"), sim),
            "cache_hit": (CachedTarget("cache_hit", gateway.url, key, "sim/gpt-4o-mini"), gateway),
            "proxied": (Target("proxied", gateway.url, key, "sim/gpt-4o-mini"), gateway),
        }
        _warm(targets["cache_hit"][0])
        for target, proc in targets.values():  # warm-up, not measured
            _paced(target, proc, args.rate, args.warmup, None)
        results: dict[str, Paced] = {}
        hit_upstream_calls = 0
        for round_ in range(args.rounds):  # interleaved: a burst of noise hits every target alike
            for name, (target, proc) in targets.items():
                print(f"round {round_ + 1}/{args.rounds}: {name} at {args.rate:g} req/s ...", flush=True)
                before = _sim_calls(sim)
                seconds = args.duration / args.rounds
                results[name] = _paced(target, proc, args.rate, seconds, results.get(name))
                if name == "cache_hit":
                    hit_upstream_calls += _sim_calls(sim) - before
    summary: dict[str, Any] = {"rate": args.rate, "cores": cores.describe(), "targets": {}}
    for name, run in results.items():
        values = run.latencies_ms
        summary["targets"][name] = {
            "samples": len(values),
            "errors": run.errors,
            "late": run.late,
            "p50_ms": percentile(values, 50) if values else None,
            "p99_ms": percentile(values, 99) if values else None,
            "cpu_per_call_us": run.cpu_per_call * 1e6,
        }
    summary["hit_upstream_calls"] = hit_upstream_calls
    return summary


def report(summary: dict[str, Any]) -> bool:
    targets = summary["targets"]
    base = targets["direct"]
    rows = []
    for name, label in (
        ("direct", "(a) simulator directly"),
        ("cache_hit", "(b) Turnout, cache hit"),
        ("proxied", "(c) Turnout, proxied (not cached)"),
    ):
        t = targets[name]
        added50 = t["p50_ms"] - base["p50_ms"]
        added99 = t["p99_ms"] - base["p99_ms"]
        rows.append(
            [
                label,
                t["samples"],
                t["errors"],
                f"{t['p50_ms']:.3f}",
                f"{t['p99_ms']:.3f}",
                "-" if name == "direct" else f"{added50:+.3f}",
                "-" if name == "direct" else f"{added99:+.3f}",
                f"{t['p50_ms'] / base['p50_ms']:.2f}x",
            ]
        )
    print(f"\npaced at {summary['rate']:g} req/s (open loop, raw HTTP/1.1); {summary['cores']}")
    print_table(["target", "ok", "errors", "p50 ms", "p99 ms", "added p50", "added p99", "p50 / (a)"], rows)
    hit, proxied = targets["cache_hit"], targets["proxied"]
    cpu = hit["cpu_per_call_us"] / proxied["cpu_per_call_us"] if proxied["cpu_per_call_us"] else float("nan")
    print(f"\nTurnout CPU per call: hit / proxied = {cpu:.2f}")
    print(
        f"p50: hit / proxied = {hit['p50_ms'] / proxied['p50_ms']:.2f}; "
        f"upstream calls during the hit runs: {summary['hit_upstream_calls']}"
    )
    added = hit["p50_ms"] - base["p50_ms"]
    ok = added < TARGET_ADDED_P50_MS and summary["hit_upstream_calls"] == 0 and hit["errors"] == 0
    print(
        f"\nadded p50 of a cache hit over the simulator itself: {added:+.3f} ms "
        f"(target < {TARGET_ADDED_P50_MS:g} ms): {'PASS' if ok else 'FAIL'}"
    )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per target")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up per target")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds sharing --duration")
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second, every target")
    parser.add_argument("--reply-tokens", type=int, default=16, help="tokens per reply")
    parser.add_argument("--json", action="store_true", help=f"write {RESULTS.relative_to(ROOT)}")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args()
    cores = Cores.pick()
    if cores.load is not None:
        os.sched_setaffinity(0, {cores.load})
    summary = measure(args, cores)
    ok = report(summary)
    if args.json:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(summary, indent=2))
        print(f"wrote {RESULTS.relative_to(ROOT)}")
    if args.strict and not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
