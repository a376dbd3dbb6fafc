"""``turnout eval replay`` on a slice of the bundled routing outcomes (data/routing).

The router is being redesigned, so these assert the report's structure and the baselines'
invariants, never the router's own figures."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from turnout.cli.evaluation import eval_app
from turnout.routing.replay import CURVE_TRADEOFFS, load_outcomes, load_prices, replay
from turnout.routing.router import RouterConfig

DATA = Path(__file__).resolve().parents[2] / "data" / "routing"
TASKS = ("gsm8k", "mmlu", "mbpp", "natural_qa")
BASELINES = ("greedy", "best_single", "per_task", "knn", "random", "oracle")
FIGURES = {"mean_quality", "cost_per_query", "cost_vs_best_single", "of_oracle"}


@pytest.fixture(scope="module")
def slices(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """400 rows, 100 from each of four tasks; and 200 other rows of the same tasks (a warm-up table)."""
    taken: Counter[str] = Counter()
    first, second = [], []
    for line in (DATA / "outcomes-train.jsonl").read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            continue
        task = json.loads(line)["task"]
        if task in TASKS:
            taken[task] += 1
            if taken[task] <= 100:
                first.append(line)
            elif taken[task] <= 150:
                second.append(line)
    folder = tmp_path_factory.mktemp("replay")
    paths = folder / "slice.jsonl", folder / "warmup.jsonl"
    for path, lines in zip(paths, (first, second), strict=True):
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths


def _no_nan(token: str) -> float:
    raise AssertionError(f"{token} in the JSON output")


def run(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(eval_app, ["replay", "--prices", str(DATA / "models.json"), *args, "--json"])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.output.strip().splitlines()[-1], parse_constant=_no_nan)
    return data


def check_baselines(data: dict[str, Any]) -> None:
    policies = data["policies"]
    assert {"router", *BASELINES} <= policies.keys()
    assert all(FIGURES <= policies[p].keys() for p in policies)
    oracle = policies["oracle"]["mean_quality"]
    assert all(oracle >= fig["mean_quality"] for fig in policies.values())
    assert policies["random"]["mean_quality"] < policies["best_single"]["mean_quality"]
    assert policies["best_single"]["cost_vs_best_single"] == pytest.approx(1.0)
    assert policies["oracle"]["cost_per_query"] <= policies["best_single"]["cost_per_query"]


def test_cross_validated_replay_reports_baselines_verdicts_intervals_and_learning_curves(
    slices: tuple[Path, Path],
) -> None:
    table, _ = slices
    args = ("--outcomes", str(table), "--folds", "3", "--shuffle", "--seeds", "2", "--seed", "5")
    data = run(*args)
    assert data["rows"] == 400 and data["seeds"] == [5, 6] and data["settings"]["folds"] == 3
    check_baselines(data)
    assert sum(data["picks"].values()) == 800  # every row held out exactly once per seed
    assert sum(point["n"] for point in data["learning_curves"]["all"]) == 800
    assert set(data["learning_curves"]) == {*TASKS, "all"}
    first = data["learning_curves"]["gsm8k"][0]
    assert first["seen_from"] == 0 and {"quality", "best_single", "n"} <= first.keys()
    verdicts = data["verdicts"]
    assert [v["seed"] for v in verdicts] == [5, 6]
    assert all(isinstance(v["passed"], bool) for v in verdicts)
    assert data["passed"] == sum(v["passed"] for v in verdicts)
    for v in verdicts:
        assert v["passed"] == (v["quality"] > v["best_single_quality"] and v["cost_vs_best_single"] <= 0.6)
    assert data["paired_unit"] == "seed" and set(data["paired"]) == set(BASELINES)
    for pair in data["paired"].values():
        for key in ("quality", "cost", "cost_vs_best_single"):
            iv = pair[key]
            assert iv["n"] == 2 and iv["low"] <= iv["mean"] <= iv["high"]
    assert len(data["policies"]["best_single"]["detail"]["models"]) >= 1
    equal = data["equal_cost"]  # the per-task table at the router's own cost, from its λ sweep
    assert equal["router_minus_table"]["n"] == 2 and equal["greedy_minus_table"]["n"] == 2
    router = data["policies"]["router"]["mean_quality"]
    assert equal["router_minus_table"]["mean"] == pytest.approx(router - equal["table_at_router_cost"])
    assert data["target"]["max_cost_ratio"] == 0.6
    assert run(*args) == data  # the seeds fix folds, order and exploration


def test_two_model_table_reports_routellm_metrics(slices: tuple[Path, Path]) -> None:
    table, _ = slices
    data = run("--outcomes", str(table), "--folds", "3", "--seeds", "2", "--two-model")
    two = data["two_model"]
    rows = [json.loads(line) for line in table.read_text(encoding="utf-8").split("\n") if line.strip()]
    mean = {m: sum(r["scores"][m] for r in rows) / len(rows) for m in rows[0]["scores"]}
    prices = load_prices(DATA / "models.json")
    assert two["strong"] == max(mean, key=lambda m: mean[m])
    assert prices[two["weak"]] == min(prices.values())
    assert set(data["settings"]["models"]) == {two["strong"], two["weak"]}
    assert set(data["picks"]) <= {two["strong"], two["weak"]}
    check_baselines(data)
    for name in ("router", "per_task", "knn"):
        fig = two["policies"][name]
        assert 0.0 <= fig["strong_share"] <= 1.0
        assert 0.0 <= fig["cpt50"] <= fig["cpt80"] <= 1.0 and fig["apgr"] is not None
    assert two["policies"]["best_single"]["gap_recovered"] == pytest.approx(1.0)
    assert two["policies"]["random"]["strong_share"] == 0.5
    assert "operating point" in two["policies"]["router"]["curve"]
    assert two["policies"]["knn"]["curve"].startswith("λ sweep")


def test_single_pass_replay_still_reports_valid_json(slices: tuple[Path, Path]) -> None:
    table, warmup = slices
    hindsight = run("--outcomes", str(table), "--mode", "full")
    assert hindsight["settings"]["folds"] is None and hindsight["paired_unit"] == "row"
    assert hindsight["settings"]["baselines_fitted_on"] == "replayed rows (hindsight)"
    check_baselines(hindsight)
    detected = run("--outcomes", str(table), "--detect", "--warmup", str(warmup), "--answer-tokens", "50")
    assert detected["settings"]["task_source"] == "detected" and detected["settings"]["warmup_rows"] == 200
    assert any(note.startswith("detected tasks") for note in detected["notes"])
    assert sum(detected["picks"].values()) == 400
    check_baselines(detected)


def test_json_output_is_the_only_thing_on_stdout(slices: tuple[Path, Path]) -> None:
    """The rich tables came first on stdout, so ``turnout eval replay --json | jq`` failed."""
    turnout = str(Path(sys.executable).with_name("turnout"))
    args = ["eval", "replay", "--outcomes", str(slices[0]), "--prices", str(DATA / "models.json"), "--json"]
    done = subprocess.run([turnout, *args], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout, parse_constant=_no_nan)  # the whole of stdout, one object
    assert done.stdout.count("\n") == 1 and "router" in data["policies"], done.stdout[:300]
    assert "router picks" in done.stderr, "the tables a person reads are still shown, on stderr"


def test_detection_without_warm_up_rows_says_what_to_pass(slices: tuple[Path, Path]) -> None:
    """It said "learning tasks needs prompts of at least two tasks" of a table of four tasks: the
    cause was that nothing was kept back to learn them from."""
    args = ["replay", "--outcomes", str(slices[0]), "--prices", str(DATA / "models.json"), "--detect"]
    result = CliRunner().invoke(eval_app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.replace("│", " ").split())
    assert "at least two tasks" not in said and "warm-up rows" in said, said
    assert "--folds K" in said and "--warmup FILE" in said, said
    with pytest.raises(ValueError, match="warm-up rows"):
        replay(load_outcomes(slices[0]), load_prices(DATA / "models.json"), detect=True)


@pytest.mark.parametrize(
    "bad", [["--mode", "magic"], ["--folds", "1"], ["--folds", "401"], ["--answer-tokens", "-5000"]]
)
def test_replay_cli_rejects_bad_settings(slices: tuple[Path, Path], bad: list[str]) -> None:
    args = ["replay", "--outcomes", str(slices[0]), "--prices", str(DATA / "models.json"), *bad]
    result = CliRunner().invoke(eval_app, args)
    assert result.exit_code != 0


def test_a_table_model_the_prices_lack_is_named_not_dropped(
    slices: tuple[Path, Path], tmp_path: Path
) -> None:
    """Left out silently, it changed every baseline (it was the best single model on a slice)."""
    prices = json.loads((DATA / "models.json").read_text())
    dropped = sorted(prices)[0]
    del prices[dropped]
    partial = tmp_path / "prices.json"
    partial.write_text(json.dumps(prices))
    result = CliRunner().invoke(eval_app, ["replay", "--outcomes", str(slices[0]), "--prices", str(partial)])
    assert result.exit_code != 0 and dropped in result.output, result.output


def test_detection_learns_the_warm_up_rows_tasks_in_each_fold(slices: tuple[Path, Path]) -> None:
    """With --detect and folds, each fold learns its warm-up rows' tasks (as turnout eval import
    does), so held-out prompts are routed under the table's own task names, where its priors are,
    instead of built-in detection's broader ones."""
    table, _ = slices
    detected = run(
        "--outcomes", str(table), "--detect", "--folds", "2", "--seeds", "1", "--answer-tokens", "50"
    )
    assert detected["settings"]["task_source"] == "detected"
    curves = {task: sum(b["n"] for b in buckets) for task, buckets in detected["learning_curves"].items()}
    routed = sum(n for task, n in curves.items() if task != "all")
    under_table_names = sum(n for task, n in curves.items() if task in TASKS)
    assert routed == 400 and under_table_names >= 0.8 * routed, curves
    check_baselines(detected)


