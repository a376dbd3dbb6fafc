"""Replay evaluation: route a table of prompts with known per-model scores through the real router.

Each row goes through ``Router.rank`` over a scratch catalog built from the prices file (every model
at the same priority, so nothing about the answer is encoded there). In ``bandit`` mode only the
chosen model's score comes back, as an explicit rating through ``ExperienceStore.record`` (what the
feedback service calls); in ``full`` mode every model's score does. The warmup table is the
platform-priors path: its scores go in through ``ExperienceStore.add_prior``, the global level every
tenant's estimates see, so the replayed tenant's own ratings refine them as a real tenant's would.
Costs are estimated from the prompt's length (4 characters a token) and ``answer_tokens`` at each
model's prices.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from turnout.routing.experience import ExperienceStore
from turnout.routing.router import CandidateSet, Router, RouterConfig
from turnout.routing.types import Candidate, RouteRequest

TENANT, AGENT, PREFIX = "replay", "replay-agent", "replay/"
START = 1_700_000_000.0  # synthetic clock: one query a minute from here
STEP_S = 60.0


@dataclass(frozen=True, slots=True)
class Row:
    task: str
    prompt: str
    scores: dict[str, float]


@dataclass(slots=True)
class Figures:
    mean_quality: float
    cost_per_query: float
    model: str | None = None


@dataclass(slots=True)
class ReplayReport:
    rows: int
    mean_quality: float
    cost_per_query: float
    oracle_fraction: float
    best_single: Figures
    per_task_best: Figures
    oracle: Figures
    quarters: list[Figures]
    picks: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The JSON object of ``--json`` (``model`` only for ``best_single``)."""
        data = asdict(self)
        for key in ("per_task_best", "oracle"):
            data[key].pop("model")
        for quarter in data["quarters"]:
            quarter.pop("model")
        return data


def load_outcomes(path: Path) -> list[Row]:
    """Rows of a JSONL outcomes table (``task``, ``prompt``, ``scores``)."""
    rows = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                item = json.loads(line)
                scores = {k: float(v) for k, v in item["scores"].items()}
                rows.append(Row(str(item["task"]), str(item["prompt"]), scores))
    return rows


