"""Webhooks (`/api/v2/webhooks`): a tenant's subscriptions, their test action, and the deliveries
(history and dead letters) with a retry. Tenant admins work in their own tenant (another tenant's
webhook is 404); platform admins may name any tenant with ``tenant``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from turnout.api.auth import require_roles
from turnout.api.deps import container_of as _container
from turnout.auth.principal import Principal
from turnout.events.webhooks import (
    DeliveryList,
    DeliveryOut,
    DeliveryStatus,
    TestSent,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookOut,
    WebhookSecret,
    WebhookUpdate,
)

router = APIRouter(prefix="/api/v2/webhooks", tags=["webhooks"])
TenantAdmin = Annotated[Principal, Depends(require_roles("tenant_admin", "platform_admin"))]
WebhookId = Annotated[str, Path(min_length=1, max_length=32)]
DeliveryId = Annotated[str, Path(min_length=1, max_length=36)]
Tenant = Annotated[str | None, Query(min_length=1, max_length=64, description="platform admins: any tenant")]


@router.post("", response_model=WebhookCreated, status_code=201)
async def create_webhook(
    request: Request, body: WebhookCreate, principal: TenantAdmin, tenant: Tenant = None
) -> WebhookCreated:
    """Subscribe a URL (https, or http on a loopback address) to event types (``*``: all). The
    answer holds the signing secret (``whsec_...``): it is shown this once."""
    return await _container(request).webhooks.create(body, principal, tenant)


@router.get("", response_model=WebhookList)
async def list_webhooks(request: Request, principal: TenantAdmin, tenant: Tenant = None) -> WebhookList:
    """The tenant's webhooks (a platform admin naming no tenant: every tenant's)."""
    return await _container(request).webhooks.list(principal, tenant)


@router.get("/deliveries", response_model=DeliveryList)
async def list_deliveries(
    request: Request,
    principal: TenantAdmin,
    status: Annotated[DeliveryStatus | None, Query(description="dead: the dead-letter list")] = None,
    webhook_id: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
    tenant: Tenant = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> DeliveryList:
    """Deliveries, newest first, with their attempts, last HTTP status and error."""
    return await _container(request).webhooks.deliveries(
        principal, status=status, webhook_id=webhook_id, tenant=tenant, limit=limit, offset=offset
    )


@router.post("/deliveries/{delivery_id}/retry", response_model=DeliveryOut)
async def retry_delivery(request: Request, delivery_id: DeliveryId, principal: TenantAdmin) -> DeliveryOut:
    """A dead delivery back to pending, due now, its attempts counted afresh."""
    return await _container(request).webhooks.retry(delivery_id, principal)


@router.get("/{webhook_id}", response_model=WebhookOut)
async def get_webhook(request: Request, webhook_id: WebhookId, principal: TenantAdmin) -> WebhookOut:
    return await _container(request).webhooks.get(webhook_id, principal)


@router.patch("/{webhook_id}", response_model=WebhookOut)
async def update_webhook(
    request: Request, webhook_id: WebhookId, body: WebhookUpdate, principal: TenantAdmin
) -> WebhookOut:
    """Change the URL, event types, description or active flag (inactive: it takes no new events,
    and deliveries already made for it wait)."""
    return await _container(request).webhooks.update(webhook_id, body, principal)


@router.delete("/{webhook_id}", status_code=204)
async def delete_webhook(request: Request, webhook_id: WebhookId, principal: TenantAdmin) -> None:
    """The webhook, its deliveries and its signing secret."""
    await _container(request).webhooks.delete(webhook_id, principal)


@router.post("/{webhook_id}/test", response_model=TestSent, status_code=202)
async def send_test(request: Request, webhook_id: WebhookId, principal: TenantAdmin) -> TestSent:
    """Send a ``webhook.test`` event to this webhook only; follow it in the deliveries."""
    return await _container(request).webhooks.send_test(webhook_id, principal)


@router.post("/{webhook_id}/rotate-secret", response_model=WebhookSecret)
async def rotate_secret(request: Request, webhook_id: WebhookId, principal: TenantAdmin) -> WebhookSecret:
    """A new signing secret, shown this once; deliveries are signed with it from now on."""
    return await _container(request).webhooks.rotate_secret(webhook_id, principal)
