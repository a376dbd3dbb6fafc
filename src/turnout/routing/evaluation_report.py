"""The report of ``eval replay``: per-seed results summed up, and shown (rich table, JSON).

Each seed yields every policy's quality and cost on every replayed row (``SeedResult``); the report
holds, per policy, the mean over seeds of the per-seed means; the per-seed verdict on the target
(``evaluation_stats.passes``); the router's paired differences from each baseline with 95%
t-intervals (over the seeds' differences of means; with one seed, over the rows' paired
differences); the router's learning curves (its quality against the ratings of the row's task it
had seen in that replay, in buckets, pooled over folds and seeds, with the best single model's
quality on the same rows for reference); and, with ``--two-model``, RouteLLM's metrics. Every
undefined figure is ``null`` in JSON (``evaluation_stats.finite``).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from turnout.routing.evaluation_stats import (
    MAX_COST_RATIO,
    Interval,
    apgr,
    best_at_cost,
    calls_to_recover,
    finite,
    gap_recovered,
    passes,
    t_interval,
)

# "greedy" is the router itself with exploration off, on the same warm-up and rows: router - greedy
# is what exploring costs (issue 21: at most 0.005 once warmed up)
POLICIES = ("router", "greedy", "best_single", "per_task", "knn", "random", "oracle")
BASELINES = POLICIES[1:]
LABELS = {
    "router": "router",
    "greedy": "router, exploration off",
    "best_single": "best single model",
    "per_task": "per-task table",
    "knn": "TF-IDF kNN",
    "random": "random",
    "oracle": "oracle",
}
TRADE_OFFS = ("router", "per_task", "knn")  # the policies with a curve in the two-model table
MIN_CELL = 10  # learning-curve cells over fewer rows are left out of the console table


def buckets(largest: int) -> list[tuple[int, int]]:
    """Learning-curve buckets of ratings seen, [from, to): 0-4, 5-9, 10-19, 20-39, ... up to ``largest``."""
    edges = [0, 5, 10]
    while edges[-1] <= largest:
        edges.append(edges[-1] * 2)
    return list(itertools.pairwise(edges))


@dataclass(frozen=True, slots=True)
class Pair:
    """The two-model table's models, their scores on the replayed rows, and what the router's
    curve is made of."""

    strong: str
    weak: str
    strong_scores: np.ndarray
    weak_scores: np.ndarray
    router_curve: str


@dataclass(slots=True)
class SeedResult:
    """One seed's replay: every policy's quality and cost on each replayed row (in table order)."""

    seed: int
    quality: dict[str, np.ndarray]
    cost: dict[str, np.ndarray]
    seen: np.ndarray  # ratings of the row's task the router had seen in its replay before the row
    quarter: np.ndarray  # the quarter (0..3) of its replay the row came in
    best_models: list[str]  # the best single model fitted on each fold's warm-up rows
    lambdas: dict[str, list[float]]  # the λ each fold's inner cross-validation chose
    picks: Counter[str]  # the router's choices
    strong: dict[str, np.ndarray] = field(default_factory=dict)  # two-model: share of strong calls per row
    curves: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # (strong share, quality)
    # the per-task table's (cost per query, quality) at each λ of its sweep, on the same rows
    table_frontier: list[tuple[float, float]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PolicyFigures:
    """A policy's means over seeds: quality, cost per query (USD) and the ratios to other policies."""

    mean_quality: float
    cost_per_query: float
    cost_vs_best_single: float
    of_oracle: float
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Verdict:
    """One seed against the target: quality above the best single model's at <= 60% of its cost."""

    seed: int
    quality: float
    cost_per_query: float
    best_single_quality: float
    best_single_cost: float
    cost_vs_best_single: float
    passed: bool


