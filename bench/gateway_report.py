"""Tables and target checks of ``bench/gateway.py`` (from its JSON-able results)."""

from __future__ import annotations

from typing import Any

from common import print_table

NAMES = {"direct": "(a) simulator direct", "passthrough": "(b) aiohttp pass-through"}
NAMES |= {"turnout": "(c) Turnout", "litellm": "(d) LiteLLM 1.109.1"}
NAMES |= {"turnout_async": "(e) Turnout, answers not waiting for records"}
NAMES |= {"turnout_redis": "(f) Turnout, budget + rpm limit in Redis"}
NAMES |= {"turnout_responses": "(g) Turnout, /v1/responses"}
NAMES |= {"turnout_quiet": "(h) Turnout, metrics and tracing off"}
NAMES |= {"turnout_observed": "(i) Turnout, metrics on, traces to OTLP"}


def _fmt(value: Any, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def checks(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The targets, each ``{"name", "value", "limit", "status"}``: PASS, FAIL, SKIP, or NOISY for a
    latency from a run in which the paced client sent over 1% of its requests late (a stalled VM:
    the figure says nothing; rerun)."""
    t = results["targets"]
    out: list[dict[str, Any]] = []

    def check(name: str, value: float | None, limit: float, ok: bool | None) -> None:
        status = "SKIP" if value is None or ok is None else "PASS" if ok else "FAIL"
        out.append({"name": name, "value": value, "limit": limit, "status": status})

    def get(name: str, *path: str) -> float | None:
        node: Any = t.get(name)
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        return node if isinstance(node, float | int) else None

    turn, lite, bare = get("turnout", "rps"), get("litellm", "rps"), get("passthrough", "rps")
    ratio = turn / lite if turn is not None and lite else None
    check("Turnout req/s >= 20x LiteLLM's", ratio, 20.0, None if ratio is None else ratio >= 20)
    share = turn / bare if turn is not None and bare else None
    check("Turnout req/s >= 50% of pass-through's", share, 0.5, None if share is None else share >= 0.5)
    cpu = {name: get(name, "cpu_us_per_req") for name in ("turnout", "litellm", "passthrough")}
    for other, limit in (("litellm", 20.0), ("passthrough", 0.5)):
        mine, theirs = cpu["turnout"], cpu[other]
        value = theirs / mine if mine and theirs else None  # requests per CPU-second, as a ratio
        name = f"  same, CPU-normalized (their CPU/req over Turnout's) vs {other}"
        out.append({"name": name, "value": value, "limit": limit, "status": "INFO"})
    durable_cost(get, out)
    responses, chat = get("turnout_responses", "cpu_us_per_req"), cpu["turnout"]
    if responses is not None and chat:
        ratio = responses / chat
        check("Responses API CPU/req <= 115% of chat's", ratio, 1.15, ratio <= 1.15)
    spend = get("turnout_redis", "rps")
    if spend is not None:
        share = spend / bare if bare else None
        check(
            "Turnout with Redis spend control req/s >= 45% of pass-through's",
            share,
            0.45,
            None if share is None else share >= 0.45,
        )
        mine, base = get("turnout_redis", "latency", "p99_ms"), get("direct", "latency", "p99_ms")
        added = mine - base if mine is not None and base is not None else None
        check(
            "Turnout with Redis spend control added latency p99 <= 5 ms",
            added,
            5.0,
            None if added is None else added <= 5.0,
        )
    observability(get, check)
    for key, pct, limit in (
        ("latency", "p50_ms", 1.0),
        ("latency", "p99_ms", 5.0),
        ("stream", "p50_ms", 2.0),
    ):
        mine, base = get("turnout", key, pct), get("direct", key, pct)
        added = mine - base if mine is not None and base is not None else None
        what = "TTFT" if key == "stream" else "latency"
        label = f"Turnout added {what} {pct[:3]} <= {limit:g} ms"
        check(label, added, limit, None if added is None else added <= limit)
        if added is not None and _late_share(t, key) > LATE_SHARE:
            out[-1]["status"] = "NOISY"  # the client itself fell behind: this run cannot tell
    return out


def observability(get: Any, check: Any) -> None:
    """(i) against (h): metrics and tracing on keep 90% of the requests/s with both off, and add
    <= 5 ms p99 (against the simulator, as for Turnout)."""
    quiet, observed = get("turnout_quiet", "rps"), get("turnout_observed", "rps")
    if quiet is None or observed is None:
        return
    ratio = observed / quiet if quiet else None
    check(
        "metrics + tracing on: req/s >= 90% of both off", ratio, 0.9, None if ratio is None else ratio >= 0.9
    )
    base = get("direct", "latency", "p99_ms")
    for name in ("turnout_quiet", "turnout_observed"):
        mine = get(name, "latency", "p99_ms")
        added = mine - base if mine is not None and base is not None else None
        what = "on" if name == "turnout_observed" else "off"
        check(
            f"metrics + tracing {what}: added latency p99 <= 5 ms",
            added,
            5.0,
            None if added is None else added <= 5.0,
        )


def durable_cost(get: Any, out: list[dict[str, Any]]) -> None:
    """INFO rows: what waiting for each record's journal write costs, against (e)."""
    durable, nowait = get("turnout", "rps"), get("turnout_async", "rps")
    if durable is None or not nowait:
        return
    rows = [("durable records: req/s, default (write) over async", durable / nowait, 1.0)]
    cpu, cpu_nowait = get("turnout", "cpu_us_per_req"), get("turnout_async", "cpu_us_per_req")
    if cpu and cpu_nowait:
        rows.append(("durable records: CPU us/req, default (write) over async", cpu / cpu_nowait, 1.0))
    for key, pct in (("latency", "p50_ms"), ("latency", "p99_ms"), ("stream", "p50_ms")):
        mine, base = get("turnout", key, pct), get("turnout_async", key, pct)
        if mine is not None and base is not None:
            what = "TTFT" if key == "stream" else "latency"
            rows.append((f"durable records: added {what} {pct[:3]} ms (write - async)", mine - base, 0.0))
    out.extend(
        {"name": name, "value": value, "limit": limit, "status": "INFO"} for name, value, limit in rows
    )


LATE_SHARE = 0.01  # a p99 claim needs the client on time for more than 99% of its sends; so do the rest


def _late_share(targets: dict[str, Any], key: str) -> float:
    """The larger share of late sends in Turnout's and the direct run (the p99's two terms)."""
    shares = [0.0]
    for name in ("turnout", "direct"):
        run = targets.get(name, {}).get(key) or {}
        if run.get("samples"):
            shares.append(run.get("late", 0) / run["samples"])
    return max(shares)


def report(results: dict[str, Any]) -> None:
    t = results["targets"]
    direct = t.get("direct", {})
    print()
    for note in results["notes"]:
        print(f"# {note}")
    before, after = results["loadavg"]
    print(f"# load average (1 min) before/after: {before:.2f} / {after:.2f}")
    if max(before, after) > 1.5:
        print("# WARNING: other work was running on this machine; compare ratios within this run only")
    print("# late: requests the paced client itself sent more than 1 ms behind schedule")
    if results["litellm_error"]:
        print(f"# LiteLLM: {results['litellm_error']}")
    if (rtt := results.get("reserve_round_trip")) is not None:
        print(
            f"# spend ledger in Redis, alone: reserve p50 {rtt['reserve_p50_ms']:.3f} ms, p99 "
            f"{rtt['reserve_p99_ms']:.3f} ms; settle p50 {rtt['settle_p50_ms']:.3f} ms, p99 "
            f"{rtt['settle_p99_ms']:.3f} ms ({rtt['calls']} calls)"
        )
    if (redis_cpu := results.get("redis_cpu_us_per_call")) is not None:
        print(f"# Redis server CPU per call of the Redis variant at saturation: {redis_cpu:.0f} us")
    print(
        f"\nSaturation: {results['config']['connections']} connections, {results['config']['duration']:g} s "
        f"in {results['config']['rounds']} interleaved rounds"
    )
    rows = []
    for name, r in t.items():
        busy = _fmt(100 * r["cpu_busy"], 0) if r.get("cpu_busy") is not None else "-"
        rows.append(
            [NAMES[name], _fmt(r.get("rps"), 0), r.get("errors"), _fmt(r.get("cpu_us_per_req"), 0), busy]
        )
    print_table(["target", "req/s", "errors", "server CPU us/req", "server CPU %"], rows)
    idle = [NAMES[n] for n, r in t.items() if r.get("cpu_busy") is not None and r["cpu_busy"] < 0.9]
    if idle:
        print(f"# NOT saturated (< 90% busy): {', '.join(idle)}")
        print(
            "#   the load generator or other processes limited them: trust the CPU us/req ratios (INFO below)"
        )
    for key, title in (
        ("latency", "Moderate load (non-streaming)"),
        ("stream", "Streaming: time to first token"),
    ):
        print(f"\n{title}")
        rows = []
        for name, r in t.items():
            run, base = r.get(key, {}), direct.get(key, {})
            added = [
                _fmt(run[p] - base[p]) if name != "direct" and p in run and p in base else "-"
                for p in ("p50_ms", "p99_ms")
            ]
            busy = run.get("cpu_busy")
            cells = [_fmt(run.get("rate"), 0), run.get("samples"), run.get("errors"), run.get("late")]
            cells += [_fmt(None if busy is None else 100 * busy, 0), _fmt(run.get("p50_ms"))]
            rows.append([NAMES[name], *cells, _fmt(run.get("p99_ms")), *added])
        heads = ["rate/s", "samples", "errors", "late", "server CPU %", "p50 ms", "p99 ms", "+p50", "+p99"]
        print_table(["target", *heads], rows)
    print("\nTargets")
    for c in results["checks"]:
        print(f"  {c['status']:5} {c['name']}: {_fmt(c['value'])} (limit {c['limit']:g})")