def load_prices(path: Path) -> dict[str, tuple[float, float]]:
    """Model -> (input, output) USD per 1M tokens."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return {
        name: (float(m["input_usd_per_mtok"]), float(m["output_usd_per_mtok"])) for name, m in data.items()
    }


def scratch_catalog(prices: dict[str, tuple[float, float]]) -> CandidateSet:
    """One candidate per priced model, all at priority 50."""
    return CandidateSet(
        Candidate(
            PREFIX + name,
            "replay",
            frozenset({"chat"}),
            50,
            "low" if p_in < 0.5 else "high",
            None,
            p_in,
            p_out,
        )
        for name, (p_in, p_out) in sorted(prices.items())
    )


def _detector(notes: list[str]) -> Callable[[str], str]:
    try:
        from turnout.routing.detection import detect_task
    except ImportError:
        notes.append(
            "task detection unavailable (turnout.routing.detection missing): every row routed as 'general'"
        )
        return lambda _prompt: "general"
    return lambda prompt: detect_task({"messages": [{"role": "user", "content": prompt}]}).task_type


def replay(
    rows: Sequence[Row],
    prices: dict[str, tuple[float, float]],
    *,
    mode: str = "bandit",
    detect: bool = False,
    warmup: Sequence[Row] = (),
    answer_tokens: int = 200,
    seed: int = 0,
    config: RouterConfig | None = None,
) -> ReplayReport:
    """Replay ``warmup`` (learning, not counted) then ``rows`` through a fresh router."""
    if mode not in ("bandit", "full"):
        raise ValueError("mode must be 'bandit' or 'full'")
    if not rows:
        raise ValueError("the outcomes table has no rows")
    missing = {name for row in (*warmup, *rows) for name in prices if name not in row.scores}
    if missing:
        raise ValueError(f"rows without a score for priced models: {', '.join(sorted(missing))}")
    router = Router(None, config)
    store: ExperienceStore = router.experience
    catalog = scratch_catalog(prices)
    names = [c.model_id.removeprefix(PREFIX) for c in catalog]
    p_in, p_out = catalog.price_in, catalog.price_out
    notes: list[str] = []
    task_of: Callable[[Row], str] = lambda row: row.task  # noqa: E731
    if detect:
        detector = _detector(notes)
        task_of = lambda row: detector(row.prompt)  # noqa: E731
    rng = random.Random(seed)
    clock = START
    detected: Counter[str] = Counter()

    def run(table: Sequence[Row], counted: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
        nonlocal clock
        quality, cost, oracle_cost, chosen = [], [], [], []
        for row in table:
            task = task_of(row)
            tokens = len(row.prompt) // 4
            request = RouteRequest(
                TENANT, AGENT, task, prompt_tokens=tokens, expected_output_tokens=answer_tokens
            )
            pick = router.rank(request, catalog, rng=rng, now=clock).ranked[0].model_id.removeprefix(PREFIX)
            costs = (tokens * p_in + answer_tokens * p_out) / 1e6
            scores = np.array([row.scores[n] for n in names])
            for name in names if mode == "full" else [pick]:
                score = row.scores[name]
                if counted:  # the tenant's own ratings, as the feedback service records them
                    store.record(TENANT, AGENT, task, PREFIX + name, score, clock)
                else:  # the warmup is what a platform imports: priors every tenant sees
                    store.add_prior(task, PREFIX + name, 1.0, score, score * score, clock)
            clock += STEP_S
            if counted:
                detected[task] += 1
                quality.append(row.scores[pick])
                cost.append(costs[names.index(pick)])
                oracle_cost.append(costs[scores == scores.max()].min())
                chosen.append(pick)
        return np.array(quality), np.array(cost), np.array(oracle_cost), chosen

    run(warmup, counted=False)
    quality, cost, oracle_cost, chosen = run(rows, counted=True)
    scores = np.array([[row.scores[n] for n in names] for row in rows])
    tokens = np.array([len(row.prompt) // 4 for row in rows])
    costs = (tokens[:, None] * p_in + answer_tokens * p_out) / 1e6
    best = int(scores.mean(0).argmax())
    tasks = np.array([row.task for row in rows])
    per_task_q = per_task_c = 0.0
    for task in set(tasks.tolist()):
        mask = tasks == task
        j = int(scores[mask].mean(0).argmax())
        per_task_q += float(scores[mask, j].sum())
        per_task_c += float(costs[mask, j].sum())
    n = len(rows)
    oracle_q = float(scores.max(1).mean())
    if detect:
        notes.append("detected tasks: " + ", ".join(f"{t} {c}" for t, c in detected.most_common()))
    return ReplayReport(
        rows=n,
        mean_quality=float(quality.mean()),
        cost_per_query=float(cost.mean()),
        oracle_fraction=float(quality.mean()) / oracle_q if oracle_q else 0.0,
        best_single=Figures(float(scores[:, best].mean()), float(costs[:, best].mean()), names[best]),
        per_task_best=Figures(per_task_q / n, per_task_c / n),
        oracle=Figures(oracle_q, float(oracle_cost.mean())),
        quarters=[
            Figures(float(q.mean()), float(c.mean()))
            for q, c in zip(np.array_split(quality, 4), np.array_split(cost, 4), strict=True)
        ],
        picks=dict(Counter(chosen).most_common()),
        notes=notes,
    )


eval_app = typer.Typer(help="Offline evaluation of routing", no_args_is_help=True)


@eval_app.callback()
def _eval() -> None:
    """Offline evaluation of routing."""


@eval_app.command("replay")
def eval_replay(
    outcomes: Annotated[Path, typer.Option(help="JSONL table: task, prompt, scores per model", exists=True)],
    prices: Annotated[Path, typer.Option(help="models.json with each model's prices", exists=True)],
    mode: Annotated[
        str, typer.Option(help="bandit: only the chosen model's score is revealed; full: all")
    ] = "bandit",
    task_hint: Annotated[
        bool, typer.Option("--task-hint/--detect", help="give the row's task, or detect it")
    ] = True,
    detect: Annotated[bool, typer.Option("--detect-task", hidden=True)] = False,
    warmup: Annotated[
        Path | None, typer.Option(help="replay this table first, learning, not counted")
    ] = None,
    answer_tokens: Annotated[int, typer.Option(help="assumed answer length for costs")] = 200,
    seed: Annotated[int, typer.Option(help="random seed (exploration)")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON object as the last line")] = False,
) -> None:
    """Replay an outcomes table through the real router and compare with the baselines."""
    if mode not in ("bandit", "full"):
        raise typer.BadParameter("must be 'bandit' or 'full'", param_hint="--mode")
    try:
        report = replay(
            load_outcomes(outcomes), load_prices(prices), mode=mode, detect=detect or not task_hint,
            warmup=load_outcomes(warmup) if warmup else (), answer_tokens=answer_tokens, seed=seed,
        )  # fmt: skip
    except (ValueError, KeyError) as exc:
        raise typer.BadParameter(f"unusable table: {exc}", param_hint="--outcomes/--prices") from None
    _print(report)
    if json_out:
        print(json.dumps(report.to_json(), separators=(",", ":")))


def _print(report: ReplayReport) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Replay: {report.rows} rows")
    for column in ("policy", "mean quality", "cost/query (USD)", "of oracle"):
        table.add_column(column, justify="left" if column == "policy" else "right")
    oracle = report.oracle.mean_quality or 1.0
    lines = [
        ("router", Figures(report.mean_quality, report.cost_per_query)),
        (f"best single ({report.best_single.model})", report.best_single),
        ("per-task best (hindsight)", report.per_task_best),
        ("oracle", report.oracle),
        *((f"router, quarter {i + 1}", q) for i, q in enumerate(report.quarters)),
    ]
    for name, fig in lines:
        table.add_row(
            name, f"{fig.mean_quality:.4f}", f"{fig.cost_per_query:.3e}", f"{fig.mean_quality / oracle:.1%}"
        )
    console = Console(width=120)
    console.print(table)
    console.print("picks: " + ", ".join(f"{m} {c}" for m, c in report.picks.items()))
    for note in report.notes:
        console.print(note)
