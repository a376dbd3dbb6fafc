"""Gateway overhead, four ways in one run: the provider simulator directly, a bare aiohttp
pass-through proxy (the ceiling for a Python proxy), Turnout (``turnout serve``: uvicorn, uvloop,
httptools, SQLite, agent-key auth, records and limits on) and the LiteLLM proxy 1.109.1. A fifth,
Turnout whose answers do not wait for their record's journal write (``TURNOUT_RECORD_DURABILITY=async``),
shows what durable records cost (skip it with ``--skip-durability-cost``). A sixth, Turnout with
spend control in Redis (a block budget and an rpm limit on the key, reserved and settled on every
call), must keep >= 45% of the pass-through's requests/s and add <= 5 ms p99 (skip: ``--skip-redis``);
the ledger's reserve round trip is reported alone (``bench/spend_reserve.py``). A seventh asks the
same Turnout server the same question through the Responses API (``/v1/responses`` with
``store: false``, passed through to the simulator's own Responses API): its CPU per request must
stay within 115% of chat's (skip: ``--skip-responses``). A stored response (the API's default)
also costs its database write, awaited before the answer so a follow-up can name it. Two more
(skip: ``--skip-observability``) run Turnout with metrics and tracing both off, and both on (spans
exported over OTLP/HTTP to a local receiver, ``bench/otlp_sink.py``): with both on, requests/s must
stay within 10% of both off, and the added p99 <= 5 ms.

One worker process each, all in front of the same simulator. Per target: requests/s at saturation
(wrk, fixed connections), server CPU time per request (``/proc/<pid>/stat`` around that phase),
p50/p99 latency at a moderate fixed rate (a paced open-loop client, the same rate for all) and
streaming time to first token. Then the targets: Turnout >= 20x LiteLLM's and >= 50% of the
pass-through's requests/s; added latency <= 1 ms p50 and <= 5 ms p99; added TTFT <= 2 ms.

    .venv/bin/python bench/gateway.py [--duration 10] [--connections 32] [--skip-litellm]
        [--skip-durability-cost] [--skip-redis] [--skip-responses] [--skip-observability]
        [--redis own|URL] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvloop

import litellm_setup
from common import ROOT, no_gc, percentile, workspace
from gateway_load import Paced, Saturation, Target, closed_loop, ensure_wrk, paced, wrk
from gateway_procs import (
    SIM_KEY,
    Cores,
    Proc,
    configure_simulators,
    otlp_sink,
    passthrough,
    redis_server,
    simulator,
    turnout,
)
from gateway_rawload import paced_raw
from gateway_report import NAMES, checks, report
from spend_reserve import round_trips

RESULTS = ROOT / "bench" / "results" / "gateway.json"


@dataclass
class Entry:
    """A target: the process whose CPU is read, what saturation loads and what paced runs load."""

    proc: Proc
    saturate: Target
    pace: Target
    pace_proc: Proc
    saturation: Saturation | None = None
    cpu_s: float = 0.0
    latency: Paced | None = None
    stream: Paced | None = None

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if (sat := self.saturation) is not None:
            out |= {"rps": sat.rps, "ok": sat.ok, "errors": sat.errors, "seconds": sat.seconds}
            out |= {"cpu_s": self.cpu_s, "cpu_us_per_req": self.cpu_s / sat.ok * 1e6 if sat.ok else None}
            out["cpu_busy"] = self.cpu_s / sat.seconds if sat.seconds else None
        for key, run in (("latency", self.latency), ("stream", self.stream)):
            if run is not None:
                values = run.ttfts_ms if key == "stream" else run.latencies_ms
                out[key] = {"rate": run.rate, "samples": len(values), "errors": run.errors, "late": run.late}
                out[key] |= {"cpu_busy": run.cpu_s / run.seconds, "cpu_us_per_req": run.cpu_per_call * 1e6}
                if values:
                    out[key] |= {"p50_ms": percentile(values, 50), "p99_ms": percentile(values, 99)}
        return out


def saturate(entry: Entry, args: argparse.Namespace, wrk_bin: str | None, tmp: Path, cores: Cores) -> None:
    """Load at ``args.connections`` for one round and add it (and the server's CPU) to the entry."""
    prefix = cores.prefix(cores.load)

    def run(seconds: float) -> Saturation:
        if wrk_bin is not None:
            return wrk(wrk_bin, entry.saturate, args.connections, seconds, tmp, prefix)
        return uvloop.run(closed_loop(entry.saturate, args.connections, seconds))

    if entry.saturation is None:
        run(args.warmup)
    before = entry.proc.cpu_s()
    sat = run(args.duration / args.rounds)
    entry.cpu_s += entry.proc.cpu_s() - before
    if (old := entry.saturation) is not None:
        sat = Saturation(old.ok + sat.ok, old.errors + sat.errors, old.seconds + sat.seconds)
    entry.saturation = sat


def measure(args: argparse.Namespace, tmp: Path, env: dict[str, str], cores: Cores) -> dict[str, Any]:
    wrk_bin = ensure_wrk()
    notes = [f"pinning: {cores.describe()}"]
    notes.append(
        "load: wrk -t1 (Lua script: POST body + Authorization)"
        if wrk_bin
        else "load: wrk unavailable, FALLBACK aiohttp closed loop (the client may be the bottleneck)"
    )
    entries: dict[str, Entry] = {}
    litellm_error: str | None = "skipped (--skip-litellm)" if args.skip_litellm else None
    with ExitStack() as stack:
        own_redis = args.redis == "own" and not args.skip_redis
        redis_proc = stack.enter_context(redis_server(tmp, cores)) if own_redis else None
        redis_url = redis_proc.url if redis_proc is not None else _redis(args)
        if redis_proc is not None:
            notes.append(f"Redis: the benchmark's own redis-server on core {cores.load} (load core)")
        elif redis_url is not None:
            notes.append(f"Redis: {redis_url}, not pinned (it may take CPU from the server's core)")
        upstream = stack.enter_context(simulator(tmp, "sim-upstream", cores.load, cores))
        alone = stack.enter_context(simulator(tmp, "sim-direct", cores.server, cores))
        sims = [upstream, alone]
        model = "gpt-4o-mini"
        sat, pace = (Target("direct", sim.url, SIM_KEY, model) for sim in (alone, upstream))
        entries["direct"] = Entry(alone, sat, pace, upstream)
        proxy = stack.enter_context(passthrough(tmp, upstream.url, cores))
        target = Target("passthrough", proxy.url, SIM_KEY, model)
        entries["passthrough"] = Entry(proxy, target, target, proxy)
        gateway, key = stack.enter_context(turnout(tmp, env, upstream.url, cores))
        target = Target("turnout", gateway.url, key, "sim/gpt-4o-mini")
        entries["turnout"] = Entry(gateway, target, target, gateway)
        if not args.skip_responses:  # the same server, asked the same question through /v1/responses
            target = Target("turnout_responses", gateway.url, key, "sim/gpt-4o-mini", api="responses")
            entries["turnout_responses"] = Entry(gateway, target, target, gateway)
        if not args.skip_durability_cost:  # the same, but answers do not wait for the journal
            nowait_tmp, nowait_env = _async_records(tmp, env)
            gateway, key = stack.enter_context(turnout(nowait_tmp, nowait_env, upstream.url, cores))
            target = Target("turnout_async", gateway.url, key, "sim/gpt-4o-mini")
            entries["turnout_async"] = Entry(gateway, target, target, gateway)
        if not args.skip_observability:  # metrics and tracing both off, then both on
            sink = stack.enter_context(otlp_sink(tmp, cores))
            for name, extra in (
                ("turnout_quiet", {"TURNOUT_METRICS": "false"}),
                ("turnout_observed", {"TURNOUT_METRICS": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": sink.url}),
            ):
                own_tmp, own_env = _own_workspace(tmp, env, name, extra)
                gateway, key = stack.enter_context(turnout(own_tmp, own_env, upstream.url, cores))
                target = Target(name, gateway.url, key, "sim/gpt-4o-mini")
                entries[name] = Entry(gateway, target, target, gateway)
        if redis_url is not None:  # spend control on: a budget and an rpm limit per key, in Redis
            redis_tmp, redis_env = _with_redis(tmp, env, redis_url)
            gateway, key = stack.enter_context(
                turnout(redis_tmp, redis_env, upstream.url, cores, spend_controls=True)
            )
            target = Target("turnout_redis", gateway.url, key, "sim/gpt-4o-mini")
            entries["turnout_redis"] = Entry(gateway, target, target, gateway)
        if not args.skip_litellm:
            try:
                prefix = cores.prefix(cores.server)
                lite, master = stack.enter_context(
                    litellm_setup.proxy(tmp, f"{upstream.url}/v1", SIM_KEY, prefix)
                )
                target = Target("litellm", lite.url, master, litellm_setup.MODEL)
                entries["litellm"] = Entry(lite, target, target, lite)
            except Exception as exc:  # report why, measure the other three
                litellm_error = f"{type(exc).__name__}: {exc}"
                print(f"LiteLLM unavailable: {litellm_error}")

        configure_simulators(sims, tokens_per_second=0, reply_tokens=args.reply_tokens)
        redis_cpu_s = 0.0
        for round_ in range(args.rounds):  # rounds interleave the targets: bursts of noise hit all alike
            for name, entry in entries.items():
                print(f"saturation {round_ + 1}/{args.rounds}: {NAMES[name]} ...", flush=True)
                before = redis_proc.cpu_s() if redis_proc is not None and name == "turnout_redis" else None
                saturate(entry, args, wrk_bin, tmp, cores)
                if before is not None and redis_proc is not None:
                    redis_cpu_s += redis_proc.cpu_s() - before

        base_rate = args.load_fraction * _rps(entries, "turnout")
        rates = {name: base_rate for name in entries}
        if "litellm" in rates:
            rates["litellm"] = min(base_rate, args.load_fraction * _rps(entries, "litellm"))
        for name, entry in entries.items():
            run_paced(entry, rates[name], min(1.0, args.warmup))
        for round_ in range(args.rounds):
            for name, entry in entries.items():
                print(
                    f"moderate load {round_ + 1}/{args.rounds}: {NAMES[name]} at {rates[name]:.0f} req/s ..."
                )
                entry.latency = run_paced(entry, rates[name], args.duration / args.rounds, into=entry.latency)

        configure_simulators(sims, tokens_per_second=args.tokens_per_second, reply_tokens=args.stream_tokens)
        for name, entry in entries.items():
            rates[name] = args.stream_rate
            warmup = run_paced(entry, min(args.stream_rate, 10.0), max(2.0, args.warmup), stream=True)
            if name == "litellm" and warmup.cpu_per_call:  # the rate the others get would swamp it
                rates[name] = min(args.stream_rate, args.load_fraction / warmup.cpu_per_call)
        for round_ in range(args.rounds):
            for name, entry in entries.items():
                print(
                    f"streaming {round_ + 1}/{args.rounds}: {NAMES[name]} at {rates[name]:.0f} streams/s ..."
                )
                seconds = args.duration / args.rounds
                entry.stream = run_paced(entry, rates[name], seconds, stream=True, into=entry.stream)
        reserve = uvloop.run(round_trips(redis_url, 3000)) if redis_url is not None else None
    share = f"{args.load_fraction:.0%}"
    notes.append(
        f"moderate load: open-loop raw HTTP/1.1 client (gateway_rawload) at {share} of Turnout's saturation "
        "(LiteLLM: at most that share of its own); (a) at moderate load is the upstream simulator itself"
    )
    notes.append(
        f"streaming: simulator at {args.tokens_per_second:g} tokens/s, {args.stream_tokens} tokens, "
        f"{args.stream_rate:g} streams/s (LiteLLM: at most {share} of its streaming capacity, from its CPU "
        "per stream in a warm-up); TTFT = time to the first chunk carrying 'data:' (paced aiohttp client)"
    )
    return {
        "config": {k: v for k, v in vars(args).items() if k != "json"},
        "notes": notes,
        "litellm_error": litellm_error,
        "targets": {name: entry.summary() for name, entry in entries.items()},
        "reserve_round_trip": reserve,
        "redis_cpu_us_per_call": _per_call_us(redis_cpu_s, entries.get("turnout_redis")),
    }


def _per_call_us(cpu_s: float, entry: Entry | None) -> float | None:
    """Microseconds of Redis's CPU per answered call of the Redis variant's saturation phase."""
    if entry is None or entry.saturation is None or not entry.saturation.ok or not cpu_s:
        return None
    return cpu_s / entry.saturation.ok * 1e6


def _with_redis(tmp: Path, env: dict[str, str], redis_url: str) -> tuple[Path, dict[str, str]]:
    """A workspace of its own for Turnout with its budgets, limits and ledger in Redis."""
    own = tmp / "redis"
    own.mkdir()
    return own, env | {
        "TURNOUT_DATABASE_URL": f"sqlite+aiosqlite:///{own}/turnout.db",
        "TURNOUT_DATA_DIR": str(own / "data"),
        "TURNOUT_REDIS_URL": redis_url,
    }


def _redis(args: argparse.Namespace) -> str | None:
    """The Redis to measure with, if it answers a ping (else the variant is skipped, with a note)."""
    if args.skip_redis:
        return None
    import redis

    try:
        redis.Redis.from_url(args.redis, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        print(f"Redis unavailable ({args.redis}): {exc}; the Redis variant is skipped")
        return None
    return str(args.redis)


def _own_workspace(
    tmp: Path, env: dict[str, str], name: str, extra: dict[str, str]
) -> tuple[Path, dict[str, str]]:
    """A workspace of its own (SQLite file, data dir) for a Turnout variant with ``extra`` settings."""
    own = tmp / name
    own.mkdir()
    return own, env | extra | {
        "TURNOUT_DATABASE_URL": f"sqlite+aiosqlite:///{own}/turnout.db",
        "TURNOUT_DATA_DIR": str(own / "data"),
    }


def _async_records(tmp: Path, env: dict[str, str]) -> tuple[Path, dict[str, str]]:
    """A workspace of its own (SQLite file, data dir) for Turnout with ``async`` record durability."""
    own = tmp / "records-async"
    own.mkdir()
    database = f"sqlite+aiosqlite:///{own}/turnout.db"
    return own, env | {
        "TURNOUT_DATABASE_URL": database,
        "TURNOUT_DATA_DIR": str(own / "data"),
        "TURNOUT_RECORD_DURABILITY": "async",
    }


def run_paced(
    entry: Entry, rate: float, seconds: float, stream: bool = False, into: Paced | None = None
) -> Paced:
    """A paced run against ``entry.pace`` with the CPU its server spent meanwhile, added to ``into``."""
    before = entry.pace_proc.cpu_s()
    work = paced(entry.pace, rate, seconds, stream=True) if stream else paced_raw(entry.pace, rate, seconds)
    with no_gc():
        result = uvloop.run(work)
    result.cpu_s = entry.pace_proc.cpu_s() - before
    return result if into is None else into.merge(result)


def _rps(entries: dict[str, Entry], name: str) -> float:
    sat = entries[name].saturation
    return sat.rps if sat is not None else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase and target")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up before each")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections at saturation")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds sharing --duration")
    parser.add_argument("--load-fraction", type=float, default=0.4, help="moderate rate / Turnout's rps")
    parser.add_argument("--stream-rate", type=float, default=50.0, help="streams per second")
    parser.add_argument("--tokens-per-second", type=float, default=200.0, help="simulator stream pace")
    parser.add_argument("--stream-tokens", type=int, default=50, help="tokens per streamed reply")
    parser.add_argument("--reply-tokens", type=int, default=16, help="tokens per non-streamed reply")
    parser.add_argument("--skip-litellm", action="store_true", help="measure (a)-(c) only")
    parser.add_argument(
        "--skip-durability-cost", action="store_true", help="no run with TURNOUT_RECORD_DURABILITY=async"
    )
    parser.add_argument("--skip-redis", action="store_true", help="no run with spend control in Redis")
    parser.add_argument(
        "--skip-observability", action="store_true", help="no runs with metrics and tracing off / on"
    )
    parser.add_argument("--skip-responses", action="store_true", help="no run through /v1/responses")
    parser.add_argument(
        "--redis",
        default="own",
        help="the Redis of that run: 'own' (default) starts one on the load core; or a URL",
    )
    parser.add_argument("--json", action="store_true", help=f"write {RESULTS.relative_to(ROOT)}")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails or cannot be told")
    args = parser.parse_args()
    cores = Cores.pick()
    if cores.load is not None:
        os.sched_setaffinity(0, {cores.load})
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    with workspace("sqlite") as (tmp, env):
        results = measure(args, tmp, env, cores)
    results["loadavg"] = [load_before, os.getloadavg()[0]]
    results["wall_s"] = time.monotonic() - started
    results["checks"] = checks(results)
    report(results)
    if args.json:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2))
        print(f"\nwrote {RESULTS.relative_to(ROOT)}")
    if args.strict and any(c["status"] in ("FAIL", "NOISY") for c in results["checks"]):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
