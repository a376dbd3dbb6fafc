"""Model performance per task (`/api/v2/admin/models/performance`) and its reset."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from turnout.api.auth import require_roles
from turnout.api.deps import container_of as _container
from turnout.auth.principal import Principal
from turnout.feedback.performance import ResetIn

router = APIRouter(prefix="/api/v2/admin/models/performance", tags=["performance"])
Admin = Annotated[Principal, Depends(require_roles("platform_admin", "tenant_admin"))]
PlatformAdmin = Annotated[Principal, Depends(require_roles("platform_admin"))]


@router.get("")
async def performance(
    request: Request,
    principal: Admin,
    task_type: Annotated[str | None, Query(max_length=50)] = None,
    agent_id: Annotated[str | None, Query(max_length=64)] = None,
    model_id: Annotated[str | None, Query(max_length=512)] = None,
    time_range: Annotated[
        str | None, Query(max_length=8, description="24h, 7d, 4w; all time when omitted")
    ] = None,
) -> dict[str, Any]:
    """avg_rating, usage_count, success and error rates, latency (avg, p95), cost and daily trend per
    model and task. Tenant admins see their own tenant; platform admins see every tenant."""
    return await _container(request).performance.report(
        principal, task_type=task_type, agent_id=agent_id, model_id=model_id, time_range=time_range
    )


@router.post("/reset")
async def reset_performance(request: Request, body: ResetIn, principal: PlatformAdmin) -> dict[str, Any]:
    """`model.performance.reset`: forget a model's learned experience (some task types, or all)."""
    return await _container(request).performance.reset(body, principal)
