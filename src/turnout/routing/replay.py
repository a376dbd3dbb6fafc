"""Replay evaluation: route a table of prompts with known per-model scores through the real router.

Each row goes through ``Router.rank`` over a scratch catalog built from the prices file (every model
at the same priority, so nothing about the answer is encoded there). In ``bandit`` mode only the
chosen model's score comes back, as an explicit rating through ``ExperienceStore.record`` (what the
feedback service calls); in ``full`` mode every model's score does. Warm-up rows are the platform
priors path (``priors.table_priors`` then ``priors.add_priors``: per (task, model) sums at the
global level every tenant's estimates see, one call per cell), so the replayed tenant's own ratings
refine them as a real tenant's would. Costs are estimated from the prompt's length (4 characters a
token) and ``answer_tokens`` at each model's prices.

With ``folds`` (issue 21), the table is split by prompt into K folds (``evaluation.folds``, which
depend on the seed): each fold is replayed by a fresh router warmed up on the other K-1 folds, so
every row is held out exactly once per seed; with ``shuffle`` each fold is replayed in an order
drawn per seed. Without folds there is one pass over the table, warmed up on ``warmup`` if given.
The baselines (``evaluation``) are fitted on the same warm-up rows and scored on the same held-out
rows, and so is the router itself with exploration off (``greedy``: the router's paired difference
from it is what exploring costs); without folds and without a warm-up table they are fitted on the
replayed rows themselves (hindsight, an upper bound, as the report notes). Seeds run in ``workers``
processes.
"""

from __future__ import annotations

import json
import multiprocessing
import random
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from turnout.routing.classifier import TaskClassifier
from turnout.routing.detection import task_mix
from turnout.routing.evaluation import (
    KNN_K,
    SWEEP,
    Outcomes,
    baselines,
    folds,
    prompt_groups,
    two_models,
)
from turnout.routing.evaluation_report import BASELINES, Pair, ReplayReport, SeedResult, summarize
from turnout.routing.evaluation_text import Neighbours, TextIndex
from turnout.routing.priors import add_priors, table_priors
from turnout.routing.prompt_memory import (
    EvaluationRows,
    PromptMemory,
    prompt_features,
    remember_rating,
    table_residuals,
)
from turnout.routing.router import CandidateSet, Router, RouterConfig
from turnout.routing.task_model import HASH_DIMS, TaskModel
from turnout.routing.types import Candidate, RouteRequest

Mixes = dict[int, tuple[tuple[str, float], ...]]  # row -> the other tasks it may be (RouteRequest.task_mix)

TENANT, AGENT, PREFIX = "replay", "replay-agent", "replay/"
START = 1_700_000_000.0  # synthetic clock: priors dated here, then one query a minute
STEP_S = 60.0

# a knob value -> the router's config at that value (``None``: the default config)
ConfigFor = Callable[[float], RouterConfig | None]
# ``--curve``: the two-model router's knob is the policy's price of cost (quality per doubling), the
# one a team sets; a log grid from "quality at any price" to "the cheaper nearly always", chosen a
# priori around the built-in policies' 0.002-0.08 (``domain/policies.COST_TRADEOFFS``)
DETECT_NEEDS_WARMUP = (
    "detected tasks are learned from warm-up rows, and without --folds or --warmup there are none: "
    "pass --folds K (each fold learns from the others) or --warmup FILE"
)
CURVE_TRADEOFFS = (0.0, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32)


def tradeoff_config(tradeoff: float) -> RouterConfig:
    """The default router at another price of cost (module-level: worker processes pickle it)."""
    return RouterConfig(cost_tradeoff=tradeoff)


@dataclass(frozen=True, slots=True)
class Row:
    task: str
    prompt: str
    scores: dict[str, float]


def load_outcomes(path: Path) -> list[Row]:
    """Rows of a JSONL outcomes table (``task``, ``prompt``, ``scores``: model name -> score in
    [0, 1]); ``ValueError`` naming the file, line and field of the first bad row."""
    rows = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    rows.append(_row(line))
                except ValueError as exc:
                    raise ValueError(f"{path.name} line {number}: {exc}") from None
    return rows


