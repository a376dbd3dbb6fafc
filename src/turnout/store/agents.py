"""ORM entities for agents and their API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKeyConstraint, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from turnout.store.models import Base, utcnow


class Agent(Base):
    """An AI assistant of a tenant; requests made with its keys are attributed to it.

    Its id is unique within its tenant only (the key is ``(tenant_id, id)``): a global id let a 409
    reveal, and reserve, other tenants' agent names. A deleted agent keeps its row (``deleted_at``)."""

    __tablename__ = "agents"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    capsule: Mapped[dict[str, Any]] = mapped_column(default=dict)
    default_policy: Mapped[str | None] = mapped_column(String(50), nullable=True)
    # the response cache's setting (domain.policies.CacheSettings); None: the policy's applies
    response_cache: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ApiKey(Base):
    """An agent's API key: only a salted hash of its secret part is stored."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # public lookup id, part of the key
    agent_id: Mapped[str] = mapped_column(String(64))
    tenant_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    salt: Mapped[str] = mapped_column(String(64))
    secret_hash: Mapped[str] = mapped_column(String(128))
    hint: Mapped[str] = mapped_column(String(16))
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "agent_id"], ["agents.tenant_id", "agents.id"], name="fk_api_keys_agent"
        ),
        Index("ix_api_key_agent", "tenant_id", "agent_id"),
    )
