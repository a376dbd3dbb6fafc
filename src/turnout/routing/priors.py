"""Prior experience from an outcome table: a team's own offline evaluation of its models.

An outcome table (the format of ``data/routing/outcomes-train.jsonl``: ``task``, ``prompt`` and a
score in [0, 1] per model) is full information: every model was graded on every prompt. It goes in
as the platform-wide prior level of ``ExperienceStore`` (what every tenant's estimates start from),
summed per (task, model), with a ``weight`` per row: 1 counts each graded prompt as one rating; less
lets a tenant's own ratings overrule a table that may not match its traffic sooner. Live ratings
then refine it. ``turnout eval import`` and ``eval replay --warmup`` share this path. A table of
several tasks also trains a ``TaskModel`` on its prompts, so live prompts are detected as its tasks.
``eval list`` and ``eval remove`` show and delete imports (``list_sources``, ``remove_source``).
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import structlog
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from turnout.routing.classifier import TaskClassifier
from turnout.routing.experience import ExperienceStore
from turnout.routing.prompt_memory import EvaluationRows, PromptMemory
from turnout.routing.task_model import TaskModel, TaskModels
from turnout.store.priors import RoutingPrior, RoutingPromptRows, RoutingTaskModel

log = structlog.get_logger(__name__)


MAX_WEIGHT = 1000.0  # ratings one graded prompt may count as: past that, no live rating ever tells


@dataclass(frozen=True, slots=True)
class PriorCell:
    """The weighted ratings of one model on one task: ``count`` ratings summing to ``total``."""

    task: str
    model_id: str
    count: float
    total: float
    total_sq: float
    loading: float | None = None  # the model's ``table_loadings`` on the task (None: no common factor)


def table_priors(
    rows: Iterable[tuple[str, Mapping[str, float]]], *, weight: float = 1.0, prefix: str = ""
) -> list[PriorCell]:
    """Per (task, model) sums of ``rows`` (each a task and its scores by model name), each row
    counted ``weight`` times, with its loading on the task's common factor; model ids are ``prefix``
    + the table's model name."""
    if not 0 < weight <= MAX_WEIGHT:  # also refuses NaN and infinity
        raise ValueError(f"weight must be above 0 and at most {MAX_WEIGHT:g}")
    rows = list(rows)
    loadings = table_loadings(rows)
    sums: dict[tuple[str, str], list[float]] = {}
    for task, scores in rows:
        for name, score in scores.items():
            if not 0.0 <= score <= 1.0:
                raise ValueError(f"score {score!r} of {name!r} on task {task!r} is outside [0, 1]")
            cell = sums.setdefault((task, prefix + name), [0.0, 0.0, 0.0])
            cell[0] += weight
            cell[1] += weight * score
            cell[2] += weight * score * score
    return [
        PriorCell(task, model, count, total, total_sq, loadings.get((task, model.removeprefix(prefix))))
        for (task, model), (count, total, total_sq) in sorted(sums.items())
    ]


FACTOR_ITERATIONS = 50  # principal-axis factoring converges well within this on tables of ~10 models


def table_loadings(rows: Iterable[tuple[str, Mapping[str, float]]]) -> dict[tuple[str, str], float]:
    """Per (task, model name), the model's loading on one factor common to the task's models: how
    much of its scores' variation is the prompts' shared difficulty (principal-axis factoring of
    the scores' correlations, over the prompts that graded every model of the task). Two models'
    scores then correlate as their loadings' product: on the train table that reproduces how much
    of the top three models' variance is left when they are compared on the same prompts (0.55 for
    mmlu against 0.53 measured pair by pair; 0.89 averaged over all pairs). Tasks with under two
    such prompts or two models, and models whose scores never vary, get none."""
    by_task: dict[str, list[Mapping[str, float]]] = {}
    for task, scores in rows:
        by_task.setdefault(task, []).append(scores)
    out: dict[tuple[str, str], float] = {}
    for task, scored in by_task.items():
        names = sorted({name for scores in scored for name in scores})
        full = np.asarray([[scores[n] for n in names] for scores in scored if len(scores) == len(names)])
        if len(names) < 2 or len(full) < 2:
            continue
        sd = full.std(axis=0)
        varies = sd > 1e-9
        if varies.sum() < 2:
            continue
        kept = full[:, varies]
        corr = np.corrcoef(kept, rowvar=False)
        loading = _one_factor(np.nan_to_num(corr))
        for name, value in zip(np.asarray(names)[varies].tolist(), loading.tolist(), strict=True):
            out[(task, name)] = value
    return out


