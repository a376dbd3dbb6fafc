"""The guard step of the request path: which budgets and limits a call counts against, its
worst-case cost reserved before it goes upstream, its actual cost settled after.

Nothing is awaited for a call that no budget or limit covers. A refusal is an error the caller
gets in its own dialect: 429 naming the budget and when it resets, or the limit and when to retry.
Budgets whose action is ``downgrade`` or ``pause_expensive`` never refuse: once used up they steer
routing (``steering``) to cheaper tiers until their period resets. Before that, a ``downgrade``
budget spending ahead of an even pace through its period makes routing weigh cost more."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from turnout.auth.principal import Principal
from turnout.cluster.bus import Event
from turnout.domain.budgets import (
    TIERS_LEFT,
    BudgetView,
    LimitView,
    Steering,
    pace,
    period_end,
    period_start,
    tradeoff_factor,
)
from turnout.domain.requests import ChatCall
from turnout.domain.snapshot import ModelEntry, Snapshot
from turnout.errors import RateLimited, ServiceUnavailable, TurnoutError
from turnout.spend.alerts import BudgetAlerts
from turnout.spend.ledger import Ask, BudgetHold, Ledger, LedgerUnavailable, Refusal, Verdict, micros

log = structlog.get_logger(__name__)

DEFAULT_MAX_OUTPUT = 4096  # output tokens reserved when the request sets no max_tokens
EXHAUSTED_EVENT = "budget_exhausted"


class BudgetExceeded(TurnoutError):
    status_code = 429
    error_type = "insufficient_quota"
    code = "budget_exceeded"


@dataclass(slots=True)
class Cover:
    """The budgets (but model budgets) and limits one caller's calls count against, the budgets in
    their current periods: worked out once per caller and snapshot, not on every call."""

    holds: list[BudgetHold]
    limits: list[LimitView]
    until: float  # Unix seconds when the first of those periods ends (then worked out again)


MAX_COVERS = 10_000  # callers remembered per snapshot (past it, the memory starts over)


@dataclass(slots=True)
class Held:
    """What one call holds in the ledger until it is settled."""

    ask: Ask
    verdict: Verdict
    settled: bool = False


def rate_headers(verdict: Verdict) -> list[tuple[bytes, bytes]]:
    """``x-ratelimit-*`` headers, as OpenAI sends them, for the call's tightest limits."""
    out: list[tuple[bytes, bytes]] = []
    for unit, window in (("requests", verdict.requests), ("tokens", verdict.tokens)):
        if window is not None:
            out.append((b"x-ratelimit-limit-" + unit.encode(), b"%d" % window.limit))
            out.append((b"x-ratelimit-remaining-" + unit.encode(), b"%d" % window.remaining))
            out.append((b"x-ratelimit-reset-" + unit.encode(), duration(window.reset_s).encode()))
    return out


def usd(amount: float) -> str:
    """Dollars for a message: cents, or as many digits as a sub-cent amount needs ($0.00002)."""
    return f"${amount:.2f}" if amount >= 0.01 else f"${amount:.8f}".rstrip("0").rstrip(".")


def duration(seconds: float) -> str:
    """OpenAI's reset format: ``1s``, ``6m0s``, ``250ms``."""
    if seconds < 1:
        return f"{int(seconds * 1000)}ms"
    whole = int(seconds + 0.999)
    return f"{whole // 60}m{whole % 60}s" if whole >= 60 else f"{whole}s"


def worst_case_usd(model: ModelEntry, prompt_tokens: int, output_tokens: int) -> float:
    """The most a call to ``model`` can cost: its prompt at the input price plus its whole output
    allowance at the output price (an unpriced model counts as free)."""
    return (
        prompt_tokens * (model.pricing_input or 0.0) + output_tokens * (model.pricing_output or 0.0)
    ) / 1e6


def output_allowance(body: Mapping[str, Any]) -> int:
    value = body.get("max_completion_tokens") or body.get("max_tokens")
    return int(value) if isinstance(value, int) and value > 0 else DEFAULT_MAX_OUTPUT


def _budgets(snapshot: Snapshot, tenant: str, wanted: Iterable[tuple[str, str]]) -> list[BudgetView]:
    """The snapshot's budgets on the ``(scope, id)`` keys wanted, platform-wide or this tenant's."""
    return [
        budget
        for key in wanted
        for budget in snapshot.budgets.get(key, ())
        if budget.tenant_id is None or budget.tenant_id == tenant
    ]


