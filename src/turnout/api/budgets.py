"""Admin API for spend control: budgets (`/api/v2/budgets`), their alerts, and rate limits
(`/api/v2/limits`), with the agents' tenant rules."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from turnout.api.auth import require_roles
from turnout.api.deps import container_of as _container
from turnout.auth.principal import Principal
from turnout.spend.alerts import AlertList
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

router = APIRouter(tags=["spend"])
TenantAdmin = Annotated[Principal, Depends(require_roles("tenant_admin", "platform_admin"))]
ItemId = Annotated[str, Path(min_length=1, max_length=36)]


@router.post("/api/v2/budgets", response_model=BudgetOut, status_code=201)
async def create_budget(request: Request, body: BudgetCreate, principal: TenantAdmin) -> BudgetOut:
    """A budget on a scope for a period: ``block`` refuses calls that do not fit (429), ``downgrade``
    keeps routing to the free and low tiers, ``pause_expensive`` takes premium models out, until the
    period (UTC) resets; a ``downgrade`` budget spending ahead of an even pace makes routing weigh
    cost more before that."""
    return await _container(request).spend_admin.create_budget(body, principal)


@router.get("/api/v2/budgets", response_model=BudgetList)
async def list_budgets(request: Request, principal: TenantAdmin) -> BudgetList:
    return await _container(request).spend_admin.list_budgets(principal)


@router.get("/api/v2/budgets/alerts", response_model=AlertList)
async def budget_alerts(
    request: Request, principal: TenantAdmin, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> AlertList:
    """Budgets that crossed their alert threshold or were used up, newest first."""
    return await _container(request).spend.alerts.list(principal, limit)


@router.get("/api/v2/budgets/{budget_id}", response_model=BudgetOut)
async def get_budget(request: Request, budget_id: ItemId, principal: TenantAdmin) -> BudgetOut:
    """The budget with what it has spent, holds reserved and has left in this period, and when it resets."""
    return await _container(request).spend_admin.get_budget(budget_id, principal)


@router.patch("/api/v2/budgets/{budget_id}", response_model=BudgetOut)
async def update_budget(
    request: Request, budget_id: ItemId, body: BudgetUpdate, principal: TenantAdmin
) -> BudgetOut:
    return await _container(request).spend_admin.update_budget(budget_id, body, principal)


@router.delete("/api/v2/budgets/{budget_id}", status_code=204)
async def delete_budget(request: Request, budget_id: ItemId, principal: TenantAdmin) -> None:
    await _container(request).spend_admin.delete_budget(budget_id, principal)


@router.post("/api/v2/limits", response_model=LimitOut, status_code=201)
async def create_limit(request: Request, body: LimitCreate, principal: TenantAdmin) -> LimitOut:
    """Requests per minute, tokens per minute (prompt + max_tokens, corrected to the actual count)
    and concurrent requests for an API key, an agent or the tenant; answers carry
    ``x-ratelimit-*`` headers, refusals ``Retry-After``."""
    return await _container(request).spend_admin.create_limit(body, principal)


@router.get("/api/v2/limits", response_model=LimitList)
async def list_limits(request: Request, principal: TenantAdmin) -> LimitList:
    return await _container(request).spend_admin.list_limits(principal)


@router.patch("/api/v2/limits/{limit_id}", response_model=LimitOut)
async def update_limit(
    request: Request, limit_id: ItemId, body: LimitUpdate, principal: TenantAdmin
) -> LimitOut:
    return await _container(request).spend_admin.update_limit(limit_id, body, principal)


@router.delete("/api/v2/limits/{limit_id}", status_code=204)
async def delete_limit(request: Request, limit_id: ItemId, principal: TenantAdmin) -> None:
    await _container(request).spend_admin.delete_limit(limit_id, principal)