def _one_factor(corr: np.ndarray) -> np.ndarray:
    """Loadings of one common factor of a correlation matrix (principal-axis factoring: the first
    principal axis of the matrix with its diagonal replaced by the communalities, iterated), signed
    so that most load positively, each within (-1, 1)."""
    off_diagonal = ~np.eye(len(corr), dtype=bool)
    loading = np.sqrt(np.abs(corr).max(axis=0, initial=0.0, where=off_diagonal))  # a start: the best peer
    for _ in range(FACTOR_ITERATIONS):
        reduced = corr.copy()
        np.fill_diagonal(reduced, loading**2)
        values, vectors = np.linalg.eigh(reduced)
        first = vectors[:, -1] * np.sqrt(max(float(values[-1]), 0.0))
        loading = np.clip(first if first.sum() >= 0 else -first, -0.999, 0.999)
    return loading


def add_priors(store: ExperienceStore, cells: Iterable[PriorCell], at: float) -> int:
    """Add ``cells`` to the store's prior level, dated ``at``, with their loadings; returns how many."""
    n = 0
    for cell in cells:
        store.add_prior(cell.task, cell.model_id, cell.count, cell.total, cell.total_sq, at)
        store.set_loading(cell.task, cell.model_id, cell.loading)
        n += 1
    return n


async def save_priors(
    sessions: async_sessionmaker[AsyncSession],
    source: str,
    cells: Sequence[PriorCell],
    task_model: TaskModel | None = None,
    prompt_rows: EvaluationRows | None = None,
) -> datetime:
    """Store ``cells`` (and the ``task_model`` trained on the same table, and its ``prompt_rows``
    for the prompt memory) as the evaluation ``source``, replacing what it had, in one transaction
    (replicas see the old set or the new one, never a mix). Returns the import's time."""
    if not 1 <= len(source) <= 100:
        raise ValueError("source must be 1 to 100 characters")
    for cell in cells:
        if len(cell.task) > 64 or len(cell.model_id) > 255:
            raise ValueError(f"task {cell.task!r} or model {cell.model_id!r} is too long")
    now = datetime.now(UTC)
    async with sessions.begin() as session:
        await session.execute(delete(RoutingPrior).where(RoutingPrior.source == source))
        await session.execute(delete(RoutingTaskModel).where(RoutingTaskModel.source == source))
        await session.execute(delete(RoutingPromptRows).where(RoutingPromptRows.source == source))
        if prompt_rows is not None:
            session.add(RoutingPromptRows(source=source, rows=prompt_rows.to_bytes(), imported_at=now))
        if task_model is not None:
            session.add(RoutingTaskModel(source=source, model=task_model.to_bytes(), trained_at=now))
        session.add_all(
            RoutingPrior(
                source=source,
                task=c.task,
                model_id=c.model_id,
                count=c.count,
                total=c.total,
                total_sq=c.total_sq,
                loading=c.loading,
                imported_at=now,
            )
            for c in cells
        )
    return now


@dataclass(frozen=True, slots=True)
class ImportedEvaluation:
    """What one imported evaluation holds, for ``turnout eval list``. The weight is not stored: it
    is derived from the prompt rows (prompts per task) where the import has them."""

    source: str
    tasks: tuple[str, ...]
    models: tuple[str, ...]
    ratings_per_model: float  # summed over tasks, of each task's most-rated model: weight x prompts
    graded_prompts: int | None  # None: no prompt rows to count them in
    weight: float | None
    task_classifier: bool
    prompt_rows: bool
    imported_at: datetime | None  # UTC


async def list_sources(sessions: async_sessionmaker[AsyncSession]) -> list[ImportedEvaluation]:
    """Every imported evaluation, by name: any source with rows in one of the three tables (a hand
    edit may have left one with only some), so ``remove_source`` can clear every one listed."""
    async with sessions() as session:
        return await _evaluations(session)


async def remove_source(sessions: async_sessionmaker[AsyncSession], source: str) -> ImportedEvaluation | None:
    """Delete the evaluation ``source`` from the three tables in one transaction (replicas see it
    whole or gone, and their ``PriorLoader`` takes its share back on its next poll); returns what it
    held, or None when there is no such source (nothing changed)."""
    async with sessions.begin() as session:
        found = await _evaluations(session, source)
        if not found:
            return None
        for table in (RoutingPrior, RoutingTaskModel, RoutingPromptRows):
            await session.execute(delete(table).where(table.source == source))
    return found[0]


