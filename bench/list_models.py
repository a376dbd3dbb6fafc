"""Benchmark: ``GET /api/v2/admin/models`` latency over a large catalog, end to end over HTTP; with
``--ui``, also the web UI's catalog page (``/ui/models``, server-rendered HTML, signed in with the
session cookie) over the same filter mixes, against SRS 7.1's 500 ms for a list page.

A real ``turnout serve`` process gets its catalog the realistic way: two OpenRouter-type providers
synced from the local upstream (``--models`` / 2 each). Then one keep-alive client sends
``--requests`` sequential list requests, cycling through filter mixes, with ``GET /healthz``
interleaved as a same-run baseline. Target: overall p95 < 50 ms (exit 1 otherwise).

    .venv/bin/python bench/list_models.py [--models 100000] [--requests 1000] [--db sqlite|postgres] [--ui]
"""

from __future__ import annotations

import argparse
import re
import secrets
import statistics
import sys
import time
from collections.abc import Callable

import httpx

from common import API, add_provider, gateway, percentile, print_table, timed_sync, upstream, workspace

TARGET_P95_MS = 50.0
UI_TARGET_P95_MS = 500.0
WARMUP_ROUNDS = 5
PROVIDERS = ("or-a", "or-b")
TIERS = ("free", "low", "standard", "premium")
CAPS = ("vision", "function_calling", "code", "long_context")
CAP_PAIRS = (("vision", "function_calling"), ("code", "long_context"), ("vision", "long_context"))
QUERIES = ("coder-11", "Synthetic chat 99", "gpt-4o", "LLAMA", "synthetic-chat-4242")
Params = list[tuple[str, str | int | float | bool | None]]


def _prov(i: int) -> Params:
    return [("provider", PROVIDERS[i % 2])]


# Each mix turns a round number into query parameters, varied so no two rounds ask the same thing.
MIXES: dict[str, Callable[[int], Params]] = {
    "provider": _prov,
    "provider+tier": lambda i: [*_prov(i), ("cost_tier", TIERS[i % 4])],
    "provider+tier+cap": lambda i: [*_prov(i), ("cost_tier", TIERS[i % 3]), ("capability", CAPS[i % 4])],
    "capability x2": lambda i: [("capability", c) for c in CAP_PAIRS[i % 3]],
    "q search": lambda i: [("q", QUERIES[i % len(QUERIES)])],
    "deep page (200)": lambda i: [*_prov(i), ("page", 200)],
    "per_page=100": lambda i: [*_prov(i), ("per_page", 100), ("page", 1 + i % 10)],
}


def populate(client: httpx.Client, api_base: str, key: str, per_provider: int) -> float:
    """Create and sync the providers; returns the seconds the syncs took."""
    seconds = 0.0
    for provider_id in PROVIDERS:
        add_provider(client, provider_id, api_base, key)
        took, result = timed_sync(client, provider_id)
        if result["models_added"] != per_provider:
            raise RuntimeError(f"{provider_id}: added {result['models_added']}, expected {per_provider}")
        seconds += took
    return seconds


def timed_get(client: httpx.Client, path: str, params: Params | None = None) -> tuple[float, int]:
    """Milliseconds for one GET (client side, body read) and the page total (-1 for non-pages)."""
    started = time.perf_counter()
    resp = client.get(path, params=params)
    elapsed = (time.perf_counter() - started) * 1000
    if resp.status_code != 200:
        raise RuntimeError(f"GET {path} {params} -> {resp.status_code}: {resp.text[:300]}")
    if resp.headers.get("content-type", "").startswith("text/html"):  # the UI page: "N models · page"
        found = re.search(r"([\d,]+) models? ·", resp.text)
        return elapsed, int(found.group(1).replace(",", "")) if found else -1
    return elapsed, int(resp.json().get("total", -1))


