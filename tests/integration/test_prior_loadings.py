"""Imported evaluations' loadings reach the router through the prior loader, on SQLite and
PostgreSQL: several imports of one task's models weigh theirs by their ratings (one without a
common factor counts as none), and removing an import takes its share back."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from sqlalchemy import delete

from turnout.container import Container
from turnout.routing.experience import ExperienceStore
from turnout.routing.priors import PriorCell, PriorLoader, save_priors
from turnout.store.priors import RoutingPrior

MODELS = ["a", "b"]


def cells(count: float, loading: float | None) -> list[PriorCell]:
    return [PriorCell("qa", m, count, 0.6 * count, 0.6 * count, loading) for m in MODELS]


def shared_share(store: ExperienceStore) -> float:
    """The shared part of the first model's spread, over its spread (0 without loadings)."""
    est = store.estimate_many("acme", "bot", "qa", MODELS, np.array([0.5, 0.5]), now=time.time())
    return 0.0 if est.shared is None else float(est.shared[0] / np.sqrt(est.var[0]))


async def test_imports_loadings_are_weighed_by_their_ratings_and_taken_back(container: Container) -> None:
    sessions = container.sessions
    store = ExperienceStore()
    loader = PriorLoader(store)
    await save_priors(sessions, "team", cells(300, 0.9))
    await loader.refresh(sessions)
    alone = shared_share(store)
    assert alone > 0.1
    await save_priors(sessions, "vendor", cells(300, None))  # as many ratings, no common factor
    await loader.refresh(sessions)
    both = ExperienceStore()  # the two imports' sums, at half the first one's loading
    for m in MODELS:
        both.add_prior("qa", m, 600, 360, 360, time.time())
        both.set_loading("qa", m, 0.45)
    assert shared_share(store) == pytest.approx(shared_share(both), rel=1e-3)
    async with sessions.begin() as session:
        await session.execute(delete(RoutingPrior).where(RoutingPrior.source == "team"))
    await loader.refresh(sessions)
    assert shared_share(store) == 0.0


async def test_an_import_with_sums_that_are_not_finite_is_left_out_not_fatal(container: Container) -> None:
    """Rows an older import (before --weight was checked) or a hand edit left with infinite or NaN
    sums stopped the loader at its first refresh, so no later import was ever loaded and a restart
    failed. They are left out (and logged); the other imports load."""
    sessions = container.sessions
    await save_priors(sessions, "good", cells(300, 0.9))
    await save_priors(
        sessions, "broken", [PriorCell("qa", m, math.inf, math.inf, math.inf, None) for m in MODELS]
    )
    store = ExperienceStore()
    await PriorLoader(store).refresh(sessions)
    est = store.estimate("acme", "bot", "qa", "a", now=time.time())
    assert est.evidence == pytest.approx(300, rel=1e-3) and est.mean == pytest.approx(0.6, abs=0.01)
