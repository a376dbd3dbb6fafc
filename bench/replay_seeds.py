"""Replay target across seeds, with router knobs overridden: compare settings on the same seeds.

Issue 21's evaluation (``turnout eval replay``: K-fold cross-validation by prompt, bandit mode, task
given, each fold warmed up on the others as priors) for seeds ``FIRST .. FIRST+N-1`` in parallel
processes, with the router's config overridden from JSON (fields passed through as they are, so this
follows the router's redesign). Prints each seed's quality and cost ratio against the best single
model and its verdict (quality above it at <= 60% of its cost), the pass count, and the router's
paired differences from the baselines fitted on the same warm-up rows. ``make bench-replay`` runs
the defaults through the CLI instead.

    .venv/bin/python bench/replay_seeds.py [--seeds 20] [--first 0] [--folds 5] [--workers 2]
        [--config '{"<RouterConfig field>": value}'] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from common import ROOT
from turnout.routing.experience import Strengths
from turnout.routing.replay import load_outcomes, load_prices, replay
from turnout.routing.router import RouterConfig

DATA = ROOT / "data" / "routing"


def _config(fields: dict[str, Any]) -> RouterConfig | None:
    """A RouterConfig from JSON fields (a ``strengths`` object becomes ``Strengths``); None: defaults."""
    if not fields:
        return None
    if isinstance(fields.get("strengths"), dict):
        fields = {**fields, "strengths": Strengths(**fields["strengths"])}
    return RouterConfig(**fields)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seeds", type=int, default=20, help="seeds FIRST .. FIRST+N-1")
    parser.add_argument("--first", type=int, default=0, help="first seed (e.g. hold-out seeds for tuning)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--outcomes", type=Path, default=DATA / "outcomes-train.jsonl")
    parser.add_argument("--prices", type=Path, default=DATA / "models.json")
    parser.add_argument("--config", type=json.loads, default={}, help="RouterConfig fields (JSON)")
    parser.add_argument("--json", action="store_true", help="print one JSON summary as the last line")
    args = parser.parse_args()
    report = replay(
        load_outcomes(args.outcomes), load_prices(args.prices), seed=args.first, seeds=args.seeds,
        n_folds=args.folds, shuffle=True, workers=args.workers, config=_config(args.config),
    )  # fmt: skip
    for v in report.verdicts:
        print(
            f"seed {v.seed:3d}: quality {v.quality:.4f} (best single {v.best_single_quality:.4f}), "
            f"cost {v.cost_vs_best_single:.3f}x the best single's  {'PASS' if v.passed else 'fail'}"
        )
    worst = min(report.verdicts, key=lambda v: v.quality)
    print(
        f"\n{report.passed}/{len(report.verdicts)} seeds pass; mean quality {report.mean_quality:.4f} at "
        f"{report.cost_vs_best_single:.3f}x cost; worst seed {worst.seed}: {worst.quality:.4f}"
    )
    for name, pair in report.paired.items():
        q, c = pair.quality, pair.cost_vs_best_single
        print(
            f"router - {name:12s} quality {q.mean:+.4f} [{q.low:+.4f}, {q.high:+.4f}]  "
            f"cost {c.mean:+.3f} [{c.low:+.3f}, {c.high:+.3f}] x best single"
        )
    if args.json:
        summary = {
            "seeds": len(report.verdicts),
            "passed": report.passed,
            "mean_quality": report.mean_quality,
        }
        summary |= {"mean_cost_ratio": report.cost_vs_best_single, "worst_quality": worst.quality}
        summary |= {"best_single_quality": report.policies["best_single"].mean_quality}
        print(json.dumps(summary, allow_nan=False))


if __name__ == "__main__":
    main()
