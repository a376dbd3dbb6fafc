"""The statistics of ``eval replay``: the pass rule, paired t-intervals, RouteLLM's gap metrics.

No scipy here, so the t quantiles are a table (df 1..30) and the Cornish-Fisher expansion beyond
(within 1e-4 of the exact quantile from df 30 on). Every figure that can be undefined (an interval
from one value, a gap between two equal models) is ``nan`` here and ``null`` in JSON: ``finite``
makes a report safe for ``json.dumps(..., allow_nan=False)``.

The two-model metrics follow RouteLLM (Ong et al., 2024): a router sends a share of the calls to
the strong model and recovers ``PGR = (q - q_weak) / (q_strong - q_weak)`` of the quality gap. A
policy with a trade-off knob traces a curve of (share, PGR) points; the curve here runs through
them in order of share, anchored at (0, 0) (every call to the weak model) and (1, 1) (every call to
the strong one), straight between points (mixing two operating points at random achieves any point
between them). APGR is the area under that curve; CPT(x) the least share at which it reaches x.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_COST_RATIO = 0.6  # the target's cost ceiling, as a share of the best single model's cost per query

# two-sided 95% t quantiles (0.975) for 1..30 degrees of freedom
_T975 = (
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
    2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
    2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
)  # fmt: skip
_Z975 = 1.959963984540054


def t975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (a 95% two-sided interval)."""
    if df < 1:
        raise ValueError("a t quantile needs at least 1 degree of freedom")
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )


@dataclass(frozen=True, slots=True)
class Interval:
    """A mean and its 95% t-interval over ``n`` paired differences (``nan`` bounds below two)."""

    mean: float
    low: float
    high: float
    n: int


def t_interval(values: Sequence[float] | np.ndarray) -> Interval:
    """Mean of ``values`` with its 95% t-interval: what the paired differences are reported as."""
    data = np.asarray(values, dtype=float)
    n = int(data.size)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = float(data.mean())
    if n < 2:
        return Interval(mean, math.nan, math.nan, n)
    half = t975(n - 1) * float(data.std(ddof=1)) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


def passes(quality: float, cost: float, best_quality: float, best_cost: float) -> bool:
    """The replay target: mean quality above the best single model's, at no more than
    ``MAX_COST_RATIO`` of its cost per query (both on the same held-out rows)."""
    return bool(quality > best_quality and cost <= MAX_COST_RATIO * best_cost)


def gap_recovered(quality: float, weak: float, strong: float) -> float:
    """PGR: the share of the weak-to-strong quality gap recovered (``nan`` without a gap)."""
    return (quality - weak) / (strong - weak) if strong != weak else math.nan


def gap_curve(points: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """(strong share, PGR) points in order of share, anchored at (0, 0) and (1, 1); undefined points
    (a ``nan`` PGR) are left out."""
    kept = [(float(s), float(p)) for s, p in points if not (math.isnan(s) or math.isnan(p))]
    return sorted([(0.0, 0.0), *kept, (1.0, 1.0)])


def apgr(points: Iterable[tuple[float, float]]) -> float:
    """Average PGR over strong shares 0..1: the area under ``gap_curve(points)`` (trapezoids)."""
    curve = gap_curve(points)
    return sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in itertools.pairwise(curve))


def calls_to_recover(points: Iterable[tuple[float, float]], target: float) -> float:
    """CPT(target): the least strong share at which ``gap_curve(points)`` reaches PGR ``target``."""
    curve = gap_curve(points)
    if curve[0][1] >= target:
        return curve[0][0]
    for (x0, y0), (x1, y1) in itertools.pairwise(curve):
        if y0 < target <= y1:
            return x0 + (target - y0) / (y1 - y0) * (x1 - x0)
    return math.nan  # unreachable while (1, 1) anchors the curve and target <= 1


def best_at_cost(points: Iterable[tuple[float, float]], cost: float) -> float:
    """The best quality a policy's (cost, quality) points reach at a cost of at most ``cost``,
    mixing two of them (each call to one or the other at random): their upper concave hull up to
    its best point, read at ``cost`` (below the cheapest point: that point's; ``nan`` without any)."""
    best: dict[float, float] = {}
    for c, q in points:
        if not (math.isnan(c) or math.isnan(q)):
            best[float(c)] = max(float(q), best.get(float(c), -math.inf))
    if not best:
        return math.nan
    pts = sorted(best.items())
    hull: list[tuple[float, float]] = []
    for point in pts:  # the upper hull, left to right (monotone chain)
        while len(hull) >= 2:
            (x0, y0), (x1, y1) = hull[-2], hull[-1]
            if (x1 - x0) * (point[1] - y0) - (y1 - y0) * (point[0] - x0) < 0:
                break
            hull.pop()  # hull[-1] lies on or under the chord to ``point``
        hull.append(point)
    peak = max(range(len(hull)), key=lambda i: hull[i][1])
    hull = hull[: peak + 1]  # dearer points of lower quality are never the best at a cost
    if cost <= hull[0][0]:
        return hull[0][1]
    for (x0, y0), (x1, y1) in itertools.pairwise(hull):
        if cost <= x1:
            return y0 + (cost - x0) / (x1 - x0) * (y1 - y0)
    return hull[-1][1]


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (and numpy scalar) made JSON-safe: ``nan``/``inf`` -> None."""
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
