"""``turnout eval``: offline evaluation of routing (``replay``, in ``routing/replay``) and
``import``, which loads a team's own evaluation of its models as the router's prior experience.

``import`` reads the configured database directly, as the other admin commands do, so it works
with the gateway stopped; running gateways pick the import up within their feedback poll (2 s)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from turnout.cli.errors import fail
from turnout.config import Settings
from turnout.routing.classifier import TaskClassifier
from turnout.routing.priors import MAX_WEIGHT, PriorCell, save_priors, table_priors
from turnout.routing.prompt_memory import EvaluationRows
from turnout.routing.replay import eval_app, load_outcomes
from turnout.routing.task_model import TaskModel
from turnout.store.db import make_engine, make_sessionmaker
from turnout.store.migrate import upgrade_sync
from turnout.store.models import Model

__all__ = ["eval_app"]


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
    settings = Settings()
    upgrade_sync(settings.database_url)
    try:
        unknown = asyncio.run(_save(settings, name, cells, task_model, prompt_rows))
    except ValueError as exc:
        fail(str(exc), code=2)
    Console().print(_summary(name, len(rows), cells, unknown))
    if task_model is not None:
        typer.echo(f"task detection learned {len(task_model.labels)} tasks: {', '.join(task_model.labels)}")


async def _save(
    settings: Settings,
    source: str,
    cells: list[PriorCell],
    task_model: TaskModel | None,
    prompt_rows: EvaluationRows | None,
) -> list[str]:
    """Store the cells, task model and prompt rows; returns the model ids the catalog does not have
    (yet)."""
    engine = make_engine(settings.database_url)
    try:
        sessions = make_sessionmaker(engine)
        await save_priors(sessions, source, cells, task_model, prompt_rows)
        async with sessions() as session:
            known = set((await session.execute(select(Model.id))).scalars())
    finally:
        await engine.dispose()
    return sorted({c.model_id for c in cells} - known)


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