@dataclass(frozen=True, slots=True)
class Paired:
    """Router minus a baseline: quality, cost (USD per query) and cost in best-single units."""

    quality: Interval
    cost: Interval
    cost_vs_best_single: Interval


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """The router's mean quality on rows seen after ``seen_from``..``seen_to``-1 ratings of their task."""

    seen_from: int
    seen_to: int
    n: int
    quality: float
    best_single: float


@dataclass(frozen=True, slots=True)
class GapFigures:
    """RouteLLM's figures of one policy, means over seeds."""

    strong_share: float
    gap_recovered: float
    apgr: float
    cpt50: float
    cpt80: float
    curve: str  # what the APGR/CPT curve was made of
    points: list[tuple[float, float]]  # the curve's (strong share, PGR) points, means over seeds


@dataclass(frozen=True, slots=True)
class TwoModel:
    """The two-model table: the pair, their qualities, and each policy's gap figures."""

    strong: str
    weak: str
    strong_quality: float
    weak_quality: float
    policies: dict[str, GapFigures]


@dataclass(frozen=True, slots=True)
class EqualCost:
    """The per-task table at the router's own cost: its λ sweep's best quality at a cost of at
    most the router's (two λ mixed), per seed; the router (and with exploration off, at its own
    cost) minus it. The target compares at equal or lower cost; the table's cross-validated λ
    lands at another cost than the router's policy trade-off."""

    table_at_router_cost: float
    router_minus_table: Interval
    table_at_greedy_cost: float
    greedy_minus_table: Interval


@dataclass(slots=True)
class ReplayReport:
    """Everything ``eval replay`` prints: ``to_json`` is the object of ``--json``."""

    rows: int
    seeds: list[int]
    settings: dict[str, Any]
    mean_quality: float
    cost_per_query: float
    cost_vs_best_single: float
    oracle_fraction: float
    passed: int
    policies: dict[str, PolicyFigures]
    verdicts: list[Verdict]
    paired: dict[str, Paired]
    paired_unit: str
    learning_curves: dict[str, list[CurvePoint]]
    quarters: list[dict[str, float]]
    two_model: TwoModel | None
    equal_cost: EqualCost | None
    picks: dict[str, int]
    notes: list[str]

    def to_json(self) -> dict[str, Any]:
        """The JSON object, with ``null`` for every undefined figure (never NaN)."""
        data = asdict(self)
        data["target"] = {"quality": "above the best single model's", "max_cost_ratio": MAX_COST_RATIO}
        result: dict[str, Any] = finite(data)
        return result


def summarize(
    results: Sequence[SeedResult],
    tasks: np.ndarray,
    settings: dict[str, Any],
    notes: list[str],
    pair: Pair | None = None,
) -> ReplayReport:
    """The report of ``results`` (one per seed, rows aligned with ``tasks``, the routed task of each
    replayed row); ``pair`` for the two-model table."""
    results = sorted(results, key=lambda r: r.seed)
    q = {p: np.array([r.quality[p].mean() for r in results]) for p in POLICIES}
    c = {p: np.array([r.cost[p].mean() for r in results]) for p in POLICIES}
    best_c = c["best_single"]
    ratio = {p: _div(c[p], best_c) for p in POLICIES}
    of_oracle = {p: _div(q[p], q["oracle"]) for p in POLICIES}
    detail: dict[str, dict[str, Any]] = {p: {} for p in POLICIES}
    detail["router"]["per_seed_quality"] = q["router"].tolist()
    detail["best_single"]["models"] = dict(Counter(m for r in results for m in r.best_models).most_common())
    for p in ("per_task", "knn"):
        chosen = Counter(f"{lam:.3g}" for r in results for lam in r.lambdas.get(p, ()))
        detail[p]["lambdas"] = dict(chosen.most_common())
    detail["knn"]["k"] = settings.get("knn_k")
    detail["random"]["as"] = "expectation over models"
    policies = {
        p: PolicyFigures(_mean(q[p]), _mean(c[p]), _mean(ratio[p]), _mean(of_oracle[p]), detail[p])
        for p in POLICIES
    }
    verdicts = [
        Verdict(
            r.seed,
            float(q["router"][i]),
            float(c["router"][i]),
            float(q["best_single"][i]),
            float(best_c[i]),
            float(ratio["router"][i]),
            passes(q["router"][i], c["router"][i], q["best_single"][i], best_c[i]),
        )
        for i, r in enumerate(results)
    ]
    paired, unit = _paired(results, q, c, best_c)
    picks: Counter[str] = Counter()
    for r in results:
        picks.update(r.picks)
    report = ReplayReport(
        rows=int(tasks.size),
        seeds=[r.seed for r in results],
        settings=settings,
        mean_quality=policies["router"].mean_quality,
        cost_per_query=policies["router"].cost_per_query,
        cost_vs_best_single=policies["router"].cost_vs_best_single,
        oracle_fraction=policies["router"].of_oracle,
        passed=sum(v.passed for v in verdicts),
        policies=policies,
        verdicts=verdicts,
        paired=paired,
        paired_unit=unit,
        learning_curves=_learning_curves(results, tasks),
        quarters=_quarters(results),
        two_model=_two_model(results, pair) if pair else None,
        equal_cost=_equal_cost(results, q, c),
        picks=dict(picks.most_common()),
        notes=notes,
    )
    return report


