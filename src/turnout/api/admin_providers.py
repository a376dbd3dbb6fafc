"""Platform-admin API for providers: CRUD, key storage, connection test, sync."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from turnout.api.auth import require_platform_admin
from turnout.api.deps import container_of as _container
from turnout.auth.principal import Principal
from turnout.catalog.fetch import test_connection
from turnout.catalog.schemas import (
    PROVIDER_ID_PATTERN,
    ConnectionTest,
    ProviderCreate,
    ProviderList,
    ProviderOut,
    ProviderUpdate,
    SyncResult,
)
from turnout.catalog.sync import connection_of
from turnout.container import Container
from turnout.errors import TurnoutError

router = APIRouter(prefix="/api/v2/admin/providers", tags=["providers"])
Admin = Annotated[Principal, Depends(require_platform_admin)]
ProviderId = Annotated[str, Path(pattern=PROVIDER_ID_PATTERN)]


@router.get("", response_model=ProviderList)
async def list_providers(request: Request, _: Admin) -> ProviderList:
    items = await _container(request).providers.list()
    return ProviderList(items=items, total=len(items))


@router.post("", response_model=ProviderOut, status_code=201)
async def create_provider(request: Request, body: ProviderCreate, principal: Admin) -> ProviderOut:
    return await _container(request).providers.create(body, principal)


@router.get("/{provider_id}", response_model=ProviderOut)
async def get_provider(request: Request, provider_id: ProviderId, _: Admin) -> ProviderOut:
    return await _container(request).providers.get(provider_id)


@router.patch("/{provider_id}", response_model=ProviderOut)
async def update_provider(
    request: Request, provider_id: ProviderId, body: ProviderUpdate, _: Admin
) -> ProviderOut:
    return await _container(request).providers.update(provider_id, body)


@router.delete("/{provider_id}", response_model=ProviderOut)
async def deactivate_provider(request: Request, provider_id: ProviderId, _: Admin) -> ProviderOut:
    """Soft delete (``is_active=false``); its models stop being offered."""
    return await _container(request).providers.deactivate(provider_id)


@router.post("/{provider_id}/sync", response_model=SyncResult)
async def sync_provider(request: Request, provider_id: ProviderId, _: Admin) -> SyncResult:
    return await _container(request).sync.sync(provider_id)


@router.post("/{provider_id}/test", response_model=ConnectionTest)
async def test_provider(request: Request, provider_id: ProviderId, _: Admin) -> ConnectionTest:
    """Reach the provider's models endpoint with its key; report latency and what came back."""
    return await connection_test(_container(request), provider_id)


async def connection_test(container: Container, provider_id: str) -> ConnectionTest:
    """The connection test (the API's and the UI's): list models with the provider's key."""
    async with container.sessions() as session:
        provider = await container.providers.load(session, provider_id)
    try:
        key = await container.providers.api_key(provider)
    except TurnoutError as exc:
        return ConnectionTest(provider_id=provider_id, ok=False, latency_ms=0, error=exc.message)
    result = await test_connection(
        container.http.session(),
        connection_of(provider),
        key,
        timeout_s=container.settings.http_connect_timeout_s * 2,
    )
    return ConnectionTest(provider_id=provider_id, **result)