def _row(line: str) -> Row:
    """One table line, checked field by field (a table is often written by hand or exported)."""
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg})") from None
    if not isinstance(item, dict):
        raise ValueError('a row is a JSON object: {"task": ..., "prompt": ..., "scores": {...}}')
    task, prompt, scores = item.get("task"), item.get("prompt"), item.get("scores")
    if not isinstance(task, str) or not task:
        raise ValueError("'task' must be a non-empty string")
    if not isinstance(prompt, str):
        raise ValueError("'prompt' must be a string")
    if not isinstance(scores, dict) or not scores:
        raise ValueError("'scores' must be an object of model name -> score, with at least one model")
    checked: dict[str, float] = {}
    for name, score in scores.items():
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0.0 <= score <= 1.0:
            raise ValueError(f"'scores.{name}' must be a number from 0 to 1, not {json.dumps(score)}")
        checked[name] = float(score)
    return Row(task, prompt, checked)


PRICE_FIELDS = ("input_usd_per_mtok", "output_usd_per_mtok")


def load_prices(path: Path) -> dict[str, tuple[float, float]]:
    """Model -> (input, output) USD per 1M tokens, from ``{"<model>": {"input_usd_per_mtok": ...,
    "output_usd_per_mtok": ...}}``; ``ValueError`` naming the file and the field of the first bad one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path.name}: not JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        shape = f'{{"<model>": {{"{PRICE_FIELDS[0]}": ..., "{PRICE_FIELDS[1]}": ...}}}}'
        raise ValueError(f"{path.name}: prices are a JSON object: {shape}")
    prices: dict[str, tuple[float, float]] = {}
    for name, model in data.items():
        if not isinstance(model, dict):
            raise ValueError(f"{path.name}: '{name}' must be an object with {' and '.join(PRICE_FIELDS)}")
        got = []
        for field in PRICE_FIELDS:
            value = model.get(field)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                where = f"{path.name}: '{name}.{field}'"
                raise ValueError(f"{where} must be a number of USD from 0 up, not {json.dumps(value)}")
            got.append(float(value))
        prices[name] = (got[0], got[1])
    return prices


def scratch_catalog(prices: dict[str, tuple[float, float]]) -> CandidateSet:
    """One candidate per priced model, all at priority 50, in order of name."""
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


@dataclass(frozen=True, slots=True)
class _Plan:
    """What every seed's replay needs; picklable, so worker processes get it once."""

    outcomes: Outcomes  # every row: the --warmup table's, then the replayed table's
    prices: dict[str, tuple[float, float]]  # the models of ``outcomes`` only
    tokens: np.ndarray  # prompt tokens per row
    replayed: np.ndarray  # row indices of the replayed table
    warmup: np.ndarray  # row indices of the --warmup table
    n_folds: int | None
    shuffle: bool
    mode: str
    answer_tokens: int
    neighbours: Neighbours
    config: RouterConfig | None
    strong: int | None  # two-model: the strong model's column
    config_for: ConfigFor | None
    knobs: tuple[float, ...]
    # --detect: each fold learns the warm-up rows' tasks (as ``eval import`` does) from these features
    # and labels its held-out rows with them, or, where unsure, with built-in detection
    truth: np.ndarray | None = None  # the table's own tasks (priors are kept under them)
    builtin: np.ndarray | None = None  # built-in detection of each row
    features: np.ndarray | None = None  # TaskModel features of each row
    # --prompt-memory: each row's prompt features; the warm-up rows become the memory's evaluation
    # rows and the router's own ratings its live rows, as in production
    vectors: np.ndarray | None = None


