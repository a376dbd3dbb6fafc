"""Prior experience from an outcome table: a team's own offline evaluation of its models.

An outcome table (the format of ``data/routing/outcomes-train.jsonl``: ``task``, ``prompt`` and a
score in [0, 1] per model) is full information: every model was graded on every prompt. It goes in
as the platform-wide prior level of ``ExperienceStore`` (what every tenant's estimates start from),
summed per (task, model), with a ``weight`` per row: 1 counts each graded prompt as one rating; less
lets a tenant's own ratings overrule a table that may not match its traffic sooner. Live ratings
then refine it. ``turnout eval import`` and ``eval replay --warmup`` share this path. A table of
several tasks also trains a ``TaskModel`` on its prompts, so live prompts are detected as its tasks.
"""

from __future__ import annotations

import asyncio
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
from turnout.routing.task_model import TaskModel
from turnout.store.priors import RoutingPrior, RoutingPromptRows, RoutingTaskModel

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class PriorCell:
    """The weighted ratings of one model on one task: ``count`` ratings summing to ``total``."""

    task: str
    model_id: str
    count: float
    total: float
    total_sq: float
    pairing: float | None = None  # the task's ``table_pairing`` in the same table (None: unpaired)


def table_priors(
    rows: Iterable[tuple[str, Mapping[str, float]]], *, weight: float = 1.0, prefix: str = ""
) -> list[PriorCell]:
    """Per (task, model) sums of ``rows`` (each a task and its scores by model name), each row
    counted ``weight`` times, with its task's pairing; model ids are ``prefix`` + the table's model
    name."""
    if not weight > 0:
        raise ValueError("weight must be above 0")
    rows = list(rows)
    pairing = table_pairing(rows)
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
        PriorCell(task, model, count, total, total_sq, pairing.get(task))
        for (task, model), (count, total, total_sq) in sorted(sums.items())
    ]


PAIRING_FLOOR = 0.01  # models that agree on every prompt still leave their comparison this uncertain


def table_pairing(rows: Iterable[tuple[str, Mapping[str, float]]]) -> dict[str, float]:
    """Per task, the share of its models' variance that is left when two of them are compared on
    the same prompts: the mean over model pairs of ``Var(a - b)`` over ``Var(a) + Var(b)``, from the
    prompts that graded every model of the task. 1 when the models' scores are independent given
    the prompt, less the more a prompt's difficulty is shared by all of them. Tasks with under two
    such prompts or two models are left out (unpaired)."""
    by_task: dict[str, list[Mapping[str, float]]] = {}
    for task, scores in rows:
        by_task.setdefault(task, []).append(scores)
    out: dict[str, float] = {}
    for task, scored in by_task.items():
        names = sorted({name for scores in scored for name in scores})
        full = [[scores[n] for n in names] for scores in scored if len(scores) == len(names)]
        if len(names) < 2 or len(full) < 2:
            continue
        table = np.asarray(full)
        per_model = table.var(axis=0)
        residual = (table - table.mean(axis=1, keepdims=True)).var(axis=0)
        m = len(names)
        spread = (m - 1) * float(per_model.sum())
        if spread <= 0.0:
            continue
        out[task] = min(max(m * float(residual.sum()) / spread, PAIRING_FLOOR), 1.0)
    return out


def add_priors(store: ExperienceStore, cells: Iterable[PriorCell], at: float) -> int:
    """Add ``cells`` to the store's prior level, dated ``at``, with their tasks' pairing; returns
    how many."""
    n = 0
    pairing: dict[str, float | None] = {}
    for cell in cells:
        store.add_prior(cell.task, cell.model_id, cell.count, cell.total, cell.total_sq, at)
        pairing[cell.task] = cell.pairing
        n += 1
    for task, ratio in pairing.items():
        store.set_pairing(task, ratio)
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
                pairing=c.pairing,
                imported_at=now,
            )
            for c in cells
        )
    return now


class PriorLoader:
    """Keeps a store's prior level equal to the imported evaluations: what an import added, changed
    or removed since the last look is applied as a difference (so ratings are never touched). The
    newest evaluation's task classifier is ``task_model`` (None without one). Every import rewrites
    its source's cells with a new time, in the transaction that stores its classifier, so the cells'
    count and latest time tell whether anything changed: one small query a poll."""

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
        self._pairing: dict[str, float | None] = {}  # task -> the pairing applied to the store
        self._seen: tuple[int, datetime | None] | None = None
        self._model_at: datetime | None = None  # when the loaded task model was trained
        self.task_model: TaskModel | None = None

    async def refresh(self, sessions: async_sessionmaker[AsyncSession]) -> int:
        """Read the imports when their count or latest time moved; returns the cells changed."""
        async with sessions() as session:
            seen = (await session.execute(select(func.count(), func.max(RoutingPrior.imported_at)))).one()
            key = (int(seen[0]), seen[1])
            if key == self._seen:
                return 0
            rows = (await session.execute(select(RoutingPrior))).scalars().all()
            newest = (
                await session.execute(
                    select(RoutingTaskModel).order_by(RoutingTaskModel.trained_at.desc()).limit(1)
                )
            ).scalar_one_or_none()
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
        self._apply_pairing(rows)
        await self._load_task_model(newest)
        if self._memory is not None:
            await self._load_prompt_rows(sessions, self._memory)
        return len(changed)

    def _apply_pairing(self, rows: Sequence[RoutingPrior]) -> None:
        """Each task's pairing: its imports' ratios weighted by their ratings (an import without
        one counts as unpaired, 1); a task no import has any more is unpaired again."""
        sums: dict[str, list[float]] = {}
        for row in rows:
            acc = sums.setdefault(row.task, [0.0, 0.0, 0.0])  # ratings, of them paired, ratio-weighted
            acc[0] += row.count
            if row.pairing is not None:
                acc[1] += row.count
                acc[2] += row.count * row.pairing
        pairing: dict[str, float | None] = {
            task: (ratio + total - paired) / total if paired > 0 and total > 0 else None
            for task, (total, paired, ratio) in sums.items()
        }
        for task in self._pairing.keys() - pairing.keys():
            pairing[task] = None
        for task, value in pairing.items():
            if self._pairing.get(task) != value:
                self._store.set_pairing(task, value)
        self._pairing = {task: value for task, value in pairing.items() if value is not None}

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

    async def _load_task_model(self, newest: RoutingTaskModel | None) -> None:
        trained_at = newest.trained_at if newest is not None else None
        if trained_at == self._model_at:
            return
        self._model_at = trained_at
        self.task_model = None
        if newest is None:
            return
        try:
            model = TaskModel.from_bytes(newest.model, self._encoder)
            if model.encoder is not None:  # its word vectors load once, off the event loop
                await asyncio.to_thread(model.encoder.warm)
        except (ValueError, OSError, KeyError) as exc:
            log.warning("task_model_unusable", source=newest.source, error=str(exc))
            return
        self.task_model = model
        log.info("task_model_loaded", source=newest.source, tasks=len(model.labels))


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
