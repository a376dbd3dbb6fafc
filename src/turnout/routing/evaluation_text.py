"""TF-IDF nearest neighbours of prompts, numpy alone (no scikit-learn or scipy in this project).

The kNN baseline of ``eval replay`` predicts a prompt's scores from its most similar warm-up
prompts. Terms are lower-cased runs of letters and digits; a weight is ``(1 + log tf) * idf`` with
the smoothed ``idf = log((1 + n) / (1 + df)) + 1``, and rows are L2-normalised, so a dot product is
the cosine similarity. Document frequencies come from the prompt texts of every row of the
evaluation, scores never: an unsupervised statistic a deployed router could take from its own
unlabelled traffic, computed once instead of once per fold (which would cost a full similarity
matrix per fold and seed). Neighbours and the scores they pass on are the warm-up rows' alone.

The similarity product is split: the most frequent terms (long posting lists) as a dense BLAS
product, the rare ones as expanded pairs summed with ``bincount``; 5,608 prompts take about a
second. Both are summed in float64 and the result rounded to float32: a float32 BLAS product gave
one prompt's similarity to identical rows values an ulp apart, and different ones for one row alone
(a matrix-vector kernel) than in a block (matrix-matrix), so ties were broken by the kernel, not by
the lower index (numpy 2.4.6's OpenBLAS). Each row keeps its ``keep`` most similar other rows in
order, so a fold's neighbours are the first ``k`` of them that are warm-up rows; the rare row
whose list holds too few of them is recomputed exactly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

_TERM = re.compile(r"[a-z0-9]+")
DENSE_TERMS = 512  # the most frequent terms, multiplied densely
BLOCK = 256  # rows per block of the similarity product


class TextIndex:
    """TF-IDF vectors of ``texts`` and their cosine similarities."""

    def __init__(self, texts: Sequence[str]) -> None:
        vocab: dict[str, int] = {}
        rows: list[int] = []
        terms: list[int] = []
        counts: list[int] = []
        for i, text in enumerate(texts):
            tf: dict[int, int] = {}
            for word in _TERM.findall(text.lower()):
                j = vocab.setdefault(word, len(vocab))
                tf[j] = tf.get(j, 0) + 1
            rows.extend([i] * len(tf))
            terms.extend(tf)
            counts.extend(tf.values())
        self.n = n = len(texts)
        row = np.array(rows, dtype=np.int64)
        term = np.array(terms, dtype=np.int64)
        df = np.bincount(term, minlength=len(vocab))
        weight = (1.0 + np.log(np.array(counts, dtype=float))) * (np.log((1.0 + n) / (1.0 + df)) + 1.0)[term]
        norm = np.sqrt(np.bincount(row, weights=weight * weight, minlength=n))
        weight = weight / np.where(norm > 0, norm, 1.0)[row]
        dense_terms = np.argsort(-df, kind="stable")[:DENSE_TERMS]
        column = np.full(len(vocab), -1)
        column[dense_terms] = np.arange(dense_terms.size)
        frequent = column[term] >= 0
        self._dense = np.zeros((n, dense_terms.size))
        self._dense[row[frequent], column[term[frequent]]] = weight[frequent]
        # rare terms: each row's (term, weight) list, and each term's posting list (rows, weights)
        rare_row, rare_term, rare_w = row[~frequent], term[~frequent], weight[~frequent]
        self._row_start = np.searchsorted(rare_row, np.arange(n + 1))
        self._row_term, self._row_w = rare_term, rare_w
        by_term = np.argsort(rare_term, kind="stable")
        self._post_row, self._post_w = rare_row[by_term], rare_w[by_term]
        self._post_start = np.searchsorted(rare_term[by_term], np.arange(len(vocab) + 1))

    def similarities(self, rows: np.ndarray) -> np.ndarray:
        """Cosine similarities of ``rows`` to every row: shape (len(rows), n)."""
        rows = np.asarray(rows, dtype=np.int64)
        out = self._dense[rows] @ self._dense.T
        lo, hi = self._row_start[rows], self._row_start[rows + 1]
        entries = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)] or [np.zeros(0, int)])
        if entries.size:
            local = np.repeat(np.arange(rows.size), hi - lo)
            terms = self._row_term[entries]
            start, length = self._post_start[terms], self._post_start[terms + 1] - self._post_start[terms]
            pair_entry = np.repeat(np.arange(entries.size), length)
            offsets = np.arange(pair_entry.size) - np.repeat(np.cumsum(length) - length, length)
            post = start[pair_entry] + offsets
            flat = local[pair_entry] * self.n + self._post_row[post]
            weights = self._row_w[entries][pair_entry] * self._post_w[post]
            out += np.bincount(flat, weights=weights, minlength=rows.size * self.n).reshape(rows.size, self.n)
        return out.astype(np.float32)


class Neighbours:
    """Each row's ``keep`` most similar other rows, most similar first (ties: lower index first).
    Only rows sharing a term count as neighbours: a zero similarity says nothing."""

    def __init__(self, index: TextIndex, keep: int = 256) -> None:
        self.index = index
        n = index.n
        self.keep = keep = max(0, min(keep, n - 1))
        self.order = np.full((n, keep), -1, dtype=np.int64)
        self.complete = np.ones(n, dtype=bool)  # the list holds every row similar to this one
        for lo in range(0, n, BLOCK):
            rows = np.arange(lo, min(lo + BLOCK, n))
            sims = index.similarities(rows)
            sims[np.arange(rows.size), rows] = 0.0
            top = _top(sims, keep)
            self.order[rows] = np.where(np.take_along_axis(sims, top, axis=1) > 0, top, -1)
            self.complete[rows] = (sims > 0).sum(1) <= keep

    def among(self, rows: np.ndarray, allowed: np.ndarray, k: int) -> np.ndarray:
        """The ``k`` rows most similar to each of ``rows`` among the ``allowed`` ones (a boolean
        mask; a row is never its own neighbour): shape (len(rows), k), padded with -1 where fewer
        rows share a term with it."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.full((rows.size, k), -1, dtype=np.int64)
        if rows.size == 0 or k == 0:
            return out
        candidates = self.order[rows]
        ok = (candidates >= 0) & allowed[np.maximum(candidates, 0)]
        rank = np.cumsum(ok, axis=1)
        hit_r, hit_c = np.nonzero(ok & (rank <= k))
        out[hit_r, rank[hit_r, hit_c] - 1] = candidates[hit_r, hit_c]
        found = rank[:, -1] if self.keep else np.zeros(rows.size, dtype=np.int64)
        short = np.flatnonzero((found < k) & ~self.complete[rows])
        for lo in range(0, short.size, BLOCK):  # lists too short for this mask: recompute exactly
            block = short[lo : lo + BLOCK]
            sims = self.index.similarities(rows[block])
            sims[:, ~allowed] = 0.0
            sims[np.arange(block.size), rows[block]] = 0.0
            top = _top(sims, k)
            out[block] = np.where(np.take_along_axis(sims, top, axis=1) > 0, top, -1)
        return out


def _top(sims: np.ndarray, keep: int) -> np.ndarray:
    """Column indices of each row's ``keep`` largest values, largest first, ties by lower index
    (at the cut too, so a short list is a prefix of a long one)."""
    if keep >= sims.shape[1]:
        return np.argsort(-sims, axis=1, kind="stable")[:, :keep]
    cut = -np.partition(-sims, keep - 1, axis=1)[:, keep - 1 : keep]
    above, at_cut = sims > cut, sims == cut
    room = keep - above.sum(1, keepdims=True)
    chosen = above | (at_cut & (np.cumsum(at_cut, axis=1) <= room))
    part = np.nonzero(chosen)[1].reshape(sims.shape[0], keep)  # in order of column
    order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)
