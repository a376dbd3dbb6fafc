"""The router: filters, then expected quality minus the price of cost, exploration, penalties.

``score = w_priority * priority/100 + w_experience * (experience - tradeoff * doublings) - penalty``:
FR-06.5's weighted sum, where experience is the model's posterior mean quality for the task
(``ExperienceStore``), or a Thompson draw from that posterior (or its UCB bound) while exploring;
``doublings`` is log2 of the model's estimated request cost over the cheapest candidate's, and
``tradeoff`` is the quality the request's policy pays per doubling of cost (US-06.4): deep research
buys quality at almost any price, ops wants the cheapest acceptable model (``COST_TRADEOFFS`` in
``domain/policies``). It is the only cost rule: no request-size or running-average factor, so the
same prompt is routed the same way whatever came before it. The draw's spread is the real posterior
spread, untempered, so exploration fades as a task's ratings accumulate; where an imported table
graded the candidates on the same prompts, the part of their errors it shares is drawn once for all
(``Estimates.shared``), so exploring spends less on gaps it already measured (a tenant's own spread
from the table is each model's own, and still explored). ``penalty`` is the recent
error rate and slowness. Without any experience for the task's candidates (no level, not even other
tasks, has a rating), priority alone ranks them, cheaper first on ties (FR-06.6). With a
``PromptMemory`` and a request's ``prompt_vector``, the most similar rated prompts of the task shift
each model's mean before scoring (``prompt_memory``).
Everything is vectorised with numpy; pass a ``CandidateSet`` (built once per agent and catalog
snapshot; the same tuple each time works too) so its columns, the store's slot lookups and the
cross-task fit are reused: p99 under 1 ms for 1,000 candidates (bench/routing.py). Building the
``ScoredCandidate`` objects is the biggest fixed cost, so ``Decision.ranked`` keeps the best
``max_ranked`` (in order; enough for failover); ``max_ranked=None`` ranks all (~0.5 us a model).
"""

from __future__ import annotations

import itertools
import math
import random
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Literal

import numpy as np

from turnout.routing.experience import (
    DAY,
    LEVEL_NAMES,
    OUTCOME_HALF_LIFE_S,
    Estimates,
    ExperienceStore,
    Strengths,
)
from turnout.routing.prompt_memory import PromptMemory
from turnout.routing.types import Candidate, Decision, RouteRequest, ScoredCandidate

Exploration = Literal["thompson", "ucb", "off"]
_SETTERS = [getattr(ScoredCandidate, f.name).__set__ for f in fields(ScoredCandidate)]
_LEVELS = np.array(LEVEL_NAMES, dtype=object)


@dataclass(frozen=True, slots=True)
class RouterConfig:
    """Weights and knobs of the router; the defaults are the production defaults."""

    w_priority: float = 0.3
    w_experience: float = 0.7
    exploration: Exploration = "thompson"
    # quality a pricier model must add per doubling of the request's cost, when the request's
    # policy states none (US-06.4); the "normal" policy's (domain/policies.COST_TRADEOFFS)
    cost_tradeoff: float = 0.02
    error_penalty: float = 0.5  # score lost per unit of recent error rate
    latency_penalty: float = 0.05  # score lost per doubling of latency over the candidates' median
    latency_penalty_cap: float = 0.05  # at most this: a slow but better model still wins
    outcome_prior: float = 5.0  # pseudo-calls (fine, median latency) shrinking the penalties
    outcome_evidence: float = 10.0  # calls at most behind a sampled error rate (bursts are one event)
    strengths: Strengths = field(default_factory=Strengths)
    half_life_s: float = 30 * DAY  # for the store ``Router`` creates when given none
    outcome_half_life_s: float = OUTCOME_HALF_LIFE_S
    max_ranked: int | None = 32  # Decision.ranked keeps the best N, in order (None: all)

    def __post_init__(self) -> None:
        if self.max_ranked is not None and self.max_ranked < 1:
            raise ValueError("max_ranked must be at least 1 (or None for all)")


class CandidateSet(tuple[Candidate, ...]):
    """An immutable candidate list with its columns precomputed; reuse it across requests."""

    _uids = itertools.count()
    uid: int
    ids: list[str]
    id_array: np.ndarray
    priority: np.ndarray
    price_in: np.ndarray
    price_out: np.ndarray
    ctx: np.ndarray
    _caps: dict[str, np.ndarray]

    def __new__(cls, candidates: Iterable[Candidate]) -> CandidateSet:
        self = super().__new__(cls, candidates)
        self.uid = next(cls._uids)
        self.ids = [c.model_id for c in self]
        self.id_array = np.array(self.ids, dtype=object)
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


