"""eval replay's folds, baselines and statistics on small tables whose right answers are known."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from turnout.cli.evaluation import eval_app
from turnout.routing.evaluation import Outcomes, baselines, folds, prompt_groups
from turnout.routing.evaluation_stats import (
    apgr,
    best_at_cost,
    calls_to_recover,
    gap_recovered,
    passes,
    t975,
    t_interval,
)
from turnout.routing.evaluation_text import Neighbours, TextIndex
from turnout.routing.replay import Row, replay


def table(
    prompts: list[str], tasks: list[str], scores: list[list[float]], prices: list[float]
) -> tuple[Outcomes, Neighbours]:
    """Models m0, m1, ... with a fixed cost per query each."""
    data = np.array(scores, dtype=float)
    models = tuple(f"m{j}" for j in range(data.shape[1]))
    costs = np.tile(np.array(prices, dtype=float), (data.shape[0], 1))
    outcomes = Outcomes(models, data, costs, np.array(tasks), prompt_groups(prompts))
    return outcomes, Neighbours(TextIndex(prompts))


def split(n: int, held_every: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rows = np.arange(n)
    return rows[rows % held_every != 0], rows[rows % held_every == 0]


def test_folds_are_disjoint_cover_every_row_keep_duplicates_together_and_follow_the_seed() -> None:
    prompts = [f"prompt {i % 70}" for i in range(100)]  # 30 prompts appear twice
    groups = prompt_groups(prompts)
    assigned = {seed: folds(groups, 5, np.random.default_rng(seed)) for seed in range(3)}
    for fold in assigned.values():
        assert fold.shape == (100,) and set(fold.tolist()) == set(range(5))  # each row in exactly one
        for g in np.unique(groups):
            assert np.unique(fold[groups == g]).size == 1  # a prompt's copies share a fold
        sizes = np.bincount(fold)
        assert sizes.max() - sizes.min() <= 2
    assert not np.array_equal(assigned[0], assigned[1]) and not np.array_equal(assigned[1], assigned[2])
    assert np.array_equal(assigned[0], folds(groups, 5, np.random.default_rng(0)))
    with pytest.raises(ValueError, match="3 distinct prompts"):
        folds(prompt_groups(["a", "b", "a", "c"]), 4, np.random.default_rng(0))


def test_per_task_table_picks_the_model_that_is_best_and_cheap_on_each_task() -> None:
    n = 80
    tasks = ["x" if i % 2 else "y" for i in range(n)]
    # m0 (cheap) always right on x; m1 (pricey) right on y, where m0 fails
    scores = [[1.0, 0.6] if t == "x" else [0.1, 0.9] for t in tasks]
    # m1 at 10x m0's price: m0 on x and m1 on y costs 55% of m1 everywhere, within the target
    o, near = table([f"question {i}" for i in range(n)], tasks, scores, [1.0, 10.0])
    train, held = split(n, held_every=5)
    fold = baselines(o, near, train, held, np.random.default_rng(0))
    picks = fold.picks["per_task"]
    assert np.all(picks[o.tasks[held] == "x"] == 0) and np.all(picks[o.tasks[held] == "y"] == 1)
    assert fold.best == 1  # mean 0.75 against m0's 0.55
    assert np.all(fold.picks["best_single"] == fold.best)


def test_best_single_is_fitted_on_the_warm_up_rows_not_the_held_out_ones() -> None:
    n = 40
    train, held = split(n)
    scores = [[0.2, 0.9] if i % 4 == 0 else [0.8, 0.3] for i in range(n)]  # m1 wins only on held-out rows
    o, near = table([f"q {i}" for i in range(n)], ["t"] * n, scores, [1.0, 1.0])
    fold = baselines(o, near, train, held, np.random.default_rng(0))
    assert fold.best == 0 and np.all(fold.picks["best_single"] == 0)
    assert np.all(fold.picks["oracle"] == 1)


def test_knn_follows_a_sub_population_that_a_per_task_table_cannot_see() -> None:
    n = 120
    prompts = [
        f"apple pie recipe with cinnamon number {i}" if i % 2 else f"zebra stripes pattern savanna item {i}"
        for i in range(n)
    ]
    scores = [[1.0, 0.0] if i % 2 else [0.0, 1.0] for i in range(n)]  # apples: m0; zebras: m1
    o, near = table(prompts, ["t"] * n, scores, [1.0, 1.0])
    train, held = split(n, held_every=3)
    fold = baselines(o, near, train, held, np.random.default_rng(0))
    quality = {p: float(o.scores[held, fold.picks[p]].mean()) for p in ("knn", "per_task", "best_single")}
    assert quality["knn"] == 1.0
    assert (
        quality["per_task"] == pytest.approx(0.5, abs=0.1) and quality["best_single"] == quality["per_task"]
    )


def test_lambda_buys_quality_only_where_it_is_worth_it_under_the_cost_target() -> None:
    n = 160
    tasks = ["abcd"[i % 4] for i in range(n)]
    # m1 costs 10x m0 and is a little better on a, b, c, far better on d: the best under the target
    # (<= 60% of the best single model's cost) pays for m1 on d only
    scores = [[0.2, 0.8] if t == "d" else [0.75, 0.8] for t in tasks]
    o, near = table([f"item {i}" for i in range(n)], tasks, scores, [1.0, 10.0])
    train, held = split(n, held_every=5)
    fold = baselines(o, near, train, held, np.random.default_rng(1))
    picks = fold.picks["per_task"]
    assert np.all(picks[o.tasks[held] == "d"] == 1) and np.all(picks[o.tasks[held] != "d"] == 0)
    assert 0.0556 < fold.lambdas["per_task"] < 0.667
    cost = o.costs[held, picks].mean()
    assert cost <= 0.6 * o.costs[held, fold.best].mean()


def test_lambda_falls_back_to_the_cheapest_when_no_choice_meets_the_target() -> None:
    n = 80
    scores = [[0.5, 0.9]] * n  # m0 costs 80% of m1: nothing gets to 60% of the best single's cost
    o, near = table([f"thing {i}" for i in range(n)], ["t"] * n, scores, [8.0, 10.0])
    train, held = split(n)
    fold = baselines(o, near, train, held, np.random.default_rng(0))
    assert fold.best == 1
    assert np.all(fold.picks["per_task"] == 0) and np.all(fold.picks["knn"] == 0)


def test_oracle_takes_the_best_score_and_the_cheaper_model_on_ties() -> None:
    o, near = table(
        ["a b", "c d", "e f"], ["t"] * 3, [[1.0, 1.0, 0.0], [0.0, 0.5, 0.7], [0.3, 0.3, 0.3]], [3, 2, 1]
    )
    fold = baselines(o, near, np.arange(3), np.arange(3), np.random.default_rng(0))
    assert fold.picks["oracle"].tolist() == [1, 2, 2]


def test_random_is_the_mean_over_models_on_the_replayed_rows() -> None:
    rows = [
        Row("t", f"prompt number {i}", {"a": s, "b": 1.0 - s, "c": 0.5})
        for i, s in enumerate([0.0, 1.0, 0.4])
    ]
    prices = {"a": (1.0, 1.0), "b": (2.0, 2.0), "c": (4.0, 4.0)}
    report = replay(rows, prices, answer_tokens=100)
    assert report.policies["random"].mean_quality == pytest.approx(0.5)
    tokens = [len(row.prompt) // 4 for row in rows]
    expected = np.mean([(t + 100) * (1 + 2 + 4) / 3 / 1e6 for t in tokens])
    assert report.policies["random"].cost_per_query == pytest.approx(expected)


def test_text_index_similarities_are_tfidf_cosines() -> None:
    texts = ["the cat sat on the mat", "the dog sat", "a mat for the cat", "zebra", "cat cat cat dog"]
    texts += [f"filler words {i}" for i in range(600)]  # enough terms that some are multiplied sparsely
    index = TextIndex(texts)
    vocab = sorted({w for t in texts for w in t.split()})
    dense = np.zeros((len(texts), len(vocab)))
    for i, text in enumerate(texts):
        words = text.split()
        for w in set(words):
            dense[i, vocab.index(w)] = 1 + math.log(words.count(w))
    df = (dense > 0).sum(0)
    dense *= np.log((1 + len(texts)) / (1 + df)) + 1
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    rows = np.arange(8)
    assert np.allclose(index.similarities(rows), (dense @ dense.T)[rows], atol=1e-6)


def test_neighbours_respect_the_allowed_rows_even_past_their_kept_list() -> None:
    texts = [f"shared topic words {i % 7} extra{i}" for i in range(60)]
    index = TextIndex(texts)
    allowed = np.zeros(60, dtype=bool)
    allowed[40:] = True
    short, long = Neighbours(index, keep=4), Neighbours(index, keep=100)
    rows = np.arange(10)
    got = short.among(rows, allowed, 5)
    assert np.all(allowed[got]) and not np.any(got == rows[:, None])
    assert np.array_equal(got, long.among(rows, allowed, 5))


def test_apgr_and_cpt_on_hand_computed_curves() -> None:
    one = [(0.5, 0.8)]  # the curve (0, 0) - (0.5, 0.8) - (1, 1)
    assert apgr(one) == pytest.approx(0.5 * 0.4 + 0.5 * 0.9)
    assert calls_to_recover(one, 0.5) == pytest.approx(0.3125)
    assert calls_to_recover(one, 0.8) == pytest.approx(0.5)
    two = [(0.6, 0.9), (0.2, 0.5)]  # sorted by share: (0, 0) (0.2, 0.5) (0.6, 0.9) (1, 1)
    assert apgr(two) == pytest.approx(0.2 * 0.25 + 0.4 * 0.7 + 0.4 * 0.95)
    assert calls_to_recover(two, 0.5) == pytest.approx(0.2)
    assert calls_to_recover(two, 0.8) == pytest.approx(0.5)
    assert apgr([]) == pytest.approx(0.5)  # random mixing of the two models
    assert gap_recovered(0.6, 0.5, 0.7) == pytest.approx(0.5) and math.isnan(gap_recovered(0.6, 0.5, 0.5))


def test_the_tables_quality_at_a_cost_mixes_its_two_neighbouring_points_and_never_spends_more() -> None:
    """A frontier of (cost, quality): between two points the table can mix them (each call to one
    λ or the other), a point under the hull is never the best, and a dearer but worse point is
    never bought; below the cheapest point it is that point, past the best point the best."""
    points = [(1.0, 0.5), (2.0, 0.6), (2.5, 0.55), (3.0, 0.62), (4.0, 0.61), (2.0, 0.4)]
    assert best_at_cost(points, 0.5) == pytest.approx(0.5)
    assert best_at_cost(points, 1.5) == pytest.approx(0.55)
    assert best_at_cost(points, 2.5) == pytest.approx(0.61), "(2.5, 0.55) lies under the hull"
    assert best_at_cost(points, 3.5) == best_at_cost(points, 10.0) == pytest.approx(0.62)
    assert math.isnan(best_at_cost([], 1.0))


def test_a_seed_passes_only_above_the_best_single_quality_at_no_more_than_60_percent_of_its_cost() -> None:
    assert passes(0.63, 0.60, 0.62, 1.0)
    assert not passes(0.62, 0.50, 0.62, 1.0)  # equal quality is not above
    assert not passes(0.70, 0.61, 0.62, 1.0)
    assert not passes(0.60, 0.10, 0.62, 1.0)


def test_t_intervals() -> None:
    assert t975(1) == pytest.approx(12.706, abs=1e-3) and t975(19) == pytest.approx(2.093, abs=1e-3)
    assert t975(31) == pytest.approx(2.0395, abs=1e-4) and t975(120) == pytest.approx(1.9799, abs=1e-4)
    iv = t_interval([1.0, 2.0, 3.0])
    assert (iv.mean, iv.n) == (2.0, 3)
    assert iv.high - iv.mean == pytest.approx(4.3027 / math.sqrt(3), abs=1e-4)
    single = t_interval([0.5])
    assert single.mean == 0.5 and math.isnan(single.low) and math.isnan(single.high)


def _no_nan(token: str) -> float:
    raise AssertionError(f"{token} in the JSON output")


@pytest.mark.parametrize("n_rows", [1, 2, 3])
def test_json_is_valid_for_tables_of_one_to_three_rows(n_rows: int, tmp_path: Path) -> None:
    models = {"cheap": 0.1, "mid": 0.5, "big": 0.9}
    prices = tmp_path / "models.json"
    prices.write_text(
        json.dumps({m: {"input_usd_per_mtok": p, "output_usd_per_mtok": p} for m, p in models.items()}),
        encoding="utf-8",
    )
    table_path = tmp_path / "outcomes.jsonl"
    lines = [
        json.dumps(
            {"task": "qa", "prompt": f"question {i}", "scores": {"cheap": 0.0, "mid": 1.0, "big": 1.0}}
        )
        for i in range(n_rows)
    ]
    table_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    runs = [[], ["--two-model", "--seeds", "2"]] + ([["--folds", "2", "--shuffle"]] if n_rows >= 2 else [])
    for extra in runs:
        args = ["replay", "--outcomes", str(table_path), "--prices", str(prices), "--json", *extra]
        result = CliRunner().invoke(eval_app, args)
        assert result.exit_code == 0, result.output
        data = json.loads(result.output.strip().splitlines()[-1], parse_constant=_no_nan)
        assert data["rows"] == n_rows and len(data["quarters"]) == 4
        assert data["policies"]["oracle"]["mean_quality"] == 1.0


def test_a_router_knob_sweep_traces_the_routers_two_model_curve() -> None:
    rows = [
        Row("qa" if i % 2 else "math", f"prompt {i} about {'sums' if i % 2 else 'facts'}", {
            "small": float(i % 3 == 0), "large": float(i % 5 != 0), "mid": 0.5,
        })
        for i in range(30)
    ]  # fmt: skip
    prices = {"small": (0.1, 0.1), "mid": (0.5, 0.5), "large": (1.0, 1.0)}
    swept = replay(
        rows, prices, n_folds=3, two_model=True, router_config_for=lambda _knob: None, knobs=(1.0, 2.0)
    )
    assert swept.two_model is not None and swept.settings["models"] == ["large", "small"]
    router = swept.two_model.policies["router"]
    assert router.curve == "knob sweep (2 points)"
    # each knob's config is the default here: the sweep replays the operating point's own decisions
    assert router.points == [(router.strong_share, router.gap_recovered)]
    alone = replay(rows, prices, n_folds=3, two_model=True).two_model
    assert alone is not None and alone.policies["router"].curve == "operating point only"
    assert alone.policies["router"].apgr == pytest.approx(router.apgr)