def replay(
    rows: Sequence[Row],
    prices: dict[str, tuple[float, float]],
    *,
    mode: str = "bandit",
    detect: bool = False,
    warmup: Sequence[Row] = (),
    answer_tokens: int = 200,
    seed: int = 0,
    seeds: int = 1,
    n_folds: int | None = None,
    shuffle: bool = False,
    two_model: bool = False,
    config: RouterConfig | None = None,
    router_config_for: ConfigFor | None = None,
    knobs: Sequence[float] = (),
    workers: int = 1,
    on_seed: Callable[[int], None] | None = None,
    prompt_memory: bool = False,
) -> ReplayReport:
    """Replay ``rows`` through fresh routers for seeds ``seed .. seed + seeds - 1`` and score the
    router and the baselines on the same held-out rows (see the module docstring).

    ``router_config_for`` with ``knobs`` traces the router's two-model curve: each knob value's
    config replays every fold again (it must be picklable when ``workers`` > 1); without it the
    router's APGR and CPT come from its operating point alone. ``on_seed`` is called as each seed
    finishes (progress). ``prompt_memory`` routes with a ``PromptMemory`` (it needs the word vectors
    of the ``classifier`` extra)."""
    if mode not in ("bandit", "full"):
        raise ValueError("mode must be 'bandit' or 'full'")
    if not rows:
        raise ValueError("the outcomes table has no rows")
    if seeds < 1:
        raise ValueError("seeds must be at least 1")
    if n_folds is not None and n_folds < 2:
        raise ValueError("folds must be at least 2")
    if detect and n_folds is None and not warmup:
        raise ValueError(DETECT_NEEDS_WARMUP)
    every = [*warmup, *rows]
    notes: list[str] = []
    outcomes, tokens = _outcomes(every, prices, answer_tokens)
    truth = builtin = features = None
    if detect:
        truth = outcomes.tasks
        detector = _detector(notes)
        builtin = np.array([detector(row.prompt) for row in every])
        encoder = TaskClassifier.if_available()
        features = TaskModel.features([row.prompt for row in every], encoder, encoder is not None)
        notes.append(
            "detected tasks: each fold learns its warm-up rows' tasks (as turnout eval import does, "
            f"{'with' if encoder is not None else 'without'} word vectors) and labels a held-out row "
            "with them, or with built-in detection where unsure, and routes it on the learned tasks' "
            "mix as live requests are; priors keep the table's tasks"
        )
    vectors = None
    if prompt_memory:
        encoder = TaskClassifier.if_available()
        if encoder is None:
            raise ValueError("the prompt memory needs the word vectors: install the 'classifier' extra")
        vectors = prompt_features([row.prompt for row in every], encoder)
        notes.append(
            "prompt memory: each fold's warm-up rows are the memory's evaluation rows, the router's "
            "own ratings its live rows; a request's most similar rated prompts adjust its estimates"
        )
    replayed = np.arange(len(warmup), len(every))
    if n_folds is not None and np.unique(outcomes.groups[replayed]).size < n_folds:
        raise ValueError(f"{n_folds} folds need at least {n_folds} distinct prompts")
    pair: Pair | None = None
    strong = None
    if two_model:
        s, w = two_models(outcomes.rows(replayed))  # over the replayed table
        names = outcomes.models
        outcomes = outcomes.only(sorted((s, w)))
        strong, weak = outcomes.models.index(names[s]), outcomes.models.index(names[w])
        swept = router_config_for is not None and len(knobs) > 0
        pair = Pair(
            names[s], names[w], outcomes.scores[replayed, strong], outcomes.scores[replayed, weak],
            f"knob sweep ({len(knobs)} points)" if swept else "operating point only",
        )  # fmt: skip
        if not swept:
            notes.append(
                "two-model: the router's APGR and CPT come from its operating point alone, the curve "
                "(0, 0) - (its share, its PGR) - (1, 1); --curve sweeps its price of cost instead"
            )
        prices = {m: prices[m] for m in outcomes.models}
    hindsight = n_folds is None and not warmup
    if hindsight:
        notes.append(
            "baselines fitted on the replayed rows themselves (no --folds, no --warmup): hindsight, an "
            "upper bound (kNN leaves each row out of its own neighbours)"
        )
    plan = _Plan(
        outcomes, dict(prices), tokens, replayed, np.arange(len(warmup)), n_folds, shuffle, mode,
        answer_tokens, Neighbours(TextIndex([row.prompt for row in every])), config, strong,
        router_config_for if knobs else None, tuple(knobs), truth, builtin, features, vectors,
    )  # fmt: skip
    results = _run(plan, list(range(seed, seed + seeds)), workers, on_seed)
    settings: dict[str, Any] = {
        "mode": mode,
        "task_source": "detected" if detect else "given",
        "folds": n_folds,
        "shuffle": shuffle,
        "answer_tokens": answer_tokens,
        "models": list(outcomes.models),
        "warmup_rows": len(warmup),
        "baselines_fitted_on": "replayed rows (hindsight)" if hindsight else "warm-up rows",
        "knn_k": KNN_K,
        "prompt_memory": prompt_memory,
    }
    return summarize(results, outcomes.tasks[replayed], settings, notes, pair)


