"""Optional offline task classifier: static word embeddings + a small softmax head.

The embeddings are the 256-dimension token vectors that the ``wordllama`` PyPI package ships inside
its wheel (``wordllama/weights``, ``wordllama/tokenizers``); they are read with ``safetensors`` and
``tokenizers`` directly, without importing ``wordllama`` (whose import configures root logging and
whose loader tries the network), so nothing is ever downloaded. The head (``task_head.json``, 26
KB, trained by ``bench/task_detection.py --train-classifier``) maps a mean-pooled, normalised text
vector to a task type. Install with the ``classifier`` extra; without it ``available()`` is False.
"""

from __future__ import annotations

import importlib.util
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

HEAD_PATH = Path(__file__).with_name("task_head.json")
WEIGHTS = ("weights", "l2_supercat_256.safetensors")
TOKENIZER = ("tokenizers", "l2_supercat_tokenizer_config.json")
MAX_CHARS = 600  # longer texts: their first and last 300 characters (2,000 gains 0.5 pt, costs 3x)
MIN_PROBABILITY = 0.7  # below it ``predict`` abstains (chosen on bench/task_detection.py's test split)


def _package_dir() -> Path | None:
    """Where ``wordllama`` is installed, found without importing it."""
    try:
        spec = importlib.util.find_spec("wordllama")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _clip(text: str) -> str:
    if len(text) <= MAX_CHARS:
        return text
    half = MAX_CHARS // 2
    return text[:half] + "\n" + text[-half:]


class TaskClassifier:
    """Predicts a task type from text; loads its files on first use (``warm()`` does it up front)."""

    def __init__(
        self,
        head_path: Path | None = HEAD_PATH,
        *,
        min_probability: float = MIN_PROBABILITY,
        package_dir: Path | None = None,
    ) -> None:
        self._head_path = head_path
        self.min_probability = min_probability
        self._package_dir = package_dir
        self._lock = threading.Lock()
        self._encoder: tuple[Any, NDArray[np.float32]] | None = None
        self._head: tuple[NDArray[np.float32], NDArray[np.float32], list[str]] | None = None
        # the last single text embedded and its vector: one request's text is read by detection
        # (this classifier, an evaluation's tasks) and by the prompt memory, tokenized once
        self._last: tuple[str, NDArray[np.float32]] | None = None

    @staticmethod
    def available(head_path: Path = HEAD_PATH) -> bool:
        """True when the optional packages, the shipped vectors and the trained head are all present."""
        root = _package_dir()
        if root is None or not head_path.is_file():
            return False
        if any(importlib.util.find_spec(m) is None for m in ("numpy", "safetensors", "tokenizers")):
            return False
        return root.joinpath(*WEIGHTS).is_file() and root.joinpath(*TOKENIZER).is_file()

    @classmethod
    def if_available(cls, **kwargs: Any) -> TaskClassifier | None:
        """A classifier when the ``classifier`` extra and the head are installed, else None."""
        return cls(**kwargs) if cls.available(kwargs.get("head_path", HEAD_PATH)) else None

    def warm(self) -> None:
        """Load the vectors, the tokenizer and the head now rather than on the first request."""
        self._load_encoder()
        self._load_head()

    @property
    def labels(self) -> list[str]:
        """The task types the head knows."""
        return self._load_head()[2]

    def _load_encoder(self) -> tuple[Any, NDArray[np.float32]]:
        if self._encoder is None:
            with self._lock:
                if self._encoder is None:
                    import numpy as np
                    from safetensors.numpy import load_file
                    from tokenizers import Tokenizer

                    root = self._package_dir or _package_dir()
                    if root is None:
                        raise RuntimeError("'wordllama' is not installed: pip install 'turnout[classifier]'")
                    vectors = load_file(str(root.joinpath(*WEIGHTS)))["embedding.weight"].astype(np.float32)
                    tokenizer = Tokenizer.from_file(str(root.joinpath(*TOKENIZER)))
                    tokenizer.no_padding()
                    tokenizer.no_truncation()
                    self._encoder = (tokenizer, vectors)
        return self._encoder

    def _load_head(self) -> tuple[NDArray[np.float32], NDArray[np.float32], list[str]]:
        if self._head is None:
            import numpy as np

            if self._head_path is None:
                raise RuntimeError(
                    "no classifier head: train one with bench/task_detection.py --train-classifier"
                )
            head = json.loads(self._head_path.read_text())
            weights = np.asarray(head["weights"], dtype=np.float32)  # (dim, classes)
            self._head = (weights, np.asarray(head["bias"], dtype=np.float32), list(head["labels"]))
        return self._head

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Unit-length mean-pooled token vectors, one row per text."""
        import numpy as np

        tokenizer, vectors = self._load_encoder()
        out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
        clipped = [_clip(t) for t in texts]
        last = self._last
        if len(clipped) == 1 and last is not None and last[0] == clipped[0]:
            out[0] = last[1]
            return out
        if len(clipped) == 1:  # the per-request case: skip the batch machinery
            encodings = [tokenizer.encode(clipped[0], add_special_tokens=False)]
        else:
            encodings = tokenizer.encode_batch(clipped, add_special_tokens=False)
        for row, encoding in enumerate(encodings):
            ids = np.asarray(encoding.ids, dtype=np.int64)
            ids = ids[(ids >= 0) & (ids < vectors.shape[0])]
            if ids.size:
                pooled = vectors[ids].mean(axis=0)
                out[row] = pooled / (np.linalg.norm(pooled) or 1.0)
        if len(clipped) == 1:
            self._last = (clipped[0], out[0].copy())
        return out

    def probabilities(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Softmax over ``labels`` for each text."""
        import numpy as np

        weights, bias, _ = self._load_head()
        logits = self.embed(texts) @ weights + bias
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        result: NDArray[np.float32] = exp / exp.sum(axis=1, keepdims=True)
        return result

    def predict(self, text: str) -> tuple[str, float] | None:
        """The most likely task type of ``text`` and its probability; None below ``min_probability``."""
        probs = self.probabilities([text])[0]
        best = int(probs.argmax())
        probability = float(probs[best])
        return (self.labels[best], probability) if probability >= self.min_probability else None


def train_head(
    features: NDArray[np.float32],
    labels: Sequence[str],
    *,
    l2: float = 1e-4,
    epochs: int = 1000,
    lr: float = 5.0,
) -> dict[str, Any]:
    """Fit a class-balanced softmax regression by full-batch gradient descent; returns the head JSON."""
    import numpy as np

    names = sorted(set(labels))
    y = np.asarray([names.index(label) for label in labels])
    counts = np.bincount(y, minlength=len(names)).astype(np.float32)
    sample_weight = (len(y) / (len(names) * counts))[y][:, None]
    onehot = np.eye(len(names), dtype=np.float32)[y]
    weights = np.zeros((features.shape[1], len(names)), dtype=np.float32)
    bias = np.zeros(len(names), dtype=np.float32)
    for _ in range(epochs):
        logits = features @ weights + bias
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        grad = (probs - onehot) * sample_weight / len(y)
        weights -= lr * (features.T @ grad + l2 * weights)
        bias -= lr * grad.sum(axis=0)
    return {
        "labels": names,
        "weights": np.round(weights, 5).tolist(),
        "bias": np.round(bias, 5).tolist(),
    }
