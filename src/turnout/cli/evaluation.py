"""``turnout eval``: offline evaluation of routing (``replay``: the command here, the replay in
``routing/replay``) and
``import``, which loads a team's own evaluation of its models as the router's prior experience;
``list`` shows the imports and ``remove`` deletes one (a wrong ``--prefix``, a bad evaluation).

They use the configured database directly, as the other admin commands do, so they work with the
gateway stopped; running gateways apply an import or a removal within their feedback poll (2 s)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from turnout.cli.database import on_database, table_console
from turnout.cli.errors import fail
from turnout.routing.classifier import TaskClassifier
from turnout.routing.evaluation_report import render
from turnout.routing.priors import (
    MAX_WEIGHT,
    ImportedEvaluation,
    PriorCell,
    list_sources,
    remove_source,
    save_priors,
    table_priors,
)
from turnout.routing.prompt_memory import EvaluationRows
from turnout.routing.replay import (
    CURVE_TRADEOFFS,
    DETECT_NEEDS_WARMUP,
    load_outcomes,
    load_prices,
    replay,
    tradeoff_config,
)
from turnout.routing.task_model import TaskModel
from turnout.store.models import Model

__all__ = ["eval_app"]

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
        Path | None, typer.Option(help="a table learnt first as priors (with --folds: added to every fold's)")
    ] = None,
    folds: Annotated[
        int | None,
        typer.Option(
            "--folds", min=2, help="K-fold cross-validation by prompt: warm up on K-1 folds, replay the other"
        ),
    ] = None,
    shuffle: Annotated[bool, typer.Option(help="replay in an order shuffled per seed")] = False,
    seeds: Annotated[int, typer.Option(min=1, help="seeds SEED .. SEED+N-1 (folds, order, exploration)")] = 1,
    two_model: Annotated[
        bool,
        typer.Option("--two-model", help="only the best and the cheapest model; RouteLLM's APGR and CPT"),
    ] = False,
    answer_tokens: Annotated[int, typer.Option(min=0, help="assumed answer length for costs")] = 200,
    seed: Annotated[int, typer.Option(help="the first random seed")] = 0,
    workers: Annotated[int, typer.Option(min=1, help="processes replaying seeds in parallel")] = 1,
    curve: Annotated[
        bool,
        typer.Option(
            "--curve",
            help="with --two-model: sweep the router's price of cost (9 more replays of every fold) for "
            "its APGR and CPT, as the baselines sweep λ",
        ),
    ] = False,
    prompt_memory: Annotated[
        bool,
        typer.Option(
            "--prompt-memory/--no-prompt-memory",
            help="route with the prompt memory: a request's most similar rated prompts adjust its estimates",
        ),
    ] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="print one JSON object on stdout (the tables go to stderr)")
    ] = False,
) -> None:
    """Replay an outcomes table through the real router and compare it with baselines fitted on
    the same warm-up rows and scored on the same held-out rows."""
    if mode not in ("bandit", "full"):
        raise typer.BadParameter("must be 'bandit' or 'full'", param_hint="--mode")
    if curve and not two_model:
        raise typer.BadParameter("the curve is the two-model table's: add --two-model", param_hint="--curve")
    if (detect or not task_hint) and folds is None and warmup is None:
        raise typer.BadParameter(DETECT_NEEDS_WARMUP, param_hint="--detect")
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as progress:
        bar = progress.add_task("replaying seeds", total=seeds)
        try:
            report = replay(
                load_outcomes(outcomes), load_prices(prices), mode=mode, detect=detect or not task_hint,
                warmup=load_outcomes(warmup) if warmup else (), answer_tokens=answer_tokens, seed=seed,
                seeds=seeds, n_folds=folds, shuffle=shuffle, two_model=two_model, workers=workers,
                router_config_for=tradeoff_config if curve else None, knobs=CURVE_TRADEOFFS if curve else (),
                on_seed=lambda _s: progress.advance(bar), prompt_memory=prompt_memory,
            )  # fmt: skip
        except (ValueError, KeyError) as exc:
            raise typer.BadParameter(str(exc), param_hint="--outcomes/--prices") from None
    render(report, stderr=json_out)
    if json_out:
        print(json.dumps(report.to_json(), separators=(",", ":"), allow_nan=False))


@eval_app.command("import")
def eval_import(
    outcomes: Annotated[
        Path, typer.Option(help="JSONL table: task, prompt, scores per model (0-1)", exists=True)
    ],
    weight: Annotated[
        float,
        typer.Option(help="ratings each graded prompt counts as (less: live ratings overrule it sooner)"),
    ] = 1.0,
    prefix: Annotated[str, typer.Option(help="prepended to the table's model names to make model ids")] = "",
    model_map: Annotated[
        list[str] | None,
        typer.Option("--map", help="NAME=MODEL_ID: the catalog model a table's model name stands for"),
    ] = None,
    source: Annotated[
        str | None, typer.Option(help="the evaluation's name (a re-import replaces it); default: the file's")
    ] = None,
    learn_tasks: Annotated[
        bool,
        typer.Option(
            help="train a classifier on the table's prompts, so live prompts are detected as its tasks"
        ),
    ] = True,
) -> None:
    """Load an outcome table as prior experience per task: every tenant's routing starts from it,
    and live ratings refine it. A table of several tasks also teaches task detection its tasks."""
    if not 0 < weight <= MAX_WEIGHT:  # also refuses nan and inf
        fail(f"--weight must be above 0 and at most {MAX_WEIGHT:g}", code=2)
    if source is not None and not source.strip():
        fail("--source must not be empty (leave it out to name the evaluation after its file)", code=2)
    mapping: dict[str, str] = {}
    for item in model_map or ():
        name, sep, model_id = item.partition("=")
        if not sep or not name or not model_id:
            fail(f"--map takes NAME=MODEL_ID, not {item!r}", code=2)
        mapping[name] = model_id
    try:
        rows = load_outcomes(outcomes)
        if not rows:
            raise ValueError(f"{outcomes.name}: the table has no rows")
        scores = [{mapping.get(n, prefix + n): s for n, s in row.scores.items()} for row in rows]
        cells = table_priors(((row.task, s) for row, s in zip(rows, scores, strict=True)), weight=weight)
    except (ValueError, KeyError, TypeError) as exc:
        fail(f"unusable table: {exc}", code=2)  # names the file (and the line)
    name = source or outcomes.stem
    task_model = None
    encoder = TaskClassifier.if_available()
    prompts, tasks = [row.prompt for row in rows], [row.task for row in rows]
    if learn_tasks and len(set(tasks)) > 1:
        task_model = TaskModel.train(prompts, tasks, encoder)
    # for gateways with the prompt memory on (it needs the same word vectors)
    prompt_rows = EvaluationRows.of_table(tasks, prompts, scores, encoder) if encoder is not None else None
    try:
        unknown = on_database(lambda sessions: _save(sessions, name, cells, task_model, prompt_rows))
    except ValueError as exc:
        fail(str(exc), code=2)
    Console().print(_summary(name, len(rows), cells, unknown))
    if task_model is not None:
        typer.echo(f"task detection learned {len(task_model.labels)} tasks: {', '.join(task_model.labels)}")


async def _save(
    sessions: async_sessionmaker[AsyncSession],
    source: str,
    cells: list[PriorCell],
    task_model: TaskModel | None,
    prompt_rows: EvaluationRows | None,
) -> list[str]:
    """Store the cells, task model and prompt rows; returns the model ids the catalog does not have
    (yet)."""
    await save_priors(sessions, source, cells, task_model, prompt_rows)
    return sorted({c.model_id for c in cells} - await _catalog_ids(sessions))


async def _catalog_ids(sessions: async_sessionmaker[AsyncSession]) -> set[str]:
    """The catalog's model ids, to tell which of an import's it does not have."""
    async with sessions() as session:
        return set((await session.execute(select(Model.id))).scalars())


def _summary(source: str, rows: int, cells: list[PriorCell], unknown: list[str]) -> Table:
    out = Table(title=f"Imported '{source}': {rows} graded prompts as prior experience")
    for column in ("task", "models", "ratings per model", "best model", "its mean"):
        out.add_column(column, justify="left" if column in ("task", "best model") else "right")
    by_task: dict[str, list[PriorCell]] = {}
    for cell in cells:
        by_task.setdefault(cell.task, []).append(cell)
    for task, group in sorted(by_task.items()):
        best = max(group, key=lambda c: c.total / c.count)
        out.add_row(
            task, str(len(group)), f"{group[0].count:g}", best.model_id, f"{best.total / best.count:.3f}"
        )
    if unknown:
        out.caption = f"not in the catalog (applied once they are): {', '.join(unknown)}"
    return out


HOW_TO_IMPORT = "import one with: turnout eval import --outcomes FILE [--source NAME]"


@eval_app.command("list")
def eval_list(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Show the imported evaluations: their tasks, models, graded prompts, and model ids the catalog
    does not have (a wrong --prefix or --map)."""
    evaluations, known = on_database(_listed)
    if as_json:
        typer.echo(json.dumps([_as_json(e, known) for e in evaluations], indent=2))
        return
    if not evaluations:
        typer.echo(f"No evaluation is imported; {HOW_TO_IMPORT}")
        return
    table_console().print(_list_table(evaluations, known))