def _outcomes(
    every: list[Row],
    prices: dict[str, tuple[float, float]],
    answer_tokens: int,
) -> tuple[Outcomes, np.ndarray]:
    """The numbers of ``every`` row (models in order of name, tasks as the table gives them) and
    each prompt's tokens."""
    models = sorted(prices)
    missing = {name for row in every for name in models if name not in row.scores}
    if missing:
        raise ValueError(f"rows without a score for priced models: {', '.join(sorted(missing))}")
    unpriced = {name for row in every for name in row.scores} - set(models)
    if unpriced:  # left out, it changed every baseline without a word (it was the best on a slice)
        raise ValueError(
            f"models in the table without a price: {', '.join(sorted(unpriced))} (add them to the prices "
            "file, or take their scores out of the table)"
        )
    tasks = np.array([row.task for row in every])
    tokens = np.array([len(row.prompt) // 4 for row in every])
    p_in = np.array([prices[m][0] for m in models])
    p_out = np.array([prices[m][1] for m in models])
    scores = np.array([[row.scores[m] for m in models] for row in every], dtype=float)
    costs = (tokens[:, None] * p_in + answer_tokens * p_out) / 1e6
    return Outcomes(tuple(models), scores, costs, tasks, prompt_groups([row.prompt for row in every])), tokens


def _run(
    plan: _Plan, seeds: list[int], workers: int, on_seed: Callable[[int], None] | None
) -> list[SeedResult]:
    """Each seed's replay, in ``workers`` processes (the plan is sent once per process)."""
    if workers <= 1 or len(seeds) == 1:
        results = []
        for s in seeds:
            results.append(_replay_seed(plan, s))
            if on_seed:
                on_seed(s)
        return results
    _worker_plan.clear()
    out = []
    # spawned, not forked: the parent may hold threads (the progress bar's, BLAS's) at fork time
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        min(workers, len(seeds)), mp_context=context, initializer=_init_worker, initargs=(plan,)
    ) as pool:
        futures = [pool.submit(_seed_in_worker, s) for s in seeds]
        for future in as_completed(futures):
            result = future.result()
            out.append(result)
            if on_seed:
                on_seed(result.seed)
    return out


_worker_plan: dict[str, _Plan] = {}  # a worker process's plan, set once by its initializer


def _init_worker(plan: _Plan) -> None:
    _worker_plan["plan"] = plan


def _seed_in_worker(seed: int) -> SeedResult:
    return _replay_seed(_worker_plan["plan"], seed)


def _splits(plan: _Plan, seed: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(router warm-up rows, baseline training rows, held-out rows) per fold."""
    held_all = plan.replayed
    if plan.n_folds is None:
        train = plan.warmup if plan.warmup.size else held_all
        return [(plan.warmup, train, held_all)]
    fold = folds(plan.outcomes.groups[held_all], plan.n_folds, np.random.default_rng([seed, 1]))
    out = []
    for k in range(plan.n_folds):
        warm = np.concatenate([plan.warmup, held_all[fold != k]])
        out.append((warm, warm, held_all[fold == k]))
    return out


def _replay_seed(plan: _Plan, seed: int) -> SeedResult:
    """Every fold of one seed: the router and the baselines on its held-out rows."""
    o = plan.outcomes
    n, m = plan.replayed.size, len(o.models)
    slot = np.full(o.scores.shape[0], -1)
    slot[plan.replayed] = np.arange(n)
    names = ["router", *BASELINES]
    quality = {p: np.zeros(n) for p in names}
    cost = {p: np.zeros(n) for p in names}
    strong = {p: np.zeros(n) for p in names}
    seen = np.zeros(n, dtype=np.int64)
    quarter = np.zeros(n, dtype=np.int64)
    best_models: list[str] = []
    lambdas: dict[str, list[float]] = {"per_task": [], "knn": []}
    picks: Counter[str] = Counter()
    two = plan.strong is not None
    sweep_strong = {p: np.zeros(SWEEP.size) for p in ("per_task", "knn")}
    sweep_quality = {p: np.zeros(SWEEP.size) for p in ("per_task", "knn")}
    sweep_cost = np.zeros(SWEEP.size)  # the per-task table's, for its frontier
    knob_strong, knob_quality = np.zeros(len(plan.knobs)), np.zeros(len(plan.knobs))
    shuffler = np.random.default_rng([seed, 2])
    for k, (warm, train, held) in enumerate(_splits(plan, seed)):
        o, mixes = (plan.outcomes, {}) if plan.features is None else _detected(plan, warm, held)
        order = shuffler.permutation(held) if plan.shuffle else held
        at = slot[order]
        chosen = _route(plan, o, warm, order, random.Random(f"{seed}/{k}"), plan.config, mixes)
        greedy = _route(plan, o, warm, order, random.Random(f"{seed}/{k}"), _greedy(plan.config), mixes)
        picks.update(o.models[j] for j in chosen.tolist())
        fold = baselines(o, plan.neighbours, train, order, np.random.default_rng([seed, 3, k]))
        best_models.append(o.models[fold.best])
        for name, lam in fold.lambdas.items():
            lambdas[name].append(lam)
        for name, p in {"router": chosen, "greedy": greedy, **fold.picks}.items():
            quality[name][at] = o.scores[order, p]
            cost[name][at] = o.costs[order, p]
            strong[name][at] = p == plan.strong
        quality["random"][at] = o.scores[order].mean(1)
        cost["random"][at] = o.costs[order].mean(1)
        strong["random"][at] = 1.0 / m
        tasks = o.tasks[order]
        for task in np.unique(tasks):
            where = np.flatnonzero(tasks == task)
            seen[at[where]] = np.arange(where.size)
        for i, part in enumerate(np.array_split(np.arange(order.size), 4)):
            quarter[at[part]] = i
        for name, swept in fold.sweeps.items():
            sweep_strong[name] += (swept == plan.strong).sum(1)
            sweep_quality[name] += o.scores[order[None, :], swept].sum(1)
        sweep_cost += o.costs[order[None, :], fold.sweeps["per_task"]].sum(1)
        if two and plan.config_for is not None:
            for i, knob in enumerate(plan.knobs):
                alt = _route(plan, o, warm, order, random.Random(f"{seed}/{k}"), plan.config_for(knob))
                knob_strong[i] += (alt == plan.strong).sum()
                knob_quality[i] += o.scores[order, alt].sum()
    curves: dict[str, list[tuple[float, float]]] = {}
    if two:
        for name in sweep_strong:
            curves[name] = list(
                zip((sweep_strong[name] / n).tolist(), (sweep_quality[name] / n).tolist(), strict=True)
            )
        curves["router"] = list(zip((knob_strong / n).tolist(), (knob_quality / n).tolist(), strict=True))
    frontier = list(zip((sweep_cost / n).tolist(), (sweep_quality["per_task"] / n).tolist(), strict=True))
    return SeedResult(
        seed, quality, cost, seen, quarter, best_models, lambdas, picks,
        strong if two else {}, curves, frontier,
    )  # fmt: skip


def _greedy(config: RouterConfig | None) -> RouterConfig:
    """The same router with exploration off: always its best current estimate."""
    return replace(config or RouterConfig(), exploration="off")


def _detected(plan: _Plan, warm: np.ndarray, held: np.ndarray) -> tuple[Outcomes, Mixes]:
    """The outcomes with the held-out rows' tasks detected: by a ``TaskModel`` fitted on the warm-up
    rows' prompts and tasks where it is sure, else by built-in detection (production's order); and
    each held-out row's task mix, the other learned tasks it may be, as ``detect_task`` gives it."""
    assert plan.features is not None and plan.truth is not None and plan.builtin is not None
    encoder = TaskClassifier.if_available() if plan.features.shape[1] > HASH_DIMS else None
    model = TaskModel.fit(plan.features[warm], plan.truth[warm].tolist(), encoder)
    probs = model.probabilities_of(plan.features[held])
    tasks = plan.truth.astype(object).copy()
    mixes: Mixes = {}
    for r, i in enumerate(held.tolist()):  # detect_task's rule
        mixture = model.mixture_of(probs[r])
        if not model.in_domain(plan.features[i], mixture[0][0]):  # unlike the warm-up's prompts
            mixture = []
        taught = model.sure_of(mixture) if mixture else None
        tasks[i] = taught[0] if taught is not None else plan.builtin[i]
        mixes[i] = task_mix(mixture, str(tasks[i]))
    return replace(plan.outcomes, tasks=tasks), mixes


def _route(
    plan: _Plan,
    o: Outcomes,
    warm: np.ndarray,
    order: np.ndarray,
    rng: random.Random,
    config: RouterConfig | None,
    mixes: Mixes | None = None,
) -> np.ndarray:
    """A fresh router, warmed up with ``warm`` as priors, routes ``order`` learning from its
    ratings; returns the column of the model it chose for each row."""
    ids = [PREFIX + name for name in o.models]
    memory = None
    if plan.vectors is not None:
        memory = PromptMemory()
        tasks = o.tasks[warm].tolist()  # eval import's path: its rows, residuals against its means
        EvaluationRows(tasks, plan.vectors[warm], table_residuals(tasks, o.scores[warm]), ids).into(memory)
    router = Router(None, config, memory)
    store = router.experience
    catalog = scratch_catalog(plan.prices)
    column = {c.model_id: o.models.index(c.model_id.removeprefix(PREFIX)) for c in catalog}
    rows = [(str(o.tasks[i]), dict(zip(ids, o.scores[i].tolist(), strict=True))) for i in warm.tolist()]
    add_priors(store, table_priors(rows), START)
    clock = START
    chosen = np.zeros(order.size, dtype=np.int64)
    full = plan.mode == "full"
    for pos, i in enumerate(order.tolist()):
        task = str(o.tasks[i])
        vector = None if plan.vectors is None else plan.vectors[i]
        request = RouteRequest(
            TENANT,
            AGENT,
            task,
            prompt_tokens=int(plan.tokens[i]),
            expected_output_tokens=plan.answer_tokens,
            task_mix=mixes.get(i, ()) if mixes else (),
            prompt_vector=vector,
        )
        j = chosen[pos] = column[router.rank(request, catalog, rng=rng, now=clock).ranked[0].model_id]
        for r in range(len(ids)) if full else (j,):  # the tenant's own ratings, as feedback records them
            score = float(o.scores[i, r])
            if memory is not None and vector is not None:  # as the feedback service does
                remember_rating(memory, store, (TENANT, AGENT, task, ids[r]), vector.tobytes(), score, clock)
            store.record(TENANT, AGENT, task, ids[r], score, clock)
        clock += STEP_S
    return chosen
