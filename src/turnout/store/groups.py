"""The DeploymentGroup entity: one name for several deployments of a model (the same model at
OpenAI and at Azure, two vLLM servers), with the strategy that picks a member per request.

Members are kept as a JSON list of ``{"model_id", "weight"}`` on the group's row: a group is read
whole (by the snapshot, by the admin API) and never queried by member."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from turnout.store.models import Base, JsonDocument, utcnow


class DeploymentGroup(Base):
    """A platform-wide group of catalog models that clients address by ``name``."""

    __tablename__ = "deployment_groups"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    strategy: Mapped[str] = mapped_column(String(20))  # weighted | least-busy | lowest-latency
    members: Mapped[list[dict[str, Any]]] = mapped_column(JsonDocument)  # [{"model_id", "weight"}]
    description: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_by: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
