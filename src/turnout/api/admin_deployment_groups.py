"""Platform-admin API for deployment groups: one name for several deployments of a model."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from turnout.api.auth import require_platform_admin
from turnout.api.deps import container_of as _container
from turnout.auth.principal import Principal
from turnout.catalog.groups import GroupCreate, GroupList, GroupOut, GroupUpdate
from turnout.catalog.schemas import ALIAS_PATTERN

router = APIRouter(prefix="/api/v2/admin/deployment-groups", tags=["deployment groups"])
Admin = Annotated[Principal, Depends(require_platform_admin)]
GroupName = Annotated[str, Path(pattern=ALIAS_PATTERN)]


@router.get("", response_model=GroupList)
async def list_groups(request: Request, _: Admin) -> GroupList:
    return await _container(request).deployment_groups.list()


@router.post("", response_model=GroupOut, status_code=201)
async def create_group(request: Request, body: GroupCreate, principal: Admin) -> GroupOut:
    """Members are catalog ids with weights; clients then send the group's name as `model`."""
    return await _container(request).deployment_groups.create(body, principal)


@router.get("/{name}", response_model=GroupOut)
async def get_group(request: Request, name: GroupName, _: Admin) -> GroupOut:
    return await _container(request).deployment_groups.get(name)


@router.patch("/{name}", response_model=GroupOut)
async def update_group(request: Request, name: GroupName, body: GroupUpdate, _: Admin) -> GroupOut:
    """Change the strategy, the members (the whole list) or the description."""
    return await _container(request).deployment_groups.update(name, body)


@router.delete("/{name}", status_code=204)
async def delete_group(request: Request, name: GroupName, _: Admin) -> None:
    await _container(request).deployment_groups.delete(name)
