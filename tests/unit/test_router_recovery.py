"""A model penalised for an error burst is tried again, recovers and regains its share; a slow local
model that answers better is not shut out by its slowness (with an hour-long, deterministic penalty a
free local model stayed out of routing for good after one burst of errors)."""

from __future__ import annotations

import random

from turnout.routing.experience import ExperienceStore
from turnout.routing.router import Router, RouterConfig
from turnout.routing.types import Candidate, RouteRequest

T0 = 1_700_000_000.0
REQUEST = RouteRequest("t", "a", "code", prompt_tokens=100)
LOCAL_MS, PAID_MS = 4000.0, 400.0  # a CPU-bound local model is ten times slower


def _candidates() -> tuple[Candidate, ...]:
    free = Candidate("local", "ollama", frozenset({"chat"}), 50, "free", 128_000, 0.0, 0.0)
    paid = [
        Candidate(m, "p", frozenset({"chat"}), 50, "low", 128_000, 1.0, 1.0) for m in ("paid-a", "paid-b")
    ]
    return (free, *paid)


def _history(store: ExperienceStore) -> None:
    """The local model answered better than the paid ones before."""
    for i in range(40):
        at = T0 - 3600 + i
        if i < 10:
            store.record("t", "a", "code", "local", 0.6, at)
        store.record("t", "a", "code", "paid-a", 0.3, at)
        store.record("t", "a", "code", "paid-b", 0.3, at)


def _share(router: Router, times: list[float], rng: random.Random) -> float:
    """Route one request at each time; whichever model is picked answers (the local one recovered)."""
    picked = 0
    for now in times:
        top = router.rank(REQUEST, _candidates(), rng=rng, now=now).ranked[0].model_id
        picked += top == "local"
        router.experience.record_outcome(top, True, LOCAL_MS if top == "local" else PAID_MS, now)
    return picked / len(times)


def test_a_model_that_erred_is_tried_again_and_regains_its_share() -> None:
    shares = []
    for seed in range(10):  # exploration draws: every seed tries it again, and on average it recovers
        store = ExperienceStore()
        router = Router(store)
        _history(store)
        for i in range(25):  # an error burst: the local server was restarting
            store.record_outcome("local", False, 50.0, T0 + i * 0.1)
        rng = random.Random(seed)
        first_half_hour = _share(router, [T0 + 60 + 60 * i for i in range(30)], rng)
        assert first_half_hour > 0, f"seed {seed}: the penalised model is tried again"
        shares.append(_share(router, [T0 + 1800 + 10 * i for i in range(30)], rng))
    assert sum(shares) / len(shares) >= 0.7, f"recovered, it regains its share ({shares})"


def test_slowness_alone_does_not_shut_out_a_better_model() -> None:
    store = ExperienceStore()
    router = Router(store, RouterConfig(exploration="off"))
    _history(store)
    for i in range(50):
        store.record_outcome("local", True, LOCAL_MS * 4, T0 + i)  # 40x slower than the paid ones
        store.record_outcome("paid-a", True, PAID_MS, T0 + i)
        store.record_outcome("paid-b", True, PAID_MS, T0 + i)
    decision = router.rank(REQUEST, _candidates(), now=T0 + 60)
    assert decision.ranked[0].model_id == "local"
