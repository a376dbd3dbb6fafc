"""Router: filters with reasons, FR-06 scoring, exploration, the price of cost, penalties."""

from __future__ import annotations

import random

import pytest

from turnout.routing.experience import ExperienceStore
from turnout.routing.router import CandidateSet, Router, RouterConfig
from turnout.routing.types import Candidate, RouteRequest

T0 = 1_700_000_000.0
NOW = T0 + 3600


def cand(model_id: str, priority: int = 50, price: float | None = 1.0, ctx: int | None = 128_000,
         caps: frozenset[str] = frozenset({"chat"})) -> Candidate:  # fmt: skip
    return Candidate(model_id, "p", caps, priority, "low", ctx, price, price)


def rate(store: ExperienceStore, model_id: str, ratings: list[float], task: str = "code") -> None:
    for i, r in enumerate(ratings):
        store.record("t", "a", task, model_id, r, T0 + i)


def request(**kw: object) -> RouteRequest:
    return RouteRequest("t", "a", str(kw.pop("task", "code")), prompt_tokens=100, **kw)  # type: ignore[arg-type]


def test_priority_alone_without_experience() -> None:
    router = Router()
    decision = router.rank(request(), [cand("low", 20), cand("high", 90), cand("mid", 60)], now=NOW)
    assert [c.model_id for c in decision.ranked] == ["high", "mid", "low"]
    assert "priority alone" in decision.reason and not decision.explored
    assert decision.ranked[0].score == pytest.approx(0.9) and decision.ranked[0].experience is None
    # ties in priority: the cheaper model first
    tie = router.rank(request(), [cand("dear", 50, 5.0), cand("cheap", 50, 0.5)], now=NOW)
    assert tie.ranked[0].model_id == "cheap"


def test_score_combines_priority_and_experience() -> None:
    router = Router(config=RouterConfig(exploration="off", cost_tradeoff=0.0))
    rate(router.experience, "a", [0.9] * 100)
    rate(router.experience, "b", [0.5] * 100)
    decision = router.rank(request(), [cand("a", 40), cand("b", 80)], now=NOW)
    top = decision.ranked[0]
    assert top.model_id == "a" and top.level == "agent" and top.evidence == pytest.approx(100, rel=1e-3)
    assert top.priority_part == pytest.approx(0.3 * 0.4)
    assert top.experience is not None and top.experience_part == pytest.approx(0.7 * top.experience)
    assert top.score == pytest.approx(top.priority_part + top.experience_part)
    assert "quality" in decision.reason


def test_one_perfect_rating_does_not_win() -> None:
    router = Router(config=RouterConfig(exploration="off"))
    rate(router.experience, "lucky", [1.0])
    rate(router.experience, "proven", [1.0] * 44 + [0.18, 0.0, 0.0])
    assert router.rank(request(), [cand("lucky"), cand("proven")], now=NOW).ranked[0].model_id == "proven"


def test_exploration_tries_an_unseen_model_sometimes_not_always() -> None:
    router = Router()
    rate(router.experience, "known", [1.0] * 8 + [0.0] * 2)  # 0.8 over 10 ratings
    candidates = CandidateSet([cand("known"), cand("new")])
    rng = random.Random(7)
    picks = [router.rank(request(), candidates, rng=rng, now=NOW).ranked[0].model_id for _ in range(300)]
    tried = picks.count("new")
    assert 0 < tried < 150
    again = random.Random(7)
    assert picks == [
        router.rank(request(), candidates, rng=again, now=NOW).ranked[0].model_id for _ in range(300)
    ]


def test_exploration_off_is_deterministic() -> None:
    for config, kw in ((RouterConfig(exploration="off"), {}), (RouterConfig(), {"explore": False})):
        router = Router(config=config)
        rate(router.experience, "known", [1.0] * 8 + [0.0] * 2)
        decisions = [
            router.rank(request(), [cand("known"), cand("new")], rng=random.Random(seed), now=NOW, **kw)
            for seed in range(20)
        ]
        assert {tuple(c.model_id for c in d.ranked) for d in decisions} == {("known", "new")}
        assert all(not d.explored and d.ranked[0].sampled is None for d in decisions)
    off = Router()
    rate(off.experience, "known", [0.8] * 10)
    quiet = off.rank(RouteRequest("t", "a", "code", explore=False), [cand("known"), cand("new")], now=NOW)
    assert quiet.ranked[0].sampled is None and not quiet.explored


def test_cheaper_model_wins_within_the_margin() -> None:
    router = Router(config=RouterConfig(exploration="off", cost_tradeoff=0.05))
    rate(router.experience, "dear", [0.82] * 200)
    rate(router.experience, "cheap", [0.80] * 200)  # 0.02 worse at half the price: within 0.05 a doubling
    rate(router.experience, "bad-cheap", [0.5] * 200)
    candidates = [cand("dear", price=2.0), cand("cheap", price=1.0), cand("bad-cheap", price=0.5)]
    decision = router.rank(request(), candidates, now=NOW)
    assert decision.ranked[0].model_id == "cheap"
    assert "cheaper than dear" in decision.reason
    strict = Router(router.experience, RouterConfig(exploration="off", cost_tradeoff=0.0))
    assert strict.rank(request(), candidates, now=NOW).ranked[0].model_id == "dear"
    rate(router.experience, "dear", [1.0] * 800)  # now clearly better: worth its price
    assert router.rank(request(), candidates, now=NOW).ranked[0].model_id == "dear"


