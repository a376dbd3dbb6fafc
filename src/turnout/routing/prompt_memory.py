"""Prompt memory: a request's most similar rated prompts adjust its task's quality estimates.

The experience store knows each model's quality per task, but a task holds sub-populations whose
best models differ (short zero-shot questions and long few-shot ones under one benchmark name; a
team's terse and verbose agents). So rated prompts are remembered as feature vectors with their
*residuals*: how much better or worse a model did on that prompt than its posterior mean for the
prompt's task. A request's ``K`` most similar remembered prompts pass their residuals on, weighted
by cosine similarity and shrunk toward zero by ``STRENGTH`` pseudo-neighbours: where nothing similar
was rated, the adjustment vanishes and the per-task estimate stands (the per-task fallback).

Neighbours are sought among the rows of the request's own task: a residual is a deviation from
that task's mean, and a smaller search keeps routing fast. Two kinds of rows: an imported
evaluation's (full information: a residual for every graded model, against the table's own per-task
mean), shared by every tenant like the other priors; and a tenant's live ratings (one model each,
against the estimate the rating refines), a ring of the newest ``LIVE_CAPACITY`` per task, seen by
that tenant alone.

Features are the word vectors the built-in classifier ships (mean-pooled, unit length) and four
markers: length, code, math and few-shot examples, so one topic at two prompt shapes is told apart.
Without the ``classifier`` extra there are no features and no memory. ``K`` and ``STRENGTH`` are
generic choices (a few dozen neighbours; half as many pseudo-neighbours), not fitted to any table.
A lookup is one matrix-vector product over the task's rows.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from turnout.routing.classifier import TaskClassifier
from turnout.routing.experience import ExperienceStore

K = 32
STRENGTH = 16.0
LIVE_CAPACITY = 512
MARKERS = 4
MARKER_SCAN_CHARS = 2000
_CODE = ("```", "def ", "class ", "return ", ";\n", "{\n", "}\n")  # substrings: a regex costs 5x
_MATH = re.compile(r"\d\s*[-+*/^=]\s*\d|\\frac|\$[^$]+\$")
_SHOT = re.compile(r"^(?:Q|Question|Problem|Input)\s*:", re.MULTILINE | re.IGNORECASE)

Vector = NDArray[np.float32]


def _markers(text: str) -> list[float]:
    """Prompt shape on a scale comparable to one word-vector dimension's spread; the patterns scan
    the first ``MARKER_SCAN_CHARS`` only, so a huge prompt costs no more than a long one."""
    head = text[:MARKER_SCAN_CHARS]
    return [
        math.log1p(len(text)) / 10.0,  # ~0.3 for a short question, ~0.9 for a long few-shot prompt
        0.5 if any(cue in head for cue in _CODE) else 0.0,
        0.5 if _MATH.search(head) else 0.0,
        min(len(_SHOT.findall(head)), 10) / 10.0,
    ]


def prompt_features(texts: Sequence[str], encoder: TaskClassifier) -> NDArray[np.float32]:
    """Unit-length feature rows of ``texts``: word vectors then the shape markers."""
    vectors = encoder.embed(list(texts))
    marks = np.array([_markers(t) for t in texts], dtype=np.float32).reshape(len(texts), MARKERS)
    both = np.hstack([vectors, marks])
    norms = np.linalg.norm(both, axis=1, keepdims=True)
    out: NDArray[np.float32] = (both / np.where(norms > 0, norms, 1.0)).astype(np.float32)
    return out


def table_residuals(tasks: Sequence[str], scores: NDArray[np.floating]) -> NDArray[np.float32]:
    """Each row's scores less its task's mean score per model (an evaluation's residuals); nan
    (not graded) stays nan and is left out of the means."""
    tasks_arr = np.asarray(tasks)
    out = np.zeros(scores.shape, dtype=np.float32)
    for task in np.unique(tasks_arr):
        rows = tasks_arr == task
        with warnings.catch_warnings():  # a model no row of the task graded: its column stays nan
            warnings.simplefilter("ignore", RuntimeWarning)
            out[rows] = scores[rows] - np.nanmean(scores[rows], axis=0)
    return out


@dataclass(slots=True)
class _Live:
    """One (tenant, task)'s newest rated prompts, a ring that grows to the memory's capacity."""

    vectors: NDArray[np.float32]
    columns: NDArray[np.int64]
    residuals: NDArray[np.float32]
    size: int = 0
    next: int = 0

    def add(self, vector: Vector, column: int, residual: float, capacity: int) -> None:
        if self.size == self.vectors.shape[0] < capacity:  # full below capacity: double, append
            grow = min(2 * self.size, capacity)
            self.vectors = np.resize(self.vectors, (grow, self.vectors.shape[1]))
            self.columns = np.resize(self.columns, grow)
            self.residuals = np.resize(self.residuals, grow)
            self.next = self.size
        at = self.next
        self.vectors[at], self.columns[at], self.residuals[at] = vector, column, residual
        self.next = (at + 1) % self.vectors.shape[0]
        self.size = min(self.size + 1, self.vectors.shape[0])


@dataclass(slots=True)
class _Prior:
    """One task's rows of an evaluation: vectors, residuals (0 where not graded), graded (1.0)."""

    vectors: NDArray[np.float32]
    scores: NDArray[np.float32]
    graded: NDArray[np.float32]


class PromptMemory:
    """Rated prompts' features and residuals, by task (see the module docstring). One event loop."""

    def __init__(self, k: int = K, strength: float = STRENGTH, capacity: int = LIVE_CAPACITY) -> None:
        if k < 1 or capacity < 1 or strength <= 0:
            raise ValueError("k and capacity must be at least 1, strength above 0")
        self.k, self.strength, self.capacity = k, strength, capacity
        self._columns: dict[str, int] = {}  # model id -> column of every residual matrix
        self._prior: dict[str, _Prior] = {}  # task -> the evaluation's rows of that task
        self._live: dict[tuple[str, str], _Live] = {}  # (tenant, task) -> its live ratings
        self._sims: NDArray[np.float32] = np.empty(0, np.float32)  # reused similarity buffer
        self._lookups: dict[Hashable, tuple[int, NDArray[np.int64], NDArray[np.int64]]] = {}  # by cache key

    def _column(self, model_id: str) -> int:
        column = self._columns.get(model_id)
        if column is None:
            column = self._columns[model_id] = len(self._columns)
        return column

    def set_prior(
        self,
        tasks: Sequence[str],
        vectors: Vector,
        residuals: NDArray[np.floating],
        model_ids: Sequence[str],
    ) -> None:
        """An evaluation's rows, replacing the previous evaluation's: row ``i`` is a prompt of
        ``tasks[i]`` and ``residuals[i, j]`` how much better than that task's mean ``model_ids[j]``
        did on it (nan: not graded)."""
        if not len(tasks) == vectors.shape[0] == residuals.shape[0] or residuals.shape[1] != len(model_ids):
            raise ValueError("one task and one residual row per vector, one column per model")
        columns = [self._column(m) for m in model_ids]
        full = np.full((vectors.shape[0], len(self._columns)), np.nan, dtype=np.float32)
        full[:, columns] = residuals
        graded = ~np.isnan(full)
        scores = np.where(graded, full, 0.0).astype(np.float32)
        tasks_arr = np.asarray(tasks)
        self._prior = {
            str(task): _Prior(
                np.ascontiguousarray(vectors[rows], dtype=np.float32),
                scores[rows],
                graded[rows].astype(np.float32),
            )
            for task in np.unique(tasks_arr)
            for rows in [tasks_arr == task]
        }
        self._lookups.clear()

    def add(self, tenant_id: str, task: str, vector: Vector, model_id: str, residual: float) -> None:
        """A live rating of ``model_id`` on a prompt of ``task`` with features ``vector``:
        ``residual`` is the rating less the model's estimate for the task before the rating."""
        live = self._live.get((tenant_id, task))
        if live is None:
            start = min(64, self.capacity)
            live = self._live[(tenant_id, task)] = _Live(
                np.zeros((start, vector.size), np.float32),
                np.zeros(start, np.int64),
                np.zeros(start, np.float32),
            )
        live.add(vector, self._column(model_id), residual, self.capacity)

    def adjustment(
        self,
        tenant_id: str,
        task: str,
        vector: Vector,
        ids: Sequence[str],
        cache_key: Hashable | None = None,
    ) -> NDArray[np.float64] | None:
        """What to add to each of ``ids``' estimated quality for ``task`` on a prompt with features
        ``vector``; None when no remembered prompt of the task speaks to any of them."""
        prior = self._prior.get(task)
        live = self._live.get((tenant_id, task))
        n_prior = 0 if prior is None else prior.vectors.shape[0]
        n_live = 0 if live is None else live.size
        if n_prior + n_live == 0:
            return None
        if self._sims.size < n_prior + n_live:
            self._sims = np.empty(n_prior + n_live, np.float32)
        sims = self._sims[: n_prior + n_live]
        if prior is not None:
            np.matmul(prior.vectors, vector, out=sims[:n_prior])
        if live is not None:
            np.matmul(live.vectors[:n_live], vector, out=sims[n_prior:])
        k = min(self.k, sims.size)
        top = np.argpartition(sims, sims.size - k)[-k:] if k < sims.size else np.arange(sims.size)
        weight = np.maximum(sims[top], 0.0)
        width = len(self._columns)
        from_prior = top < n_prior
        weighted, evidence = np.zeros(width), np.zeros(width)
        if live is not None and not from_prior.all():
            at, w = top[~from_prior] - n_prior, weight[~from_prior]
            weighted += np.bincount(live.columns[at], w * live.residuals[at], minlength=width)
            evidence += np.bincount(live.columns[at], w, minlength=width)
        if prior is not None and from_prior.any():
            rows, w = top[from_prior], weight[from_prior]
            graded = prior.scores.shape[1]
            weighted[:graded] += w @ prior.scores[rows]
            evidence[:graded] += w @ prior.graded[rows]
        take, unknown = self._columns_of(ids, cache_key)
        if unknown.size == len(ids):
            return None
        out: NDArray[np.float64] = (weighted / (self.strength + evidence)).take(take)
        out[unknown] = 0.0
        return out

    def _columns_of(
        self, ids: Sequence[str], cache_key: Hashable | None
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Each id's residual column (0 where never rated) and the positions of the never-rated
        ids; cached per candidate list while no model is new."""
        hit = self._lookups.get(cache_key) if cache_key is not None else None
        if hit is not None and hit[0] == len(self._columns):
            return hit[1], hit[2]
        columns = np.fromiter((self._columns.get(m, -1) for m in ids), dtype=np.int64, count=len(ids))
        unknown = np.flatnonzero(columns < 0)
        columns[unknown] = 0
        if cache_key is not None:
            if len(self._lookups) >= 256:
                self._lookups.clear()
            self._lookups[cache_key] = (len(self._columns), columns, unknown)
        return columns, unknown


def remember_rating(
    memory: PromptMemory,
    experience: ExperienceStore,
    rated: tuple[str, str | None, str, str],
    vector: bytes,
    rating: float,
    at: float,
) -> None:
    """Add a rated answer's prompt (``vector``: its features as float32 bytes) to ``memory``, with
    the rating less the estimate it refines; call it before the rating reaches ``experience``.
    ``rated``: (tenant, agent, task, model). The feedback service calls it for the ratings it takes,
    the feedback sync for those other replicas took (and all of them at start-up)."""
    tenant_id, agent_id, task, model_id = rated
    before = experience.estimate(tenant_id, agent_id, task, model_id, now=at).prior_mean
    memory.add(tenant_id, task, np.frombuffer(vector, dtype=np.float32), model_id, rating - before)


@dataclass(frozen=True, slots=True)
class EvaluationRows:
    """An evaluation's prompts as the memory holds them, and as ``eval import`` stores them:
    task, features and residuals (nan: not graded) per row, residual columns by model id."""

    tasks: list[str]
    vectors: NDArray[np.float32]
    residuals: NDArray[np.float32]
    model_ids: list[str]

    @classmethod
    def of_table(
        cls,
        tasks: Sequence[str],
        prompts: Sequence[str],
        scores: Sequence[dict[str, float]],
        encoder: TaskClassifier,
    ) -> EvaluationRows:
        """From a table's rows (each row's scores by model id; a model a row lacks was not graded
        on it): residuals against each task's mean over the rows that graded the model."""
        model_ids = sorted({m for row in scores for m in row})
        column = {m: j for j, m in enumerate(model_ids)}
        matrix = np.full((len(scores), len(model_ids)), np.nan)
        for i, row in enumerate(scores):
            for model_id, score in row.items():
                matrix[i, column[model_id]] = score
        return cls(list(tasks), prompt_features(prompts, encoder), table_residuals(tasks, matrix), model_ids)

    @classmethod
    def concat(cls, parts: Sequence[EvaluationRows]) -> EvaluationRows:
        """Several evaluations' rows as one (their model columns merged)."""
        model_ids = sorted({m for part in parts for m in part.model_ids})
        column = {m: j for j, m in enumerate(model_ids)}
        residuals = np.full((sum(len(p.tasks) for p in parts), len(model_ids)), np.nan, np.float32)
        at = 0
        for part in parts:
            residuals[at : at + len(part.tasks), [column[m] for m in part.model_ids]] = part.residuals
            at += len(part.tasks)
        dims = parts[0].vectors.shape[1] if parts else 0
        vectors = np.vstack([p.vectors for p in parts]) if parts else np.zeros((0, dims), np.float32)
        return cls([t for p in parts for t in p.tasks], vectors, residuals, model_ids)

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            tasks=np.array(self.tasks),
            vectors=self.vectors.astype(np.float16),  # half the size; similarities barely move
            residuals=self.residuals,
            model_ids=np.array(self.model_ids),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> EvaluationRows:
        with np.load(io.BytesIO(data), allow_pickle=False) as saved:
            return cls(
                [str(t) for t in saved["tasks"]],
                saved["vectors"].astype(np.float32),
                saved["residuals"].astype(np.float32),
                [str(m) for m in saved["model_ids"]],
            )

    @staticmethod
    def tasks_of(data: bytes) -> list[str]:
        """The task of each row in ``to_bytes``'s ``data``, decompressing only their names, not the
        megabytes of features (what ``turnout eval list`` counts)."""
        with np.load(io.BytesIO(data), allow_pickle=False) as saved:
            return [str(t) for t in saved["tasks"]]

    def into(self, memory: PromptMemory) -> None:
        """Make these the memory's evaluation rows (replacing what it had)."""
        memory.set_prior(self.tasks, self.vectors, self.residuals, self.model_ids)
