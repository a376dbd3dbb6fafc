"""Budget alerts: a budget crossed its alert threshold, or was used up, in a period.

Each is stored once per budget, kind and period (a unique key: when replicas race to raise the same
alert, one row is kept) and written as a log line. The events issue will publish them too."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from turnout.auth.principal import Principal
from turnout.domain.budgets import BudgetView
from turnout.spend.ledger import UNITS_PER_USD, BudgetHold, LedgerUnavailable
from turnout.store.events import stage_event
from turnout.store.spend import BudgetAlert

if TYPE_CHECKING:
    from turnout.spend.ledger import Ledger

log = structlog.get_logger(__name__)


class AlertOut(BaseModel):
    id: str
    budget_id: str
    budget_name: str
    tenant_id: str | None
    kind: str
    period_start: str
    spent_usd: float
    amount_usd: float
    created_at: str


class AlertList(BaseModel):
    items: list[AlertOut]


class BudgetAlerts:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def record(
        self, budget: BudgetView, kind: str, hold: BudgetHold, spent: int | None, ledger: Ledger
    ) -> None:
        """Store the alert unless this period already has it, and log it."""
        try:
            if spent is None:
                spent = (await ledger.balance(hold))[0]
        except LedgerUnavailable:
            spent = 0
        alert = BudgetAlert(
            id=str(uuid.uuid4()),
            budget_id=budget.id,
            tenant_id=budget.tenant_id,
            budget_name=budget.name,
            kind=kind,
            period_start=hold.period_start,
            spent_usd=Decimal(spent) / UNITS_PER_USD,
            amount_usd=Decimal(str(budget.amount_usd)),
        )
        try:
            async with self._sessions.begin() as session:
                session.add(alert)
                await session.flush()  # a second copy of this alert fails here, before its event
                stage_event(session, ALERT_EVENTS[kind], budget.tenant_id, _alert_payload(alert, budget))
        except IntegrityError:  # stored already, by this replica earlier or another one (the unique key)
            return
        except Exception as exc:  # the database is away: the log line still says it
            log.error("budget.alert_not_stored", budget=budget.id, error_type=type(exc).__name__)
        log.warning(
            "budget.alert",
            budget=budget.id,
            name=budget.name,
            tenant=budget.tenant_id,
            kind=kind,
            spent_usd=float(alert.spent_usd),
            amount_usd=budget.amount_usd,
            threshold=budget.alert_threshold,
        )

    async def list(self, principal: Principal, limit: int = 100) -> AlertList:
        """Newest first: a platform admin's, every alert; a tenant admin's, its tenant's."""
        query = select(BudgetAlert).order_by(BudgetAlert.created_at.desc()).limit(limit)
        if not principal.has_any("platform_admin"):
            query = query.where(BudgetAlert.tenant_id == principal.tenant_id)
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        return AlertList(
            items=[
                AlertOut(
                    id=a.id,
                    budget_id=a.budget_id,
                    budget_name=a.budget_name,
                    tenant_id=a.tenant_id,
                    kind=a.kind,
                    period_start=a.period_start.isoformat(),
                    spent_usd=float(a.spent_usd),
                    amount_usd=float(a.amount_usd),
                    created_at=a.created_at.isoformat(),
                )
                for a in rows
            ]
        )


ALERT_EVENTS = {"threshold": "budget.threshold_crossed", "exhausted": "budget.exhausted"}


def _alert_payload(alert: BudgetAlert, budget: BudgetView) -> dict[str, Any]:
    """The event of a stored alert (committed with it, so raised once per budget, kind and period)."""
    return {
        "alert_id": alert.id,
        "budget_id": budget.id,
        "budget_name": budget.name,
        "scope": budget.scope,
        "scope_id": budget.scope_id,
        "period": budget.period,
        "period_start": alert.period_start.isoformat().replace("+00:00", "Z"),
        "action": budget.action,
        "amount_usd": budget.amount_usd,
        "spent_usd": float(alert.spent_usd),
        "alert_threshold": budget.alert_threshold,
    }
