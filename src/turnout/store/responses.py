"""The StoredResponse entity: a Responses API answer kept for ``previous_response_id`` chains and
``GET /v1/responses/{id}`` (not kept when the request said ``store: false``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from turnout.store.models import Base, JsonDocument, utcnow


class StoredResponse(Base):
    """One stored response of a tenant: the object the client got, its input items, and the
    conversation (every item so far, instructions left out) a follow-up turn continues."""

    __tablename__ = "responses"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # resp_<message id hex>
    tenant_id: Mapped[str] = mapped_column(String(64))
    agent_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    message_id: Mapped[str] = mapped_column(String(36))  # the call's record
    previous_response_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    response: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    input_items: Mapped[list[dict[str, Any]]] = mapped_column(JsonDocument)
    conversation: Mapped[list[dict[str, Any]]] = mapped_column(JsonDocument)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_responses_tenant_created", "tenant_id", "created_at"),)
