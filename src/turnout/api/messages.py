"""Call records API (`/api/v2/messages`): list with filters and keyset pages, and one call in full."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from turnout.api.auth import require_roles
from turnout.api.deps import container_of as _container
from turnout.auth.principal import Principal
from turnout.records.queries import MAX_LIMIT, MessageDetail, MessageFilter, MessagePage, Status

router = APIRouter(prefix="/api/v2/messages", tags=["messages"])
Admin = Annotated[Principal, Depends(require_roles("tenant_admin", "platform_admin"))]


@router.get("", response_model=MessagePage)
async def list_messages(
    request: Request,
    principal: Admin,
    tenant_id: Annotated[str | None, Query(max_length=64, description="platform admins only")] = None,
    agent_id: Annotated[str | None, Query(max_length=64)] = None,
    model: Annotated[str | None, Query(max_length=512)] = None,
    provider: Annotated[str | None, Query(max_length=50)] = None,
    status: Status | None = None,
    task_type: Annotated[str | None, Query(max_length=50)] = None,
    client_request_id: Annotated[
        str | None, Query(max_length=512, description="the id the caller gave the call (X-Client-Request-Id)")
    ] = None,
    since: Annotated[datetime | None, Query(description="created at or after (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="created before (ISO 8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    cursor: Annotated[str | None, Query(max_length=300, description="next_cursor of the last page")] = None,
) -> MessagePage:
    """Calls of the caller's tenant (every tenant's for platform admins), newest first."""
    flt = MessageFilter(
        tenant_id=tenant_id, agent_id=agent_id, model=model, provider=provider, status=status,
        task_type=task_type, client_request_id=client_request_id, since=since, until=until,
    )  # fmt: skip
    return await _container(request).messages.list(flt, principal, limit=limit, cursor=cursor)


@router.get("/{message_id}", response_model=MessageDetail)
async def get_message(
    request: Request, principal: Admin, message_id: Annotated[str, Path(max_length=36)]
) -> MessageDetail:
    """One call: attempts, fallback used, the routing decision, tokens, cost, error and rating."""
    return await _container(request).messages.get(message_id, principal)
