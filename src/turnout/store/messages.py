"""The Message entity: one row per gateway call (SRS Message), written in batches by the RecordWriter."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Float, Index, Integer, Numeric, String, Text, column, false
from sqlalchemy.orm import Mapped, mapped_column

from turnout.store.models import Base, utcnow


class Message(Base):
    """A call made through the gateway: who, which model, how it went, what it cost, its feedback."""

    __tablename__ = "messages"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # uuid4, made by the caller
    conversation_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    agent_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(255), nullable=True)  # metadata.user_id, as given
    subject: Mapped[str | None] = mapped_column(String(255), nullable=True)  # who authenticated
    role: Mapped[str] = mapped_column(String(20), default="assistant")
    model: Mapped[str | None] = mapped_column(String(512), nullable=True)  # catalog id; None: nothing called
    provider: Mapped[str | None] = mapped_column(String(50), nullable=True)
    dialect: Mapped[str] = mapped_column(String(20))  # openai | anthropic | native
    endpoint: Mapped[str] = mapped_column(String(40))  # chat | messages | embeddings | completion
    stream: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20))  # ok | error | cancelled
    http_status: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    latency_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    ttft_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    completion_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    usage_estimated: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # parts of prompt_tokens (cache reads, cache writes) and of completion_tokens (reasoning)
    cached_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cache_write_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reasoning_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cost_usd: Mapped[Decimal | None] = mapped_column(Numeric(18, 8), nullable=True)
    # the usage was estimated, or a price the catalog lacks was stood in for (turnout.domain.pricing)
    cost_estimated: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    api_key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)  # None: a JWT caller
    policy: Mapped[str | None] = mapped_column(String(50), nullable=True)  # None: no policy chose the model
    finish_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    task_type: Mapped[str | None] = mapped_column(String(50), nullable=True)
    tools_used: Mapped[list[str]] = mapped_column(default=list)
    attempts: Mapped[int] = mapped_column(Integer, default=1)  # 0: answered from the response cache
    # answered from the response cache (no provider called, cost 0; ``model`` answered it first)
    cache_hit: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    fallback_used: Mapped[bool] = mapped_column(Boolean, default=False)
    prompt: Mapped[str | None] = mapped_column(Text, nullable=True)
    content: Mapped[str | None] = mapped_column(Text, nullable=True)
    rating: Mapped[float | None] = mapped_column(Float, nullable=True)
    feedback_type: Mapped[str | None] = mapped_column(String(20), nullable=True)
    feedback_at: Mapped[datetime | None] = mapped_column(nullable=True)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # its model.request.* event is still to be copied to the outbox (store.events); set only while
    # events are on, cleared in the transaction that copies it
    event_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    __table_args__ = (
        Index(
            "ix_message_task_rating",
            "task_type",
            "rating",
            postgresql_where=rating.isnot(None),
            sqlite_where=rating.isnot(None),
        ),
        Index(
            "ix_message_model_task",
            "model",
            "task_type",
            postgresql_where=role == "assistant",
            sqlite_where=role == "assistant",
        ),
        Index("ix_message_tenant_created", "tenant_id", "created_at"),
        Index(
            "ix_message_event_pending",
            "created_at",
            postgresql_where=column("event_pending"),  # a bare mapped_column is no SQL expression here
            sqlite_where=column("event_pending"),
        ),
        Index("ix_message_agent", "agent_id"),
        Index("ix_message_feedback_at", "feedback_at"),  # replicas poll new ratings by time
    )
