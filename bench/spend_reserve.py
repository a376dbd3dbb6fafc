"""The spend ledger's reserve round trip alone: one budget and one rate limit, reserve then settle,
against Redis (the Lua scripts the gateway runs per call), sequentially, from one asyncio loop.

    .venv/bin/python bench/spend_reserve.py [--redis redis://127.0.0.1:6379/0] [--calls 5000]
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import uvloop

from common import percentile
from turnout.cluster.redis import connect
from turnout.domain.budgets import BudgetView, LimitView, period_end, period_start
from turnout.spend.ledger import Ask, BudgetHold
from turnout.spend.redis_ledger import RedisLedger


async def _zero(_: BudgetHold) -> int:
    return 0


async def round_trips(url: str, calls: int) -> dict[str, Any]:
    """p50/p99 (ms) of ``reserve`` and of ``settle``, and the calls that were refused (none expected)."""
    client = connect(url)
    ledger = RedisLedger(client, _zero)
    now = datetime.now(UTC)
    budget = BudgetView(str(uuid.uuid4()), "bench", "bench", "api_key", "k", "daily", 1e6, 0.8, "block")
    hold = BudgetHold(budget, period_start("daily", now), period_end("daily", now))
    limit = LimitView(str(uuid.uuid4()), "bench", "api_key", "k", 10_000_000, None, None)
    reserve_ms: list[float] = []
    settle_ms: list[float] = []
    refused = 0
    try:
        for n in range(calls + 200):  # the first 200 warm the connection and the script cache
            ask = Ask(str(uuid.uuid4()), [hold], [limit], 700, 120, time.time())
            started = time.perf_counter()
            verdict = await ledger.reserve(ask)
            reserved = time.perf_counter()
            await ledger.settle(ask, {budget.id: 300}, 100)
            settled = time.perf_counter()
            if n >= 200:
                reserve_ms.append((reserved - started) * 1000)
                settle_ms.append((settled - reserved) * 1000)
                refused += verdict.refusal is not None
    finally:
        await ledger.aclose()
        await client.aclose()
    return {
        "calls": calls,
        "refused": refused,
        "reserve_p50_ms": percentile(reserve_ms, 50),
        "reserve_p99_ms": percentile(reserve_ms, 99),
        "settle_p50_ms": percentile(settle_ms, 50),
        "settle_p99_ms": percentile(settle_ms, 99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--calls", type=int, default=5000)
    args = parser.parse_args()
    result = uvloop.run(round_trips(args.redis, args.calls))
    print(
        f"reserve p50 {result['reserve_p50_ms']:.3f} ms, p99 {result['reserve_p99_ms']:.3f} ms; "
        f"settle p50 {result['settle_p50_ms']:.3f} ms, p99 {result['settle_p99_ms']:.3f} ms "
        f"({result['calls']} calls, {result['refused']} refused)"
    )


if __name__ == "__main__":
    main()