async def _evaluations(session: AsyncSession, only: str | None = None) -> list[ImportedEvaluation]:
    """The evaluations (only ``only``, when given) as ``list_sources`` describes them."""
    query = select(
        RoutingPrior.source,
        RoutingPrior.task,
        RoutingPrior.model_id,
        RoutingPrior.count,
        RoutingPrior.imported_at,
    )
    classifier_query = select(RoutingTaskModel.source, RoutingTaskModel.trained_at)
    prompt_query = select(RoutingPromptRows.source, RoutingPromptRows.rows, RoutingPromptRows.imported_at)
    if only is not None:
        query = query.where(RoutingPrior.source == only)
        classifier_query = classifier_query.where(RoutingTaskModel.source == only)
        prompt_query = prompt_query.where(RoutingPromptRows.source == only)
    cells: dict[str, list[tuple[str, str, float, datetime]]] = {}
    for source, task, model_id, count, at in (await session.execute(query)).all():
        cells.setdefault(source, []).append((task, model_id, count, at))
    classifiers = {source: at for source, at in (await session.execute(classifier_query)).all()}
    prompts = {source: (rows, at) for source, rows, at in (await session.execute(prompt_query)).all()}
    out = []
    for source in sorted(cells.keys() | classifiers.keys() | prompts.keys()):
        rows = cells.get(source, [])
        most: dict[str, float] = {}  # task -> its most-rated model's ratings
        for task, _, count, _ in rows:
            most[task] = max(most.get(task, 0.0), count)
        per_task = _prompts_per_task(source, prompts[source][0]) if source in prompts else None
        # a task's most-rated model graded its every prompt (as a table of full rows does)
        ratios = [most[t] / n for t, n in (per_task or {}).items() if t in most and n]
        stamps = [at for *_, at in rows]
        stamps += [classifiers[source]] if source in classifiers else []
        stamps += [prompts[source][1]] if source in prompts else []
        out.append(
            ImportedEvaluation(
                source=source,
                tasks=tuple(sorted(most)),
                models=tuple(sorted({model_id for _, model_id, _, _ in rows})),
                ratings_per_model=sum(most.values()),
                graded_prompts=sum(per_task.values()) if per_task is not None else None,
                weight=max(ratios) if ratios else None,
                task_classifier=source in classifiers,
                prompt_rows=source in prompts,
                imported_at=max((_utc(at) for at in stamps), default=None),
            )
        )
    return out


def _prompts_per_task(source: str, data: bytes) -> dict[str, int] | None:
    """The graded prompts per task in an import's prompt rows, decompressing only their task names
    (not the megabytes of features); None where they cannot be read."""
    try:
        return dict(Counter(EvaluationRows.tasks_of(data)))
    except (ValueError, OSError, KeyError) as exc:
        log.warning("prompt_rows_unusable", source=source, error=str(exc))
        return None


def _utc(at: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored as UTC)."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