def test_the_router_with_exploration_off_is_replayed_beside_it(slices: tuple[Path, Path]) -> None:
    """What exploring costs is measured in the same run: "greedy" is the same router, warmed up the
    same way, on the same rows, always taking its best current estimate. With exploration off in the
    router's own config the two make the same choices, row for row."""
    table, _ = slices
    rows, prices = load_outcomes(table), load_prices(DATA / "models.json")
    settings = {"seed": 3, "seeds": 2, "n_folds": 3, "shuffle": True, "workers": 1}
    exploring = replay(rows, prices, **settings)  # type: ignore[arg-type]
    assert exploring.policies["greedy"].mean_quality > exploring.policies["random"].mean_quality
    assert "greedy" in exploring.paired
    off = replay(rows, prices, config=RouterConfig(exploration="off"), **settings)  # type: ignore[arg-type]
    same = off.paired["greedy"]
    assert same.quality.mean == 0.0 and same.cost.mean == 0.0, same
    assert off.policies["greedy"].mean_quality == pytest.approx(exploring.policies["greedy"].mean_quality)


BAD_TABLES = [
    ('{"task": "a", "prompt": "p", "scores": {"m": 0.5}}\nnot json\n', "line 2", "not JSON"),
    ("[1, 2]\n", "line 1", "JSON object"),
    ('{"task": "a", "prompt": "p"}\n', "line 1", "scores"),
    ('{"task": "a", "prompt": "p", "scores": {"m": "x"}}\n', "line 1", "scores.m"),
    ('{"task": "a", "prompt": "p", "scores": {"m": true}}\n', "line 1", "scores.m"),
    ('{"task": "a", "prompt": "p", "scores": {"m": 1.5}}\n', "line 1", "scores.m"),
    ('{"task": "a", "prompt": "p", "scores": {}}\n', "line 1", "scores"),
    ('{"task": "", "prompt": "p", "scores": {"m": 0.5}}\n', "line 1", "task"),
    ('{"task": "a", "prompt": 7, "scores": {"m": 0.5}}\n', "line 1", "prompt"),
]


