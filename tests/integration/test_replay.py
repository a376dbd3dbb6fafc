"""``turnout eval replay`` on a slice of the bundled routing outcomes (data/routing)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from turnout.routing.replay import eval_app, load_outcomes, load_prices, replay

DATA = Path(__file__).resolve().parents[2] / "data" / "routing"
KEYS = {"rows", "mean_quality", "cost_per_query", "oracle_fraction"} | {
    "best_single",
    "per_task_best",
    "oracle",
}
KEYS |= {"quarters"}


@pytest.fixture(scope="module")
def slices(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    lines = (DATA / "outcomes-train.jsonl").read_text(encoding="utf-8").splitlines()
    folder = tmp_path_factory.mktemp("replay")
    first, second = folder / "first.jsonl", folder / "second.jsonl"
    first.write_text("\n".join(lines[:600]) + "\n", encoding="utf-8")
    second.write_text("\n".join(lines[600:1000]) + "\n", encoding="utf-8")
    return first, second


def run(*args: str) -> dict[str, object]:
    result = CliRunner().invoke(eval_app, ["replay", "--prices", str(DATA / "models.json"), *args, "--json"])
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()[-1]
    data: dict[str, object] = json.loads(last)
    return data


def check(data: dict[str, object], rows: int) -> None:
    assert KEYS <= data.keys() and data["rows"] == rows
    best, per_task, oracle = data["best_single"], data["per_task_best"], data["oracle"]
    assert isinstance(best, dict) and isinstance(per_task, dict) and isinstance(oracle, dict)
    assert isinstance(best["model"], str) and {"mean_quality", "cost_per_query"} <= best.keys()
    assert oracle["mean_quality"] >= per_task["mean_quality"] >= best["mean_quality"] > 0
    quality = data["mean_quality"]
    assert isinstance(quality, float) and 0 < quality <= oracle["mean_quality"]
    assert data["oracle_fraction"] == pytest.approx(quality / oracle["mean_quality"])
    quarters = data["quarters"]
    assert isinstance(quarters, list) and len(quarters) == 4
    assert all({"mean_quality", "cost_per_query"} <= q.keys() for q in quarters)
    assert data["cost_per_query"] > 0


def test_replay_cli_bandit_with_task_hint(slices: tuple[Path, Path]) -> None:
    first, _ = slices
    data = run("--outcomes", str(first), "--mode", "bandit", "--task-hint", "--seed", "3")
    check(data, 600)
    assert data == run("--outcomes", str(first), "--seed", "3")  # deterministic with --seed


def test_replay_cli_full_detect_and_warmup(slices: tuple[Path, Path]) -> None:
    first, second = slices
    check(run("--outcomes", str(first), "--mode", "full"), 600)
    check(run("--outcomes", str(second), "--detect"), 400)
    check(run("--outcomes", str(second), "--warmup", str(first), "--answer-tokens", "50"), 400)


def test_replay_cli_rejects_a_bad_mode(slices: tuple[Path, Path]) -> None:
    args = ["replay", "--outcomes", str(slices[0]), "--prices", str(DATA / "models.json"), "--mode", "magic"]
    result = CliRunner().invoke(eval_app, args)
    assert result.exit_code != 0


def test_full_information_learns_at_least_as_well_as_bandit(slices: tuple[Path, Path]) -> None:
    rows, prices = load_outcomes(slices[0]), load_prices(DATA / "models.json")
    full = replay(rows, prices, mode="full")
    bandit = replay(rows, prices, mode="bandit")
    assert full.mean_quality >= bandit.mean_quality - 0.02
    assert full.best_single == bandit.best_single and sum(full.picks.values()) == 600
