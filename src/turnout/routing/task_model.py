"""Tasks learned from an imported evaluation: a classifier trained on its labelled prompts.

The built-in detection knows Turnout's broad task types (code, math, qa...); a team's evaluation
names finer ones (its benchmarks, its own workloads), and the router's experience is kept per task,
so detecting them is what lets it use that evaluation on live traffic. Keywords and the built-in
classifier put most question-answering benchmarks into one bucket (issue 21's finding), where the
router then cannot tell apart tasks whose best models differ.

The model is multinomial logistic regression over two views of the prompt: hashed word and
word-bigram counts (punctuation kept: benchmark formats such as ``Q:`` or ``(A)`` are strong cues),
and, when the ``classifier`` extra is installed, the word vectors the built-in classifier ships.
Full-batch gradient descent with fixed, generic settings (about a second for ~5,000 prompts; 300
steps at a third of the rate label the same share right). On
5-fold cross-validation of ``data/routing/outcomes-train.jsonl`` it labels 90% of held-out prompts
right with both views (87% hashed counts alone, 80% word vectors alone).

A softmax over the evaluation's tasks names one of them for any text, however unlike its prompts
("hi" after a table of poems and sums). So a prompt is the learned tasks' only when it is about as
close (cosine) to the centroid of its likeliest task as the table's prompts are to theirs: all but
the ``DOMAIN_QUANTILE`` farthest, or ``DOMAIN_CAP`` for a table of near-identical prompts. Others
are out of the evaluation's domain: built-in detection decides, and no mixture of its tasks is
weighed.
"""

from __future__ import annotations

import io
import itertools
import math
import re
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from turnout.routing.classifier import TaskClassifier

HASH_DIMS = 2048
MAX_CHARS = 2000  # of each prompt, for the counts (its start: instructions and format cues)
MIN_PROBABILITY = 0.5  # below it the learned tasks abstain and built-in detection decides
# a prompt's task mixture (``TaskModel.mixture``): its likeliest tasks, at most MIX_TASKS of them,
# each at least MIX_FLOOR likely. Generic settings, not fitted to any table: a handful of tasks
# carry nearly all of the mass of a softmax like this one
MIX_TASKS = 3
MIX_FLOOR = 0.05
# the evaluation's domain: as close to a task's centroid as all but the farthest 1% of the table's
# prompts are to theirs, or at most DOMAIN_CAP close (a templated table's own prompts sit at 0.9 and
# more, its new ones at 0.6-0.8; unrelated text at 0.1 or less): set a priori, not fitted
DOMAIN_QUANTILE = 0.01
DOMAIN_CAP = 0.3
_TOKEN = re.compile(r"[a-z]+|\d|[^\sa-z0-9]")
_VECTOR_SCALE = 4.0  # both views unit length, then scaled alike: gradient steps suit either


def _counts(text: str) -> NDArray[np.float32]:
    """Unit-length hashed (1 + log) counts of the text's words, digits, symbols and their bigrams."""
    out = np.zeros(HASH_DIMS, dtype=np.float32)
    tokens = _TOKEN.findall(text[:MAX_CHARS].lower())
    grams = Counter(tokens)
    grams.update(f"{a} {b}" for a, b in itertools.pairwise(tokens))
    for gram, n in grams.items():
        out[zlib.crc32(gram.encode()) % HASH_DIMS] += 1.0 + math.log(n)
    norm = float(np.linalg.norm(out))
    return out / norm if norm else out