@pytest.mark.parametrize(("text", "where", "field"), BAD_TABLES, ids=[f for _, _, f in BAD_TABLES])
def test_a_bad_outcome_table_is_refused_naming_its_line_and_field(
    tmp_path: Path, text: str, where: str, field: str
) -> None:
    """A table a user wrote by hand or exported from their own evaluation: a bad row is named by its
    line and field, as an error, never a Python exception's bare text."""
    table = tmp_path / "table.jsonl"
    table.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=rf"table\.jsonl {where}: .*{field}"):
        load_outcomes(table)
    args = ["replay", "--outcomes", str(table), "--prices", str(DATA / "models.json")]
    result = CliRunner().invoke(eval_app, args, env={"COLUMNS": "300"})  # the error box, unwrapped
    assert result.exit_code == 2 and where in result.output and field in result.output, result.output


BAD_PRICES = [
    ("not json", "not JSON"),
    ("[1]", "a JSON object"),
    ('{"m": [1, 2]}', "'m'"),
    ('{"m": {"output_usd_per_mtok": 1}}', "'m.input_usd_per_mtok'"),
    ('{"m": {"input_usd_per_mtok": -1, "output_usd_per_mtok": 1}}', "'m.input_usd_per_mtok'"),
    ('{"m": {"input_usd_per_mtok": 1, "output_usd_per_mtok": "free"}}', "'m.output_usd_per_mtok'"),
]


