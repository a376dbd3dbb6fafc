"""The guard step of the request path: which budgets and limits a call counts against, its
worst-case cost reserved before it goes upstream, its actual cost settled after.

Nothing is awaited for a call that no budget or limit covers. A refusal is an error the caller
gets in its own dialect: 429 naming the budget and when it resets, or the limit and when to retry.
Budgets whose action is ``downgrade`` or ``pause_expensive`` never refuse: once what was spent
reaches their amount they steer routing (``steering``) to cheaper tiers until their period resets
or the amount is raised. Before that, a ``downgrade`` budget spending ahead of an even pace through
its period makes routing weigh cost more. Routing reads their spend from memory (no await); a
replica learns it from the ledger when it meets such a budget or period (``prime``, awaited before
the first call routed under it), then from its own settles and the other replicas' events."""

from __future__ import annotations

import asyncio
import math
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
from turnout.domain.pricing import format_usd
from turnout.domain.requests import ChatCall
from turnout.domain.snapshot import ModelEntry, Snapshot
from turnout.errors import RateLimited, ServiceUnavailable, TurnoutError
from turnout.logs import Throttle
from turnout.spend.alerts import BudgetAlerts
from turnout.spend.ledger import (
    Ask,
    BudgetHold,
    Ledger,
    LedgerUnavailable,
    Refusal,
    Verdict,
    units,
    units_up,
    usd_of,
)
from turnout.tokens import is_embeddings

log = structlog.get_logger(__name__)

DEFAULT_MAX_OUTPUT = 4096  # output tokens reserved when the request sets no max_tokens
EXHAUSTED_EVENT = "budget_exhausted"
PRIME_RETRY_S = 5.0  # a steering budget whose spend could not be read is asked again after this
PRIME_CHUNK = 32  # ledger reads at once while priming
DOWN_RETRY_S = 5.0  # Retry-After of a refusal while the ledger (Redis) is unreachable
DOWN_LOG_EVERY_S = 10.0  # while it is, a spend.ledger_down line at most this often


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


