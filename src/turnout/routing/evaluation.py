"""Folds and baselines of ``eval replay``: what the router is measured against, fitted fairly.

The outcome table is split by prompt into K folds (rows with the same prompt text share a fold, so
no prompt is ever both learned from and tested on); each fold is held out in turn, and every
baseline is fitted on the other folds' rows (the warm-up rows) alone, then applied to the held-out
rows, as the router is:

- **best single**: the model with the best mean quality on the warm-up rows (ties: the cheaper).
- **per-task table**: per task, the model maximising ``mean quality - λ * mean cost`` on the
  warm-up rows, costs in units of the best single model's mean cost (so λ is "quality a cost of one
  best-single call is worth"); a task the warm-up rows lack falls back to the table of all rows.
- **kNN**: a prompt's score for each model is the mean over its ``KNN_K`` = 20 most similar warm-up
  prompts (TF-IDF cosine, ``evaluation_text``); the pick maximises ``predicted quality - λ * cost``
  with the row's own cost (known at routing time, from the prompt's length). k is fixed, not tuned:
  20 neighbours is the middle of what kNN routers use, and tuning it would add a second inner loop.
- **random**: uniform over the models, as its expectation (the mean over models), so it adds no noise.
- **oracle**: the best score of each row, the cheapest model among ties.

λ, for the per-task table and kNN, is chosen by an inner cross-validation on the warm-up rows only
(``INNER_FOLDS`` folds, by prompt): among ``LAMBDAS`` (0 and a log grid), the λ with the best
inner-held-out quality whose inner-held-out cost is at most ``MAX_COST_RATIO`` of the best single
model's (fitted on each inner training split); when no λ meets that, the λ of the lowest inner-held-out
cost. That is the replay target itself, so each baseline is tuned for what the router is judged on.
Every choice breaks ties toward the cheaper model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from turnout.routing.evaluation_stats import MAX_COST_RATIO
from turnout.routing.evaluation_text import Neighbours

LAMBDAS = np.concatenate([[0.0], np.geomspace(1e-3, 10.0, 17)])  # the inner CV's choices
SWEEP = np.concatenate([[0.0], np.geomspace(1e-3, 30.0, 46)])  # the two-model curves' λ
INNER_FOLDS = 5
KNN_K = 20
_TIE = 1e-12

# (train rows, rows to predict) -> (predicted quality, cost the trade-off uses), each (len(rows), models)
Predictor = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True, slots=True)
class Outcomes:
    """The numbers of an outcome table: what the baselines are fitted on and every policy is scored by."""

    models: tuple[str, ...]
    scores: np.ndarray  # (rows, models), in [0, 1]
    costs: np.ndarray  # (rows, models), USD per query
    tasks: np.ndarray  # (rows,), the task each row is routed as (given, or detected)
    groups: np.ndarray  # (rows,), rows with the same prompt text share a group

    def rows(self, rows: np.ndarray) -> Outcomes:
        """Only ``rows`` (indices)."""
        return Outcomes(self.models, self.scores[rows], self.costs[rows], self.tasks[rows], self.groups[rows])

    def only(self, models: Sequence[int]) -> Outcomes:
        """The same rows with only ``models`` (column indices, in that order)."""
        cols = list(models)
        return Outcomes(
            tuple(self.models[j] for j in cols),
            self.scores[:, cols],
            self.costs[:, cols],
            self.tasks,
            self.groups,
        )


def prompt_groups(prompts: Sequence[str]) -> np.ndarray:
    """A group id per row: rows with the same prompt text get the same one."""
    ids: dict[str, int] = {}
    return np.array([ids.setdefault(p, len(ids)) for p in prompts], dtype=np.int64)


def folds(groups: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """The fold (0..k-1) of each row: groups in random order, each to the fold with the fewest rows
    so far (the first such), so folds differ by at most the largest group's size."""
    uniq, sizes = np.unique(groups, return_counts=True)
    if not 1 <= k <= uniq.size:
        raise ValueError(f"cannot split {uniq.size} distinct prompts into {k} folds")
    fold_of_group = np.empty(uniq.size, dtype=np.int64)
    filled = np.zeros(k, dtype=np.int64)
    for g in rng.permutation(uniq.size):
        f = int(np.argmin(filled))
        fold_of_group[g] = f
        filled[f] += sizes[g]
    return fold_of_group[np.searchsorted(uniq, groups)]


def best_model(scores: np.ndarray, costs: np.ndarray) -> int:
    """The model with the best mean score (ties: the lower mean cost, then the first)."""
    quality = scores.mean(0)
    tied = quality >= quality.max() - _TIE
    return int(np.argmin(np.where(tied, costs.mean(0), np.inf)))


def cheapest_best(values: np.ndarray, costs: np.ndarray) -> np.ndarray:
    """Per row (last axis = models): the best value, the cheaper model among ties."""
    tied = values >= values.max(axis=-1, keepdims=True) - _TIE
    return np.argmin(np.where(tied, costs, np.inf), axis=-1)


def choose(pred: np.ndarray, cost: np.ndarray, ref: float, lambdas: np.ndarray) -> np.ndarray:
    """Each row's pick under each λ: argmax of ``pred - λ * cost / ref`` (ties: cheaper);
    shape (len(lambdas), rows)."""
    scale = ref if ref > 0 else 1.0
    values = pred[None] - lambdas[:, None, None] * (cost[None] / scale)
    return cheapest_best(values, np.broadcast_to(cost[None], values.shape))


