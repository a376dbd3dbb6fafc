"""The ResponseCacheEntry entity: the response cache's embedded store (used when no Redis is set)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from turnout.store.models import Base, JsonDocument, utcnow


class ResponseCacheEntry(Base):
    """One cached answer: the canonical completion of a request, keyed by the hash of its tenant and
    normalised body (``gateway.cache``). Rows past ``expires_at`` are ignored, then purged."""

    __tablename__ = "response_cache"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex
    tenant_id: Mapped[str] = mapped_column(String(64))
    model_id: Mapped[str] = mapped_column(String(512))  # the catalog model that answered
    answer: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    expires_at: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_response_cache_expires", "expires_at"),)