class PriorLoader:
    """Keeps a store's prior level equal to the imported evaluations: what an import added, changed
    or removed since the last look is applied as a difference (so ratings are never touched). Every
    evaluation's task classifier serves detection, together, as ``task_models`` (None without any),
    so that a later import does not make live prompts lose an earlier one's tasks, and with them its
    priors. Every import rewrites its source's cells with a new time, in the transaction
    that stores its classifier, so the cells' count and latest time tell whether anything changed:
    one small query a poll."""

    def __init__(
        self,
        store: ExperienceStore,
        encoder: TaskClassifier | None = None,
        memory: PromptMemory | None = None,
    ) -> None:
        self._store = store
        self._encoder = encoder  # the word vectors a task model may need
        self._memory = memory  # the router's prompt memory, when on: every import's prompts
        self._applied: dict[tuple[str, str, str], tuple[float, float, float, float]] = {}
        self._loadings: dict[tuple[str, str], float] = {}  # (task, model) -> loading applied to the store
        self._seen: tuple[int, datetime | None] | None = None
        # source -> when its task model was trained, and the model (None: unusable), newest first
        self._models: dict[str, tuple[datetime, TaskModel | None]] = {}
        self.task_models: TaskModels | None = None

    async def refresh(self, sessions: async_sessionmaker[AsyncSession]) -> int:
        """Read the imports when their count or latest time moved; returns the cells changed."""
        async with sessions() as session:
            seen = (await session.execute(select(func.count(), func.max(RoutingPrior.imported_at)))).one()
            key = (int(seen[0]), seen[1])
            if key == self._seen:
                return 0
            rows = _usable((await session.execute(select(RoutingPrior))).scalars().all())
            query = select(RoutingTaskModel).order_by(RoutingTaskModel.trained_at.desc())
            task_models = (await session.execute(query)).scalars().all()
        current = {
            (r.source, r.task, r.model_id): (r.count, r.total, r.total_sq, r.imported_at.timestamp())
            for r in rows
        }
        changed = {
            cell
            for cell in self._applied.keys() | current.keys()
            if self._applied.get(cell) != current.get(cell)
        }
        for cell in changed:
            old, new = self._applied.get(cell), current.get(cell)
            if old is not None:  # removed or replaced: take the old sums out exactly
                self._store.add_prior(cell[1], cell[2], -old[0], -old[1], -old[2], old[3])
            if new is not None:
                self._store.add_prior(cell[1], cell[2], *new)
        self._applied, self._seen = current, key
        self._apply_loadings(rows)
        await self._load_task_models(task_models)
        if self._memory is not None:
            await self._load_prompt_rows(sessions, self._memory)
        return len(changed)

    def _apply_loadings(self, rows: Sequence[RoutingPrior]) -> None:
        """Each (task, model)'s loading: its imports' loadings weighted by their ratings (an import
        without one counts as no common factor, 0); a cell no import has any more loses it."""
        sums: dict[tuple[str, str], list[float]] = {}
        for row in rows:
            acc = sums.setdefault((row.task, row.model_id), [0.0, 0.0])  # ratings, loading-weighted
            acc[0] += row.count
            acc[1] += row.count * (row.loading or 0.0)
        loadings = {
            cell: weighted / total for cell, (total, weighted) in sums.items() if total > 0 and weighted
        }
        for cell in self._loadings.keys() | loadings.keys():
            value = loadings.get(cell)
            if self._loadings.get(cell) != value:
                self._store.set_loading(cell[0], cell[1], value)
        self._loadings = loadings

    async def _load_prompt_rows(
        self, sessions: async_sessionmaker[AsyncSession], memory: PromptMemory
    ) -> None:
        """Every import's prompts become the memory's evaluation rows (an import changed)."""
        async with sessions() as session:
            query = select(RoutingPromptRows).order_by(RoutingPromptRows.imported_at)
            saved = [(row.source, row.rows) for row in (await session.execute(query)).scalars()]
        rows = await asyncio.to_thread(_decoded, saved)  # megabytes of numpy: off the event loop
        rows.into(memory)
        log.info("prompt_rows_loaded", sources=len(saved), prompts=len(rows.tasks))

    async def _load_task_models(self, rows: Sequence[RoutingTaskModel]) -> None:
        """Every import's task model (``rows``, newest first) serves detection; a model is decoded
        once per import, and one that cannot be read is left out (and logged)."""
        models: dict[str, tuple[datetime, TaskModel | None]] = {}
        for row in rows:
            kept = self._models.get(row.source)
            if kept is not None and kept[0] == row.trained_at:
                models[row.source] = kept
            else:
                models[row.source] = (row.trained_at, await self._decode(row))
        stamps = [(source, at) for source, (at, _) in models.items()]
        unchanged = stamps == [(source, at) for source, (at, _) in self._models.items()]
        self._models = models
        if unchanged:
            return
        usable = {source: model for source, (_, model) in models.items() if model is not None}
        self.task_models = TaskModels(tuple(usable.values())) if usable else None
        tasks = self.task_models.labels if self.task_models is not None else []
        log.info("task_models_loaded", sources=list(usable), tasks=len(tasks))

    async def _decode(self, row: RoutingTaskModel) -> TaskModel | None:
        try:
            model = TaskModel.from_bytes(row.model, self._encoder)
            if model.encoder is not None:  # its word vectors load once, off the event loop
                await asyncio.to_thread(model.encoder.warm)
        except (ValueError, OSError, KeyError) as exc:
            log.warning("task_model_unusable", source=row.source, error=str(exc))
            return None
        return model


def _usable(rows: Sequence[RoutingPrior]) -> list[RoutingPrior]:
    """The imported cells whose sums and loading are finite; the others (written by hand, or by an
    import before ``--weight`` was checked) are left out and logged, so one bad import cannot stop
    every replica from loading the rest, or from starting."""
    good, bad = [], set()
    for row in rows:
        values = (row.count, row.total, row.total_sq, 0.0 if row.loading is None else row.loading)
        if all(math.isfinite(v) for v in values) and abs(values[3]) <= 1.0:
            good.append(row)
        else:
            bad.add(row.source)
    for source in sorted(bad):
        log.warning("prior_rows_unusable", source=source, why="a count, sum or loading is not finite")
    return good


def _decoded(saved: Sequence[tuple[str, bytes]]) -> EvaluationRows:
    """The imports' prompt rows as one set; an unreadable one is skipped (and logged), and where
    imports were made with different word vectors, the newest one's width wins."""
    parts = []
    for source, data in saved:
        try:
            parts.append(EvaluationRows.from_bytes(data))
        except (ValueError, OSError, KeyError) as exc:
            log.warning("prompt_rows_unusable", source=source, error=str(exc))
    if len({p.vectors.shape[1] for p in parts}) > 1:
        log.warning("prompt_rows_mixed_features", kept=parts[-1].vectors.shape[1])
        parts = [p for p in parts if p.vectors.shape[1] == parts[-1].vectors.shape[1]]
    return EvaluationRows.concat(parts)
