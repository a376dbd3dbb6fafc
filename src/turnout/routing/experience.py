"""Experience: in-memory, time-decayed rating aggregates with hierarchical backoff.

Every cell holds three decayed sums: count ``n``, ratings ``s`` and squares ``q``, for the levels
agent ``(tenant, agent, task)``, tenant ``(tenant, task)`` and global ``(task)``, per model.

Experience is per tenant: a tenant's ratings reach only its own agent and tenant cells. The global
level is what every tenant may see: platform priors (``add_prior``: imported evaluations, the
replay's warmup), plus, for tenants that opted in to sharing (``set_shared``), the pooled ratings of
all sharing tenants (the ``s`` cells, kept equal to the sum of the sharing tenants' tenant cells).
Another tenant's ratings never move a tenant that does not share: they once switched one tenant's
routing to a model ~17x the price.

Decay uses one reference time ``t_ref``: a rating at ``t`` is added with weight ``2 ** ((t - t_ref) / h)``
and a sum read at ``now`` is multiplied by ``2 ** (-(now - t_ref) / h)``, one scalar for every cell.
So an update is O(1), a replaced rating is removed exactly (its weight is a function of its own time)
and all sums are additive: replicas can ship increments (``ExperienceStore(track_delta=True)``,
``drain_delta()`` on the sender, ``merge(delta)`` on the receivers) and 10 million ratings are still
just three numbers a cell. A delta is a snapshot of increments: ship it (e.g. every second, or with
the feedback row) and ``merge`` it; merging is commutative, so replicas converge. The router never
queries the database: lookups for a candidate list are cached slot arrays (``cache_key``) and an
estimate is a few vectorised numpy operations. Not thread-safe: use it from one event loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from turnout.routing.sum_table import SumTable

Key = tuple[str, ...]
LEVEL_NAMES = ("prior", "prior", "global", "tenant", "agent")  # codes 0 (none) .. 4 (agent)
PRIOR, POOL, TENANT, AGENT = "g", "s", "t", "a"  # cell kinds: platform priors, sharing pool, tenant, agent
_REBASE = 512.0  # rebase t_ref when new weights would exceed 2**_REBASE
DAY = 86_400.0
# Errors and latencies fade with a 10-minute half-life: an error burst weighs on routing for minutes,
# not hours (the circuit breaker handles the acute phase).
OUTCOME_HALF_LIFE_S = 600.0
# The spread between levels is estimated from the tenant's own ratings (``_spread``): a multiple of the
# default (``Strengths.tenant``/``agent``), with the default counting as this many average
# (task, model) cells, and kept within [1/64, 4] of it. Chosen a priori (a weak hyperprior, wide
# bounds), not fitted to an evaluation table.
SPREAD_PRIOR_CELLS = 4.0
SPREAD_BOUNDS = (1.0 / 64.0, 4.0)


@dataclass(frozen=True, slots=True)
class Strengths:
    """Prior strengths, in pseudo-ratings, of each backoff step (coarser level -> finer level)."""

    priority: float = 2.0  # catalog priority/100 -> a model's cross-task effect
    model: float = 4.0  # cross-task prior (task baseline + model effect) -> (global, task)
    tenant: float = 32.0  # (global, task) -> (tenant, task)
    agent: float = 32.0  # (tenant, task) -> (agent, task)
    offset: float = 8.0  # shrinks a task's baseline toward an average task's
    variance: float = 2.0  # pseudo-ratings of the Bernoulli variance mean*(1-mean)


@dataclass(slots=True)
class Estimates:
    """Posteriors for a list of models: arrays aligned with it."""

    mean: np.ndarray  # posterior mean quality
    var: np.ndarray  # posterior variance of the mean
    evidence: np.ndarray  # decayed ratings at ``level`` (the finest level with data)
    level: np.ndarray  # codes into LEVEL_NAMES; 0 = no data at any level
    total: float  # decayed ratings of this task across the candidates (global level)
    # the part of each posterior's error, in standard deviations, that is one factor common to the
    # candidates (an imported table's prompts, hard or easy for all its models alike); the rest of
    # ``var`` is each model's own: a draw is mean + shared * z0 + sqrt(var - shared**2) * z
    shared: np.ndarray | None = None


@dataclass(frozen=True, slots=True)
class Estimate:
    """One model's posterior: ``mean`` is None when no level (not even the model's) has data."""

    mean: float | None
    prior_mean: float
    std: float
    evidence: float
    level: str


@dataclass(frozen=True, slots=True)
class _Fit:
    effect: np.ndarray  # each model's quality relative to a task's baseline (from the other tasks)
    evidence: np.ndarray  # decayed ratings behind ``effect``
    baseline: float  # an average task's baseline


class ExperienceStore:
    """Decayed rating aggregates and outcome (error, latency) counters, all in memory."""

    def __init__(
        self,
        half_life_s: float = 30 * DAY,
        outcome_half_life_s: float = OUTCOME_HALF_LIFE_S,
        strengths: Strengths | None = None,
        track_delta: bool = False,
    ) -> None:
        self.half_life_s = half_life_s
        self.outcome_half_life_s = outcome_half_life_s
        self.strengths = strengths or Strengths()
        self._tables: dict[Key, SumTable] = {}
        self._outcomes = SumTable()  # per model: decayed calls, errors, latency sum (ms)
        self._t_ref: float | None = None
        self._o_ref: float | None = None
        self._cache: dict[tuple[Key, Hashable], list[Any]] = {}  # -> [models seen, slot array]
        self._positions: dict[Hashable, dict[str, int]] = {}  # cache key -> model id -> position
        self._tasks: dict[str, None] = {}  # tasks with any cell, for the cross-task fit
        # tenant -> its ratings per agent, and all of them under None; undecayed: how the tenant's
        # ratings are shared among its agents, for ``_spread`` (kept from the cells' keys, so merged
        # deltas count as they did where they were recorded)
        self._shares: dict[str, dict[str | None, float]] = {}
        self._shared: frozenset[str] = frozenset()  # tenants whose ratings pool in the ``s`` cells
        self._fits: dict[tuple[Hashable, ...], tuple[float, int, _Fit]] = {}  # by (list, task, scope)
        self._versions: dict[str, int] = {}  # task -> bumped by every write to one of its cells
        self._memo: dict[tuple[Any, ...], tuple[int, _Fit, Estimates]] = {}  # estimates per candidate list
        self._spreads: dict[tuple[Hashable, ...], tuple[float, int, float]] = {}  # by (list, tenant)
        # task -> each model's loading on the common factor of an imported table's scores (column 0)
        self._loadings: dict[str, SumTable] = {}
        self.refit_s = 10.0  # a cached cross-task fit is reused for this long (seconds of ``now``)
        self._delta = ExperienceStore(half_life_s, outcome_half_life_s, strengths) if track_delta else None

    # -- writes ---------------------------------------------------------------------------------
    def keys(self, tenant_id: str, agent_id: str | None, task: str) -> list[Key]:
        """The cells one rating updates, finest first (no agent cell without an agent; the sharing
        pool only while the tenant shares)."""
        keys: list[Key] = [(AGENT, tenant_id, agent_id, task)] if agent_id else []
        keys.append((TENANT, tenant_id, task))
        return [*keys, (POOL, task)] if tenant_id in self._shared else keys

    def add_prior(
        self, task: str, model_id: str, count: float, total: float, total_sq: float, at: float
    ) -> None:
        """Platform-provided prior ratings (an imported evaluation, the replay's warmup): the only
        ratings every tenant's estimates see. ``count`` ratings summing to ``total``, dated ``at``."""
        self._add([(PRIOR, task)], model_id, count, total, total_sq, at)
        if self._delta is not None:
            self._delta.add_prior(task, model_id, count, total, total_sq, at)

    def set_loading(self, task: str, model_id: str, loading: float | None) -> None:
        """A model's loading on the one factor its prior ratings on ``task`` share with the other
        models' (``priors.table_loadings``): an imported table grades every model on the same
        prompts, so a prompt hard for one is hard for all, and the error of each model's prior
        estimate is partly the same error. Comparisons then cancel that part: routing explores only
        the gaps the table left uncertain. The mean and each model's own variance are unchanged.
        None forgets it (no common factor). Kept apart from the ratings (not in snapshots or
        deltas): every replica's prior loader sets it from the imports."""
        if loading is not None and not -1.0 <= loading <= 1.0:
            raise ValueError(f"loading {loading!r} is outside [-1, 1]")
        table = self._loadings.get(task)
        if table is None:
            if loading is None:
                return
            table = self._loadings[task] = SumTable()
        row = table.slot(model_id)  # first: it may reallocate ``data``
        table.data[row, 0] = loading or 0.0
        self._versions[task] = self._versions.get(task, 0) + 1
        self._memo.clear()

    def set_shared(self, tenants: Iterable[str]) -> None:
        """The tenants that opted in to sharing: each sees the pooled ratings of all of them. Their
        tenant cells move into (or out of) the pool exactly; called when the setting changes."""
        shared = frozenset(tenants)
        if shared == self._shared:
            return
        for key, table in list(self._tables.items()):
            if key[0] == TENANT and (key[1] in shared) != (key[1] in self._shared):
                pool = self._table((POOL, key[2]))
                sign = 1.0 if key[1] in shared else -1.0
                for model_id, row in table.index.items():
                    pool.add(model_id, sign * table.data[row])
                self._versions[key[2]] = self._versions.get(key[2], 0) + 1
        self._shared = shared
        self._fits.clear()
        self._spreads.clear()
        self._memo.clear()

    def _table(self, key: Key) -> SumTable:
        return self._tables.get(key) or self._tables.setdefault(key, SumTable())

    def record(
        self, tenant_id: str, agent_id: str | None, task: str, model_id: str, rating: float,
        at: float | None = None, previous_rating: float | None = None, previous_at: float | None = None,
    ) -> None:  # fmt: skip
        """Add a rating (epoch seconds ``at``); with ``previous_*`` it replaces that earlier rating."""
        at = time.time() if at is None else at
        keys = self.keys(tenant_id, agent_id, task)
        if previous_rating is not None:
            self._add(keys, model_id, -1.0, -previous_rating, -(previous_rating**2), previous_at or at)
        self._add(keys, model_id, 1.0, rating, rating * rating, at)
        if self._delta is not None:
            self._delta.record(tenant_id, agent_id, task, model_id, rating, at, previous_rating, previous_at)

    def add_sums(
        self, tenant_id: str, agent_id: str | None, task: str, model_id: str, count: float, total: float,
        total_sq: float, at: float,
    ) -> None:  # fmt: skip
        """Bulk load: ``count`` ratings summing to ``total`` (their squares to ``total_sq``), dated ``at``."""
        self._add(self.keys(tenant_id, agent_id, task), model_id, count, total, total_sq, at)
        if self._delta is not None:
            self._delta.add_sums(tenant_id, agent_id, task, model_id, count, total, total_sq, at)

    def _add(
        self, keys: list[Key], model_id: str, count: float, total: float, total_sq: float, at: float
    ) -> None:
        if self._t_ref is None:
            self._t_ref = at
        if (at - self._t_ref) / self.half_life_s > _REBASE:  # keep weights finite: move t_ref forward
            for table in self._tables.values():
                table.data *= 2.0 ** ((self._t_ref - at) / self.half_life_s)
            self._t_ref = at
        w = float(2.0 ** ((at - self._t_ref) / self.half_life_s))
        for key in keys:
            if key[0] in (TENANT, AGENT):
                shares = self._shares.setdefault(key[1], {})
                who = key[2] if key[0] == AGENT else None
                shares[who] = shares.get(who, 0.0) + count
            self._versions[key[-1]] = self._versions.get(key[-1], 0) + 1
            self._tasks[key[-1]] = None
            self._table(key).accumulate(model_id, w * count, w * total, w * total_sq)

    def decay(self, now: float | None = None) -> float:
        """The factor turning stored sums into sums decayed to ``now``."""
        if self._t_ref is None:
            return 1.0
        now = time.time() if now is None else now
        return float(2.0 ** (-(now - self._t_ref) / self.half_life_s))

    def record_outcome(self, model_id: str, ok: bool, latency_ms: float, at: float | None = None) -> None:
        """A call's outcome, for the error-rate and latency penalties (decayed, per model)."""
        at = time.time() if at is None else at
        if self._o_ref is None or (at - self._o_ref) / self.outcome_half_life_s > _REBASE:
            if self._o_ref is not None:
                self._outcomes.data *= 2.0 ** ((self._o_ref - at) / self.outcome_half_life_s)
            self._o_ref = at
        w = float(2.0 ** ((at - self._o_ref) / self.outcome_half_life_s))
        self._outcomes.accumulate(model_id, w, 0.0 if ok else w, w * latency_ms)
        if self._delta is not None:
            self._delta.record_outcome(model_id, ok, latency_ms, at)

    def reset(
        self,
        model_id: str | None = None,
        task: str | None = None,
        agent_id: str | None = None,
        tenant_id: str | None = None,
    ) -> None:
        """Forget ratings: an agent's (of ``tenant_id``, or of every tenant; taken out of the coarser
        levels too), a task's, a model's, or all.

        Resets are local: apply them on every replica (deltas carry ratings, not resets)."""
        for key, table in list(self._tables.items()):
            if task not in (None, key[-1]):
                continue
            if agent_id is not None and (
                key[0] != AGENT or key[2] != agent_id or tenant_id not in (None, key[1])
            ):
                continue
            chosen = [(m, r) for m, r in table.index.items() if model_id is None or m == model_id]
            for parent in self.keys(key[1], None, key[3]) if agent_id is not None else []:
                ptable = self._tables[parent]
                for m, row in chosen:
                    ptable.add(m, -table.data[row])
            table.data[[r for _, r in chosen]] = 0.0
        if model_id is None and task is None:  # a whole agent (or everything) forgotten: its share too
            for tenant, shares in self._shares.items():
                if agent_id is None:
                    shares.clear()
                elif tenant_id in (None, tenant) and agent_id in shares:
                    shares[None] = shares.get(None, 0.0) - shares.pop(agent_id)
        self._fits.clear()
        self._spreads.clear()
        self._memo.clear()
        if agent_id is None and task is None:
            rows = [r for m, r in self._outcomes.index.items() if model_id is None or m == model_id]
            self._outcomes.data[rows] = 0.0

    # -- reads ----------------------------------------------------------------------------------
    def _gather(self, key: Key, model_ids: Sequence[str], cache_key: Hashable | None) -> np.ndarray | None:
        if key[0] == "l":  # a task's loadings
            table = self._loadings.get(key[1])
        else:
            table = self._outcomes if key == ("o",) else self._tables.get(key)
        if table is None:
            return None
        if cache_key is None:
            return table.data[table.slots(model_ids)]
        hit = self._cache.get((key, cache_key))
        if hit is None:
            if len(self._cache) > 16_384:
                self._cache.clear()
                self._positions.clear()
            hit = self._cache[(key, cache_key)] = [len(table.order), table.slots(model_ids)]
        elif hit[0] != len(table.order):  # models added since: patch their slots in, O(new models)
            positions = self._positions.get(cache_key)
            if positions is None:
                positions = self._positions[cache_key] = {m: i for i, m in enumerate(model_ids)}
            for model_id in table.order[hit[0] :]:
                i = positions.get(model_id)
                if i is not None:
                    hit[1][i] = table.index[model_id]
            hit[0] = len(table.order)
        return table.data[hit[1]]

    def estimate_many(
        self, tenant_id: str, agent_id: str | None, task: str, model_ids: Sequence[str], priors: np.ndarray,
        *, now: float | None = None, cache_key: Hashable | None = None, strengths: Strengths | None = None,
    ) -> Estimates:  # fmt: skip
        """Posteriors of ``model_ids`` for a task, backing off agent -> tenant -> global -> cross-task.

        The prior of (task, model) is ``baseline(task) + effect(model)``: the effect from an additive
        fit over the other tasks (``_cross_task``), the baseline from this task's ratings net of the
        models' effects, shrunk toward an average task's (``strengths.offset``). So an unseen model
        starts at "its usual margin over its peers, on this task's scale", worth at most
        ``strengths.model`` ratings (models vary from task to task). The disjoint parts of this task's
        data then update it in turn (other tenants, the tenant's other agents, this agent), each rating
        counted once; before each finer part the prior's variance grows by that level's spread
        (``strengths.tenant`` / ``strengths.agent`` pseudo-ratings), so a thin agent level backs off
        to its tenant's and the global estimate. ``cache_key`` names a fixed ``model_ids`` list whose
        lookups, cross-task fit and estimates may be cached (estimates until the task's next rating or
        the fit's renewal, so the decay they apply is at most ``refit_s`` old).
        """
        k = strengths or self.strengths
        now = time.time() if now is None else now
        f = self.decay(now)
        spread = self._spread(tenant_id, model_ids, f, k, now, cache_key)
        if spread != 1.0:
            k = replace(k, tenant=k.tenant / spread, agent=k.agent / spread)
        fit = self._cross_task(
            tenant_id, model_ids, task, np.asarray(priors, dtype=float), f, k, now, cache_key
        )
        if cache_key is None:
            return self._estimate(tenant_id, agent_id, task, model_ids, fit, f, k, None)
        memo_key = (cache_key, tenant_id, agent_id, task, k)
        version = self._versions.get(task, 0)
        hit = self._memo.get(memo_key)
        if hit is not None and hit[0] == version and hit[1] is fit:  # no rating of the task since, same fit
            return hit[2]
        if len(self._memo) > 16_384:
            self._memo.clear()
        est = self._estimate(tenant_id, agent_id, task, model_ids, fit, f, k, cache_key)
        self._memo[memo_key] = (version, fit, est)
        return est

    def _estimate(
        self, tenant_id: str, agent_id: str | None, task: str, model_ids: Sequence[str], fit: _Fit, f: float,
        k: Strengths, cache_key: Hashable | None,
    ) -> Estimates:  # fmt: skip
        size = len(model_ids)
        zeros = np.zeros((size, 3))
        tenant = self._gather((TENANT, tenant_id, task), model_ids, cache_key)
        pool = self._gather((POOL, task), model_ids, cache_key) if tenant_id in self._shared else tenant
        prior = self._gather((PRIOR, task), model_ids, cache_key)
        visible = _plus(prior, pool)
        agent = self._gather((AGENT, tenant_id, agent_id, task), model_ids, cache_key) if agent_id else None
        incl = [zeros if c is None else c * f for c in (visible, tenant, agent)]  # global, tenant, agent
        n_g = np.maximum(incl[0][:, 0], 0.0)
        total = float(n_g.sum())
        base = fit.baseline
        if total > 1e-9:  # this task's baseline: its ratings net of the models' effects
            base = (float((incl[0][:, 1] - n_g * fit.effect).sum()) + k.offset * base) / (total + k.offset)
        mean = np.clip(base + fit.effect, 0.0, 1.0)
        nu = k.priority + fit.evidence
        # the imported table's share of the mean (its ratings over the precision they join), carried
        # down the levels: what the common factor of its errors weighs in the end
        loadings = table_n = None
        if prior is not None and (loadings := self._gather(("l", task), model_ids, cache_key)) is not None:
            table_n = np.maximum(prior[:, 0] * f, 0.0)
        carried = np.zeros(size)
        parts = [incl[0] - incl[1], incl[1] - incl[2], incl[2]]  # priors and pool, other agents, this agent
        for step, (part, strength) in enumerate(zip(parts, (k.model, k.tenant, k.agent), strict=True)):
            part = np.where(part[:, :1] > 1e-9, part, 0.0)  # float residue of removed ratings
            n = part[:, 0]
            kappa = 1.0 / (1.0 / nu + 1.0 / strength)  # the level's own spread adds to the prior's
            mean = (kappa * mean + part[:, 1]) / (kappa + n)
            if table_n is not None:  # the table's error: sqrt(n) sigma over the precision it joins
                carried = np.sqrt(table_n) / (kappa + n) if step == 0 else carried * kappa / (kappa + n)
            nu = kappa + n
        mean = np.clip(mean, 0.0, 1.0)
        level = np.where(fit.evidence > 1e-9, 1, 0).astype(np.int8)
        cell = zeros  # the finest cell with data
        for code, c in enumerate(incl, start=2):
            has = c[:, 0] > 1e-9
            level[has] = code
            cell = np.where(has[:, None], c, cell)
        n = np.maximum(cell[:, 0], 0.0)
        ssd = np.maximum(cell[:, 2] - np.divide(cell[:, 1] ** 2, n, out=np.zeros(size), where=n > 0), 0.0)
        sigma2 = (k.variance * np.maximum(mean * (1.0 - mean), 0.01) + ssd) / (k.variance + n)
        evidence = np.where(level == 1, fit.evidence, n)
        var = sigma2 / nu
        shared = None
        if loadings is not None:
            shared = np.minimum(np.abs(loadings[:, 0]) * carried * np.sqrt(sigma2), np.sqrt(var))
            shared *= np.sign(loadings[:, 0])
        return Estimates(mean, var, evidence, level, total, shared)

    def _spread(
        self, tenant_id: str, model_ids: Sequence[str], f: float, k: Strengths, now: float,
        cache_key: Hashable | None,
    ) -> float:  # fmt: skip
        """How far this tenant's ratings stray from the global estimates, as a multiple of the default
        between-level variance (``strengths.tenant`` pseudo-ratings): an empirical-Bayes estimate, so
        the posterior's spread, and with it exploration, is the one the data shows.

        Per (task, model) cell rated both by the tenant and globally (without the tenant), the squared
        gap between the two means over the default variance of that gap. The spread widens both steps
        below the global level, tenant and agent, so that variance is both steps': the tenant's, plus
        the agent step's times the tenant's concentration on its agents (the sum of their squared
        shares of its ratings: 1 for a tenant with one agent, whose cells are its agent's; 1/m for m
        agents alike; 0 without agents). Measured against the first step alone, the spread was counted
        twice for a tenant with one agent, doubling its prior's variance, so it explored traffic
        exactly like the priors as if it were not. The spread is the maximum-likelihood
        fit of gap ~ N(0, spread + noise), noise being what sampling alone explains, with a weak prior
        at 1 (``SPREAD_PRIOR_CELLS``): its precision weights let the well-measured cells decide, not
        the models a bandit tried a few times and dropped after bad luck (biased low). A
        tenant whose ratings agree with an imported evaluation soon stops exploring away from it; one
        whose traffic differs keeps its own estimates apart. Cached like the cross-task fit."""
        fit_key = (cache_key, "spread", tenant_id)
        if cache_key is not None:
            hit = self._spreads.get(fit_key)
            if hit is not None and now - hit[0] < self.refit_s and hit[1] == len(self._tasks):
                return hit[2]
        shares = self._shares.get(tenant_id, {})
        total = shares.get(None, 0.0)
        agents = [max(n, 0.0) for a, n in shares.items() if a is not None]
        concentration = min(sum((n / total) ** 2 for n in agents), 1.0) if total > 0 else 1.0
        steps = 1.0 / k.tenant + concentration / k.agent  # the gap's default variance, per rating variance
        gaps: list[np.ndarray] = []  # squared gaps, over the default variance
        noises: list[np.ndarray] = []  # what sampling noise alone explains of them, in the same unit
        for task in self._tasks:
            tenant = self._gather((TENANT, tenant_id, task), model_ids, cache_key)
            if tenant is None:
                continue
            pool = self._gather((POOL, task), model_ids, cache_key) if tenant_id in self._shared else tenant
            visible = _plus(self._gather((PRIOR, task), model_ids, cache_key), pool)
            if visible is None:
                continue
            own, other = tenant * f, (visible - tenant) * f
            both = (own[:, 0] > 0.5) & (other[:, 0] > 0.5)
            if not both.any():
                continue
            n_t, n_g = own[both, 0], other[both, 0]
            m_t, m_g = own[both, 1] / n_t, other[both, 1] / n_g
            var = np.maximum(other[both, 2] / n_g - m_g * m_g, 0.01)
            tau0 = var * steps
            gaps.append((m_t - m_g) ** 2 / tau0)
            noises.append((var / n_t + var / n_g) / tau0)
        spread = 1.0
        if gaps:  # maximum likelihood of gap ~ N(0, spread + noise), by its fixed point, from the prior
            gap, noise = np.concatenate(gaps), np.concatenate(noises)
            for _ in range(8):
                weight = 1.0 / (spread + noise) ** 2
                prior = SPREAD_PRIOR_CELLS * float(weight.mean())  # the prior: as many average cells
                spread = (prior + float((weight * (gap - noise)).sum())) / (prior + float(weight.sum()))
                spread = min(max(spread, SPREAD_BOUNDS[0]), SPREAD_BOUNDS[1])
        if cache_key is not None:
            if len(self._spreads) > 4096:
                self._spreads.clear()
            self._spreads[fit_key] = (now, len(self._tasks), spread)
        return spread

    def _cross_task(
        self, tenant_id: str, model_ids: Sequence[str], task: str, priors: np.ndarray, f: float, k: Strengths,
        now: float, cache_key: Hashable | None,
    ) -> _Fit:  # fmt: skip
        """Additive fit ``rating ~ baseline(t) + effect(m)`` over the other tasks' ratings that the
        tenant may see (platform priors, plus its own or the sharing pool's).

        Effects are shrunk toward the priors' deviations (``strengths.priority`` pseudo-ratings), so
        with equal priorities an unrated model counts as average. A few alternating least-squares
        sweeps; cached per (candidate list, task, scope) for ``refit_s`` seconds.
        """
        scope = (POOL,) if tenant_id in self._shared else (TENANT, tenant_id)
        fit_key = (cache_key, task, scope)
        if cache_key is not None:
            hit = self._fits.get(fit_key)
            if hit is not None and now - hit[0] < self.refit_s and hit[1] == len(self._tasks):
                return hit[2]
        size = len(model_ids)
        p_bar = float(priors.mean()) if priors.size else 0.5
        effect = priors - p_bar
        gathered = (
            _plus(
                self._gather((PRIOR, t), model_ids, cache_key),
                self._gather((*scope, t), model_ids, cache_key),
            )
            for t in self._tasks
            if t != task
        )
        cells = [c for c in gathered if c is not None]
        fit = _Fit(effect, np.zeros(size), p_bar)
        if cells:
            x = np.stack(cells) * f
            n, s = np.maximum(x[:, :, 0], 0.0), x[:, :, 1]
            n_m, n_t = n.sum(0), n.sum(1)
            rated = n_t > 1e-9
            base = np.zeros(len(cells))
            for _ in range(4):
                base = np.divide((s - n * effect).sum(1), n_t, out=np.zeros(len(cells)), where=rated)
                effect = (k.priority * (priors - p_bar) + (s - n * base[:, None]).sum(0)) / (k.priority + n_m)
            fit = _Fit(effect, n_m, float(base[rated].mean()) if rated.any() else p_bar)
        if cache_key is not None:
            if len(self._fits) > 4096:
                self._fits.clear()
            self._fits[fit_key] = (now, len(self._tasks), fit)
        return fit

    def estimate(
        self, tenant_id: str, agent_id: str | None, task: str, model_id: str, *, prior: float = 0.5,
        now: float | None = None,
    ) -> Estimate:  # fmt: skip
        """One model's posterior (see ``estimate_many``)."""
        est = self.estimate_many(tenant_id, agent_id, task, [model_id], np.array([prior]), now=now)
        code = int(est.level[0])
        mean = float(est.mean[0])
        std = math.sqrt(float(est.var[0]))
        return Estimate(mean if code else None, mean, std, float(est.evidence[0]), LEVEL_NAMES[code])

    def outcomes(
        self, model_ids: Sequence[str], *, now: float | None = None, cache_key: Hashable | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Decayed (calls, errors, latency sum ms) per model, or None before any outcome."""
        if self._o_ref is None:
            return None
        now = time.time() if now is None else now
        f = 2.0 ** (-(now - self._o_ref) / self.outcome_half_life_s)
        data = self._gather(("o",), model_ids, cache_key)
        assert data is not None
        return data[:, 0] * f, data[:, 1] * f, data[:, 2] * f

    # -- persistence and replication -------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """JSON-able state: reference times and every non-empty cell's sums."""
        cells = [
            [list(key), {m: table.data[r].tolist() for m, r in table.index.items() if table.data[r].any()}]
            for key, table in self._tables.items()
            if key[0] != POOL  # derived from the tenant cells and the receiver's own sharing setting
        ]
        outcomes = {m: self._outcomes.data[row].tolist() for m, row in self._outcomes.index.items()}
        return {
            "version": 1, "half_life_s": self.half_life_s, "outcome_half_life_s": self.outcome_half_life_s,
            "t_ref": self._t_ref, "o_ref": self._o_ref, "cells": cells, "outcomes": outcomes,
        }  # fmt: skip

    def load(self, snapshot: dict[str, Any]) -> None:
        """Replace the state with a snapshot's."""
        self._tables.clear()
        self._outcomes = SumTable()
        self._cache.clear()
        self._positions.clear()
        self._tasks.clear()
        self._shares.clear()
        self._fits.clear()
        self._spreads.clear()
        self._memo.clear()
        self._t_ref = self._o_ref = None
        self.merge(snapshot)

    def merge(self, snapshot: dict[str, Any]) -> None:
        """Add a snapshot's (or a delta's) sums to ours, rescaled to our reference times."""
        if snapshot.get("half_life_s") != self.half_life_s:
            raise ValueError("snapshot has a different half-life")
        if snapshot.get("t_ref") is not None:
            for key, rows in snapshot["cells"]:
                keys = self._merged_keys(tuple(key))
                for model_id, (count, total, total_sq) in rows.items():  # stored at weight 1 = their t_ref
                    self._add(keys, model_id, count, total, total_sq, snapshot["t_ref"])
        if snapshot.get("o_ref") is not None:
            if self._o_ref is None:
                self._o_ref = snapshot["o_ref"]
            scale = 2.0 ** ((snapshot["o_ref"] - self._o_ref) / self.outcome_half_life_s)
            for model_id, sums in snapshot["outcomes"].items():
                self._outcomes.add(model_id, np.asarray(sums) * scale)

    def _merged_keys(self, key: Key) -> list[Key]:
        """Where a shipped cell's sums go here: pool cells are derived, never shipped."""
        if key[0] == POOL:
            return []
        if key[0] == TENANT and key[1] in self._shared:
            return [key, (POOL, key[2])]
        return [key]

    def drain_delta(self) -> dict[str, Any] | None:
        """The increments since the last drain (for ``merge`` on other replicas); None without tracking."""
        if self._delta is None:
            return None
        delta = self._delta.snapshot()
        self._delta = ExperienceStore(self.half_life_s, self.outcome_half_life_s, self.strengths)
        return delta


def _plus(first: np.ndarray | None, second: np.ndarray | None) -> np.ndarray | None:
    """The sum of two gathered cells, either of which may be missing."""
    if first is None:
        return second
    return first if second is None else first + second
