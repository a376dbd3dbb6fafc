"""ExperienceStore: Bayesian estimates, backoff, exact replacement, decay, persistence, resets."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest

from turnout.routing.experience import DAY, ExperienceStore, Strengths

T0 = 1_700_000_000.0


def ratings_averaging_094() -> list[float]:
    return [1.0] * 44 + [0.18, 0.0, 0.0]  # 47 ratings, mean 0.94


def test_one_perfect_rating_does_not_beat_47_averaging_094() -> None:
    store = ExperienceStore()
    store.record("t", "a", "code", "lucky", 1.0, T0)
    for i, r in enumerate(ratings_averaging_094()):
        store.record("t", "a", "code", "proven", r, T0 + i)
    assert np.mean(ratings_averaging_094()) == pytest.approx(0.94)
    lucky = store.estimate("t", "a", "code", "lucky", now=T0 + 100)
    proven = store.estimate("t", "a", "code", "proven", now=T0 + 100)
    assert lucky.mean is not None and proven.mean is not None
    assert lucky.mean < proven.mean
    assert proven.mean == pytest.approx(0.94, abs=0.03)
    assert lucky.evidence == pytest.approx(1.0, rel=1e-3) and proven.evidence == pytest.approx(47.0, rel=1e-3)
    assert lucky.std > proven.std


def test_backoff_agent_to_tenant_to_global_to_prior() -> None:
    store = ExperienceStore()
    store.add_prior("code", "m", 30, 27.0, 24.3, T0)  # platform priors: every tenant's global level
    for i in range(30):
        store.record("acme", "writer", "code", "m", 0.9, T0 + i)
    own = store.estimate("acme", "writer", "code", "m", now=T0 + 60)
    sibling = store.estimate("acme", "reviewer", "code", "m", now=T0 + 60)
    stranger = store.estimate("other", "bot", "code", "m", now=T0 + 60)
    other_task = store.estimate("acme", "writer", "math", "m", now=T0 + 60)
    unknown = store.estimate("acme", "writer", "code", "never-rated", now=T0 + 60)
    assert (own.level, sibling.level, stranger.level) == ("agent", "tenant", "global")
    assert stranger.evidence == pytest.approx(30, rel=1e-3)  # the priors only: acme's ratings stay acme's
    assert other_task.level == "prior" and other_task.mean is not None  # the model's cross-task record
    assert unknown.mean is None and unknown.evidence == 0.0
    for est in (sibling, stranger):  # no data of their own: they inherit the coarser level's estimate
        assert est.mean is not None and est.mean > 0.75
        assert est.std > own.std
    assert unknown.prior_mean == pytest.approx(0.5)


def test_replacing_a_rating_keeps_aggregates_exact() -> None:
    replaced, direct = ExperienceStore(half_life_s=7 * DAY), ExperienceStore(half_life_s=7 * DAY)
    for store in (replaced, direct):
        store.record("t", "a", "code", "m", 0.7, T0)
        store.record("t", "a", "code", "n", 0.4, T0 + 5)
    replaced.record("t", "a", "code", "m", 0.2, T0 + 3 * DAY)
    replaced.record("t", "a", "code", "m", 1.0, T0 + 4 * DAY, previous_rating=0.2, previous_at=T0 + 3 * DAY)
    direct.record("t", "a", "code", "m", 1.0, T0 + 4 * DAY)
    a, b = replaced.snapshot(), direct.snapshot()
    assert a["t_ref"] == b["t_ref"]
    cells_a, cells_b = dict((tuple(k), v) for k, v in a["cells"]), dict((tuple(k), v) for k, v in b["cells"])
    assert cells_a.keys() == cells_b.keys()
    for key, rows in cells_a.items():
        assert rows.keys() == cells_b[key].keys()
        for model, sums in rows.items():
            assert sums == pytest.approx(cells_b[key][model], rel=1e-12, abs=1e-12)
    now = T0 + 5 * DAY
    assert replaced.estimate("t", "a", "code", "m", now=now) == direct.estimate(
        "t", "a", "code", "m", now=now
    )


def test_recency_decay_favours_recent_ratings() -> None:
    store = ExperienceStore(half_life_s=1 * DAY)
    for i in range(20):
        store.record("t", "a", "code", "was-good", 1.0, T0 + i)
        store.record("t", "a", "code", "got-good", 0.0, T0 + i)
    later = T0 + 30 * DAY
    for i in range(20):
        store.record("t", "a", "code", "was-good", 0.0, later + i)
        store.record("t", "a", "code", "got-good", 1.0, later + i)
    was = store.estimate("t", "a", "code", "was-good", now=later + 60)
    got = store.estimate("t", "a", "code", "got-good", now=later + 60)
    assert was.mean is not None and got.mean is not None
    assert got.mean > 0.8 > 0.2 > was.mean
    old = store.estimate("t", "a", "code", "got-good", now=later + 10 * DAY)
    assert old.evidence == pytest.approx(20 * 2**-10, rel=1e-3)  # evidence fades with the half-life


def test_snapshot_roundtrip_and_delta_merge() -> None:
    primary = ExperienceStore(track_delta=True)
    for i in range(10):
        primary.record("t", "a", "code", "m", i / 10, T0 + i)
    primary.record_outcome("m", False, 800.0, T0)
    replica = ExperienceStore()
    replica.merge(json.loads(json.dumps(primary.drain_delta())))
    restored = ExperienceStore()
    restored.load(json.loads(json.dumps(primary.snapshot())))
    now = T0 + 100
    want = primary.estimate("t", "a", "code", "m", now=now)
    assert restored.estimate("t", "a", "code", "m", now=now) == want
    got = replica.estimate("t", "a", "code", "m", now=now)
    assert got.mean == pytest.approx(want.mean) and got.evidence == pytest.approx(want.evidence)
    # later increments ship as a new delta and add up
    primary.record("t", "a", "code", "m", 1.0, T0 + 50, previous_rating=0.0, previous_at=T0)
    replica.merge(primary.drain_delta() or {})
    assert replica.estimate("t", "a", "code", "m", now=now).mean == pytest.approx(
        primary.estimate("t", "a", "code", "m", now=now).mean
    )
    assert replica.outcomes(["m"], now=T0) is not None
    with pytest.raises(ValueError, match="half-life"):
        ExperienceStore(half_life_s=1.0).merge(primary.snapshot())


def test_reset_agent_removes_its_ratings_everywhere() -> None:
    store = ExperienceStore()
    for i in range(10):
        store.record("t", "a1", "code", "m", 1.0, T0 + i)
        store.record("t", "a2", "code", "m", 0.0, T0 + i)
    store.reset(agent_id="a1")
    assert store.estimate("t", "a1", "code", "m", now=T0 + 20).level == "tenant"
    tenant = store.estimate("t", "a3", "code", "m", now=T0 + 20)
    assert tenant.mean is not None and tenant.mean < 0.2 and tenant.evidence == pytest.approx(10, rel=1e-3)
    store.reset(model_id="m")
    assert store.estimate("t", "a2", "code", "m", now=T0 + 20).mean is None


def test_outcomes_are_decayed_counts() -> None:
    store = ExperienceStore(outcome_half_life_s=60.0)
    assert store.outcomes(["m"]) is None
    store.record_outcome("m", True, 100.0, T0)
    store.record_outcome("m", False, 300.0, T0)
    stats = store.outcomes(["m", "unknown"], now=T0 + 60)
    assert stats is not None
    calls, errors, latency = stats
    assert calls.tolist() == pytest.approx([1.0, 0.0]) and errors.tolist() == pytest.approx([0.5, 0.0])
    assert latency[0] / calls[0] == pytest.approx(200.0)


def test_bulk_sums_equal_individual_records() -> None:
    bulk, one_by_one = ExperienceStore(), ExperienceStore()
    ratings = [0.2, 0.9, 1.0, 0.5]
    for r in ratings:
        one_by_one.record("t", "a", "code", "m", r, T0)
    bulk.add_sums("t", "a", "code", "m", len(ratings), sum(ratings), sum(r * r for r in ratings), T0)
    assert bulk.estimate("t", "a", "code", "m", now=T0) == one_by_one.estimate("t", "a", "code", "m", now=T0)


def test_every_model_keeps_its_own_sums_as_a_cell_grows() -> None:
    store = ExperienceStore()
    models = [f"m{i}" for i in range(40)]  # past the tables' initial capacity, several times over
    for i, model in enumerate(models):
        store.record("t", "a", "code", model, 1.0 if i % 2 else 0.0, T0)
        store.record_outcome(model, ok=i % 3 != 0, latency_ms=10.0 * (i + 1), at=T0)
    evidence = [store.estimate("t", "a", "code", m, now=T0).evidence for m in models]
    assert evidence == pytest.approx([1.0] * len(models), rel=1e-6)
    stats = store.outcomes(models, now=T0)
    assert stats is not None
    calls, errors, latency = stats
    assert calls.tolist() == pytest.approx([1.0] * len(models))
    assert errors.tolist() == pytest.approx([1.0 if i % 3 == 0 else 0.0 for i in range(len(models))])
    assert latency.tolist() == pytest.approx([10.0 * (i + 1) for i in range(len(models))])


def test_the_spread_between_levels_is_what_the_tenants_ratings_show() -> None:
    """A tenant whose ratings agree with the imported priors is soon trusted to be like them (its
    posterior narrows toward theirs, so exploration fades); one whose ratings differ keeps its own
    estimates apart, with a wider posterior than the default."""
    rng = random.Random(5)
    models = [f"m{i}" for i in range(6)]
    truth = {m: 0.3 + 0.1 * i for i, m in enumerate(models)}

    def store_after(shift: float) -> ExperienceStore:
        store = ExperienceStore()
        for task in ("a", "b", "c"):
            for m in models:
                store.add_prior(task, m, 400.0, 400.0 * truth[m], 400.0 * truth[m], T0)
                for i in range(60):  # the tenant's own ratings: like the priors, or shifted per model
                    mean = truth[m] + (shift if models.index(m) % 2 else -shift)
                    store.record("t", "a", task, m, float(rng.random() < mean), T0 + i)
        return store

    alike, apart, fresh = store_after(0.0), store_after(0.25), ExperienceStore()
    for m in models:
        fresh.add_prior("a", m, 400.0, 400.0 * truth[m], 400.0 * truth[m], T0)
    default = fresh.estimate("t", "a", "a", "m3", now=T0 + 100)  # no own ratings: the default spread
    assert alike._spread("t", models, 1.0, alike.strengths, T0 + 100, None) < 0.5
    assert apart._spread("t", models, 1.0, apart.strengths, T0 + 100, None) > 2.0
    near = alike.estimate("t", "a", "a", "m3", now=T0 + 100)
    assert near.std < 0.5 * default.std, (near.std, default.std)  # trusted to be like the priors
    far = apart.estimate("t", "a", "a", "m3", now=T0 + 100)
    assert far.mean is not None and abs(far.mean - 0.85) < 0.06, far  # its own ratings, not the priors' 0.6


def test_the_spread_a_tenant_shows_is_what_its_agents_estimates_are_given() -> None:
    """A tenant with one agent whose quality on every (task, model) strays by 0.1 from the imported
    priors: the prior its agent's estimates start from strays by about 0.1 too. The spread widens
    both steps below the global level (tenant, then agent); measured on the tenant's cells and
    applied to both, it was counted twice, so the agent's prior strayed by 0.14 and it explored
    traffic that was exactly like the priors twice as hard as it should."""
    models = [f"m{i}" for i in range(6)]
    store = ExperienceStore()
    stray, implied = 0.1, []
    for t, task in enumerate(("a", "b", "c")):
        for i, m in enumerate(models):
            truth = 0.3 + 0.08 * i
            store.add_prior(task, m, 10_000.0, 10_000.0 * truth, 10_000.0 * truth, T0)
            mean = truth + (stray if (i + t) % 2 else -stray)
            for j in range(1000):  # a tight cell: its mean is known, sampling noise is negligible
                store.record("t", "a", task, m, mean + (0.05 if j % 2 else -0.05), T0 + j)
            implied.append(truth * (1.0 - truth))  # the per-rating variance the spread scales
    k = store.strengths
    spread = store._spread("t", models, 1.0, k, T0 + 2000, None)
    variance = spread * float(np.mean(implied)) * (1.0 / k.tenant + 1.0 / k.agent)
    assert math.sqrt(variance) == pytest.approx(stray, rel=0.15), (spread, math.sqrt(variance))


def test_a_tenant_with_many_agents_is_measured_against_both_steps_by_its_concentration() -> None:
    """Twenty agents alike, sharing a tenant's ratings evenly: the tenant's mean averages away most
    of their own deviations, so its gap from the priors is mostly the tenant step's. Agents that
    agree with the priors narrow the spread; agents that stray widen it."""
    rng = random.Random(11)
    models = [f"m{i}" for i in range(6)]

    def spread(stray: float) -> float:
        store = ExperienceStore()
        for task in ("a", "b", "c"):
            for m in models:
                store.add_prior(task, m, 2000.0, 2000.0 * 0.5, 2000.0 * 0.5, T0)
            for agent in range(20):
                for i, m in enumerate(models):
                    mean = 0.5 + (stray if i % 2 else -stray)
                    for j in range(10):
                        store.record("t", f"agent{agent}", task, m, float(rng.random() < mean), T0 + j)
        return store._spread("t", models, 1.0, store.strengths, T0 + 100, None)

    assert spread(0.0) < 0.3 < 1.0 < spread(0.2)


def test_replicas_and_a_restored_snapshot_see_the_same_spread() -> None:
    """The spread depends on how a tenant's ratings fall among its agents: a replica that merged
    them, and a store restored from a snapshot, count them as the one that recorded them."""
    rng = random.Random(4)
    models = ["m0", "m1", "m2"]
    primary = ExperienceStore(track_delta=True)
    for m in models:
        primary.add_prior("a", m, 500.0, 250.0, 250.0, T0)
    for j in range(200):
        agent, m = ("solo", "helper")[j % 4 == 0], models[j % 3]
        primary.record("t", agent, "a", m, float(rng.random() < 0.3 + 0.2 * models.index(m)), T0 + j)
    replica, restored = ExperienceStore(), ExperienceStore()
    replica.merge(json.loads(json.dumps(primary.drain_delta())))
    restored.load(json.loads(json.dumps(primary.snapshot())))
    spreads = [s._spread("t", models, 1.0, s.strengths, T0 + 300, None) for s in (primary, replica, restored)]
    assert spreads == pytest.approx([spreads[0]] * 3) and spreads[0] != 1.0, spreads


def test_an_imported_tables_common_factor_is_drawn_once_for_all_its_models() -> None:
    """An imported table grades every model on the same prompts: the part of the models' prior
    errors that is the prompts' shared difficulty (their loadings) is one error for all of them,
    so comparisons cancel it. The means and each model's variance stay as they were; the tenant's
    own ratings (unpaired) take the shared part's weight down; forgetting a loading undoes it.
    (Strengths make the tenant known to be like the table, as its spread fit does once it has rated
    enough: else the between-level spread, not the table, bounds the precision.)"""
    store = ExperienceStore(strengths=Strengths(tenant=1e9, agent=1e9))
    for model in ("m", "n"):
        store.add_prior("qa", model, 300.0, 180.0, 180.0, T0)  # 300 ratings, mean 0.6 (0/1 scores)
    priors = np.array([0.5, 0.5])
    before = store.estimate_many("t", "a", "qa", ["m", "n"], priors, now=T0)
    assert before.shared is None
    store.set_loading("qa", "m", 0.9)
    store.set_loading("qa", "n", 0.8)
    after = store.estimate_many("t", "a", "qa", ["m", "n"], priors, now=T0)
    assert after.shared is not None
    np.testing.assert_allclose(after.mean, before.mean)
    np.testing.assert_allclose(after.var, before.var)
    sd = np.sqrt(after.var)
    np.testing.assert_allclose(after.shared, [0.9 * sd[0], 0.8 * sd[1]], rtol=0.02)
    gap = after.var.sum() - 2 * after.shared[0] * after.shared[1]  # Var(m - n): 0.28 of the unpaired
    assert gap == pytest.approx(0.28 * after.var.sum(), rel=0.05)
    assert store.estimate_many("t", "a", "other", ["m", "n"], priors, now=T0).shared is None  # per task
    for i in range(300):  # the tenant's own ratings are each model's own: the shared part halves
        store.record("t", "a", "qa", "m", float(i % 5 < 3), T0 + i)
    rated = store.estimate_many("t", "a", "qa", ["m", "n"], priors, now=T0 + 300)
    assert rated.shared is not None
    assert rated.shared[0] == pytest.approx(0.5 * 0.9 * math.sqrt(0.24 / 300), rel=0.05)
    store.set_loading("qa", "m", None)
    store.set_loading("qa", "n", None)
    cleared = store.estimate_many("u", "b", "qa", ["m", "n"], priors, now=T0)
    assert cleared.shared is None or not cleared.shared.any()
    with pytest.raises(ValueError, match="outside"):
        store.set_loading("qa", "m", 1.5)
