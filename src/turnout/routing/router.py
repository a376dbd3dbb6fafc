"""The router: filters, experience-weighted scores, exploration, cheaper-within-margin, penalties.

``score = w_priority * priority/100 + w_experience * experience - penalty`` (FR-06.5), where experience
is the posterior mean quality of the model for the task (``ExperienceStore``), or a Thompson / UCB draw
from the posterior while exploring. Without any experience for the task's candidates, priority alone
ranks them (FR-06.6). Among models whose score is within ``cost_margin`` quality points of the best,
the cheapest is chosen (US-06.4). Everything is vectorised over the candidates with numpy; pass a
``CandidateSet`` (built once per agent and catalog snapshot) so its columns and the store's slot
lookups are reused across requests.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Literal

import numpy as np

from turnout.routing.experience import DAY, LEVEL_NAMES, ExperienceStore, Strengths
from turnout.routing.types import Candidate, Decision, RouteRequest, ScoredCandidate

Exploration = Literal["thompson", "ucb", "off"]
_SETTERS = [getattr(ScoredCandidate, f.name).__set__ for f in fields(ScoredCandidate)]
import os

_MODE = os.environ.get("MARGIN", "mean")
_LEVELS = np.array(LEVEL_NAMES, dtype=object)


@dataclass(frozen=True, slots=True)
class RouterConfig:
    """Weights and knobs of the router; the defaults are the production defaults."""

    w_priority: float = 0.3
    w_experience: float = 0.7
    exploration: Exploration = "thompson"
    exploration_rate: float = 1.0  # scales the posterior spread of the draw; 0 = greedy
    cost_margin: float = 0.05  # quality points within which the cheapest model wins (US-06.4)
    error_penalty: float = 0.5  # score lost per unit of recent error rate
    latency_penalty: float = 0.05  # score lost per doubling of latency over the candidates' median
    outcome_prior: float = 5.0  # pseudo-calls (fine, median latency) shrinking the penalties
    strengths: Strengths = field(default_factory=Strengths)
    half_life_s: float = 30 * DAY  # for the store ``Router`` creates when given none
    outcome_half_life_s: float = 3600.0


class CandidateSet(tuple[Candidate, ...]):
    """An immutable candidate list with its columns precomputed; reuse it across requests."""

    _uids = itertools.count()
    uid: int
    ids: list[str]
    priority: np.ndarray
    price_in: np.ndarray
    price_out: np.ndarray
    ctx: np.ndarray
    _caps: dict[str, np.ndarray]

    def __new__(cls, candidates: Iterable[Candidate]) -> CandidateSet:
        self = super().__new__(cls, candidates)
        self.uid = next(cls._uids)
        self.ids = [c.model_id for c in self]
        self.priority = np.array([c.priority for c in self], dtype=float) / 100.0
        nan = math.nan
        self.price_in = np.array(
            [nan if c.pricing_input is None else c.pricing_input for c in self], dtype=float
        )
        self.price_out = np.array(
            [nan if c.pricing_output is None else c.pricing_output for c in self], dtype=float
        )
        self.ctx = np.array([-1 if c.ctx_length is None else c.ctx_length for c in self], dtype=np.int64)
        self._caps = {}
        return self

    def has(self, capability: str) -> np.ndarray:
        """Mask of the candidates with ``capability`` (cached)."""
        mask = self._caps.get(capability)
        if mask is None:
            mask = self._caps[capability] = np.fromiter(
                (capability in c.capabilities for c in self), dtype=bool, count=len(self)
            )
        return mask


def _const(text: str) -> Callable[[int], str]:
    return lambda _i: text


def _or_none(values: np.ndarray, present: np.ndarray) -> list[object]:
    out = values.astype(object)
    out[~present] = None
    return list(out.tolist())


def _scored(n: int, columns: list[Iterable[object]]) -> list[ScoredCandidate]:
    """Build ``n`` ScoredCandidates column by column (C-level loops; 3x faster than ``__init__``)."""
    items: list[ScoredCandidate] = list(map(object.__new__, itertools.repeat(ScoredCandidate, n)))
    for setter, column in zip(_SETTERS, columns, strict=True):
        deque(map(setter, items, column), maxlen=0)
    return items


class Router:
    """Ranks an agent's candidates for a request (see the module docstring)."""

    def __init__(self, experience: ExperienceStore | None = None, config: RouterConfig | None = None) -> None:
        self.config = config or RouterConfig()
        self.experience = experience or ExperienceStore(
            self.config.half_life_s, self.config.outcome_half_life_s, self.config.strengths
        )
        self._gen = np.random.default_rng()

    def rank(
        self,
        request: RouteRequest,
        candidates: Sequence[Candidate],
        *,
        rng: random.Random | None = None,
        explore: bool | None = None,
        now: float | None = None,
    ) -> Decision:
        """Filter, score and order ``candidates``; ``explore`` overrides ``request.explore``."""
        cfg = self.config
        cs = candidates if isinstance(candidates, CandidateSet) else CandidateSet(candidates)
        cache_key = cs.uid if cs is candidates else None
        keep = np.ones(len(cs), dtype=bool)
        filtered: list[tuple[str, str]] = []

        def drop(fail: np.ndarray, why: Callable[[int], str]) -> None:
            fail &= keep
            if fail.any():
                filtered.extend((cs.ids[i], why(i)) for i in np.flatnonzero(fail).tolist())
                keep[fail] = False

        for cap in sorted(request.required_capabilities - {"long_context"}):
            drop(~cs.has(cap), _const(f"missing capability '{cap}'"))
        need = request.prompt_tokens + request.expected_output_tokens
        drop((cs.ctx >= 0) & (cs.ctx < need), lambda i: f"context window {cs.ctx[i]} < {need} tokens")
        cost = (request.prompt_tokens * cs.price_in + request.expected_output_tokens * cs.price_out) / 1e6
        max_cost = request.max_cost_usd
        if max_cost is not None:
            drop(cost > max_cost, lambda i: f"estimated cost ${cost[i]:.6f} > max ${max_cost:g}")
        est = self.experience.estimate_many(
            request.tenant_id, request.agent_id, request.task_type, cs.ids, cs.priority,
            now=now, cache_key=cache_key, strengths=cfg.strengths,
        )  # fmt: skip
        min_q = request.min_quality
        if min_q is not None:
            drop(
                (est.level >= 2) & (est.mean < min_q), lambda i: f"quality {est.mean[i]:.3f} < min {min_q:g}"
            )
        idx = np.flatnonzero(keep)
        task = request.task_type
        if idx.size == 0:
            return Decision(
                task, [], filtered, f"no candidate left for task '{task}' ({len(filtered)} filtered)"
            )

        prio, mean, level = cs.priority[idx], est.mean[idx], est.level[idx]
        cost_k = cost[idx]
        cost_sort = np.where(np.isnan(cost_k), np.inf, cost_k)
        penalty = self._penalty(cs.ids, idx, now, cache_key)
        has_exp = bool((level > 0).any())
        exploring = has_exp and cfg.exploration != "off" and cfg.exploration_rate > 0
        exploring = exploring and (request.explore if explore is None else explore)
        sampled: np.ndarray | None = None
        if not has_exp:
            score = prio - penalty
            order = np.lexsort((cost_sort, -score))
            greedy = int(order[0])
        else:
            base = cfg.w_priority * prio - penalty
            score = base + cfg.w_experience * mean
            greedy = self._pick(score, cost_sort)
            if exploring:
                spread = cfg.exploration_rate * np.sqrt(est.var[idx])
                _n0 = float(os.environ.get("N0", "0"))
                if _n0 > 0:
                    spread = spread / math.sqrt(1.0 + est.total / _n0)
                _r0 = float(os.environ.get("R0", "-1"))
                if _r0 >= 0:
                    spread = np.where(level >= 2, spread, _r0 * np.sqrt(est.var[idx]))
                gen = self._gen if rng is None else np.random.default_rng(rng.getrandbits(64))
                if os.environ.get("RATEMODE") == "prob":
                    spread = np.sqrt(est.var[idx]) * (gen.random() < cfg.exploration_rate)
                if cfg.exploration == "ucb":
                    sampled = mean + spread * math.sqrt(2.0 * math.log(est.total + 2.0))
                elif os.environ.get("BETA"):
                    m_ = np.clip(mean, 1e-3, 1 - 1e-3)
                    cnt_ = np.maximum(m_ * (1 - m_) / np.maximum(est.var[idx], 1e-9), 0.5) / cfg.exploration_rate**2
                    sampled = gen.beta(m_ * cnt_, (1 - m_) * cnt_)
                else:
                    sampled = mean + spread * gen.standard_normal(idx.size)
                score = base + cfg.w_experience * sampled
            order = np.lexsort((cost_sort, -score))
            pick = self._pick(score, cost_sort, order, base + cfg.w_experience * mean)
            if pick != order[0]:
                order = np.concatenate(([pick], order[order != pick]))

        top = int(order[0])
        ids = [cs.ids[i] for i in idx[order].tolist()]
        s_o = score[order].tolist()
        if has_exp:
            exp_used = sampled if sampled is not None else mean
            p_part = (cfg.w_priority * prio[order]).tolist()
            e_part: Iterable[object] = (cfg.w_experience * exp_used[order]).tolist()
            experience: Iterable[object] = _or_none(mean[order], level[order] > 0)
        else:
            p_part, e_part, experience = prio[order].tolist(), itertools.repeat(0.0), itertools.repeat(None)
        columns: list[Iterable[object]] = [
            ids, s_o, p_part, e_part, experience, est.evidence[idx][order].tolist(),
            _LEVELS[level[order]].tolist(),
            sampled[order].tolist() if sampled is not None else itertools.repeat(None),
            _or_none(cost_k[order], ~np.isnan(cost_k[order])), penalty[order].tolist(),
        ]  # fmt: skip
        ranked = _scored(len(ids), columns)
        explored = exploring and top != greedy
        reason = self._reason(task, ranked, order, score, cost_sort, has_exp, explored, len(filtered))
        return Decision(task, ranked, filtered, reason, explored)

    def _pick(
        self,
        score: np.ndarray,
        cost: np.ndarray,
        order: np.ndarray | None = None,
        expected: np.ndarray | None = None,
    ) -> int:
        """The cheapest candidate whose (expected) score is within the margin of the best score."""
        best = int(order[0]) if order is not None else int(np.argmax(score))
        if _MODE == "log":
            fin = np.isfinite(cost) & (cost > 0)
            if fin.any():
                rel = np.where(fin, np.log2(np.where(fin, cost, 1.0) / cost[fin].min()), 0.0)
                return int(np.argmax(score - self.config.w_experience * self.config.cost_margin * rel))
            return best
        ref = score if expected is None or _MODE == "draw" else expected
        within = ref >= score[best] - self.config.w_experience * self.config.cost_margin
        if not within.any() or not np.isfinite(cost[within]).any():
            return best
        cand = np.flatnonzero(within)
        cheapest = cand[np.lexsort((-score[cand], cost[cand]))[0]]
        return int(cheapest) if cost[cheapest] < cost[best] else best

    def _penalty(
        self, ids: list[str], idx: np.ndarray, now: float | None, cache_key: int | None
    ) -> np.ndarray:
        """Recent error rate and slowness, shrunk toward "fine" by ``outcome_prior`` pseudo-calls."""
        cfg = self.config
        stats = self.experience.outcomes(ids, now=now, cache_key=cache_key)
        if stats is None:
            return np.zeros(idx.size)
        calls, errors, lat_sum = (a[idx] for a in stats)
        penalty = cfg.error_penalty * errors / (calls + cfg.outcome_prior)
        seen = calls > 1e-9
        if cfg.latency_penalty and seen.any():
            lat = np.divide(lat_sum, calls, out=np.zeros(idx.size), where=seen)
            median = float(np.median(lat[seen]))
            if median > 0:
                slow = np.log2(np.maximum(lat, median) / median) * calls / (calls + cfg.outcome_prior)
                penalty = penalty + cfg.latency_penalty * slow
        return np.asarray(penalty, dtype=float)

    def _reason(
        self,
        task: str,
        ranked: list[ScoredCandidate],
        order: np.ndarray,
        score: np.ndarray,
        cost: np.ndarray,
        has_exp: bool,
        explored: bool,
        n_filtered: int,
    ) -> str:
        top = ranked[0]
        tail = f"; {n_filtered} filtered" if n_filtered else ""
        if top.penalty > 0.005:
            tail += f"; penalty {top.penalty:.3f}"
        if not has_exp:
            return f"no experience for task '{task}': ranked by priority alone; {top.model_id} first{tail}"
        quality = f"quality {top.experience:.3f}" if top.experience is not None else "no ratings yet"
        evidence = f"{top.evidence:.0f} ratings at {top.level} level"
        text = f"task '{task}': {top.model_id} score {top.score:.3f} ({quality}, {evidence})"
        best = int(np.argmax(score))
        if order[0] != best and cost[order[0]] < cost[best]:
            beaten = ranked[1 + int(np.flatnonzero(order[1:] == best)[0])].model_id
            text += f"; cheaper than {beaten} within margin {self.config.cost_margin:g}"
        if explored:
            text += f"; exploring ({self.config.exploration})"
        return text + tail