class SpendGuard:
    """Budgets and rate limits for the gateway, over a ``Ledger``."""

    def __init__(
        self,
        ledger: Ledger,
        alerts: BudgetAlerts,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        budgets_when_down: str = "closed",
        limits_when_down: str = "open",
        publish: Callable[[Event], None] | None = None,
    ) -> None:
        self.ledger = ledger
        self.alerts = alerts
        self.clock = clock
        self._budgets_when_down = budgets_when_down
        self._limits_when_down = limits_when_down
        self._exhausted: dict[str, datetime] = {}  # non-block budget id -> the period it ran out in
        self._spent: dict[str, tuple[datetime, int]] = {}  # downgrade budget id -> (period, micro-USD spent)
        self._tasks: set[asyncio.Task[None]] = set()
        self._publish = publish  # tells the other replicas a steering budget ran out
        self._alerted: set[tuple[str, str, datetime]] = set()  # (budget, kind, period) raised here
        self._unsettled: dict[str, BudgetHold] = {}  # counters that missed a settle while Redis was down
        self._covers: dict[tuple[str, str | None, str | None, str | None], Cover] = {}
        self._covers_of: Snapshot | None = None  # the snapshot _covers were worked out from
        self._model_budgets = False  # does that snapshot have any model-scoped budget?

    # -- which budgets and limits a call counts against -------------------------------------------

    def budgets_for(
        self, snapshot: Snapshot, principal: Principal, agent_id: str | None, policy: str | None
    ) -> list[BudgetView]:
        """The budgets of the caller's own scopes: global, tenant, agent, API key and policy."""
        wanted = [("global", ""), ("tenant", principal.tenant_id)]
        if agent_id is not None:
            wanted.append(("agent", agent_id))
        if principal.key_id is not None:
            wanted.append(("api_key", principal.key_id))
        if policy is not None:
            wanted.append(("policy", policy))
        return _budgets(snapshot, principal.tenant_id, wanted)

    def limits_for(self, snapshot: Snapshot, principal: Principal, agent_id: str | None) -> list[LimitView]:
        if not snapshot.limits:
            return []
        tenant = principal.tenant_id
        keys = [(tenant, "tenant", tenant)]
        if agent_id is not None:
            keys.append((tenant, "agent", agent_id))
        if principal.key_id is not None:
            keys.append((tenant, "api_key", principal.key_id))
        return [limit for key in keys if (limit := snapshot.limits.get(key)) is not None]

    def steering(
        self, snapshot: Snapshot, principal: Principal, agent_id: str | None, policy: str | None
    ) -> Steering | None:
        """How this caller's downgrade and pause_expensive budgets steer routing (None: they do
        not): used up, only cheaper tiers; a downgrade budget spending ahead of its pace, a higher
        price on cost. In memory: no await. The share spent is the ledger's (every replica's spend)
        as of this replica's last settle on the budget."""
        if not (self._exhausted or self._spent) or not snapshot.budgets:
            return None
        now = self.clock()
        tiers: frozenset[str] | None = None
        factor = 1.0
        why: list[str] = []
        for budget in self.budgets_for(snapshot, principal, agent_id, policy):
            if budget.action == "block":
                continue
            start = period_start(budget.period, now)  # a newer period than the marks: it has reset
            if self._exhausted.get(budget.id) == start:
                left = TIERS_LEFT[budget.action]
                tiers = left if tiers is None else tiers & left
                why.append(
                    f"budget '{budget.name}' used up ({budget.action}: only {', '.join(sorted(left))} tiers)"
                )
                continue
            spent = self._spent.get(budget.id)
            if spent is None or spent[0] != start or budget.amount_usd <= 0:
                continue
            share = spent[1] / micros(budget.amount_usd)
            ahead = pace(budget.period, share, now)
            if ahead is None or ahead <= 1.0:
                continue
            weight = tradeoff_factor(ahead)
            factor = max(factor, weight)
            why.append(
                f"budget '{budget.name}' spent {share:.0%} of {usd(budget.amount_usd)}, "
                f"{ahead:.1f}x its even pace (downgrade: cost weighs {weight:.1f}x)"
            )
        if tiers is None and factor == 1.0:
            return None
        return Steering(tiers, factor, "; ".join(why))

    # -- reserve and settle ------------------------------------------------------------------------

    @staticmethod
    def covers(snapshot: Snapshot) -> bool:
        """Could any budget or limit cover a call? (False: the call skips the guard, no await.)"""
        return bool(snapshot.budgets or snapshot.limits)

    async def reserve(
        self,
        snapshot: Snapshot,
        principal: Principal,
        call: ChatCall[Any],
        plan: list[ModelEntry],
        agent_id: str | None,
        policy: str | None,
        request_id: str,
    ) -> Held | None:
        """Reserve the call's worst case on its budgets and a slot on its limits; raise the refusal."""
        now = self.clock()
        stamp = now.timestamp()
        cover = self._cover(snapshot, principal, agent_id, policy, now, stamp)
        holds, limits = cover.holds, cover.limits
        if self._model_budgets:  # budgets on the plan's models: looked up per call
            models = _budgets(snapshot, principal.tenant_id, [("model", m.id) for m in plan])
            holds = holds + [BudgetHold.at(b, now) for b in models]
        if not holds and not limits:
            return None
        prompt = call.prompt_tokens  # counted once: routing reads the same
        output = output_allowance(call.body)
        worst = max((worst_case_usd(m, prompt, output) for m in plan), default=0.0)
        ask = Ask(request_id, holds, limits, micros(worst), prompt + output, stamp)
        try:
            if self._unsettled:
                await self._rebuild()
            verdict = await self.ledger.reserve(ask)
        except LedgerUnavailable as exc:
            self._ledger_down(ask, exc)  # refuses, or lets the call through unguarded
            return None
        if verdict.refusal is not None:
            raise self._refused(verdict.refusal, ask, now)
        for budget in verdict.exhausted:
            self._ran_out(budget, ask)
        return Held(ask, verdict)

    def _cover(
        self,
        snapshot: Snapshot,
        principal: Principal,
        agent_id: str | None,
        policy: str | None,
        now: datetime,
        stamp: float,
    ) -> Cover:
        if snapshot is not self._covers_of:  # budgets or limits may have changed
            self._covers, self._covers_of = {}, snapshot
            self._model_budgets = any(scope == "model" for scope, _ in snapshot.budgets)
        key = (principal.tenant_id, principal.key_id, agent_id, policy)
        cover = self._covers.get(key)
        if cover is None or stamp >= cover.until:
            budgets = self.budgets_for(snapshot, principal, agent_id, policy)
            holds = [BudgetHold.at(b, now) for b in budgets]
            ends = [h.period_end.timestamp() for h in holds if h.period_end is not None]
            cover = Cover(
                holds, self.limits_for(snapshot, principal, agent_id), min(ends, default=float("inf"))
            )
            if len(self._covers) >= MAX_COVERS:
                self._covers.clear()
            self._covers[key] = cover
        return cover

    def _ledger_down(self, ask: Ask, exc: LedgerUnavailable) -> None:
        blocking = [h.budget.name for h in ask.budgets if h.budget.action == "block"]
        if blocking and self._budgets_when_down == "closed":
            log.error("spend.ledger_down", error=str(exc), refused_for=blocking)
            raise ServiceUnavailable(
                f"the budget ledger (Redis) is unreachable, so calls under block budget(s) "
                f"{', '.join(repr(n) for n in blocking)} are refused until it is back"
            )
        if ask.limits and self._limits_when_down == "closed":
            log.error("spend.ledger_down", error=str(exc), refused_for="rate limits")
            raise ServiceUnavailable(
                "the rate-limit store (Redis) is unreachable: calls are refused until it is back"
            )
        log.warning("spend.ledger_down", error=str(exc), let_through=True)

    def _refused(self, refusal: Refusal, ask: Ask, now: datetime) -> TurnoutError:
        if refusal.budget is not None:
            budget = refusal.budget
            ends = period_end(budget.period, now)
            when = (
                f"it resets at {ends.isoformat().replace('+00:00', 'Z')}"
                if ends
                else "it never resets (period total)"
            )
            headers = {"retry-after": str(max(1, int((ends - now).total_seconds())))} if ends else {}
            hold = next(h for h in ask.budgets if h.budget.id == budget.id)
            self._alert(budget, "exhausted", hold, None)
            log.warning("budget.refused", budget=budget.id, name=budget.name, scope=budget.scope)
            return BudgetExceeded(
                f"budget '{budget.name}' ({budget.period}, {usd(budget.amount_usd)}) has no room for this "
                f"call's worst-case cost (${ask.reserve_micros / 1e6:.6f}); {when}",
                code="budget_exceeded",
                headers=headers,
            )
        limit = refusal.limit
        assert limit is not None
        wait = max(1, int((refusal.retry_after_s or 1) + 0.999))
        what = {
            "requests": f"{limit.rpm} requests per minute",
            "tokens": f"{limit.tpm} tokens per minute (this call counts {ask.tokens}: prompt + max_tokens)",
            "concurrency": f"{limit.max_concurrent} concurrent requests",
        }[refusal.kind]
        log.info("ratelimit.refused", limit=limit.id, scope=limit.scope, kind=refusal.kind)
        return RateLimited(
            f"rate limit of the {limit.scope.replace('_', ' ')} '{limit.scope_id}' reached: {what}; "
            f"retry after {wait}s",
            headers={"retry-after": str(wait)},
        )

    def settle(self, held: Held, row: Mapping[str, Any]) -> None:
        """Settle a finished call with its record's cost (None: nothing charged), in the background."""
        if held.settled:
            return
        held.settled = True
        cost = micros(float(row.get("cost_usd") or 0.0)) if row.get("status") != "error" else 0
        tokens = int(row.get("prompt_tokens") or 0) + int(row.get("completion_tokens") or 0)
        served = row.get("model")
        charges = {
            h.budget.id: cost
            for h in held.ask.budgets
            if h.budget.scope != "model" or h.budget.scope_id == served
        }
        task = asyncio.get_running_loop().create_task(self._settle(held.ask, charges, tokens))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settle(self, ask: Ask, charges: dict[str, int], tokens: int) -> None:
        try:
            moved = await self.ledger.settle(ask, charges, tokens)
        except LedgerUnavailable as exc:
            log.warning("spend.settle_failed", error=str(exc), request_id=ask.request_id)
            self._unsettled.update((h.key, h) for h in ask.budgets)  # rebuilt from the records later
            return
        for hold in ask.budgets:
            if hold.budget.id not in moved:
                continue
            before, after = moved[hold.budget.id]
            amount = micros(hold.budget.amount_usd)
            if hold.budget.action == "downgrade":  # a share of the amount when it is read: it may change
                self._spent[hold.budget.id] = (hold.period_start, after)
            if before < amount * hold.budget.alert_threshold <= after:
                self._alert(hold.budget, "threshold", hold, after)
            if before < amount <= after:
                self._ran_out(hold.budget, ask)

    async def _rebuild(self) -> None:
        """Redis is back after missing some settles: the counters they missed are dropped, so they
        are seeded again from the records (which hold every call, Redis or not)."""
        holds, self._unsettled = list(self._unsettled.values()), {}  # one request rebuilds them
        try:
            await self.ledger.forget(holds)
        except LedgerUnavailable:
            self._unsettled.update((h.key, h) for h in holds)
            raise
        log.info("spend.ledger_rebuilt", budgets=len(holds))

    def _ran_out(self, budget: BudgetView, ask: Ask) -> None:
        hold = next(h for h in ask.budgets if h.budget.id == budget.id)
        if budget.action != "block" and self._exhausted.get(budget.id) != hold.period_start:
            self._exhausted[budget.id] = hold.period_start
            log.warning("budget.exhausted", budget=budget.id, name=budget.name, action=budget.action)
            if self._publish is not None:
                self._publish(
                    {
                        "type": EXHAUSTED_EVENT,
                        "budget": budget.id,
                        "period_start": hold.period_start.timestamp(),
                    }
                )
        self._alert(budget, "exhausted", hold, None)

    def _alert(self, budget: BudgetView, kind: str, hold: BudgetHold, spent: int | None) -> None:
        """Store and log an alert, once per budget, kind and period from this process (a storm of
        refusals raises one; the other replicas' copies meet the table's unique key)."""
        raised = (budget.id, kind, hold.period_start)
        if raised in self._alerted:
            return
        self._alerted.add(raised)
        task = asyncio.get_running_loop().create_task(
            self.alerts.record(budget, kind, hold, spent, self.ledger)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def on_event(self, event: Event) -> None:
        """Another replica saw a downgrade or pause_expensive budget run out: steer routing here too,
        from this request on, rather than after this replica's own next reservation."""
        if event.get("type") == EXHAUSTED_EVENT:
            stamp = event.get("period_start")
            if isinstance(stamp, int | float) and isinstance(event.get("budget"), str):
                self._exhausted[event["budget"]] = datetime.fromtimestamp(stamp, UTC)

    async def drain(self) -> None:
        """Wait for the settles and alerts in flight (at shutdown, and in tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
