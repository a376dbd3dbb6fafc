"""SQLAlchemy ORM entities (the SRS data model)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, LargeBinary, Numeric, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """Timezone-aware now, the only clock the store uses."""
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that always comes back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


JsonDocument = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    """Declarative base of every table."""

    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: JsonDocument, list[str]: JsonDocument}


class Provider(Base):
    """An LLM API service hosting many models (SRS LLMProvider)."""

    __tablename__ = "llm_providers"

    id: Mapped[str] = mapped_column(String(50), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(100))
    provider_type: Mapped[str] = mapped_column(String(20))
    api_base: Mapped[str] = mapped_column(String(255))
    models_endpoint: Mapped[str | None] = mapped_column(String(255), nullable=True)
    api_key_ref: Mapped[str | None] = mapped_column(String(255), nullable=True)
    api_key_hint: Mapped[str | None] = mapped_column(String(8), nullable=True)
    api_version: Mapped[str | None] = mapped_column(String(40), nullable=True)
    rate_limit_rpm: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # prices (USD per 1M tokens) every synced model gets; None: reported, genai-prices, or 0 if self-hosted
    default_price_input: Mapped[Decimal | None] = mapped_column(Numeric(14, 6), nullable=True)
    default_price_output: Mapped[Decimal | None] = mapped_column(Numeric(14, 6), nullable=True)
    self_hosted: Mapped[bool | None] = mapped_column(Boolean, nullable=True)  # None: from type and host
    # genai-prices provider that prices its models (None: its type's ``ProviderSpec.price_id``)
    price_id: Mapped[str | None] = mapped_column(String(50), nullable=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_synced: Mapped[datetime | None] = mapped_column(nullable=True)
    last_sync_error: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    created_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("ix_provider_active", "is_active"),)


class Model(Base):
    """A model in the global catalog (SRS LLMModelCatalog)."""

    __tablename__ = "llm_model_catalog"

    id: Mapped[str] = mapped_column(String(512), primary_key=True)
    provider_id: Mapped[str] = mapped_column(ForeignKey("llm_providers.id"))
    external_id: Mapped[str] = mapped_column(String(255))
    alias: Mapped[str | None] = mapped_column(String(100), nullable=True)  # admin-chosen name clients use
    display_name: Mapped[str] = mapped_column(String(255))
    model_type: Mapped[str] = mapped_column(String(20), default="chat")
    capabilities: Mapped[list[str]] = mapped_column(default=list)
    capability_mask: Mapped[int] = mapped_column(Integer, default=0)
    priority: Mapped[int] = mapped_column(Integer, default=50)
    cost_tier: Mapped[str] = mapped_column(String(20), default="standard")
    domains: Mapped[list[str]] = mapped_column(default=list)
    ctx_length: Mapped[int | None] = mapped_column(Integer, nullable=True)
    pricing_input: Mapped[Decimal | None] = mapped_column(Numeric(14, 6), nullable=True)
    pricing_output: Mapped[Decimal | None] = mapped_column(Numeric(14, 6), nullable=True)
    # cached-prompt reads and cache writes, USD per 1M tokens; None: billed at pricing_input
    pricing_cache_read: Mapped[Decimal | None] = mapped_column(Numeric(14, 6), nullable=True)
    pricing_cache_write: Mapped[Decimal | None] = mapped_column(Numeric(14, 6), nullable=True)
    is_available: Mapped[bool] = mapped_column(Boolean, default=True)
    is_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    is_custom: Mapped[bool] = mapped_column(Boolean, default=False)
    overrides: Mapped[list[str]] = mapped_column(default=list)
    sync_hash: Mapped[str | None] = mapped_column(String(32), nullable=True)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    synced_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        Index("ix_model_provider", "provider_id"),
        Index("ix_model_active", "is_available"),
        Index("ix_model_type", "model_type"),
        Index("ix_model_cost_tier", "cost_tier"),
        # listing: filter by provider (and tier), page in id order without a sort
        Index("ix_model_provider_id", "provider_id", "id"),
        Index("ix_model_provider_tier_id", "provider_id", "cost_tier", "id"),
        # capability filters: a narrow covering index to scan instead of the wide rows
        Index("ix_model_caps_provider_tier", "capability_mask", "provider_id", "cost_tier", "id"),
        # search (``q``) on SQLite: scan this narrow index in id order instead of the wide rows
        Index("ix_model_id_name", "id", "display_name"),
        Index("ix_model_alias", "alias", unique=True),
        # PostgreSQL also gets pg_trgm GIN indexes on id and display_name (migration 0001) for ``q``
    )


class StoredSecret(Base):
    """One secret of the local store: AES-256-GCM ciphertext under a wrapped data key."""

    __tablename__ = "local_secrets"

    ref: Mapped[str] = mapped_column(String(255), primary_key=True)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    key_nonce: Mapped[bytes] = mapped_column(LargeBinary)
    nonce: Mapped[bytes] = mapped_column(LargeBinary)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