@pytest.mark.parametrize(("text", "field"), BAD_PRICES, ids=[f for _, f in BAD_PRICES])
def test_a_bad_prices_file_is_refused_naming_its_field(
    slices: tuple[Path, Path], tmp_path: Path, text: str, field: str
) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=rf"prices\.json: .*{field}"):
        load_prices(prices)
    args = ["replay", "--outcomes", str(slices[0]), "--prices", str(prices)]
    result = CliRunner().invoke(eval_app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 2 and "prices.json" in result.output and field in result.output, result.output


def test_the_two_model_curve_sweeps_the_routers_price_of_cost(slices: tuple[Path, Path]) -> None:
    """--curve replays every fold at each of a grid of trade-offs: a higher price of cost sends fewer
    calls to the strong model, and APGR/CPT come from that curve, as the baselines' from their λ sweep."""
    table, _ = slices
    data = run("--outcomes", str(table), "--folds", "2", "--seeds", "1", "--two-model", "--curve")
    router = data["two_model"]["policies"]["router"]
    assert router["curve"] == f"knob sweep ({len(CURVE_TRADEOFFS)} points)"
    assert not any("operating point alone" in note for note in data["notes"])
    shares = [share for share, _ in router["points"]]  # in the grid's order (equal neighbours once)
    assert 2 <= len(shares) <= len(CURVE_TRADEOFFS) and shares[0] > shares[-1]
    assert 0.0 <= router["cpt50"] <= router["cpt80"] <= 1.0 and router["apgr"] is not None
    result = CliRunner().invoke(
        eval_app, ["replay", "--outcomes", str(table), "--prices", str(DATA / "models.json"), "--curve"]
    )
    assert result.exit_code == 2 and "--two-model" in result.output


def test_the_prompt_memory_is_replayed_on_request(slices: tuple[Path, Path]) -> None:
    """--prompt-memory routes through the prompt memory: its warm-up rows are the memory's
    evaluation rows and its own ratings join it; the report says so and is otherwise the same
    report, with different choices from the same seeds."""
    from turnout.routing.classifier import TaskClassifier

    if not TaskClassifier.available():
        pytest.skip("needs the 'classifier' extra (wordllama)")
    table, _ = slices
    args = ("--outcomes", str(table), "--folds", "2", "--shuffle", "--seeds", "1", "--answer-tokens", "50")
    plain, remembered = run(*args), run(*args, "--prompt-memory")
    assert (plain["settings"]["prompt_memory"], remembered["settings"]["prompt_memory"]) == (False, True)
    assert any("prompt memory" in note for note in remembered["notes"])
    check_baselines(remembered)
    # the baselines are fitted on the same rows either way; the router's choices moved
    assert remembered["policies"]["per_task"] == plain["policies"]["per_task"]
    assert remembered["policies"]["greedy"] != plain["policies"]["greedy"]