def _equal_cost(
    results: Sequence[SeedResult], q: dict[str, np.ndarray], c: dict[str, np.ndarray]
) -> EqualCost | None:
    """``EqualCost`` over the seeds (None without the table's sweep, or with one seed)."""
    if len(results) < 2 or not all(r.table_frontier for r in results):
        return None
    at = {
        p: np.array([best_at_cost(r.table_frontier, float(c[p][i])) for i, r in enumerate(results)])
        for p in ("router", "greedy")
    }
    return EqualCost(
        _mean(at["router"]), t_interval(q["router"] - at["router"]),
        _mean(at["greedy"]), t_interval(q["greedy"] - at["greedy"]),
    )  # fmt: skip


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b != 0, a / np.where(b != 0, b, 1.0), math.nan)


def _mean(values: np.ndarray | Sequence[float]) -> float:
    data = np.asarray(values, dtype=float)
    data = data[~np.isnan(data)]
    return float(data.mean()) if data.size else math.nan


def _paired(
    results: Sequence[SeedResult], q: dict[str, np.ndarray], c: dict[str, np.ndarray], best_c: np.ndarray
) -> tuple[dict[str, Paired], str]:
    """Router minus each baseline: over seeds (differences of means), or over rows with one seed."""
    out = {}
    if len(results) >= 2:
        for b in BASELINES:
            dc = c["router"] - c[b]
            out[b] = Paired(t_interval(q["router"] - q[b]), t_interval(dc), t_interval(_div(dc, best_c)))
        return out, "seed"
    (r,) = results
    scale = float(r.cost["best_single"].mean())
    for b in BASELINES:
        dc = r.cost["router"] - r.cost[b]
        rel = dc / scale if scale > 0 else np.full(dc.shape, math.nan)
        out[b] = Paired(t_interval(r.quality["router"] - r.quality[b]), t_interval(dc), t_interval(rel))
    return out, "row"


def _learning_curves(results: Sequence[SeedResult], tasks: np.ndarray) -> dict[str, list[CurvePoint]]:
    """Per task (and ``all``): the router's quality by ratings of the task seen, pooled over seeds."""
    seen = np.concatenate([r.seen for r in results])
    router = np.concatenate([r.quality["router"] for r in results])
    best = np.concatenate([r.quality["best_single"] for r in results])
    task = np.tile(tasks, len(results))
    edges = buckets(int(seen.max()) if seen.size else 0)
    curves: dict[str, list[CurvePoint]] = {}
    for name in [*sorted(set(tasks.tolist())), "all"]:
        mask = np.ones(task.size, dtype=bool) if name == "all" else task == name
        points = []
        for lo, hi in edges:
            sel = mask & (seen >= lo) & (seen < hi)
            if sel.any():
                points.append(
                    CurvePoint(lo, hi, int(sel.sum()), float(router[sel].mean()), float(best[sel].mean()))
                )
        curves[name] = points
    return curves


