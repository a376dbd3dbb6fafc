"""The ledger's contract, and its in-process implementation.

What one call asks (an ``Ask``): reserve its worst-case cost on every budget it counts against, and
one request plus its estimated tokens on every rate limit of its key, agent and tenant, taking a
concurrency slot. All of it fits, or nothing is taken (a ``Refusal`` says what did not fit). After
the call the reservation is settled with the actual cost (or released: cost 0).

Money is counted in integer units of 1e-8 USD, the call records' own precision (``Numeric(18, 8)``),
so a budget's counter sums exactly what its records do; rate windows in one-second buckets over the
last 60 seconds. A budget's ``spent`` is seeded from the records (``seed``) the first time
its period is touched: the records are the ledger of record, the counters a fast copy of it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from turnout.domain.budgets import BudgetView, LimitView, period_end, period_start

WINDOW_S = 60
STALE_SLOT_S = 600  # a concurrency slot never released (a crashed process) frees itself after this


@dataclass(frozen=True, slots=True)
class BudgetHold:
    """A budget one call counts against, in the period that holds the call."""

    budget: BudgetView
    period_start: datetime
    period_end: datetime | None
    key: str = field(init=False)  # the budget's counter in this period (computed once)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"{self.budget.id}:{int(self.period_start.timestamp())}")

    @classmethod
    def at(cls, budget: BudgetView, now: datetime) -> BudgetHold:
        """The budget in the period (UTC) that holds ``now``."""
        return cls(budget, period_start(budget.period, now), period_end(budget.period, now))


@dataclass(slots=True)
class Ask:
    request_id: str
    budgets: list[BudgetHold]
    limits: list[LimitView]
    reserve_units: int  # worst-case cost, in ``UNITS_PER_USD``
    tokens: int  # estimated prompt + output tokens
    now: float  # Unix seconds (the ledger's clock, so a test clock moves windows and periods alike)


@dataclass(frozen=True, slots=True)
class Refusal:
    kind: str  # budget | requests | tokens | concurrency
    budget: BudgetView | None = None
    limit: LimitView | None = None
    retry_after_s: float | None = None
    # a budget refusal: what the budget had spent and held for calls in flight (units of 1e-8 USD)
    spent: int = 0
    reserved: int = 0


@dataclass(frozen=True, slots=True)
class Window:
    """The tightest rate limit of a call, for the ``x-ratelimit-*`` headers."""

    limit: int
    remaining: int
    reset_s: float


@dataclass(slots=True)
class Verdict:
    refusal: Refusal | None = None
    exhausted: list[BudgetView] = field(default_factory=list)  # non-block budgets spent to their amount
    requests: Window | None = None
    tokens: Window | None = None


class LedgerUnavailable(Exception):
    """The shared ledger (Redis) could not be reached."""


Seed = Callable[[BudgetHold], Awaitable[int]]  # a budget's spent in its period, from the records


class Ledger(Protocol):
    async def reserve(self, ask: Ask) -> Verdict: ...

    async def settle(self, ask: Ask, charges: dict[str, int], tokens: int) -> dict[str, tuple[int, int]]:
        """Release ``ask``'s reservation, add ``charges`` (budget id -> units actually spent) and
        correct the token count to ``tokens``; return budget id -> (spent before, spent after)."""
        ...

    async def balance(self, hold: BudgetHold) -> tuple[int, int]:
        """(spent, reserved) of a budget in its period, in units."""
        ...

    async def forget(self, holds: list[BudgetHold]) -> None:
        """Drop these budgets' counters, so their next use seeds them from the records again."""
        ...

    async def aclose(self) -> None:
        """Finish what was accepted (at shutdown)."""
        ...


UNITS_PER_USD = 100_000_000  # a unit is 1e-8 USD: what a call record's cost_usd counts in


def units_up(usd: float) -> int:
    """USD -> units, rounded up: a reservation never falls short by a rounding."""
    value = usd * UNITS_PER_USD
    whole = int(value)
    return whole + 1 if value > whole else whole


def units(usd: float) -> int:
    """USD -> units, rounded to the nearest: an actual cost or a budget's amount, which the
    database stores to 8 decimals (so the float's error goes, not a unit)."""
    return round(usd * UNITS_PER_USD)


def usd_of(amount: int) -> float:
    """Units -> USD."""
    return amount / UNITS_PER_USD


def window_of(limit: int, used: int, oldest_s: float | None, now: float) -> Window:
    reset = max(0.0, (oldest_s + WINDOW_S - now) if oldest_s is not None else 0.0)
    return Window(limit, max(0, limit - used), reset)


def tighter(a: Window | None, b: Window) -> Window:
    return b if a is None or b.remaining < a.remaining else a


