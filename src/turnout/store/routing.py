"""ORM entities of agent model configuration, routing policies, settings and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from turnout.store.models import Base, utcnow


class AgentModelConfig(Base):
    """Which catalog models an agent may use (SRS AgentModelConfig)."""

    __tablename__ = "agent_model_config"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(64))
    model_id: Mapped[str] = mapped_column(ForeignKey("llm_model_catalog.id"))
    tenant_id: Mapped[str] = mapped_column(String(64))
    is_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    priority_override: Mapped[int | None] = mapped_column(Integer, nullable=True)
    enabled_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    enabled_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "agent_id"], ["agents.tenant_id", "agents.id"], name="fk_agent_model_config_agent"
        ),
        UniqueConstraint("tenant_id", "agent_id", "model_id", name="uq_agent_model"),
        Index("ix_agent_model_enabled", "tenant_id", "agent_id", "is_enabled"),
    )


class AuditEntry(Base):
    """Who changed what, when, with the state before and after."""

    __tablename__ = "audit_log"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(50))
    entity_type: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[str] = mapped_column(String(600))
    before: Mapped[dict[str, Any]] = mapped_column(default=dict)
    after: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_audit_tenant_created", "tenant_id", "created_at"),)


class RoutingPolicy(Base):
    """A named routing policy (normal, deep_research, code, ops, ...)."""

    __tablename__ = "routing_policies"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    description: Mapped[str] = mapped_column(String(500), default="")
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SettingEntry(Base):
    """A JSON setting changed through the admin API (task maps, task -> policy map, router weights)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Feedback(Base):
    """The current rating of a message (rating again replaces it); mirrored on the Message row."""

    __tablename__ = "feedback"

    message_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    agent_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    model: Mapped[str] = mapped_column(String(512))
    task_type: Mapped[str] = mapped_column(String(50))
    rating: Mapped[float] = mapped_column(Float)
    feedback_type: Mapped[str] = mapped_column(String(20))
    comment: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    corrections: Mapped[dict[str, Any]] = mapped_column(default=dict)
    given_by: Mapped[str] = mapped_column(String(255))
    origin: Mapped[str] = mapped_column(String(36), default="")  # replica that took the rating
    message_created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # the rated answer's prompt features (float32 bytes), when the prompt memory routed it: every
    # replica adds the rated prompt to its memory (the first rating's; a re-rating keeps it)
    prompt_vector: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, default=None)

    __table_args__ = (Index("ix_feedback_updated", "updated_at"), Index("ix_feedback_tenant", "tenant_id"))