def _or_none(values: np.ndarray, present: np.ndarray) -> list[object]:
    out = values.astype(object)
    out[~present] = None
    return list(out.tolist())


def _doublings(cost: np.ndarray) -> np.ndarray:
    """log2(price / cheapest price) per candidate; unknown and free prices count as the cheapest."""
    known = np.isfinite(cost) & (cost > 0)
    if not known.any():
        return np.zeros(cost.size)
    ref = float(cost[known].min())
    return np.where(known, np.log2(np.where(known, cost, ref) / ref), 0.0)


def _scored(n: int, columns: list[Iterable[object]]) -> list[ScoredCandidate]:
    """Build ``n`` ScoredCandidates column by column (C-level loops; 3x faster than ``__init__``)."""
    items: list[ScoredCandidate] = list(map(object.__new__, itertools.repeat(ScoredCandidate, n)))
    for setter, column in zip(_SETTERS, columns, strict=True):
        deque(map(setter, items, column), maxlen=0)
    return items


def task_weights(request: RouteRequest) -> list[tuple[str, float]]:
    """The tasks whose experience a request is routed on, with weights summing to 1: its task
    alone, or with a ``task_mix`` the mix's other tasks at their probabilities and the task itself
    at the rest of the mass (left out when the mix holds all of it)."""
    task = request.task_type
    mix = [(t, p) for t, p in request.task_mix if p > 0.0 and t != task]
    if not mix:
        return [(task, 1.0)]
    own = 1.0 - sum(p for _, p in mix)
    weights = [(task, own), *mix] if own > 0.0 else mix
    total = sum(w for _, w in weights)
    return [(t, w / total) for t, w in weights]