@dataclass(slots=True)
class TaskModel:
    """Predicts one of ``labels`` for a prompt (see the module docstring)."""

    labels: list[str]
    weights: NDArray[np.float32]  # (features, labels)
    bias: NDArray[np.float32]
    with_vectors: bool  # trained with the word-vector view too
    encoder: TaskClassifier | None = None  # reads the word vectors (None: counts only)
    min_probability: float = MIN_PROBABILITY
    # unit-length centroid of each label's training prompts, and the similarity to its label's
    # centroid below which a prompt is out of the evaluation's domain (None: a model stored before
    # the domain was kept, which never abstains on that ground)
    centroids: NDArray[np.float32] | None = None
    floor: float = -1.0

    @staticmethod
    def features(
        texts: Sequence[str], encoder: TaskClassifier | None, with_vectors: bool
    ) -> NDArray[np.float32]:
        counts = np.stack([_counts(t) for t in texts]) if texts else np.zeros((0, HASH_DIMS), np.float32)
        if not with_vectors:
            return counts * np.float32(_VECTOR_SCALE)
        if encoder is None:
            raise ValueError("this task model needs the word vectors (the 'classifier' extra)")
        both: NDArray[np.float32] = np.hstack([encoder.embed(list(texts)), counts]) * np.float32(
            _VECTOR_SCALE
        )
        return both

    @classmethod
    def train(
        cls,
        texts: Sequence[str],
        tasks: Sequence[str],
        encoder: TaskClassifier | None = None,
        *,
        epochs: int = 100,
        learning_rate: float = 3.0,
        l2: float = 1e-4,
    ) -> TaskModel:
        """Fit on labelled prompts (at least two tasks); ``encoder`` adds the word-vector view."""
        if len(texts) != len(tasks):
            raise ValueError("one task per prompt")
        with_vectors = encoder is not None
        x = cls.features(texts, encoder, with_vectors)
        return cls.fit(x, tasks, encoder, epochs=epochs, learning_rate=learning_rate, l2=l2)

    @classmethod
    def fit(
        cls,
        x: NDArray[np.float32],
        tasks: Sequence[str],
        encoder: TaskClassifier | None,
        *,
        epochs: int = 100,
        learning_rate: float = 3.0,
        l2: float = 1e-4,
    ) -> TaskModel:
        """Fit on precomputed ``features`` (with the word-vector view when ``encoder`` is given):
        evaluations that refit per fold compute them once."""
        labels = sorted(set(tasks))
        if len(labels) < 2:
            raise ValueError("learning tasks needs prompts of at least two tasks")
        with_vectors = encoder is not None
        index = {label: i for i, label in enumerate(labels)}
        y = np.zeros((len(tasks), len(labels)), dtype=np.float32)
        y[np.arange(len(tasks)), [index[t] for t in tasks]] = 1.0
        weights = np.zeros((x.shape[1], len(labels)), dtype=np.float32)
        bias = np.zeros(len(labels), dtype=np.float32)
        for _ in range(epochs):
            grad = (_softmax(x @ weights + bias) - y) / len(x)
            weights -= learning_rate * (x.T @ grad + l2 * weights)
            bias -= learning_rate * grad.sum(axis=0)
        centroids = _unit(y.T @ x)
        own = (_unit(x) * centroids[y.argmax(axis=1)]).sum(axis=1)  # each prompt to its task's centroid
        floor = min(float(np.quantile(own, DOMAIN_QUANTILE)), DOMAIN_CAP)
        return cls(labels, weights, bias, with_vectors, encoder, centroids=centroids, floor=floor)

    def probabilities(self, texts: Sequence[str]) -> NDArray[np.float32]:
        return self.probabilities_of(self.features(texts, self.encoder, self.with_vectors))

    def probabilities_of(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        """Per label, for precomputed features."""
        return _softmax(x @ self.weights + self.bias)

    def predict(self, text: str) -> tuple[str, float] | None:
        """The most likely task of ``text`` and its probability; None below ``min_probability``."""
        return self.sure_of(self.mixture(text))

    def sure_of(self, mixture: Sequence[tuple[str, float]]) -> tuple[str, float] | None:
        """A mixture's likeliest task and its probability, or None (abstain: built-in detection
        decides) below ``min_probability``."""
        task, probability = mixture[0]
        return (task, probability) if probability >= self.min_probability else None

    def mixture(self, text: str) -> list[tuple[str, float]]:
        """The tasks ``text`` may be, with their probabilities (``mixture_of``); none when it is
        out of the evaluation's domain (``in_domain``)."""
        x = self.features([text], self.encoder, self.with_vectors)[0]
        mixture = self.mixture_of(self.probabilities_of(x[None, :])[0])
        return mixture if self.in_domain(x, mixture[0][0]) else []

    def in_domain(self, x: NDArray[np.float32], label: str) -> bool:
        """Is a prompt (its features ``x``) as close to ``label``'s centroid as that task's own
        prompts are (all but the ``DOMAIN_QUANTILE`` farthest)?"""
        if self.centroids is None:
            return True
        closeness = self.closeness(x, label)
        return closeness is not None and closeness >= self.floor

    def closeness(self, x: NDArray[np.float32], label: str) -> float | None:
        """The cosine of a prompt's features ``x`` to ``label``'s centroid; None for an empty
        prompt, or a model stored without centroids."""
        norm = float(np.linalg.norm(x))
        if self.centroids is None or not norm:
            return None
        return float(x @ self.centroids[self.labels.index(label)]) / norm

    def mixture_of(self, probs: NDArray[np.float32]) -> list[tuple[str, float]]:
        """For one prompt's probabilities: its ``MIX_TASKS`` likeliest tasks of at least ``MIX_FLOOR``
        (the likeliest always), likeliest first, with their probabilities as they are (the rest of
        the mass is the detected task's: see ``detection.task_mix``)."""
        top = np.argsort(-probs, kind="stable")[:MIX_TASKS].tolist()
        kept = [i for n, i in enumerate(top) if n == 0 or probs[i] >= MIX_FLOOR]
        return [(self.labels[i], float(probs[i])) for i in kept]

    def predict_many(self, texts: Sequence[str]) -> list[str]:
        """The most likely task of each text (no abstaining: for evaluations)."""
        return [self.labels[i] for i in self.probabilities(texts).argmax(axis=1).tolist()]

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        arrays: dict[str, Any] = {
            "labels": np.array(self.labels),
            "weights": self.weights,
            "bias": self.bias,
            "with_vectors": np.array(self.with_vectors),
        }
        if self.centroids is not None:  # the evaluation's domain
            arrays.update(centroids=self.centroids, floor=np.array(self.floor))
        np.savez_compressed(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, encoder: TaskClassifier | None) -> TaskModel:
        with np.load(io.BytesIO(data), allow_pickle=False) as saved:
            with_vectors = bool(saved["with_vectors"])
            if with_vectors and encoder is None:
                raise ValueError("this task model needs the word vectors (the 'classifier' extra)")
            kept = "centroids" in saved.files  # a model stored before the domain was kept has none
            return cls(
                [str(label) for label in saved["labels"]],
                saved["weights"].astype(np.float32),
                saved["bias"].astype(np.float32),
                with_vectors,
                encoder if with_vectors else None,
                centroids=saved["centroids"].astype(np.float32) if kept else None,
                floor=float(saved["floor"]) if kept else -1.0,
            )


@dataclass(frozen=True, slots=True)
class TaskModels:
    """Every imported evaluation's task model, asked together: each import trains one on its own
    table, and a later import must not make detection forget an earlier one's tasks.

    A prompt gets the tasks of the evaluation whose domain (``TaskModel.in_domain``) it is in; where
    it is in several, of the one whose likeliest task's centroid it is closest to. The models'
    probabilities are not compared: each softmax is over its own table's tasks (0.9 of two tasks is
    not 0.9 of ten), while closeness is a cosine on the same features for every model. A task two
    evaluations name is one task whichever answers. A model stored without a domain keeps every
    prompt, so it decides only those in no other model's domain. Detection is on every request:
    the prompt's features (the costly part) are read once, whatever the number of models."""

    models: tuple[TaskModel, ...]
    min_probability: float = MIN_PROBABILITY

    @property
    def labels(self) -> list[str]:
        return sorted({label for model in self.models for label in model.labels})

    def mixture(self, text: str) -> list[tuple[str, float]]:
        """The tasks ``text`` may be, with their probabilities, from the evaluation whose prompts it
        is most like; none when it is in no evaluation's domain."""
        features: dict[bool, NDArray[np.float32]] = {}  # by with_vectors: one encoder for all
        best: list[tuple[str, float]] = []
        best_closeness = -math.inf
        for model in self.models:  # ties: the first (the loader puts the newest first)
            x = features.get(model.with_vectors)
            if x is None:
                x = model.features([text], model.encoder, model.with_vectors)[0]
                features[model.with_vectors] = x
            mixture = model.mixture_of(model.probabilities_of(x[None, :])[0])
            closeness = model.closeness(x, mixture[0][0])
            if model.centroids is None:
                closeness = -2.0  # below any cosine: any model's domain goes first
            elif closeness is None or closeness < model.floor:
                continue  # out of this evaluation's domain (as ``TaskModel.in_domain``)
            if closeness > best_closeness:
                best, best_closeness = mixture, closeness
        return best

    def sure_of(self, mixture: Sequence[tuple[str, float]]) -> tuple[str, float] | None:
        """As ``TaskModel.sure_of``: the likeliest task, or None (abstain) below ``min_probability``."""
        task, probability = mixture[0]
        return (task, probability) if probability >= self.min_probability else None


def _softmax(logits: NDArray[np.float32]) -> NDArray[np.float32]:
    logits = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    result: NDArray[np.float32] = exp / exp.sum(axis=1, keepdims=True)
    return result


def _unit(rows: NDArray[np.float32]) -> NDArray[np.float32]:
    """Each row at unit length (an all-zero row stays zero)."""
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.where(norms > 0, norms, 1.0)).astype(np.float32)
