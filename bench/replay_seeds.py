"""Replay target across exploration seeds: how often the cold bandit replay beats the best model.

Issue 4's replay target (``turnout eval replay`` on the outcomes table, bandit mode, task given,
cold): mean quality above the best single model's at no more than 60% of its cost per query. One
run depends on its exploration seed, so this replays seeds ``0 .. N-1`` (in parallel processes),
prints each run's quality and cost ratio and its verdict, then the pass count, the mean and the
worst run. Router knobs can be overridden to compare settings on the same seeds.

    .venv/bin/python bench/replay_seeds.py [--seeds 30] [--first 0] [--workers 2]
        [--config '{"exploration_rate": 0.5}'] [--strengths '{"model": 4.0}'] [--json]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import ROOT
from turnout.routing.experience import Strengths
from turnout.routing.replay import Row, load_outcomes, load_prices, replay
from turnout.routing.router import RouterConfig

DATA = ROOT / "data" / "routing"
MAX_COST_RATIO = 0.6


@dataclass(frozen=True, slots=True)
class Run:
    seed: int
    quality: float
    cost_ratio: float
    best_quality: float

    @property
    def passed(self) -> bool:
        return self.quality > self.best_quality and self.cost_ratio <= MAX_COST_RATIO


@functools.cache
def _tables(outcomes: Path, prices: Path) -> tuple[list[Row], dict[str, tuple[float, float]]]:
    """The outcomes and prices, read once per worker process."""
    return load_outcomes(outcomes), load_prices(prices)


def _one(seed: int, outcomes: Path, prices: Path, config: dict[str, Any], strengths: dict[str, Any]) -> Run:
    router = RouterConfig(**config, strengths=Strengths(**strengths))
    report = replay(*_tables(outcomes, prices), seed=seed, config=router)
    best = report.best_single
    return Run(seed, report.mean_quality, report.cost_per_query / best.cost_per_query, best.mean_quality)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seeds", type=int, default=30, help="replay seeds FIRST .. FIRST+N-1")
    parser.add_argument("--first", type=int, default=0, help="first seed (e.g. hold-out seeds for tuning)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--outcomes", type=Path, default=DATA / "outcomes-train.jsonl")
    parser.add_argument("--prices", type=Path, default=DATA / "models.json")
    parser.add_argument("--config", type=json.loads, default={}, help="RouterConfig fields (JSON)")
    parser.add_argument("--strengths", type=json.loads, default={}, help="Strengths fields (JSON)")
    parser.add_argument("--json", action="store_true", help="print one JSON summary as the last line")
    args = parser.parse_args()
    with ProcessPoolExecutor(max_workers=max(1, args.workers)) as pool:
        futures = [
            pool.submit(_one, seed, args.outcomes, args.prices, args.config, args.strengths)
            for seed in range(args.first, args.first + args.seeds)
        ]
        runs = [future.result() for future in futures]
    for run in runs:
        verdict = "PASS" if run.passed else "fail"
        print(
            f"seed {run.seed:3d}: quality {run.quality:.4f} (best single {run.best_quality:.4f}), "
            f"cost {run.cost_ratio:.3f}x the best single's  {verdict}"
        )
    passed = sum(run.passed for run in runs)
    mean_q = sum(run.quality for run in runs) / len(runs)
    mean_c = sum(run.cost_ratio for run in runs) / len(runs)
    worst = min(runs, key=lambda run: run.quality)
    print(
        f"\n{passed}/{len(runs)} seeds pass (quality > best single at <= {MAX_COST_RATIO:.0%} of its cost); "
        f"mean quality {mean_q:.4f} at {mean_c:.3f}x cost; worst seed {worst.seed}: {worst.quality:.4f}"
    )
    if args.json:
        summary = {"seeds": len(runs), "passed": passed, "mean_quality": mean_q, "mean_cost_ratio": mean_c}
        summary |= {"worst_quality": worst.quality, "best_single_quality": runs[0].best_quality}
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