def measure(
    client: httpx.Client, requests: int, path: str = f"{API}/models"
) -> tuple[dict[str, list[float]], dict[str, list[int]]]:
    """Round-robin over the mixes (one healthz per round); warm-up rounds are not recorded."""
    names = [n for n in MIXES if path == f"{API}/models" or n != "per_page=100"]  # the UI shows 50
    latencies: dict[str, list[float]] = {name: [] for name in [*names, "healthz"]}
    totals: dict[str, list[int]] = {name: [] for name in names}
    rounds = -(-requests // len(names))
    for rnd in range(-WARMUP_ROUNDS, rounds):
        for name in names:
            ms, total = timed_get(client, path, MIXES[name](rnd % 1000))
            if rnd >= 0:
                latencies[name].append(ms)
                totals[name].append(total)
        ms, _ = timed_get(client, "/healthz")
        if rnd >= 0:
            latencies["healthz"].append(ms)
    return latencies, totals


def report(latencies: dict[str, list[float]], totals: dict[str, list[int]]) -> float:
    """Print per-mix and overall percentiles; returns the overall p95 in ms."""
    health_p95 = percentile(latencies["healthz"], 95)
    overall = [ms for name, values in latencies.items() if name != "healthz" for ms in values]
    rows: list[list[object]] = []
    for name, values in [*latencies.items(), ("overall (models)", overall)]:
        matches = f"{statistics.median(totals[name]):,.0f}" if name in totals else "-"
        p50, p95, p99 = (percentile(values, p) for p in (50, 95, 99))
        rows.append([name, len(values), matches, f"{p50:.1f}", f"{p95:.1f}", f"{p99:.1f}",
                     f"{max(values):.1f}", f"{p95 / health_p95:.1f}"])  # fmt: skip
    headers = ["mix", "requests", "median total", "p50 ms", "p95 ms", "p99 ms", "max ms", "p95/healthz"]
    print_table(headers, rows)
    return percentile(overall, 95)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=100_000, help="catalog size (two providers)")
    parser.add_argument("--requests", type=int, default=1_000, help="measured list requests")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--ui", action="store_true", help="also time the web UI's catalog page")
    args = parser.parse_args()
    key = f"sk-or-bench-{secrets.token_hex(8)}"
    per_provider = args.models // len(PROVIDERS)
    with workspace(args.db) as (tmp, env), upstream(tmp, per_provider, key) as api_base:
        with gateway(tmp, env) as client:
            sync_s = populate(client, api_base, key, per_provider)
            latencies, totals = measure(client, args.requests)
            if args.ui:
                sign_in = client.post("/ui/login", data={"token": client.headers["authorization"][7:]})
                if sign_in.status_code != 303:
                    raise RuntimeError(f"UI sign-in -> {sign_in.status_code}: {sign_in.text[:300]}")
                ui_latencies, ui_totals = measure(client, args.requests // 4, "/ui/models")
    print(f"\nmodel listing over {per_provider * len(PROVIDERS):,} models, end to end over HTTP ({args.db})")
    print(f"catalog populated by {len(PROVIDERS)} provider syncs in {sync_s:.1f} s")
    p95 = report(latencies, totals)
    verdict = "PASS" if p95 < TARGET_P95_MS else "FAIL"
    print(f"\noverall p95 {p95:.1f} ms, target < {TARGET_P95_MS:.0f} ms "
          f"(ratio {p95 / TARGET_P95_MS:.2f}): {verdict}")  # fmt: skip
    if args.ui:
        print(f"\nthe web UI's catalog page (/ui/models, HTML) over the same {per_provider * 2:,} models")
        ui_p95 = report(ui_latencies, ui_totals)
        ui_verdict = "PASS" if ui_p95 < UI_TARGET_P95_MS else "FAIL"
        print(f"\nUI page p95 {ui_p95:.1f} ms, target < {UI_TARGET_P95_MS:.0f} ms: {ui_verdict}")
        verdict = "FAIL" if ui_verdict == "FAIL" else verdict
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
