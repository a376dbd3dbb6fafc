"""Tenant-admin API for agents and their API keys (`/api/v2/agents`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from turnout.agents.schemas import (
    AGENT_ID_PATTERN,
    AgentCreate,
    AgentList,
    AgentOut,
    AgentUpdate,
    KeyCreate,
    KeyIssued,
    KeyList,
    KeyOut,
)
from turnout.api.auth import require_roles
from turnout.api.deps import container_of as _container
from turnout.auth.principal import Principal

router = APIRouter(prefix="/api/v2/agents", tags=["agents"])
TenantAdmin = Annotated[Principal, Depends(require_roles("tenant_admin", "platform_admin"))]
AgentId = Annotated[str, Path(pattern=AGENT_ID_PATTERN)]


@router.post("", response_model=AgentOut, status_code=201)
async def create_agent(request: Request, body: AgentCreate, principal: TenantAdmin) -> AgentOut:
    return await _container(request).agents.create(body, principal)


@router.get("", response_model=AgentList)
async def list_agents(request: Request, principal: TenantAdmin) -> AgentList:
    return await _container(request).agents.list(principal)


@router.get("/{agent_id}", response_model=AgentOut)
async def get_agent(request: Request, agent_id: AgentId, principal: TenantAdmin) -> AgentOut:
    return await _container(request).agents.get(agent_id, principal)


@router.patch("/{agent_id}", response_model=AgentOut)
async def update_agent(
    request: Request, agent_id: AgentId, body: AgentUpdate, principal: TenantAdmin
) -> AgentOut:
    """Change name, capsule, default policy, or ``is_active`` (false: refused everywhere until true).

    Capsule ``allowed_models``: a list of model ids, or per role
    (``{"user": [...], "agent": [...], "*": [...]}``); a role not named gets the ``"*"`` list, or
    no model at all. Agent keys carry the role ``agent``; ``"*"`` inside a list admits every model."""
    return await _container(request).agents.update(agent_id, body, principal)


@router.delete("/{agent_id}", status_code=204)
async def delete_agent(request: Request, agent_id: AgentId, principal: TenantAdmin) -> None:
    """Delete the agent: its keys are revoked and it is refused everywhere. Soft: its id stays
    taken in this tenant, since records, ratings and the audit log name it (see AgentService.delete)."""
    await _container(request).agents.delete(agent_id, principal)


@router.post("/{agent_id}/keys", response_model=KeyIssued, status_code=201)
async def issue_key(
    request: Request, agent_id: AgentId, principal: TenantAdmin, body: KeyCreate | None = None
) -> KeyIssued:
    """Issue a key; the response is the only time it is shown."""
    return await _container(request).agents.issue_key(agent_id, body.name if body else None, principal)


@router.get("/{agent_id}/keys", response_model=KeyList)
async def list_keys(request: Request, agent_id: AgentId, principal: TenantAdmin) -> KeyList:
    return await _container(request).agents.list_keys(agent_id, principal)


@router.delete("/{agent_id}/keys/{key_id}", response_model=KeyOut)
async def revoke_key(
    request: Request, agent_id: AgentId, key_id: Annotated[str, Path(max_length=32)], principal: TenantAdmin
) -> KeyOut:
    return await _container(request).agents.revoke_key(agent_id, key_id, principal)
