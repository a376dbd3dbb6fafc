"""Benchmark: provider catalog sync, end to end through ``POST /api/v2/admin/providers/{id}/sync``.

A real ``turnout serve`` process syncs from the local OpenRouter-format upstream (a subprocess):
the first sync of ``--count`` models (all inserts), an unchanged resync, a resync after the
upstream was restarted with 10 % more models (informational), and a 1,000-model sync on a second
provider. Exits 1 if a target is missed or a result is wrong.

    .venv/bin/python bench/sync_catalog.py [--count 50000] [--db sqlite|postgres]
"""

from __future__ import annotations

import argparse
import secrets
import sys
from dataclasses import dataclass
from typing import Any

from common import API, add_provider, call, free_port, gateway, print_table, timed_sync, upstream, workspace

TARGET_FIRST_S, TARGET_RESYNC_S, TARGET_SMALL_S = 10.0, 5.0, 30.0
SMALL = 1_000


@dataclass(slots=True)
class Case:
    """One measured sync."""

    name: str
    models: int
    seconds: float
    server_ms: int
    target_s: float | None

    @property
    def passed(self) -> bool:
        return self.target_s is None or self.seconds <= self.target_s

    def row(self) -> list[object]:
        ratio = "-" if self.target_s is None else f"{self.seconds / self.target_s:.2f}"
        verdict = "INFO" if self.target_s is None else ("PASS" if self.passed else "FAIL")
        target = "-" if self.target_s is None else f"{self.target_s:.1f}"
        return [self.name, f"{self.models:,}", f"{self.seconds:.2f}", self.server_ms, target, ratio, verdict]


def check(result: dict[str, Any], errors: list[str], label: str, **expected: int) -> None:
    """Compare SyncResult counters with what the upstream served."""
    for key, want in expected.items():
        if result.get(key) != want:
            errors.append(f"{label}: {key} = {result.get(key)}, expected {want}")


def total_of(client: Any, provider_id: str) -> int:
    """Catalog size of a provider as the list endpoint reports it."""
    page = call(client, "GET", f"{API}/models", params={"provider": provider_id, "per_page": 1})
    return int(page["total"])


def run(count: int, db: str) -> tuple[list[Case], list[str]]:
    """Start everything, run the cases, stop everything (also on errors)."""
    key = f"sk-or-bench-{secrets.token_hex(8)}"
    cases: list[Case] = []
    errors: list[str] = []
    port = free_port()  # the big upstream is restarted on the same port with a grown catalog
    with workspace(db) as (tmp, env), upstream(tmp, SMALL, key) as small, gateway(tmp, env) as client:
        with upstream(tmp, count, key, port) as big:
            add_provider(client, "openrouter", big, key)
            add_provider(client, "openrouter-small", small, key)
            seconds, res = timed_sync(client, "openrouter")
            cases.append(Case("first sync (all inserts)", count, seconds, res["duration_ms"], TARGET_FIRST_S))
            check(res, errors, "first sync", models_discovered=count, models_added=count, models_updated=0)
            if (total := total_of(client, "openrouter")) != count:
                errors.append(f"after first sync: list total {total}, expected {count}")

            seconds, res = timed_sync(client, "openrouter")
            cases.append(Case("resync, unchanged", count, seconds, res["duration_ms"], TARGET_RESYNC_S))
            check(res, errors, "unchanged resync", models_discovered=count, models_added=0, models_updated=0)
            check(res, errors, "unchanged resync", models_removed=0, models_unchanged=count)

        grown = count + count // 10  # same generator: the first `count` entries stay identical
        with upstream(tmp, grown, key, port):
            seconds, res = timed_sync(client, "openrouter")
            cases.append(Case(f"resync, {grown - count:,} new", grown, seconds, res["duration_ms"], None))
            check(res, errors, "grown resync", models_discovered=grown, models_added=grown - count)
            check(res, errors, "grown resync", models_updated=0, models_removed=0)

        seconds, res = timed_sync(client, "openrouter-small")
        cases.append(Case("first sync, 1k provider", SMALL, seconds, res["duration_ms"], TARGET_SMALL_S))
        check(res, errors, "1k sync", models_discovered=SMALL, models_added=SMALL)
        if (total := total_of(client, "openrouter-small")) != SMALL:
            errors.append(f"1k provider: list total {total}, expected {SMALL}")
    return cases, errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50_000, help="models of the big provider")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    cases, errors = run(args.count, args.db)
    print(f"\ncatalog sync, end to end over HTTP ({args.db})")
    headers = ["case", "models", "seconds", "server ms", "target s", "ratio", "result"]
    print_table(headers, [c.row() for c in cases])
    for error in errors:
        print(f"WRONG: {error}")
    failed = [c.name for c in cases if not c.passed]
    print("\nFAIL: " + ", ".join(failed) if failed else "\nall targets met")
    return 1 if failed or errors else 0


if __name__ == "__main__":
    sys.exit(main())