def test_the_policy_sets_the_price_of_cost_and_request_size_does_not() -> None:
    """One trade-off, quality per doubling of cost, stated by the request's policy: the same prompt
    gets the same model whether the requests before it were long or short."""
    router = Router(config=RouterConfig(exploration="off", cost_tradeoff=0.02))
    rate(router.experience, "dear", [0.9] * 200)
    rate(router.experience, "cheap", [0.8] * 200)  # 0.1 worse at a quarter of the price (2 doublings)
    candidates = CandidateSet([cand("dear", price=4.0), cand("cheap", price=1.0)])

    def pick(prompt_tokens: int, tradeoff: float | None = None) -> str:
        routed = RouteRequest(
            "t", "a", "code", prompt_tokens=prompt_tokens, expected_output_tokens=100, cost_tradeoff=tradeoff
        )
        return router.rank(routed, candidates, now=NOW).ranked[0].model_id

    assert [pick(100) for _ in range(20)] == ["dear"] * 20  # 0.1 better beats 2 x 0.02
    assert [pick(10_000) for _ in range(5)] == ["dear"] * 5  # a long prompt: the same trade-off
    assert pick(100) == "dear"  # and after long ones, a short prompt is routed as before
    assert pick(100, tradeoff=0.08) == "cheap"  # ops: 2 x 0.08 outweighs the 0.1 gap
    assert pick(10_000, tradeoff=0.002) == "dear"  # deep research: quality at almost any price
    decision = router.rank(
        RouteRequest("t", "a", "code", prompt_tokens=100, cost_tradeoff=0.08), candidates, now=NOW
    )
    assert "cheaper than dear (trade-off 0.08 quality per doubling of cost)" in decision.reason


def test_exploration_fades_as_ratings_accumulate() -> None:
    """The draw's spread is the posterior's own: with hundreds of ratings showing one model clearly
    better, the other is almost never tried; with a handful, it is tried often."""
    candidates = CandidateSet([cand("better"), cand("worse")])

    def tried(ratings: int) -> int:
        router = Router()
        rate(router.experience, "better", [1.0] * int(ratings * 0.8) + [0.0] * (ratings - int(ratings * 0.8)))
        rate(router.experience, "worse", [1.0] * int(ratings * 0.7) + [0.0] * (ratings - int(ratings * 0.7)))
        rng = random.Random(3)
        picks = [router.rank(request(), candidates, rng=rng, now=NOW).ranked[0].model_id for _ in range(400)]
        return picks.count("worse")

    few, many = tried(10), tried(1000)
    assert few > 60, f"10 ratings each: the worse model tried {few} times of 400"
    assert many < few / 4 and many < 40, f"1000 ratings each: still tried {many} times of 400"


def test_penalties_demote_a_model_with_recent_errors_or_slowness() -> None:
    router = Router(config=RouterConfig(exploration="off"))
    for m in ("flaky", "steady", "slow"):
        rate(router.experience, m, [0.8] * 50)
    for i in range(20):
        router.experience.record_outcome("flaky", i % 2 == 0, 500.0, NOW - 60)
        router.experience.record_outcome("steady", True, 500.0, NOW - 60)
        router.experience.record_outcome("slow", True, 8000.0, NOW - 60)
    decision = router.rank(request(), [cand("flaky"), cand("slow"), cand("steady")], now=NOW)
    assert [c.model_id for c in decision.ranked] == ["steady", "slow", "flaky"]
    assert decision.ranked[2].penalty > decision.ranked[1].penalty > 0 == decision.ranked[0].penalty
    # recent means recent: an hour-long half-life forgets a bad day ago
    assert router.rank(request(), [cand("flaky"), cand("steady")], now=NOW + 86_400).ranked[0].penalty < 1e-6


