"""Webhook subscriptions, tenant-scoped: create, read, update, delete, rotate the signing secret, send
a test event, and the deliveries (history and dead letters) with their retry.

A webhook's signing secret (``whsec_`` + base64 of 32 random bytes, the Standard Webhooks form) is
kept in the secret store under ``webhook@<id>`` (``@`` never appears in a provider id, so the two
cannot collide), never in the database; it is shown once, when it is created or rotated.

URLs are checked like provider URLs (``net.ssrf``) and more strictly: ``https``, or ``http`` on a
loopback address only; link-local, cloud-metadata and private addresses (literal or resolved) are
refused unless ``allow_private_api_base`` is on. Tenant admins see their own tenant's webhooks only:
another tenant's is 404, as if it did not exist.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import secrets as random_bytes
import socket
from collections.abc import Callable
from datetime import datetime
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from turnout.auth.principal import Principal
from turnout.errors import Conflict, Forbidden, InvalidRequest, NotFound
from turnout.ids import new_hex, new_id
from turnout.net.ssrf import (
    IPAddress,
    canonical_host,
    check_api_base,
    embedded_ipv4,
    is_blocked_host,
    parse_ip,
)
from turnout.secrets.base import SecretStore
from turnout.store.events import Event, Webhook, WebhookDelivery, stage_event
from turnout.store.models import utcnow

ALL_EVENTS = "*"
EVENT_TYPES = (
    "model.request.completed",
    "model.request.failed",
    "model.request.cancelled",
    "model.feedback.received",
    "budget.threshold_crossed",
    "budget.exhausted",
    "provider.sync.completed",
    "provider.sync.failed",
)
TEST_EVENT = "webhook.test"  # sent by the test action only, to the one webhook it names
SECRET_PREFIX = "whsec_"
DeliveryStatus = Literal["pending", "delivered", "dead"]


# -- bodies ------------------------------------------------------------------------------------------


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    url: str = Field(min_length=1, max_length=2048, description="https, or http on a loopback address")
    event_types: list[str] = Field(
        min_length=1, max_length=32, description=f"any of {', '.join(EVENT_TYPES)}; '*' for all"
    )
    description: str | None = Field(default=None, max_length=200)
    active: bool = Field(default=True, strict=True)  # "yes" is no boolean


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    url: str | None = Field(default=None, min_length=1, max_length=2048)
    event_types: list[str] | None = Field(default=None, min_length=1, max_length=32)
    description: str | None = Field(default=None, max_length=200)
    active: bool | None = Field(default=None, strict=True)


class WebhookOut(BaseModel):
    id: str
    tenant_id: str
    url: str
    event_types: list[str]
    description: str | None
    active: bool
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="the signing secret, shown this once: store it now")


class WebhookList(BaseModel):
    items: list[WebhookOut]


class WebhookSecret(BaseModel):
    id: str
    secret: str = Field(description="the new signing secret, shown this once; the old one stops now")


class TestSent(BaseModel):
    delivery_id: str
    event_id: str


class DeliveryOut(BaseModel):
    id: str
    webhook_id: str
    event_id: str
    event_type: str | None
    tenant_id: str
    status: str
    attempts: int
    next_attempt_at: datetime | None = Field(description="when it is tried next; none once delivered or dead")
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class DeliveryList(BaseModel):
    items: list[DeliveryOut]
    limit: int
    offset: int


# -- checks ------------------------------------------------------------------------------------------


def check_event_types(event_types: list[str]) -> list[str]:
    """The subscribed types, deduplicated in order; an unknown one is a 400 naming the field."""
    known = {*EVENT_TYPES, ALL_EVENTS}
    for event_type in event_types:
        if event_type not in known:
            raise InvalidRequest(
                f"event_types: unknown event type {event_type!r}; known: {', '.join(EVENT_TYPES)}, or '*'",
                param="event_types",
                code="unknown_event_type",
            )
    return list(dict.fromkeys(event_types))


def _is_loopback(ip: IPAddress) -> bool:
    return ip.is_loopback or any(v4.is_loopback for v4 in _embedded(ip))


def _embedded(ip: IPAddress) -> list[ipaddress.IPv4Address]:
    return embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else []


def _is_private(ip: IPAddress) -> bool:
    """An internal address other than loopback: private ranges, CGNAT, unspecified, multicast."""
    for candidate in (ip, *_embedded(ip)):
        if candidate.is_loopback:
            continue
        shared = isinstance(candidate, ipaddress.IPv4Address) and candidate in _CGNAT
        if candidate.is_private or candidate.is_unspecified or candidate.is_multicast or shared:
            return True
    return False


_CGNAT = ipaddress.ip_network("100.64.0.0/10")


def check_webhook_url(url: str, *, allow_private: bool) -> str:
    """``url`` if a webhook may be sent there, else InvalidRequest naming ``url``. Blocking (it
    resolves the host): call it in a thread."""
    try:
        parts = urlsplit(url)
        host = canonical_host(parts.hostname or "")
    except ValueError as exc:  # an unclosed IPv6 bracket, say
        raise InvalidRequest(f"url is not a valid URL: {exc}", param="url") from exc
    literal = parse_ip(host)
    loopback = host == "localhost" or (literal is not None and _is_loopback(literal))
    if not allow_private and host and is_blocked_host(host):  # the reason that matters most, first
        raise InvalidRequest(
            "url points to a link-local or cloud-metadata address", param="url", code="ssrf_blocked"
        )
    if parts.scheme != "https" and not loopback:  # before any DNS lookup: refused whatever it resolves to
        raise InvalidRequest(
            "url must be https (plain http only on a loopback address)", param="url", code="insecure_url"
        )
    check_api_base(url, allow_private=allow_private, param="url")  # scheme, host, credentials, metadata
    if allow_private or loopback:
        return url
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            infos = []  # not resolvable now: the connect-time resolver still guards it
        addresses = [ip for info in infos if (ip := parse_ip(str(info[4][0]))) is not None]
    if any(_is_private(ip) or _is_loopback(ip) for ip in addresses):
        raise InvalidRequest(
            "url points to a private address; set TURNOUT_ALLOW_PRIVATE_API_BASE=true to allow it",
            param="url",
            code="ssrf_blocked",
        )
    return url


def new_secret() -> str:
    """A fresh signing secret in the Standard Webhooks form."""
    return SECRET_PREFIX + base64.b64encode(random_bytes.token_bytes(32)).decode("ascii")


def secret_ref(store: SecretStore, webhook_id: str) -> str:
    """Where a webhook's signing secret lives in the secret store."""
    return store.ref_for(f"webhook@{webhook_id}")