def per_task(o: Outcomes, train: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The per-task table's predictor: each task's mean quality and mean cost on ``train`` (all of
    ``train``'s for a task it lacks)."""
    m = len(o.models)
    if train.size == 0:
        return np.zeros((rows.size, m)), np.zeros((rows.size, m))
    quality = np.tile(o.scores[train].mean(0), (rows.size, 1))
    cost = np.tile(o.costs[train].mean(0), (rows.size, 1))
    train_tasks, row_tasks = o.tasks[train], o.tasks[rows]
    for task in np.unique(row_tasks):
        seen = train[train_tasks == task]
        if seen.size:
            target = row_tasks == task
            quality[target] = o.scores[seen].mean(0)
            cost[target] = o.costs[seen].mean(0)
    return quality, cost


def knn(o: Outcomes, neighbours: Neighbours, k: int = KNN_K) -> Predictor:
    """The kNN predictor: each model's mean score over a row's ``k`` nearest ``train`` rows (the
    training mean for a row with none), and the row's own cost."""

    def predict(train: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        allowed = np.zeros(o.scores.shape[0], dtype=bool)
        allowed[train] = True
        near = neighbours.among(rows, allowed, k)
        valid = near >= 0
        count = valid.sum(1)
        sums = (o.scores[np.maximum(near, 0)] * valid[:, :, None]).sum(1)
        mean = o.scores[train].mean(0) if train.size else np.zeros(len(o.models))
        quality = np.where(count[:, None] > 0, sums / np.maximum(count, 1)[:, None], mean)
        return quality, o.costs[rows]

    return predict


def select_lambda(
    o: Outcomes,
    train: np.ndarray,
    predictor: Predictor,
    rng: np.random.Generator,
    lambdas: np.ndarray = LAMBDAS,
) -> float:
    """λ by inner cross-validation on ``train`` (the rule in the module's docstring); 0 when
    ``train`` holds fewer than two distinct prompts."""
    n_groups = np.unique(o.groups[train]).size
    if n_groups < 2:
        return float(lambdas[0])
    inner = folds(o.groups[train], min(INNER_FOLDS, n_groups), rng)
    quality = np.zeros(lambdas.size)
    cost = np.zeros(lambdas.size)
    best_cost = 0.0
    for f in range(int(inner.max()) + 1):
        fit, held = train[inner != f], train[inner == f]
        best = best_model(o.scores[fit], o.costs[fit])
        pred, trade_cost = predictor(fit, held)
        picks = choose(pred, trade_cost, float(o.costs[fit, best].mean()), lambdas)
        quality += o.scores[held[None, :], picks].sum(1)
        cost += o.costs[held[None, :], picks].sum(1)
        best_cost += float(o.costs[held, best].sum())
    feasible = cost <= MAX_COST_RATIO * best_cost * (1 + 1e-9)
    if feasible.any():
        i = int(np.lexsort((cost, -quality, ~feasible))[0])
    else:
        i = int(np.lexsort((-quality, cost))[0])
    return float(lambdas[i])


@dataclass(slots=True)
class Fold:
    """The baselines on one held-out fold: each policy's pick per held-out row (random has none)."""

    best: int
    picks: dict[str, np.ndarray]
    lambdas: dict[str, float]
    sweeps: dict[str, np.ndarray]  # policy -> (len(SWEEP), rows) picks


def baselines(
    o: Outcomes,
    neighbours: Neighbours,
    train: np.ndarray,
    held: np.ndarray,
    rng: np.random.Generator,
) -> Fold:
    """Fit every baseline on ``train`` and pick for the ``held`` rows, also under each λ of
    ``SWEEP`` (the per-task table's frontier, the two-model curves)."""
    best = best_model(o.scores[train], o.costs[train])
    ref = float(o.costs[train, best].mean())
    predictors: dict[str, Predictor] = {
        "per_task": lambda tr, rows: per_task(o, tr, rows),
        "knn": knn(o, neighbours),
    }
    picks = {
        "best_single": np.full(held.size, best),
        "oracle": cheapest_best(o.scores[held], o.costs[held]),
    }
    lambdas: dict[str, float] = {}
    sweeps: dict[str, np.ndarray] = {}
    for name, predictor in predictors.items():
        lam = lambdas[name] = select_lambda(o, train, predictor, rng)
        pred, trade_cost = predictor(train, held)
        picks[name] = choose(pred, trade_cost, ref, np.array([lam]))[0]
        sweeps[name] = choose(pred, trade_cost, ref, SWEEP)
    return Fold(best, picks, lambdas, sweeps)


def two_models(o: Outcomes) -> tuple[int, int]:
    """RouteLLM's pair: (strong, weak) = the best mean quality over the table, and the lowest mean
    cost per query (ties: the lower quality, then the first)."""
    strong = best_model(o.scores, o.costs)
    quality, cost = o.scores.mean(0), o.costs.mean(0)
    weak = int(np.lexsort((quality, cost))[0])
    if weak == strong:
        raise ValueError(f"{o.models[strong]} is both the best and the cheapest model: no trade-off to route")
    return strong, weak
