"""Budgets and rate limits as the hot path reads them, and the UTC periods budgets count in.

A call is matched against these in memory (the snapshot holds them); the counters live in the
spend ledger. Scope keys: ``global`` (no id), ``tenant`` (the tenant id), ``agent`` and ``api_key``
(their ids), ``model`` (a catalog id), ``policy`` (a policy name). A budget with a tenant applies
to that tenant's calls only; a global budget (no tenant) to every tenant's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

SCOPES: Final = ("global", "tenant", "agent", "api_key", "model", "policy")
PERIODS: Final = ("daily", "weekly", "monthly", "total")
ACTIONS: Final = ("block", "downgrade", "pause_expensive")
LIMIT_SCOPES: Final = ("tenant", "agent", "api_key")

Period = Literal["daily", "weekly", "monthly", "total"]
Action = Literal["block", "downgrade", "pause_expensive"]

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

# What an exhausted budget leaves to routing: cheaper tiers only, or every tier but premium.
TIERS_LEFT: Final = {
    "downgrade": frozenset({"free", "low"}),
    "pause_expensive": frozenset({"free", "low", "standard"}),
}


@dataclass(frozen=True, slots=True)
class BudgetView:
    id: str
    tenant_id: str | None
    name: str
    scope: str
    scope_id: str | None
    period: Period
    amount_usd: float
    alert_threshold: float
    action: Action


@dataclass(frozen=True, slots=True)
class Steering:
    """How a caller's ``downgrade`` and ``pause_expensive`` budgets steer routing right now."""

    tiers: frozenset[str] | None  # the cost tiers routing may still use (None: every tier)
    tradeoff_factor: float  # multiplies the price routing puts on cost (1: as the policy says)
    why: str  # for the decision log


@dataclass(frozen=True, slots=True)
class LimitView:
    id: str
    tenant_id: str
    scope: str
    scope_id: str
    rpm: int | None
    tpm: int | None
    max_concurrent: int | None


def period_start(period: str, now: datetime) -> datetime:
    """The start (UTC) of the period that holds ``now``; weeks start on Monday; ``total`` never ends."""
    now = now.astimezone(UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "daily":
        return day
    if period == "weekly":
        return day - timedelta(days=day.weekday())
    if period == "monthly":
        return day.replace(day=1)
    return EPOCH


def period_end(period: str, now: datetime) -> datetime | None:
    """When the period holding ``now`` ends and the budget resets (None: ``total`` never resets)."""
    start = period_start(period, now)
    if period == "daily":
        return start + timedelta(days=1)
    if period == "weekly":
        return start + timedelta(days=7)
    if period == "monthly":
        return (
            start.replace(year=start.year + 1, month=1)
            if start.month == 12
            else start.replace(month=start.month + 1)
        )
    return None


# Pace steering: a downgrade budget spending ahead of an even pace through its period raises the
# price routing puts on cost, before it runs out, by the square of how far ahead it is: twice the
# pace weighs cost four times as much. The first 5% of a period counts as 5% gone (no blow-up just
# after a reset), and the factor stops at 64 (routing then takes the cheapest acceptable model).
PACE_FLOOR: Final = 0.05
MAX_TRADEOFF_FACTOR: Final = 64.0


def pace(period: str, spent_fraction: float, now: datetime) -> float | None:
    """The share of a budget spent over the share of its period gone (1: on an even pace; None: a
    ``total`` budget, whose period never ends, has no pace)."""
    end = period_end(period, now)
    if end is None:
        return None
    start = period_start(period, now)
    gone = (now.astimezone(UTC) - start) / (end - start)
    return spent_fraction / max(gone, PACE_FLOOR)


def tradeoff_factor(ahead: float) -> float:
    """What a budget spending at ``ahead`` times its even pace multiplies the cost trade-off by."""
    return min(MAX_TRADEOFF_FACTOR, ahead * ahead) if ahead > 1.0 else 1.0
