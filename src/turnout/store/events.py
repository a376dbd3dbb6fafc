"""The events outbox and the webhook tables.

``events`` is the transactional outbox: an event is written in the same transaction as the change
that caused it (a rating, a budget alert, a sync), or, for a call, copied from its Message row
(flagged ``event_pending`` when it was stored). Delivery reads it from there: to NATS JetStream and
to the tenant's webhooks, each with its own pending flag, so neither waits for the other and
nothing is lost while one is down. ``seq`` orders the outbox; ``id`` is the event's identity,
the same on every delivery, for consumers to deduplicate."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnClause,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    column,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from turnout.ids import new_ordered_id
from turnout.store.models import Base, utcnow

# Partial-index predicates: a bare mapped_column is not yet a SQL expression inside the class body.
_NATS_PENDING: ColumnClause[bool] = column("nats_pending")
_HOOKS_PENDING: ColumnClause[bool] = column("hooks_pending")

SeqType = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER keys only


class Event(Base):
    """One event in the outbox."""

    __tablename__ = "events"

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(64))
    tenant_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # None: platform-wide
    payload: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    nats_pending: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    hooks_pending: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())

    __table_args__ = (
        UniqueConstraint("id", name="uq_events_id"),
        Index("ix_events_nats_pending", "seq", postgresql_where=_NATS_PENDING, sqlite_where=_NATS_PENDING),
        Index("ix_events_hooks_pending", "seq", postgresql_where=_HOOKS_PENDING, sqlite_where=_HOOKS_PENDING),
    )


class Webhook(Base):
    """A tenant's subscription: event types delivered, signed, to a URL. Its signing secret lives in
    the secret store (``webhook:<id>``), never in this table."""

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    event_types: Mapped[list[str]] = mapped_column()
    description: Mapped[str | None] = mapped_column(String(200), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class WebhookDelivery(Base):
    """One event on its way to one webhook: pending (retried with backoff), delivered, or dead (the
    dead-letter list, after the last attempt)."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    webhook_id: Mapped[str] = mapped_column(String(32), ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(64))
    tenant_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending | delivered | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the receiver's HTTP status
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(nullable=True)

    __table_args__ = (
        UniqueConstraint("webhook_id", "event_id", name="uq_webhook_delivery"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_tenant", "tenant_id", "status"),
    )


def event_row(event_type: str, tenant_id: str | None, payload: dict[str, Any]) -> dict[str, Any]:
    """A new outbox row's columns, for a Core insert in the caller's own transaction."""
    return {
        "id": f"evt_{new_ordered_id()}",
        "type": event_type,
        "tenant_id": tenant_id,
        "payload": payload,
        "created_at": utcnow(),
        "nats_pending": True,
        "hooks_pending": True,
    }


def stage_event(
    session: AsyncSession,
    event_type: str,
    tenant_id: str | None,
    payload: dict[str, Any],
    event_id: str | None = None,
) -> Event:
    """Add an event to the outbox in ``session``'s transaction: it is delivered only if the change
    that caused it commits, and it is never lost once that change has."""
    row = event_row(event_type, tenant_id, payload)
    if event_id is not None:
        row["id"] = event_id
    event = Event(**row)
    session.add(event)
    return event
