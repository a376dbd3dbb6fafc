"""Tenant-admin API for the models each agent may use (`/api/v2/agents/{agent_id}/models`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from turnout.agents.model_config import (
    MAX_PAGE,
    AgentModels,
    AgentModelView,
    ConfigUpdate,
    ModelSelection,
    SelectionResult,
)
from turnout.agents.schemas import AGENT_ID_PATTERN
from turnout.api.auth import require_roles
from turnout.api.deps import container_of as _container
from turnout.auth.principal import Principal

router = APIRouter(prefix="/api/v2/agents/{agent_id}", tags=["agent models"])
TenantAdmin = Annotated[Principal, Depends(require_roles("tenant_admin", "platform_admin"))]
AgentId = Annotated[str, Path(pattern=AGENT_ID_PATTERN)]


@router.get("/models", response_model=AgentModels)
async def list_agent_models(
    request: Request,
    agent_id: AgentId,
    principal: TenantAdmin,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = MAX_PAGE,
) -> AgentModels:
    """The agent's configured models in id order, a page at a time, with the counts over all."""
    return await _container(request).agent_models.list_models(agent_id, principal, page, per_page)


@router.post("/models", response_model=SelectionResult)
async def enable_models(
    request: Request, agent_id: AgentId, body: ModelSelection, principal: TenantAdmin
) -> SelectionResult:
    """Enable models by id and/or by `bulk_filter` (provider, cost_tier, capability)."""
    return await _container(request).agent_models.set_enabled(agent_id, body, True, principal)


@router.post("/models/disable", response_model=SelectionResult)
async def disable_models(
    request: Request, agent_id: AgentId, body: ModelSelection, principal: TenantAdmin
) -> SelectionResult:
    """Disable models by id and/or by `bulk_filter`, without affecting other agents."""
    return await _container(request).agent_models.set_enabled(agent_id, body, False, principal)


@router.get("/audit")
async def agent_audit(request: Request, agent_id: AgentId, principal: TenantAdmin) -> dict[str, Any]:
    """Every enable, disable and priority change of the agent's models: who, when, before, after."""
    entries = await _container(request).agent_models.audit(agent_id, principal)
    return {"agent_id": agent_id, "entries": entries}


@router.delete("/models/{model_id:path}", response_model=SelectionResult)
async def disable_model(
    request: Request, agent_id: AgentId, model_id: str, principal: TenantAdmin
) -> SelectionResult:
    return await _container(request).agent_models.set_enabled(
        agent_id, ModelSelection(model_ids=[model_id]), False, principal
    )


@router.patch("/models/{model_id:path}", response_model=AgentModelView)
async def update_agent_model(
    request: Request, agent_id: AgentId, model_id: str, body: ConfigUpdate, principal: TenantAdmin
) -> AgentModelView:
    """Set `priority_override` (0-100, or null) and/or `is_enabled` for one model."""
    return await _container(request).agent_models.update(agent_id, model_id, body, principal)