def _window_headers(unit: str, limit: int, reset_s: float) -> dict[str, str]:
    """A refusal's ``x-ratelimit-*`` headers for the limit it hit (none of it remaining)."""
    return {
        f"x-ratelimit-limit-{unit}": str(limit),
        f"x-ratelimit-remaining-{unit}": "0",
        f"x-ratelimit-reset-{unit}": duration(reset_s),
    }


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
    """Output tokens a call may be billed for: its ``max_tokens``, or DEFAULT_MAX_OUTPUT; none for an
    embeddings call, which is billed for its input only."""
    if is_embeddings(body):
        return 0
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
        # steering (non-block) budget id -> (period start, units spent then), as last read from the
        # ledger (every replica's spend) by a reservation, a settle, priming or another replica's event
        self._spent: dict[str, tuple[datetime, int]] = {}
        self._primed_of: Snapshot | None = None  # the snapshot whose steering budgets were primed
        self._primed_until = math.inf  # Unix seconds: a period of theirs ends, or a failed read is due
        self._priming: tuple[Snapshot, asyncio.Future[None]] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._publish = publish  # tells the other replicas a steering budget ran out
        self._alerted: set[tuple[str, str, datetime]] = set()  # (budget, kind, period) raised here
        self._unsettled: dict[str, BudgetHold] = {}  # counters that missed a settle while Redis was down
        self._down = Throttle(DOWN_LOG_EVERY_S)  # calls that met the ledger down: a line per 10 s
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
        not): spent to their amount, only cheaper tiers; a downgrade budget spending ahead of its
        pace, a higher price on cost. In memory: no await. What was spent is the ledger's (every
        replica's spend) as of this replica's last reading of it."""
        if not self._spent or not snapshot.budgets:
            return None
        now = self.clock()
        tiers: frozenset[str] | None = None
        factor = 1.0
        why: list[str] = []
        for budget in self.budgets_for(snapshot, principal, agent_id, policy):
            if budget.action == "block":
                continue
            spent = self._known(budget.id, period_start(budget.period, now))
            if spent is None:  # none yet, or its period reset
                continue
            amount = units(budget.amount_usd)
            if spent >= amount:
                left = TIERS_LEFT[budget.action]
                tiers = left if tiers is None else tiers & left
                why.append(
                    f"budget '{budget.name}' used up ({budget.action}: only {', '.join(sorted(left))} tiers)"
                )
                continue
            if budget.action != "downgrade" or amount <= 0:
                continue
            share = spent / amount
            ahead = pace(budget.period, share, now)
            if ahead is None or ahead <= 1.0:
                continue
            weight = tradeoff_factor(ahead)
            factor = max(factor, weight)
            why.append(
                f"budget '{budget.name}' spent {share:.0%} of {format_usd(budget.amount_usd)}, "
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

    def unprimed(self, snapshot: Snapshot) -> bool:
        """Must routing wait for ``prime`` first? (The snapshot is new here, or a period of its
        steering budgets ended.) A check of two attributes on most calls."""
        if snapshot is not self._primed_of:
            return True
        return self._primed_until != math.inf and self.clock().timestamp() >= self._primed_until

    async def prime(self, snapshot: Snapshot) -> None:
        """Read from the ledger what this replica does not know yet: the spend of the snapshot's
        steering budgets in their current periods (new budgets, new periods), so that the first
        call routed under one is steered as the ledger says. Concurrent callers share one read."""
        priming = self._priming
        if priming is None or priming[0] is not snapshot or priming[1].done():
            priming = self._priming = (snapshot, asyncio.ensure_future(self._prime(snapshot)))
        await asyncio.shield(priming[1])

    async def _prime(self, snapshot: Snapshot) -> None:
        now = self.clock()
        stamp = now.timestamp()
        until = math.inf
        unknown: list[BudgetHold] = []
        for views in snapshot.budgets.values():
            for budget in views:
                if budget.action == "block":
                    continue
                hold = BudgetHold.at(budget, now)
                if hold.period_end is not None:
                    until = min(until, hold.period_end.timestamp())
                if self._known(budget.id, hold.period_start) is None:
                    unknown.append(hold)
        for at in range(0, len(unknown), PRIME_CHUNK):
            chunk = unknown[at : at + PRIME_CHUNK]
            read = await asyncio.gather(*(self.ledger.balance(h) for h in chunk), return_exceptions=True)
            for hold, result in zip(chunk, read, strict=True):
                if isinstance(result, BaseException):  # steered from its next settle instead
                    log.warning("spend.prime_failed", budget=hold.budget.id, error=str(result))
                    until = min(until, stamp + PRIME_RETRY_S)
                else:
                    self._learn(hold.budget.id, hold.period_start, result[0])
        self._primed_of, self._primed_until = snapshot, until

    def _known(self, budget_id: str, start: datetime) -> int | None:
        """What this replica last read of a steering budget's spend in the period from ``start``
        (None: nothing yet in that period)."""
        known = self._spent.get(budget_id)
        return known[1] if known is not None and known[0] == start else None

    def _learn(self, budget_id: str, start: datetime, spent: int) -> None:
        """Keep what the ledger says a steering budget has spent in its period (spend only grows
        within a period, so an older reading arriving late changes nothing)."""
        known = self._known(budget_id, start)
        if known is None or known < spent:
            self._spent[budget_id] = (start, spent)

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
        ask = Ask(request_id, holds, limits, units_up(worst), prompt + output, stamp)
        try:
            if self._unsettled:
                await self._rebuild()
            verdict = await self.ledger.reserve(ask)
        except LedgerUnavailable as exc:
            self._ledger_down(ask, exc)  # refuses, or lets the call through unguarded
            return None
        if verdict.refusal is not None:
            raise self._refused(verdict.refusal, ask, now, chat=output > 0)
        for budget in verdict.exhausted:  # spent to its amount already (before a restart, elsewhere)
            hold = next(h for h in ask.budgets if h.budget.id == budget.id)
            self._ran_out(hold, units(budget.amount_usd))
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
        retry = {"retry-after": str(int(DOWN_RETRY_S))}
        if blocking and self._budgets_when_down == "closed":
            self._log_down(str(exc), refused_for=blocking)
            raise ServiceUnavailable(
                f"the budget ledger (Redis) is unreachable, so calls under block budget(s) "
                f"{', '.join(repr(n) for n in blocking)} are refused until it is back",
                headers=retry,
            )
        if ask.limits and self._limits_when_down == "closed":
            self._log_down(str(exc), refused_for="rate limits")
            raise ServiceUnavailable(
                "the rate-limit store (Redis) is unreachable: calls are refused until it is back",
                headers=retry,
            )
        self._log_down(
            str(exc), let_through=True, budgets=[h.budget.name for h in ask.budgets],
            limits=[f"{limit.scope}:{limit.scope_id}" for limit in ask.limits],
        )  # fmt: skip
        # the records count what this call spends: its budgets are seeded from them again once the
        # ledger is back (their counters there never heard of it)
        self._unsettled.update((h.key, h) for h in ask.budgets)

    def _log_down(self, error: str, **fields: Any) -> None:
        """One line per ``DOWN_LOG_EVERY_S`` while the ledger is down (a line a call flooded the
        logs of an outage), with how many calls met it since the last."""
        calls = self._down.due(self.clock().timestamp())
        if calls is not None:
            log.error("spend.ledger_down", error=error, calls=calls, **fields)

    def _refused(self, refusal: Refusal, ask: Ask, now: datetime, *, chat: bool = True) -> TurnoutError:
        """The refusal in words: what the budget has left, or which limit, and what the caller may
        change (``max_tokens`` for a chat; an embeddings call, ``chat`` False, only its input)."""
        counted = f"prompt + max_tokens, {DEFAULT_MAX_OUTPUT} when unset" if chat else "its input"
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
            amount = units(budget.amount_usd)
            # one call too large for what is left is not a budget used up: exhausted once it refuses
            # past its alert threshold (or its spend reaches the amount, at settling)
            if refusal.spent >= amount * budget.alert_threshold:
                self._alert(budget, "exhausted", hold, None)
            log.warning("budget.refused", budget=budget.id, name=budget.name, scope=budget.scope)
            named = f"budget '{budget.name}' ({budget.period}, {format_usd(budget.amount_usd)})"
            left = max(0, amount - refusal.spent - refusal.reserved)
            worst = format_usd(usd_of(ask.reserve_units))
            if refusal.spent >= amount:
                text = f"{named} is used up ({format_usd(usd_of(refusal.spent))} spent); {when}"
            else:
                held = (
                    f", {format_usd(usd_of(refusal.reserved))} held by calls in flight"
                    if refusal.reserved
                    else ""
                )
                why = (
                    f"the prompt at the input price plus max_tokens, {DEFAULT_MAX_OUTPUT} when unset, at "
                    "the output price); a lower max_tokens may fit"
                    if chat
                    else "its input at the input price); a smaller input may fit"
                )
                text = (
                    f"{named} has {format_usd(usd_of(left))} left ({format_usd(usd_of(refusal.spent))} "
                    f"spent{held}), less than this call's worst-case cost ({worst}: {why}; {when}"
                )
            return BudgetExceeded(text, code="budget_exceeded", headers=headers).final()
        limit = refusal.limit
        assert limit is not None
        where = f"the {limit.scope.replace('_', ' ')} '{limit.scope_id}'"
        if refusal.kind == "tokens" and limit.tpm is not None and ask.tokens > limit.tpm:
            log.info("ratelimit.refused", limit=limit.id, scope=limit.scope, kind="too_large")
            return RateLimited(  # as OpenAI answers a request larger than its TPM: waiting cannot help
                f"request too large for the rate limit of {where}: this call counts {ask.tokens} tokens "
                f"({counted}) and the limit is {limit.tpm} tokens per minute, so it can never fit; "
                + ("lower max_tokens or the prompt" if chat else "send a smaller input")
                + ", or raise the limit",
                param="max_tokens" if chat else "input",
                headers=_window_headers("tokens", limit.tpm, 0.0),
            ).final()
        wait = max(1, int((refusal.retry_after_s or 1) + 0.999))
        short = "prompt + max_tokens" if chat else "its input"
        what = {
            "requests": f"{limit.rpm} requests per minute",
            "tokens": f"{limit.tpm} tokens per minute (this call counts {ask.tokens}: {short})",
            "concurrency": f"{limit.max_concurrent} concurrent requests",
        }[refusal.kind]
        log.info("ratelimit.refused", limit=limit.id, scope=limit.scope, kind=refusal.kind)
        headers = {"retry-after": str(wait)}
        if refusal.kind == "requests" and limit.rpm is not None:
            headers.update(_window_headers("requests", limit.rpm, wait))
        elif refusal.kind == "tokens" and limit.tpm is not None:
            headers.update(_window_headers("tokens", limit.tpm, wait))
        return RateLimited(f"rate limit of {where} reached: {what}; retry after {wait}s", headers=headers)

    def settle(self, held: Held, row: Mapping[str, Any]) -> None:
        """Settle a finished call with its record's cost (None: nothing charged), in the background."""
        if held.settled:
            return
        held.settled = True
        cost = units(float(row.get("cost_usd") or 0.0))  # what the record says, so they agree
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
            amount = units(hold.budget.amount_usd)
            if before < amount * hold.budget.alert_threshold <= after:
                self._alert(hold.budget, "threshold", hold, after)
            if before < amount <= after:
                self._ran_out(hold, after)
            elif hold.budget.action != "block":  # compared with the amount when read: it may change
                self._learn(hold.budget.id, hold.period_start, after)

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

    def _ran_out(self, hold: BudgetHold, spent: int) -> None:
        """A budget's spend reached its amount (``spent``: at least that much): an alert; for a
        steering budget newly used up here, a log line and word to the other replicas."""
        budget = hold.budget
        if budget.action != "block":
            known = self._known(budget.id, hold.period_start)
            fresh = known is None or known < units(budget.amount_usd)  # not known used up until now
            self._learn(budget.id, hold.period_start, spent)
            if fresh:
                log.warning("budget.exhausted", budget=budget.id, name=budget.name, action=budget.action)
                if self._publish is not None:
                    self._publish(
                        {
                            "type": EXHAUSTED_EVENT,
                            "budget": budget.id,
                            "period_start": hold.period_start.timestamp(),
                            "spent": spent,
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
        from this request on, rather than after this replica's own next reservation. (An event
        without ``spent``, from an older version, counts as spent beyond any amount.)"""
        if event.get("type") == EXHAUSTED_EVENT:
            stamp, budget, spent = event.get("period_start"), event.get("budget"), event.get("spent", 2**62)
            if isinstance(stamp, int | float) and isinstance(budget, str) and isinstance(spent, int):
                self._learn(budget, datetime.fromtimestamp(stamp, UTC), spent)

    async def drain(self) -> None:
        """Wait for the settles and alerts in flight (at shutdown, and in tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