def _quarters(results: Sequence[SeedResult]) -> list[dict[str, float]]:
    """The router's quality and cost in each quarter of its replays (``nan``: an empty quarter)."""
    quarter = np.concatenate([r.quarter for r in results])
    quality = np.concatenate([r.quality["router"] for r in results])
    cost = np.concatenate([r.cost["router"] for r in results])
    return [
        {"mean_quality": _mean(quality[quarter == i]), "cost_per_query": _mean(cost[quarter == i])}
        for i in range(4)
    ]


def _two_model(results: Sequence[SeedResult], pair: Pair) -> TwoModel:
    """RouteLLM's figures, per seed then averaged: strong share and PGR at each policy's operating
    point, APGR and CPT(50%, 80%) from its curve (λ sweep; the router's knob sweep or operating point)."""
    q_strong, q_weak = float(pair.strong_scores.mean()), float(pair.weak_scores.mean())
    figures = {}
    for p in POLICIES:
        share = [float(r.strong[p].mean()) for r in results]
        pgr = [gap_recovered(float(r.quality[p].mean()), q_weak, q_strong) for r in results]
        if p not in TRADE_OFFS:
            nan = math.nan
            figures[p] = GapFigures(_mean(share), _mean(pgr), nan, nan, nan, "", [])
            continue
        curves = [
            [(s, gap_recovered(qual, q_weak, q_strong)) for s, qual in r.curves.get(p, [])] for r in results
        ]
        with_point = [[*curve, (s, g)] for curve, s, g in zip(curves, share, pgr, strict=True)]
        defined = q_strong != q_weak  # else PGR is undefined
        size = min((len(cv) for cv in curves), default=0)
        points: list[tuple[float, float]] = []
        for i in range(size):  # the mean point of each λ (knob), the same point once
            point = (_mean([cv[i][0] for cv in curves]), _mean([cv[i][1] for cv in curves]))
            if not points or point != points[-1]:
                points.append(point)
        figures[p] = GapFigures(
            _mean(share),
            _mean(pgr),
            _mean([apgr(cv) for cv in with_point]) if defined else math.nan,
            _mean([calls_to_recover(cv, 0.5) for cv in with_point]) if defined else math.nan,
            _mean([calls_to_recover(cv, 0.8) for cv in with_point]) if defined else math.nan,
            pair.router_curve if p == "router" else f"λ sweep ({size} points)",
            points,
        )
    return TwoModel(pair.strong, pair.weak, q_strong, q_weak, figures)