class MemoryLedger:
    """The ledger of one process (no Redis): exact within it, since a check and its reservation
    run with no await between them."""

    def __init__(self, seed: Seed) -> None:
        self._seed = seed
        self._budgets: dict[str, list[int]] = {}  # key -> [spent, reserved]
        self._seeding: dict[str, asyncio.Future[None]] = {}
        self._windows: dict[str, dict[int, list[int]]] = {}  # limit id -> second -> [requests, tokens]
        self._slots: dict[str, dict[str, float]] = {}  # limit id -> request id -> taken at

    async def _seeded(self, holds: list[BudgetHold]) -> None:
        for hold in holds:
            key = hold.key
            if key in self._budgets:
                continue
            pending = self._seeding.get(key)
            if pending is None:
                pending = self._seeding[key] = asyncio.get_running_loop().create_future()
                try:
                    spent = await self._seed(hold)
                    self._budgets.setdefault(key, [spent, 0])
                    pending.set_result(None)
                except BaseException as exc:
                    pending.set_exception(exc)
                    raise
                finally:
                    self._seeding.pop(key, None)
            else:
                await asyncio.shield(pending)

    async def reserve(self, ask: Ask) -> Verdict:
        await self._seeded(ask.budgets)
        verdict = Verdict()
        cost = ask.reserve_units
        for hold in ask.budgets:  # check everything first: all of it fits, or nothing is taken
            spent, reserved = self._budgets[hold.key]
            amount = units(hold.budget.amount_usd)
            if hold.budget.action == "block":
                if spent + reserved + cost > amount:
                    return Verdict(Refusal("budget", budget=hold.budget, spent=spent, reserved=reserved))
            elif spent >= amount:  # steering budgets never refuse: used up is what was spent
                verdict.exhausted.append(hold.budget)
        second = int(ask.now)
        for limit in ask.limits:
            buckets = self._windows.setdefault(limit.id, {})
            for old in [s for s in buckets if s <= second - WINDOW_S]:
                del buckets[old]
            used = sum(b[0] for b in buckets.values())
            tokens = sum(b[1] for b in buckets.values())
            oldest = min(buckets) if buckets else None
            if limit.rpm and used + 1 > limit.rpm:
                return Verdict(Refusal("requests", limit=limit, retry_after_s=_wait(oldest, ask.now)))
            if limit.tpm and tokens + ask.tokens > limit.tpm:
                return Verdict(Refusal("tokens", limit=limit, retry_after_s=_wait(oldest, ask.now)))
            if limit.max_concurrent:
                slots = self._slots.setdefault(limit.id, {})
                for rid in [r for r, t in slots.items() if t < ask.now - STALE_SLOT_S]:
                    del slots[rid]
                if len(slots) >= limit.max_concurrent:
                    return Verdict(Refusal("concurrency", limit=limit, retry_after_s=1.0))
            if limit.rpm:
                verdict.requests = tighter(
                    verdict.requests, window_of(limit.rpm, used + 1, oldest or second, ask.now)
                )
            if limit.tpm:
                window = window_of(limit.tpm, tokens + ask.tokens, oldest or second, ask.now)
                verdict.tokens = tighter(verdict.tokens, window)
        for hold in ask.budgets:
            self._budgets[hold.key][1] += cost
        for limit in ask.limits:
            bucket = self._windows[limit.id].setdefault(second, [0, 0])
            bucket[0] += 1
            bucket[1] += ask.tokens
            if limit.max_concurrent:
                self._slots[limit.id][ask.request_id] = ask.now
        return verdict

    async def settle(self, ask: Ask, charges: dict[str, int], tokens: int) -> dict[str, tuple[int, int]]:
        moved: dict[str, tuple[int, int]] = {}
        for hold in ask.budgets:
            counters = self._budgets.get(hold.key)
            if counters is None:
                continue
            counters[1] = max(0, counters[1] - ask.reserve_units)
            before = counters[0]
            counters[0] += charges.get(hold.budget.id, 0)
            moved[hold.budget.id] = (before, counters[0])
        second = int(ask.now)
        for limit in ask.limits:
            bucket = self._windows.get(limit.id, {}).get(second)
            if bucket is not None:
                bucket[1] += tokens - ask.tokens
            self._slots.get(limit.id, {}).pop(ask.request_id, None)
        return moved

    async def balance(self, hold: BudgetHold) -> tuple[int, int]:
        await self._seeded([hold])
        spent, reserved = self._budgets[hold.key]
        return spent, reserved

    async def forget(self, holds: list[BudgetHold]) -> None:
        for hold in holds:
            self._budgets.pop(hold.key, None)

    async def aclose(self) -> None:
        return None


def _wait(oldest: int | None, now: float) -> float:
    return max(1.0, (oldest + WINDOW_S - now) if oldest is not None else 1.0)