def _out(hook: Webhook) -> WebhookOut:
    return WebhookOut(
        id=hook.id,
        tenant_id=hook.tenant_id,
        url=hook.url,
        event_types=list(hook.event_types),
        description=hook.description,
        active=hook.active,
        created_at=hook.created_at,
        updated_at=hook.updated_at,
    )


def _nothing() -> None:
    """Default wake-up hook: no dispatcher to wake."""


# -- the service -------------------------------------------------------------------------------------


class WebhookService:
    """The control-plane operations on webhooks and their deliveries."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        secrets: SecretStore,
        *,
        allow_private: bool,
        wake: Callable[[], None] = _nothing,
    ) -> None:
        self._sessions = sessions
        self._secrets = secrets
        self._allow_private = allow_private
        self.wake = wake  # the dispatcher's: a test or a retried delivery leaves at once
        self.subscribed: Callable[[], None] = _nothing  # the events hub's: there is a subscriber now

    async def _check_url(self, url: str) -> str:
        return await asyncio.to_thread(check_webhook_url, url, allow_private=self._allow_private)

    async def create(
        self, body: WebhookCreate, principal: Principal, tenant: str | None = None
    ) -> WebhookCreated:
        """Store the secret first (fail closed), then the row; the secret is returned this once."""
        tenant_id = _tenant_for(principal, tenant)
        event_types = check_event_types(body.event_types)
        url = await self._check_url(body.url)
        hook_id = new_hex()
        secret = new_secret()
        ref = secret_ref(self._secrets, hook_id)
        await self._secrets.put(ref, secret)
        now = utcnow()
        hook = Webhook(
            id=hook_id,
            tenant_id=tenant_id,
            url=url,
            event_types=event_types,
            description=body.description,
            active=body.active,
            created_at=now,
            updated_at=now,
        )
        try:
            async with self._sessions.begin() as session:
                session.add(hook)
        except Exception:
            await self._secrets.delete(ref)
            raise
        if hook.active:
            self.subscribed()  # calls produce events from now on, not from the next check
        return WebhookCreated(**_out(hook).model_dump(), secret=secret)

    async def list(self, principal: Principal, tenant: str | None = None) -> WebhookList:
        """The caller's tenant's webhooks; a platform admin's: every tenant's, or ``tenant``'s."""
        query = select(Webhook).order_by(Webhook.created_at, Webhook.id)
        scope = _tenant_filter(principal, tenant)
        if scope is not None:
            query = query.where(Webhook.tenant_id == scope)
        async with self._sessions() as session:
            return WebhookList(items=[_out(h) for h in (await session.scalars(query)).all()])

    async def get(self, webhook_id: str, principal: Principal) -> WebhookOut:
        async with self._sessions() as session:
            return _out(await _load(session, webhook_id, principal))

    async def update(self, webhook_id: str, body: WebhookUpdate, principal: Principal) -> WebhookOut:
        changes = body.model_dump(exclude_unset=True)
        for name in ("url", "event_types", "active"):
            if name in changes and changes[name] is None:
                raise InvalidRequest(f"{name} cannot be null", param=name)
        if "event_types" in changes:
            changes["event_types"] = check_event_types(changes["event_types"])
        if "url" in changes:
            changes["url"] = await self._check_url(changes["url"])
        async with self._sessions.begin() as session:
            hook = await _load(session, webhook_id, principal)
            for name, value in changes.items():
                setattr(hook, name, value)
            hook.updated_at = utcnow()
        if changes.get("active"):
            self.subscribed()  # calls produce events from now on, as when one is created
            self.wake()  # deliveries held while it was inactive may leave now
        return _out(hook)

    async def delete(self, webhook_id: str, principal: Principal) -> None:
        """The webhook, its deliveries and its secret."""
        async with self._sessions.begin() as session:
            hook = await _load(session, webhook_id, principal)
            await session.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id))
            await session.delete(hook)
        await self._secrets.delete(secret_ref(self._secrets, webhook_id))

    async def rotate_secret(self, webhook_id: str, principal: Principal) -> WebhookSecret:
        """A new signing secret, in force from the next delivery on."""
        async with self._sessions() as session:
            hook = await _load(session, webhook_id, principal)
        secret = new_secret()
        await self._secrets.put(secret_ref(self._secrets, hook.id), secret)
        return WebhookSecret(id=hook.id, secret=secret)

    async def send_test(self, webhook_id: str, principal: Principal) -> TestSent:
        """A ``webhook.test`` event for the webhook's tenant, delivered to this webhook only (it goes
        through the outbox like any event, but neither to NATS nor to the tenant's other webhooks)."""
        async with self._sessions.begin() as session:
            hook = await _load(session, webhook_id, principal)
            if not hook.active:
                raise Conflict("the webhook is inactive: activate it first", param="active", code="inactive")
            event = stage_event(
                session, TEST_EVENT, hook.tenant_id, {"webhook_id": hook.id, "message": "a test event"}
            )
            event.hooks_pending = False
            event.nats_pending = False
            delivery = WebhookDelivery(
                id=new_id(),
                webhook_id=hook.id,
                event_id=event.id,
                tenant_id=hook.tenant_id,
                status="pending",
                attempts=0,
                next_attempt_at=event.created_at,
                created_at=event.created_at,
            )
            session.add(delivery)
        self.wake()
        return TestSent(delivery_id=delivery.id, event_id=event.id)

    async def deliveries(
        self,
        principal: Principal,
        *,
        status: DeliveryStatus | None = None,
        webhook_id: str | None = None,
        tenant: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> DeliveryList:
        """Deliveries newest first: the history, or with ``status=dead`` the dead-letter list."""
        query = (
            select(WebhookDelivery, Event.type)
            .outerjoin(Event, Event.id == WebhookDelivery.event_id)
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
            .limit(limit)
            .offset(offset)
        )
        scope = _tenant_filter(principal, tenant)
        if scope is not None:
            query = query.where(WebhookDelivery.tenant_id == scope)
        if status is not None:
            query = query.where(WebhookDelivery.status == status)
        if webhook_id is not None:
            query = query.where(WebhookDelivery.webhook_id == webhook_id)
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        return DeliveryList(items=[_delivery_out(d, t) for d, t in rows], limit=limit, offset=offset)

    async def retry(self, delivery_id: str, principal: Principal) -> DeliveryOut:
        """A dead delivery back to pending, due now, with its attempts counted afresh."""
        async with self._sessions.begin() as session:
            delivery = await session.get(WebhookDelivery, delivery_id)
            if delivery is None or not _may_see(principal, delivery.tenant_id):
                raise NotFound(f"delivery '{delivery_id}' not found", param="delivery_id")
            if delivery.status != "dead":
                raise Conflict(
                    f"only a dead delivery can be retried (this one is {delivery.status})",
                    param="delivery_id",
                    code="not_dead",
                )
            delivery.status = "pending"
            delivery.attempts = 0
            delivery.next_attempt_at = utcnow()
            event_type = await session.scalar(select(Event.type).where(Event.id == delivery.event_id))
        self.wake()
        return _delivery_out(delivery, event_type)


def _delivery_out(delivery: WebhookDelivery, event_type: str | None) -> DeliveryOut:
    return DeliveryOut(
        id=delivery.id,
        webhook_id=delivery.webhook_id,
        event_id=delivery.event_id,
        event_type=event_type,
        tenant_id=delivery.tenant_id,
        status=delivery.status,
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at if delivery.status == "pending" else None,
        last_status=delivery.last_status,
        last_error=delivery.last_error,
        created_at=delivery.created_at,
        delivered_at=delivery.delivered_at,
    )


def _is_platform(principal: Principal) -> bool:
    return principal.has_any("platform_admin")


def _may_see(principal: Principal, tenant_id: str) -> bool:
    return _is_platform(principal) or tenant_id == principal.tenant_id


def _tenant_for(principal: Principal, tenant: str | None) -> str:
    """The tenant a new webhook belongs to: the caller's, or any a platform admin names."""
    if tenant is None or tenant == principal.tenant_id:
        return principal.tenant_id
    if not _is_platform(principal):
        raise Forbidden("a tenant admin manages its own tenant's webhooks only", param="tenant")
    return tenant


def _tenant_filter(principal: Principal, tenant: str | None) -> str | None:
    """The tenant a listing is limited to (None: every tenant, for a platform admin naming none)."""
    if _is_platform(principal):
        return tenant
    return _tenant_for(principal, tenant)


async def _load(session: AsyncSession, webhook_id: str, principal: Principal) -> Webhook:
    hook = await session.get(Webhook, webhook_id)
    if hook is None or not _may_see(principal, hook.tenant_id):
        raise NotFound(f"webhook '{webhook_id}' not found", param="webhook_id")
    return hook