def render(report: ReplayReport, *, stderr: bool = False) -> None:
    """The report as rich tables on the console (on stderr with ``stderr``: stdout is then kept
    for the JSON object)."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=150, stderr=stderr)
    s = report.settings
    folds = f"{s['folds']}-fold cross-validation" if s.get("folds") else "single pass"
    title = (
        f"Replay: {report.rows} rows, {folds}, {len(report.seeds)} seed(s), {s.get('mode')} mode, "
        f"task {s.get('task_source')}"
    )
    unit = "seeds" if report.paired_unit == "seed" else "rows, one seed"
    table = Table(title=title, caption=f"Δ = router - policy, mean and 95% t-interval over {unit}")
    for column in (
        "policy",
        "quality",
        "cost/query (USD)",
        "x best single",
        "of oracle",
        "Δ quality",
        "Δ cost (x best)",
    ):
        table.add_column(column, justify="left" if column == "policy" else "right")
    for p in POLICIES:
        fig = report.policies[p]
        pair = report.paired.get(p)
        name = LABELS[p]
        if p == "best_single" and fig.detail.get("models"):
            name += f" ({', '.join(fig.detail['models'])})"
        table.add_row(
            name,
            _f(fig.mean_quality, ".4f"),
            _f(fig.cost_per_query, ".3e"),
            _f(fig.cost_vs_best_single, ".3f"),
            _f(fig.of_oracle, ".1%"),
            _interval(pair.quality, "+.4f") if pair else "",
            _interval(pair.cost_vs_best_single, "+.3f") if pair else "",
        )
    console.print(table)
    if report.equal_cost is not None:
        e = report.equal_cost
        console.print(
            "per-task table at the router's own cost (its λ sweep, two λ mixed): "
            f"{_f(e.table_at_router_cost, '.4f')}, router - it {_interval(e.router_minus_table, '+.4f')}; "
            f"at the cost of exploration off: {_f(e.table_at_greedy_cost, '.4f')}, "
            f"exploration off - it {_interval(e.greedy_minus_table, '+.4f')}"
        )
    verdicts = Table(
        title=f"Target: quality above the best single model's at <= {MAX_COST_RATIO:.0%} of its cost"
    )
    for column in ("seed", "router quality", "best single", "cost x best", "verdict"):
        verdicts.add_column(column, justify="right")
    for v in report.verdicts:
        verdicts.add_row(
            str(v.seed), f"{v.quality:.4f}", f"{v.best_single_quality:.4f}", _f(v.cost_vs_best_single, ".3f"),
            "PASS" if v.passed else "fail",
        )  # fmt: skip
    console.print(verdicts)
    console.print(f"{report.passed}/{len(report.verdicts)} seeds pass")
    _render_curves(console, report)
    if report.two_model:
        _render_two_model(console, report.two_model)
    console.print("router picks: " + ", ".join(f"{m} {n}" for m, n in report.picks.items()))
    for note in report.notes:
        console.print(note)


def _render_curves(console: Any, report: ReplayReport) -> None:
    from rich.table import Table

    edges = sorted({(p.seen_from, p.seen_to) for pts in report.learning_curves.values() for p in pts})
    table = Table(
        title="Router quality by ratings of the task seen (router / best single on the same rows)",
        caption=f"cells of fewer than {MIN_CELL} rows (over all seeds) left blank; the JSON has them all",
    )
    table.add_column("task")
    for lo, hi in edges:
        table.add_column(f"{lo}-{hi - 1}", justify="right")
    for task, points in report.learning_curves.items():
        by = {(p.seen_from, p.seen_to): p for p in points}
        table.add_row(
            task,
            *(
                f"{by[e].quality:.3f}/{by[e].best_single:.3f}" if e in by and by[e].n >= MIN_CELL else ""
                for e in edges
            ),
        )
    console.print(table)


def _render_two_model(console: Any, two: TwoModel) -> None:
    from rich.table import Table

    table = Table(
        title=f"Two models: strong {two.strong} ({two.strong_quality:.4f}), "
        f"weak {two.weak} ({two.weak_quality:.4f})"
    )
    for column in ("policy", "strong share", "PGR", "APGR", "CPT(50%)", "CPT(80%)", "curve"):
        table.add_column(column, justify="left" if column in ("policy", "curve") else "right")
    for p, fig in two.policies.items():
        table.add_row(
            LABELS[p], _f(fig.strong_share, ".1%"), _f(fig.gap_recovered, ".3f"), _f(fig.apgr, ".3f"),
            _f(fig.cpt50, ".1%"), _f(fig.cpt80, ".1%"), fig.curve,
        )  # fmt: skip
    console.print(table)


def _f(value: float, spec: str) -> str:
    return "-" if value is None or math.isnan(value) else format(value, spec)


def _interval(iv: Interval, spec: str) -> str:
    if math.isnan(iv.low):
        return _f(iv.mean, spec)
    return f"{_f(iv.mean, spec)} [{_f(iv.low, spec)}, {_f(iv.high, spec)}]"
