"""Per-model rating sums of one aggregate cell, as rows of a growable numpy array."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class SumTable:
    """Model id -> row of a growable ``(capacity, 3)`` array; row 0 stays zero (unknown models)."""

    __slots__ = ("data", "index", "order")

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.order: list[str] = []  # models by row (row = position + 1); cached slot arrays patch from it
        self.data = np.zeros((8, 3))

    def slot(self, model_id: str) -> int:
        row = self.index.get(model_id)
        if row is None:
            self.order.append(model_id)
            row = self.index[model_id] = len(self.order)
            if row >= len(self.data):
                self.data = np.concatenate([self.data, np.zeros_like(self.data)])
        return row

    def add(self, model_id: str, sums: Any) -> None:
        """Add an array of the three sums to the model's row."""
        row = self.slot(model_id)  # first: it may reallocate ``data``
        self.data[row] += sums

    def accumulate(self, model_id: str, first: float, second: float, third: float) -> None:
        """Add three scalars to the model's row (twice as fast as ``add`` with a tuple: a call's
        outcome is recorded on the request path)."""
        row = self.slot(model_id)  # first: it may reallocate ``data``
        cell = self.data[row]
        cell[0] += first
        cell[1] += second
        cell[2] += third

    def slots(self, model_ids: Sequence[str]) -> np.ndarray:
        get = self.index.get
        return np.fromiter((get(m, 0) for m in model_ids), dtype=np.intp, count=len(model_ids))
