"""ORM entities of spend control: budgets, rate limits, and the alerts budgets raise.

The counters themselves (what a budget has spent and holds reserved in its period) are not rows:
spent is the sum of the records' ``cost_usd`` (the ledger is rebuilt from them), and the live
counters sit in the ledger (this process, or Redis shared by the replicas)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Float, Index, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from turnout.store.models import Base, utcnow


class Budget(Base):
    """A spending cap on a scope for a period (UTC), with an alert threshold and an action."""

    __tablename__ = "budgets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # None: every tenant (global)
    name: Mapped[str] = mapped_column(String(200))
    scope: Mapped[str] = mapped_column(String(20))  # global | tenant | agent | api_key | model | policy
    scope_id: Mapped[str | None] = mapped_column(String(512), nullable=True)
    period: Mapped[str] = mapped_column(String(10))  # daily | weekly | monthly | total
    amount_usd: Mapped[Decimal] = mapped_column(Numeric(18, 8))
    alert_threshold: Mapped[float] = mapped_column(Float, default=0.8)
    action: Mapped[str] = mapped_column(String(20))  # block | downgrade | pause_expensive
    created_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("ix_budget_tenant", "tenant_id"),)


class RateLimit(Base):
    """Requests per minute, tokens per minute and concurrent requests for a key, agent or tenant."""

    __tablename__ = "rate_limits"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(20))  # tenant | agent | api_key
    scope_id: Mapped[str] = mapped_column(String(64))
    rpm: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tpm: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_concurrent: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (UniqueConstraint("tenant_id", "scope", "scope_id", name="uq_rate_limit_scope"),)


class BudgetAlert(Base):
    """A budget crossed its alert threshold, or was exhausted, in one period (once per kind)."""

    __tablename__ = "budget_alerts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    budget_id: Mapped[str] = mapped_column(String(36))
    tenant_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    budget_name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # threshold | exhausted
    period_start: Mapped[datetime] = mapped_column()
    spent_usd: Mapped[Decimal] = mapped_column(Numeric(18, 8))
    amount_usd: Mapped[Decimal] = mapped_column(Numeric(18, 8))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint("budget_id", "kind", "period_start", name="uq_budget_alert_once"),  # replicas race
        Index("ix_budget_alert_tenant_created", "tenant_id", "created_at"),
    )