@eval_app.command("remove")
def eval_remove(
    source: Annotated[str, typer.Argument(help="the evaluation's name, as eval list shows it")],
) -> None:
    """Delete an imported evaluation: its priors, task classifier and prompt rows, at once."""

    async def remove(
        sessions: async_sessionmaker[AsyncSession],
    ) -> tuple[ImportedEvaluation | None, list[str]]:
        removed = await remove_source(sessions, source)
        return removed, [] if removed is not None else [e.source for e in await list_sources(sessions)]

    removed, names = on_database(remove)
    if removed is None:
        known = f"imported: {', '.join(names)}" if names else f"no evaluation is imported; {HOW_TO_IMPORT}"
        fail(f"no imported evaluation is named {source!r} ({known})")
    what = f"{len(removed.tasks)} tasks, {len(removed.models)} models"
    if removed.task_classifier:
        what += ", its task classifier"
    if removed.prompt_rows:
        what += ", its prompt rows"
    typer.echo(f"removed {removed.source!r}: {what}")
    typer.echo("running gateways drop it within TURNOUT_FEEDBACK_SYNC_INTERVAL_S")


async def _listed(sessions: async_sessionmaker[AsyncSession]) -> tuple[list[ImportedEvaluation], set[str]]:
    """The imports, and the catalog's model ids to tell which of theirs it does not have."""
    return await list_sources(sessions), await _catalog_ids(sessions)