def test_filters_give_reasons() -> None:
    router = Router(config=RouterConfig(exploration="off"))
    rate(router.experience, "weak", [0.1] * 30)
    rate(router.experience, "ok", [0.9] * 30)
    candidates = [
        cand("no-vision"), cand("small", ctx=1000), cand("pricey", price=100.0), cand("weak"),
        cand("ok", caps=frozenset({"chat", "vision"})),
        cand("unpriced", price=None, caps=frozenset({"vision"})),
        cand("weak-v", caps=frozenset({"vision"})),
    ]  # fmt: skip
    rate(router.experience, "weak-v", [0.1] * 30)
    req = RouteRequest("t", "a", "code", frozenset({"vision", "long_context"}), prompt_tokens=2000,
                       expected_output_tokens=500, max_cost_usd=0.01, min_quality=0.5)  # fmt: skip
    decision = router.rank(req, candidates, now=NOW)
    reasons = dict(decision.filtered)
    assert reasons["no-vision"] == "missing capability 'vision'"
    assert reasons["small"].startswith("missing capability")  # first failing filter wins
    assert reasons["weak"] == "missing capability 'vision'"
    assert reasons["weak-v"].startswith("quality 0.") and "< min 0.5" in reasons["weak-v"]
    assert "pricey" in reasons and reasons["pricey"].startswith("missing capability")
    assert [c.model_id for c in decision.ranked] == ["ok", "unpriced"]  # unknown price: not filtered
    assert f"{len(decision.filtered)} filtered" in decision.reason
    window = router.rank(
        RouteRequest("t", "a", "code", prompt_tokens=900), [cand("small", ctx=1000)], now=NOW
    )
    assert window.filtered == [("small", "context window 1000 < 1100 tokens")] and window.ranked == []
    capped = RouteRequest("t", "a", "code", prompt_tokens=1000, max_cost_usd=0.01)
    budget = router.rank(capped, [cand("pricey", price=100.0)], now=NOW)
    assert budget.filtered[0][1].startswith("estimated cost $0.12") and "no candidate left" in budget.reason


def test_backoff_uses_the_tenants_experience_for_a_new_agent() -> None:
    router = Router(config=RouterConfig(exploration="off"))
    for i in range(40):
        router.experience.record("t", "veteran", "code", "good", 0.9, T0 + i)
        router.experience.record("t", "veteran", "code", "poor", 0.3, T0 + i)
    decision = router.rank(RouteRequest("t", "rookie", "code"), [cand("poor"), cand("good")], now=NOW)
    assert decision.ranked[0].model_id == "good" and decision.ranked[0].level == "tenant"


def test_candidate_set_and_plain_list_agree() -> None:
    router = Router(config=RouterConfig(exploration="off"))
    rate(router.experience, "a", [0.7] * 5)
    rate(router.experience, "b", [0.6] * 50)
    plain = [cand("a", 70, 1.0), cand("b", 50, 3.0), cand("c", 60, None)]
    one = router.rank(request(), plain, now=NOW)
    two = router.rank(request(), CandidateSet(plain), now=NOW)
    assert one.ranked == two.ranked and one.reason == two.reason
    assert router.rank(request(), [], now=NOW).ranked == []


def test_cached_estimates_follow_every_new_rating_and_reset() -> None:
    router = Router(config=RouterConfig(exploration="off"))
    candidates = CandidateSet([cand("a"), cand("b")])
    rate(router.experience, "a", [0.9] * 20)
    rate(router.experience, "b", [0.5] * 20)
    assert router.rank(request(), candidates, now=NOW).ranked[0].model_id == "a"
    assert router.rank(request(), candidates, now=NOW).ranked[0].model_id == "a"  # served from the cache
    rate(router.experience, "a", [0.0] * 40)  # the very next decision sees these
    assert router.rank(request(), candidates, now=NOW).ranked[0].model_id == "b"
    router.experience.reset(model_id="b")
    levels = {c.model_id: c.level for c in router.rank(request(), candidates, now=NOW).ranked}
    assert levels == {"a": "agent", "b": "prior"}  # b's ratings are gone at once
    # b's excellent record on a new task lifts its cross-task prior here: the cached fit is renewed
    rate(router.experience, "b", [1.0] * 40, task="math")
    assert router.rank(request(), candidates, now=NOW).ranked[0].model_id == "b"


def test_a_task_mix_routes_to_what_serves_the_tasks_it_may_be() -> None:
    """A prompt that may be either of two tasks goes to the model good at both, not to the likelier
    task's specialist that fails the other; with no mix the specialist wins."""
    router = Router(config=RouterConfig(exploration="off", cost_tradeoff=0.0))
    store = router.experience
    rate(store, "specialist", [0.95] * 200, task="trivia")
    rate(store, "specialist", [0.10] * 200, task="science")
    rate(store, "allrounder", [0.80] * 200, task="trivia")
    rate(store, "allrounder", [0.80] * 200, task="science")
    models = [cand("specialist"), cand("allrounder")]
    alone = router.rank(request(task="trivia"), models, now=NOW)
    assert alone.ranked[0].model_id == "specialist"
    mixed = router.rank(request(task="trivia", task_mix=(("science", 0.4),)), models, now=NOW)
    assert mixed.ranked[0].model_id == "allrounder"
    # the mixture's expectation: 0.6 * trivia + 0.4 * science
    special = next(c for c in mixed.ranked if c.model_id == "specialist")
    assert special.experience == pytest.approx(0.6 * 0.95 + 0.4 * 0.10, abs=0.02)
    assert "'trivia' x0.60, 'science' x0.40" in mixed.reason
    # a mix that names the task itself, or weighs nothing, changes nothing
    same = router.rank(request(task="trivia", task_mix=(("trivia", 0.4), ("science", 0.0))), models, now=NOW)
    assert same.ranked[0].model_id == "specialist"
