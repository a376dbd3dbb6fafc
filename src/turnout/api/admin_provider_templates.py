"""Platform-admin API for provider templates: list the known providers, create one from a template.

``POST /provider-templates/{template_id}/providers`` rather than ``POST /providers/from-template``:
the template is a resource (an unknown one is a plain 404 on its path, ``GET`` reads it), and the
providers' id space keeps no reserved word (``from-template`` is a valid provider id). The created
provider lives at ``/providers/{id}``, which the 201 answer's ``Location`` names.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response

from turnout.api.auth import require_platform_admin
from turnout.api.deps import container_of
from turnout.auth.principal import Principal
from turnout.catalog.schemas import (
    PROVIDER_ID_PATTERN,
    ProviderFromTemplate,
    ProviderOut,
    ProviderTemplateList,
    ProviderTemplateOut,
)
from turnout.catalog.templates import TEMPLATES, provider_create, template_for, template_out

router = APIRouter(prefix="/api/v2/admin/provider-templates", tags=["providers"])
Admin = Annotated[Principal, Depends(require_platform_admin)]
TemplateId = Annotated[str, Path(pattern=PROVIDER_ID_PATTERN)]


@router.get("", response_model=ProviderTemplateList)
async def list_templates(_: Admin) -> ProviderTemplateList:
    """Every template; ``available: false`` where this build lacks its provider type."""
    items = [template_out(t) for t in TEMPLATES]
    return ProviderTemplateList(items=items, total=len(items))


@router.get("/{template_id}", response_model=ProviderTemplateOut)
async def get_template(template_id: TemplateId, _: Admin) -> ProviderTemplateOut:
    return template_out(template_for(template_id))


@router.post("/{template_id}/providers", response_model=ProviderOut, status_code=201)
async def create_from_template(
    request: Request,
    response: Response,
    template_id: TemplateId,
    body: ProviderFromTemplate,
    principal: Admin,
) -> ProviderOut:
    """Register the template's provider: the same checks, secret storage and refresh as
    ``POST /providers`` (it is the same service call)."""
    create = provider_create(template_for(template_id), body)
    created = await container_of(request).providers.create(create, principal)
    response.headers["Location"] = f"/api/v2/admin/providers/{created.id}"
    return created