class Router:
    """Ranks an agent's candidates for a request (see the module docstring)."""

    def __init__(
        self,
        experience: ExperienceStore | None = None,
        config: RouterConfig | None = None,
        memory: PromptMemory | None = None,
    ) -> None:
        self.config = config or RouterConfig()
        self.memory = memory  # rated prompts: the request's nearest adjust its task's estimates
        self.experience = experience or ExperienceStore(
            self.config.half_life_s, self.config.outcome_half_life_s, self.config.strengths
        )
        self._gen = np.random.default_rng()
        self._sets: dict[int, tuple[tuple[Candidate, ...], CandidateSet]] = {}  # tuples seen, by identity

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
        cs, cache_key = self._candidate_set(candidates)
        keep = np.ones(len(cs), dtype=bool)
        filtered: list[tuple[str, str]] = []

        def drop(fail: np.ndarray, why: Callable[[int], str] | str) -> None:
            fail &= keep
            if fail.any():
                if isinstance(why, str):
                    filtered.extend(zip(cs.id_array[fail].tolist(), itertools.repeat(why)))
                else:
                    filtered.extend((cs.ids[i], why(i)) for i in np.flatnonzero(fail).tolist())
                keep[fail] = False

        for cap in sorted(request.required_capabilities - {"long_context"}):
            drop(~cs.has(cap), f"missing capability '{cap}'")
        need = request.prompt_tokens + request.expected_output_tokens
        drop((cs.ctx >= 0) & (cs.ctx < need), lambda i: f"context window {cs.ctx[i]} < {need} tokens")
        cost = (request.prompt_tokens * cs.price_in + request.expected_output_tokens * cs.price_out) / 1e6
        max_cost = request.max_cost_usd
        if max_cost is not None:
            drop(cost > max_cost, lambda i: f"estimated cost ${cost[i]:.6f} > max ${max_cost:g}")
        weights = task_weights(request)
        est = self._estimates(request, weights, cs, now, cache_key)
        delta = None
        if self.memory is not None and request.prompt_vector is not None:
            delta = self.memory.adjustment(
                request.tenant_id, request.task_type, request.prompt_vector, cs.ids, cache_key
            )
            if delta is not None:  # a copy: estimates are memoised per candidate list
                est = replace(est, mean=np.clip(est.mean + delta, 0.0, 1.0))
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
        has_exp = bool((level > 0).any())
        exploring = has_exp and cfg.exploration != "off"
        exploring = exploring and (request.explore if explore is None else explore)
        sample_from = None
        if request.explore if explore is None else explore:
            sample_from = self._gen if rng is None else np.random.default_rng(rng.getrandbits(64))
        penalty = self._penalty(
            cs.ids, idx, now, cache_key, sample_from if cfg.exploration != "off" else None
        )
        sampled: np.ndarray | None = None
        thrift = np.zeros(idx.size)
        tradeoff = cfg.cost_tradeoff if request.cost_tradeoff is None else request.cost_tradeoff
        if not has_exp:  # FR-06.6: priority alone (ties: cheaper first)
            score = prio - penalty
            greedy = -1
        else:
            thrift = cfg.w_experience * tradeoff * _doublings(cost_k)
            base = cfg.w_priority * prio - penalty - thrift
            score = base + cfg.w_experience * mean
            greedy = int(np.argmax(score))
            if exploring:
                spread = np.sqrt(est.var[idx])  # the posterior's own: it narrows with every rating
                if cfg.exploration == "ucb":
                    sampled = mean + spread * math.sqrt(2.0 * math.log(est.total + 2.0))
                else:
                    gen = self._gen if rng is None else np.random.default_rng(rng.getrandbits(64))
                    if est.shared is None:
                        sampled = mean + spread * gen.standard_normal(idx.size)
                    else:  # the error the candidates share (an imported table's), then each one's own
                        draws = gen.standard_normal(idx.size + 1)
                        shared = est.shared[idx]
                        own = np.sqrt(np.maximum(est.var[idx] - shared * shared, 0.0))
                        sampled = mean + shared * draws[0] + own * draws[1:]
                score = base + cfg.w_experience * sampled
        if not has_exp:
            order = np.lexsort((np.where(np.isnan(cost_k), np.inf, cost_k), -score))[: cfg.max_ranked]
        elif cfg.max_ranked and cfg.max_ranked < idx.size:  # the best N only: partition, then sort them
            best_n = np.argpartition(-score, cfg.max_ranked - 1)[: cfg.max_ranked]
            order = best_n[np.argsort(-score[best_n], kind="stable")]
        else:
            order = np.argsort(-score, kind="stable")
        top = int(order[0])
        ids = cs.id_array[idx[order]].tolist()
        if has_exp:
            exp_used = sampled if sampled is not None else mean
            p_part = (cfg.w_priority * prio[order]).tolist()
            e_part: Iterable[object] = (cfg.w_experience * exp_used[order]).tolist()
            experience: Iterable[object] = _or_none(mean[order], level[order] > 0)
        else:
            p_part, e_part, experience = prio[order].tolist(), itertools.repeat(0.0), itertools.repeat(None)
        columns: list[Iterable[object]] = [
            ids, score[order].tolist(), p_part, e_part, experience, est.evidence[idx][order].tolist(),
            _LEVELS[level[order]].tolist(),
            sampled[order].tolist() if sampled is not None else itertools.repeat(None),
            _or_none(cost_k[order], ~np.isnan(cost_k[order])), penalty[order].tolist(),
        ]  # fmt: skip
        ranked = _scored(len(ids), columns)
        explored = exploring and top != greedy
        best = int(np.argmax(score + thrift))  # the winner without the cost preference
        cheaper_than = cs.ids[idx[best]] if has_exp and best != top and cost_k[top] < cost_k[best] else None
        reason = self._reason(task, ranked[0], has_exp, explored, len(filtered), cheaper_than, tradeoff)
        if has_exp and len(weights) > 1:  # the decision log names the tasks whose experience was weighed
            reason += "; experience of " + ", ".join(f"'{t}' x{w:.2f}" for t, w in weights)
        if has_exp and delta is not None:  # the decision log shows what similar prompts did to it
            reason += f"; similar rated prompts {float(delta[idx[top]]):+.3f}"
        return Decision(task, ranked, filtered, reason, explored)

    def _estimates(
        self,
        request: RouteRequest,
        weights: list[tuple[str, float]],
        cs: CandidateSet,
        now: float | None,
        cache_key: int | None,
    ) -> Estimates:
        """The candidates' posteriors for the request's task; with several ``weights``
        (``task_weights``), the mixture of the tasks' posteriors (mean sum w*mean, variance sum
        w^2*var, each task's quality being uncertain on its own), so a prompt that is 60% one task
        and 40% another is routed to what serves both, not to the 60% task's favourite."""
        parts = [
            (w, self.experience.estimate_many(
                request.tenant_id, request.agent_id, task, cs.ids, cs.priority,
                now=now, cache_key=cache_key, strengths=self.config.strengths,
            ))
            for task, w in weights
        ]  # fmt: skip
        if len(parts) == 1:
            return parts[0][1]
        mean, var, evidence = (np.zeros(len(cs)) for _ in range(3))
        for w, e in parts:
            mean += w * e.mean
            var += w * w * e.var
            evidence += w * e.evidence
        level = np.maximum.reduce([e.level for _, e in parts])
        # the likeliest task's shared error only: each task's table has a factor of its own, and
        # leaving the others' out keeps the candidates' correlation at or below the mixture's
        w_top, top = max(parts, key=lambda part: part[0])
        shared = None if top.shared is None else w_top * top.shared
        return Estimates(mean, var, evidence, level, sum(w * e.total for w, e in parts), shared)

    def _candidate_set(self, candidates: Sequence[Candidate]) -> tuple[CandidateSet, int | None]:
        """The candidates' CandidateSet and cache key: reused for a CandidateSet or a tuple seen before."""
        if isinstance(candidates, CandidateSet):
            return candidates, candidates.uid
        if not isinstance(candidates, tuple):
            return CandidateSet(candidates), None  # a list may change: no caching
        hit = self._sets.get(id(candidates))
        if hit is None or hit[0] is not candidates:
            if len(self._sets) >= 256:
                self._sets.clear()
            hit = self._sets[id(candidates)] = (candidates, CandidateSet(candidates))
        return hit[1], hit[1].uid

    def _penalty(
        self,
        ids: list[str],
        idx: np.ndarray,
        now: float | None,
        cache_key: int | None,
        gen: np.random.Generator | None = None,
    ) -> np.ndarray:
        """Recent error rate and slowness, shrunk toward "fine" by ``outcome_prior`` pseudo-calls.

        Outcomes decay (``outcome_half_life_s``), and while exploring the error rate is drawn from its
        Beta posterior rather than taken at its mean: a model that erred in a burst still gets an
        occasional request, so it is seen to recover instead of waiting out the decay unused. The
        slowness term is capped (``latency_penalty_cap``): a slow local model that answers better
        keeps its place."""
        cfg = self.config
        stats = self.experience.outcomes(ids, now=now, cache_key=cache_key)
        if stats is None:
            return np.zeros(idx.size)
        calls, errors, lat_sum = (a[idx] for a in stats)
        if gen is not None and (errors > 1e-3).any():
            # errors come in bursts, not one by one: past ``outcome_evidence`` calls, more of the same
            # burst does not make the rate more certain
            scale = np.minimum(1.0, cfg.outcome_evidence / np.maximum(calls, 1e-9))
            fine = np.maximum(calls - errors, 0.0) * scale + cfg.outcome_prior
            rate = np.where(errors > 1e-3, gen.beta(np.maximum(errors * scale, 1e-3), fine), 0.0)
        else:
            rate = errors / (calls + cfg.outcome_prior)
        penalty = cfg.error_penalty * rate
        seen = calls > 1e-9
        if cfg.latency_penalty and seen.any():
            lat = np.divide(lat_sum, calls, out=np.zeros(idx.size), where=seen)
            median = float(np.median(lat[seen]))
            if median > 0:
                slow = np.log2(np.maximum(lat, median) / median) * calls / (calls + cfg.outcome_prior)
                penalty = penalty + np.minimum(cfg.latency_penalty * slow, cfg.latency_penalty_cap)
        return np.asarray(penalty, dtype=float)

    def _reason(
        self,
        task: str,
        first: ScoredCandidate,
        has_exp: bool,
        explored: bool,
        n_filtered: int,
        cheaper_than: str | None,
        tradeoff: float,
    ) -> str:
        tail = f"; {n_filtered} filtered" if n_filtered else ""
        if first.penalty > 0.005:
            tail += f"; penalty {first.penalty:.3f}"
        if not has_exp:
            return f"no experience for task '{task}': ranked by priority alone; {first.model_id} first{tail}"
        quality = f"quality {first.experience:.3f}" if first.experience is not None else "no ratings yet"
        evidence = f"{first.evidence:.0f} ratings at {first.level} level"
        text = f"task '{task}': {first.model_id} score {first.score:.3f} ({quality}, {evidence})"
        if cheaper_than is not None:
            text += f"; cheaper than {cheaper_than} (trade-off {tradeoff:.3g} quality per doubling of cost)"
        if explored:
            text += f"; exploring ({self.config.exploration})"
        return text + tail
