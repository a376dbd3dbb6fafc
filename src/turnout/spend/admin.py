"""Admins' operations on budgets and rate limits, with the agents' tenant rules: a tenant admin
works in its own tenant; only a platform admin sets a global budget or one on another tenant.

A scope id must name something of the caller's tenant (an agent, an API key), or of the catalog (a
model, a policy): a budget on another tenant's agent is refused like an unknown one (400), so it
reveals nothing. Writes take effect in this replica's snapshot at once."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from turnout.auth.principal import Principal
from turnout.domain.budgets import period_end, period_start
from turnout.domain.snapshot import SnapshotStore, budget_view
from turnout.errors import Conflict, Forbidden, InvalidRequest, NotFound
from turnout.spend.guard import SpendGuard
from turnout.spend.ledger import BudgetHold, LedgerUnavailable, units, usd_of
from turnout.spend.schemas import (
    BudgetCreate,
    BudgetList,
    BudgetOut,
    BudgetUpdate,
    LimitCreate,
    LimitList,
    LimitOut,
    LimitUpdate,
)
from turnout.store.agents import Agent, ApiKey
from turnout.store.spend import Budget, RateLimit


def _is_platform(principal: Principal) -> bool:
    return principal.has_any("platform_admin")


class SpendAdmin:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], snapshots: SnapshotStore, guard: SpendGuard
    ) -> None:
        self._sessions = sessions
        self._snapshots = snapshots
        self._guard = guard

    # -- budgets ---------------------------------------------------------------------------------

    async def create_budget(self, body: BudgetCreate, principal: Principal) -> BudgetOut:
        tenant_id, scope_id = await self._scope(body.scope, body.scope_id, principal)
        budget = Budget(
            id=str(uuid.uuid4()),
            tenant_id=tenant_id,
            name=body.name,
            scope=body.scope,
            scope_id=scope_id,
            period=body.period,
            amount_usd=Decimal(str(body.amount_usd)),
            alert_threshold=body.alert_threshold,
            action=body.action,
            created_by=principal.subject,
        )
        async with self._sessions.begin() as session:
            session.add(budget)
        await self._snapshots.refresh()
        return await self._budget_out(budget)

    async def _scope(
        self, scope: str, scope_id: str | None, principal: Principal, what: str = "budgets"
    ) -> tuple[str | None, str | None]:
        """(tenant, scope id) of a new budget, checked against what the caller may see: the
        snapshot first, then the database for an agent or key it does not show yet (made a moment
        ago through another replica: automation behind a load balancer got a 400 for ~200 ms)."""
        snapshot = self._snapshots.current
        tenant = principal.tenant_id
        if scope == "global":
            if not _is_platform(principal):
                raise Forbidden("only a platform admin sets a global budget", param="scope")
            if scope_id:
                raise InvalidRequest("a global budget has no scope_id", param="scope_id")
            return None, None
        if scope == "tenant":
            wanted = scope_id or tenant
            if wanted != tenant and not _is_platform(principal):
                raise Forbidden(f"a tenant admin sets {what} on its own tenant only", param="scope_id")
            return wanted, wanted
        if not scope_id:
            raise InvalidRequest(f"scope_id is required for scope {scope}", param="scope_id")
        if scope == "agent" and (tenant, scope_id) not in snapshot.agents:
            async with self._sessions() as session:
                if await session.get(Agent, (tenant, scope_id)) is None:
                    raise InvalidRequest(f"no agent '{scope_id}' in this tenant", param="scope_id")
        if scope == "api_key":
            key = snapshot.keys.get(scope_id)
            owner = key.tenant_id if key is not None else None
            if key is None:
                async with self._sessions() as session:
                    stored = await session.get(ApiKey, scope_id)
                owner = stored.tenant_id if stored is not None else None
            if owner != tenant:
                raise InvalidRequest(f"no API key '{scope_id}' in this tenant", param="scope_id")
        if scope == "model":
            model = snapshot.resolve_model(scope_id)
            if model is None:
                raise InvalidRequest(f"no model '{scope_id}' in the catalog", param="scope_id")
            scope_id = model.id
        if scope == "policy":
            snapshot.check_policy(scope_id, "scope_id")
        return tenant, scope_id

    async def list_budgets(self, principal: Principal) -> BudgetList:
        query = select(Budget).order_by(Budget.created_at)
        if not _is_platform(principal):
            query = query.where(Budget.tenant_id == principal.tenant_id)
        async with self._sessions() as session:
            rows = (await session.scalars(query)).all()
        return BudgetList(items=[await self._budget_out(b) for b in rows])

    async def get_budget(self, budget_id: str, principal: Principal) -> BudgetOut:
        async with self._sessions() as session:
            return await self._budget_out(await self._load_budget(session, budget_id, principal))

    async def update_budget(self, budget_id: str, body: BudgetUpdate, principal: Principal) -> BudgetOut:
        changes = body.model_dump(exclude_unset=True)
        for name, value in changes.items():
            if value is None:
                raise InvalidRequest(f"{name} cannot be null", param=name)
        async with self._sessions.begin() as session:
            budget = await self._load_budget(session, budget_id, principal)
            for name, value in changes.items():
                setattr(budget, name, Decimal(str(value)) if name == "amount_usd" else value)
        await self._snapshots.refresh()
        return await self._budget_out(budget)

    async def delete_budget(self, budget_id: str, principal: Principal) -> None:
        async with self._sessions.begin() as session:
            await session.delete(await self._load_budget(session, budget_id, principal))
        await self._snapshots.refresh()

    async def _load_budget(self, session: AsyncSession, budget_id: str, principal: Principal) -> Budget:
        budget = await session.get(Budget, budget_id)
        if budget is None or (not _is_platform(principal) and budget.tenant_id != principal.tenant_id):
            raise NotFound(f"budget '{budget_id}' not found", param="budget_id")
        return budget

    async def _budget_out(self, budget: Budget) -> BudgetOut:
        view = budget_view(budget)
        now = self._guard.clock()
        start, end = period_start(view.period, now), period_end(view.period, now)
        out = BudgetOut(
            id=budget.id,
            name=budget.name,
            tenant_id=budget.tenant_id,
            scope=budget.scope,
            scope_id=budget.scope_id,
            period=budget.period,
            amount_usd=float(budget.amount_usd),
            alert_threshold=budget.alert_threshold,
            action=budget.action,
            period_start=start.isoformat(),
            period_end=end.isoformat() if end else None,
        )
        try:
            spent, reserved = await self._guard.ledger.balance(BudgetHold(view, start, end))
        except LedgerUnavailable:
            out.ledger = "unavailable"
            return out
        out.spent_usd, out.reserved_usd = usd_of(spent), usd_of(reserved)
        out.remaining_usd = usd_of(max(0, units(view.amount_usd) - spent - reserved))
        return out

    # -- rate limits -----------------------------------------------------------------------------

    async def create_limit(self, body: LimitCreate, principal: Principal) -> LimitOut:
        tenant_id, scope_id = await self._scope(body.scope, body.scope_id, principal, "rate limits")
        assert tenant_id is not None and scope_id is not None
        limit = RateLimit(
            id=str(uuid.uuid4()),
            tenant_id=tenant_id,
            scope=body.scope,
            scope_id=scope_id,
            rpm=body.rpm,
            tpm=body.tpm,
            max_concurrent=body.max_concurrent,
        )
        try:
            async with self._sessions.begin() as session:
                session.add(limit)
        except IntegrityError:
            raise Conflict(f"the {body.scope} '{scope_id}' already has a rate limit: change it") from None
        await self._snapshots.refresh()
        return _limit_out(limit)

    async def list_limits(self, principal: Principal) -> LimitList:
        query = select(RateLimit).order_by(RateLimit.created_at)
        if not _is_platform(principal):
            query = query.where(RateLimit.tenant_id == principal.tenant_id)
        async with self._sessions() as session:
            return LimitList(items=[_limit_out(r) for r in (await session.scalars(query)).all()])

    async def update_limit(self, limit_id: str, body: LimitUpdate, principal: Principal) -> LimitOut:
        async with self._sessions.begin() as session:
            limit = await self._load_limit(session, limit_id, principal)
            for name, value in body.model_dump(exclude_unset=True).items():
                setattr(limit, name, value)
            if limit.rpm is None and limit.tpm is None and limit.max_concurrent is None:
                raise InvalidRequest("a rate limit needs one of rpm, tpm, max_concurrent: delete it instead")
        await self._snapshots.refresh()
        return _limit_out(limit)

    async def delete_limit(self, limit_id: str, principal: Principal) -> None:
        async with self._sessions.begin() as session:
            await session.delete(await self._load_limit(session, limit_id, principal))
        await self._snapshots.refresh()

    async def _load_limit(self, session: AsyncSession, limit_id: str, principal: Principal) -> RateLimit:
        limit = await session.get(RateLimit, limit_id)
        if limit is None or (not _is_platform(principal) and limit.tenant_id != principal.tenant_id):
            raise NotFound(f"rate limit '{limit_id}' not found", param="limit_id")
        return limit


def _limit_out(limit: RateLimit) -> LimitOut:
    return LimitOut(
        id=limit.id,
        tenant_id=limit.tenant_id,
        scope=limit.scope,
        scope_id=limit.scope_id,
        rpm=limit.rpm,
        tpm=limit.tpm,
        max_concurrent=limit.max_concurrent,
    )
