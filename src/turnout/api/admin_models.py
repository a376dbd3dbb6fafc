"""Platform-admin API for the model catalog: list with filters, get, create, edit, bulk enable."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from turnout.api.auth import require_platform_admin
from turnout.api.deps import container_of as _container
from turnout.auth.principal import Principal
from turnout.catalog.schemas import (
    BulkModelUpdate,
    BulkResult,
    Capability,
    CostTier,
    ModelCreate,
    ModelDetail,
    ModelFilter,
    ModelPage,
    ModelType,
    ModelUpdate,
)

router = APIRouter(prefix="/api/v2/admin/models", tags=["models"])
Admin = Annotated[Principal, Depends(require_platform_admin)]


@router.get("", response_model=ModelPage)
async def list_models(
    request: Request,
    _: Admin,
    provider: Annotated[str | None, Query(max_length=50)] = None,
    cost_tier: CostTier | None = None,
    capability: Annotated[list[Capability] | None, Query()] = None,
    model_type: ModelType | None = None,
    available: bool | None = None,
    enabled: bool | None = None,
    q: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 20,
) -> ModelPage:
    """Models matching every given filter; ``capability`` may repeat and all must be present."""
    flt = ModelFilter(
        provider=provider,
        cost_tier=cost_tier,
        capability=capability or [],
        model_type=model_type,
        available=available,
        enabled=enabled,
        q=q,
    )
    return await _container(request).models.list(flt, page, per_page)


@router.post("", response_model=ModelDetail, status_code=201)
async def create_model(request: Request, body: ModelCreate, _: Admin) -> ModelDetail:
    return await _container(request).models.create(body)


@router.post("/bulk", response_model=BulkResult)
async def bulk_enable(request: Request, body: BulkModelUpdate, _: Admin) -> BulkResult:
    """Enable or disable every model matching a filter, e.g. all free models of a provider."""
    return await _container(request).models.bulk_set_enabled(body)


@router.get("/{model_id:path}", response_model=ModelDetail)
async def get_model(request: Request, model_id: str, _: Admin) -> ModelDetail:
    return await _container(request).models.get(model_id)


@router.patch("/{model_id:path}", response_model=ModelDetail)
async def update_model(request: Request, model_id: str, body: ModelUpdate, _: Admin) -> ModelDetail:
    return await _container(request).models.update(model_id, body)
