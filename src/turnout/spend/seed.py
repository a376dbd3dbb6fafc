"""A budget's spent in one period, summed from the call records: the ledger of record.

The ledger's counters start from this sum the first time a period is touched (and again after
Redis lost them), so a restart, a new replica or a Redis outage loses nothing that was recorded."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from turnout.spend.ledger import UNITS_PER_USD, BudgetHold
from turnout.store.messages import Message

SCOPE_COLUMNS: dict[str, Any] = {  # the record column a budget scope matches (global: every record)
    "tenant": Message.tenant_id,
    "agent": Message.agent_id,
    "api_key": Message.api_key_id,
    "model": Message.model,
    "policy": Message.policy,
}


class RecordSeed:
    """Sums ``messages.cost_usd`` for a budget's scope and period."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def __call__(self, hold: BudgetHold) -> int:
        budget = hold.budget
        query = select(func.sum(Message.cost_usd)).where(Message.created_at >= hold.period_start)
        if hold.period_end is not None:
            query = query.where(Message.created_at < hold.period_end)
        if budget.tenant_id is not None:
            query = query.where(Message.tenant_id == budget.tenant_id)
        column = SCOPE_COLUMNS.get(budget.scope)
        if column is not None:
            query = query.where(column == budget.scope_id)
        async with self._sessions() as session:
            total = await session.scalar(query)
        return int((Decimal(total or 0) * UNITS_PER_USD).to_integral_value())
