"""The ledger alone, in process and in Redis: all of a call fits or nothing is taken, a settle
moves the reservation to spent, windows slide, and concurrent reservations never overspend."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from tests.services import redis_url
from turnout.cluster.redis import connect
from turnout.domain.budgets import BudgetView, LimitView, period_end, period_start
from turnout.spend.ledger import Ask, BudgetHold, Ledger, MemoryLedger
from turnout.spend.redis_ledger import RedisLedger

NOW = datetime(2030, 3, 5, 12, 0, tzinfo=UTC)


def budget(amount: float, action: str = "block", seeded: int = 0) -> BudgetView:
    return BudgetView(str(uuid.uuid4()), "acme", "test", "tenant", "acme", "daily", amount, 0.8, action)  # type: ignore[arg-type]


def hold(b: BudgetView, at: datetime = NOW) -> BudgetHold:
    return BudgetHold(b, period_start(b.period, at), period_end(b.period, at))


def limit(rpm: int | None = None, tpm: int | None = None, conc: int | None = None) -> LimitView:
    return LimitView(str(uuid.uuid4()), "acme", "api_key", "k1", rpm, tpm, conc)


def ask(
    holds: list[BudgetHold], limits: list[LimitView], cost: int, tokens: int = 10, now: float | None = None
) -> Ask:
    return Ask(str(uuid.uuid4()), holds, limits, cost, tokens, NOW.timestamp() if now is None else now)


seeds: dict[str, int] = {}


async def seed(h: BudgetHold) -> int:
    return seeds.get(h.budget.id, 0)


@pytest.fixture(params=["memory", "redis"])
async def ledger(request: pytest.FixtureRequest) -> AsyncIterator[Ledger]:
    if request.param == "memory":
        yield MemoryLedger(seed)
        return
    client = connect(await redis_url())
    made = RedisLedger(client, seed)
    try:
        yield made
    finally:
        await made.aclose()
        await client.aclose()


async def test_a_block_budget_refuses_what_does_not_fit_and_settles_to_the_actual_cost(
    ledger: Ledger,
) -> None:
    b = budget(0.00001)  # 1000 units of 1e-8 USD
    h = hold(b)
    first = ask([h], [], 600)
    assert (await ledger.reserve(first)).refusal is None
    assert await ledger.balance(h) == (0, 600)
    refused = await ledger.reserve(ask([h], [], 600))
    assert refused.refusal is not None and refused.refusal.kind == "budget" and refused.refusal.budget == b
    assert (refused.refusal.spent, refused.refusal.reserved) == (0, 600), "what it had, for the message"
    assert await ledger.balance(h) == (0, 600), "a refusal takes nothing"
    await ledger.settle(first, {b.id: 150}, 10)
    assert await ledger.balance(h) == (150, 0)
    assert (await ledger.reserve(ask([h], [], 600))).refusal is None  # 150 spent + 600 fits in 1000


async def test_spent_starts_from_the_records_seed(ledger: Ledger) -> None:
    b = budget(0.00001)
    seeds[b.id] = 900
    verdict = await ledger.reserve(ask([hold(b)], [], 200))
    assert verdict.refusal is not None, "900 already spent per the records: 200 more does not fit"
    assert verdict.refusal.spent == 900


async def test_a_downgrade_budget_never_refuses_and_is_used_up_only_once_spent(ledger: Ledger) -> None:
    b = budget(0.000001, action="downgrade")  # 100 units
    h = hold(b)
    first = ask([h], [], 500)
    verdict = await ledger.reserve(first)
    assert verdict.refusal is None and verdict.exhausted == [], "an unfit worst case uses nothing up"
    await ledger.settle(first, {b.id: 60}, 10)
    verdict = await ledger.reserve(ask([h], [], 500))
    assert verdict.refusal is None and verdict.exhausted == [], "60 of 100 spent: not used up"
    await ledger.settle(ask([h], [], 0), {b.id: 40}, 10)
    verdict = await ledger.reserve(ask([h], [], 500))
    assert verdict.refusal is None and verdict.exhausted == [b], "100 of 100 spent: used up"


async def test_all_or_nothing_across_budgets_and_limits(ledger: Ledger) -> None:
    roomy, tight = budget(0.01), budget(0.000005)
    rate = limit(rpm=5)
    refused = await ledger.reserve(ask([hold(roomy), hold(tight)], [rate], 600))
    assert refused.refusal is not None and refused.refusal.budget == tight
    assert await ledger.balance(hold(roomy)) == (0, 0), "the budget that fitted was not charged"
    for _ in range(5):  # the refused call took no request slot either
        assert (await ledger.reserve(ask([], [rate], 0))).refusal is None


async def test_requests_per_minute_slide_with_the_clock(ledger: Ledger) -> None:
    rate = limit(rpm=3)
    t0 = NOW.timestamp()
    verdicts = [await ledger.reserve(ask([], [rate], 0, now=t0 + i)) for i in range(3)]
    assert [v.refusal for v in verdicts] == [None, None, None]
    assert verdicts[-1].requests is not None and verdicts[-1].requests.remaining == 0
    refused = await ledger.reserve(ask([], [rate], 0, now=t0 + 10))
    assert refused.refusal is not None and refused.refusal.kind == "requests"
    assert refused.refusal.retry_after_s == pytest.approx(50, abs=1)  # the first request leaves at t0+60
    assert (await ledger.reserve(ask([], [rate], 0, now=t0 + 61))).refusal is None


async def test_tokens_per_minute_count_the_estimate_then_the_actual(ledger: Ledger) -> None:
    rate = limit(tpm=1000)
    first = ask([], [rate], 0, tokens=800)
    assert (await ledger.reserve(first)).refusal is None
    refused = await ledger.reserve(ask([], [rate], 0, tokens=300))
    assert refused.refusal is not None and refused.refusal.kind == "tokens"
    await ledger.settle(first, {}, 100)  # it used 100 tokens, not 800
    assert (await ledger.reserve(ask([], [rate], 0, tokens=300))).refusal is None


async def test_concurrency_slots_are_taken_and_given_back(ledger: Ledger) -> None:
    rate = limit(conc=2)
    a, b = ask([], [rate], 0), ask([], [rate], 0)
    assert (await ledger.reserve(a)).refusal is None and (await ledger.reserve(b)).refusal is None
    refused = await ledger.reserve(ask([], [rate], 0))
    assert refused.refusal is not None and refused.refusal.kind == "concurrency"
    await ledger.settle(a, {}, 0)
    assert (await ledger.reserve(ask([], [rate], 0))).refusal is None


async def test_concurrent_reservations_never_overspend(ledger: Ledger) -> None:
    b = budget(0.0005)  # fits 50 reservations of 1000
    h = hold(b)
    verdicts = await asyncio.gather(*(ledger.reserve(ask([h], [], 1000)) for _ in range(200)))
    granted = [v for v in verdicts if v.refusal is None]
    assert len(granted) == 50
    assert await ledger.balance(h) == (0, 50_000)


async def test_a_free_call_reserves_and_settles_nothing(ledger: Ledger) -> None:
    """A model with no price reserves 0 USD: its settle must not fail (Redis refuses "-0")."""
    b = budget(0.00001)
    h = hold(b)
    free = ask([h], [limit(tpm=10_000)], 0)
    assert (await ledger.reserve(free)).refusal is None
    await ledger.settle(free, {b.id: 0}, 5)
    assert await ledger.balance(h) == (0, 0)


async def test_a_window_counts_exactly_the_last_minute_over_minutes_of_traffic(ledger: Ledger) -> None:
    """Uneven traffic over four minutes, with a gap and a clock that lags by seconds (another
    replica's): at every call the remaining requests and tokens are those of the 60 s up to the
    latest clock seen (a lagging clock does not bring back what already left the window)."""
    rate = limit(rpm=10_000, tpm=1_000_000)
    t0 = NOW.timestamp()
    sent: list[tuple[int, int]] = []  # (second, tokens) of every granted call
    pattern = [*range(0, 70), *range(150, 240)]  # a quiet minute and more in between
    for n, second in enumerate(pattern):
        for k in range(1 + n % 3):
            when = second - (2 if k == 2 and second > 5 else 0)  # a lagging replica's clock
            tokens = 10 + (n + k) % 7
            verdict = await ledger.reserve(ask([], [rate], 0, tokens=tokens, now=t0 + when + 0.5))
            assert verdict.refusal is None
            sent.append((when, tokens))
            latest = max(s for s, _ in sent)
            live = [(s, t) for s, t in sent if s > latest - 60]
            assert verdict.requests is not None and verdict.tokens is not None
            assert verdict.requests.remaining == 10_000 - len(live), (second, k)
            assert verdict.tokens.remaining == 1_000_000 - sum(t for _, t in live), (second, k)


async def test_a_limit_idle_for_longer_than_its_window_starts_from_zero(ledger: Ledger) -> None:
    rate = limit(rpm=2)
    t0 = NOW.timestamp()
    for i in range(2):
        assert (await ledger.reserve(ask([], [rate], 0, now=t0 + i))).refusal is None
    assert (await ledger.reserve(ask([], [rate], 0, now=t0 + 30))).refusal is not None
    later = await ledger.reserve(ask([], [rate], 0, now=t0 + 500))  # past the key's own expiry
    assert later.refusal is None and later.requests is not None and later.requests.remaining == 1