def _as_json(e: ImportedEvaluation, known: set[str]) -> dict[str, object]:
    return {
        "source": e.source,
        "tasks": list(e.tasks),
        "models": list(e.models),
        "not_in_catalog": [m for m in e.models if m not in known],
        "ratings_per_model": e.ratings_per_model,
        "graded_prompts": e.graded_prompts,
        "weight": None if e.weight is None else round(e.weight, 6),
        "task_classifier": e.task_classifier,
        "prompt_rows": e.prompt_rows,
        "imported_at": None if e.imported_at is None else e.imported_at.isoformat(),
    }


def _list_table(evaluations: list[ImportedEvaluation], known: set[str]) -> Table:
    out = Table(title=f"Imported evaluations: {len(evaluations)}")
    columns = (
        "source",
        "tasks",
        "models",
        "graded prompts",
        "ratings per model",
        "weight",
        "task classifier",
    )
    for column in (*columns, "prompt rows", "imported (UTC)", "not in the catalog"):
        out.add_column(
            column,
            justify="right"
            if column in ("models", "graded prompts", "ratings per model", "weight")
            else "left",
        )
    for e in evaluations:
        out.add_row(
            e.source,
            ", ".join(e.tasks) or "-",
            str(len(e.models)),
            "-" if e.graded_prompts is None else str(e.graded_prompts),
            f"{e.ratings_per_model:g}",
            "-" if e.weight is None else f"{e.weight:g}",
            "yes" if e.task_classifier else "no",
            "yes" if e.prompt_rows else "no",
            "-" if e.imported_at is None else e.imported_at.strftime("%Y-%m-%d %H:%M"),
            _missing(e.models, known),
        )
    out.caption = "remove one with: turnout eval remove SOURCE"
    return out


def _missing(models: tuple[str, ...], known: set[str]) -> str:
    """The import's model ids the catalog lacks, the first few by name (``--json`` lists all)."""
    missing = [m for m in models if m not in known]
    if not missing:
        return "-"
    named = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
    return f"all {len(models)}: {named}" if len(missing) == len(models) else named
