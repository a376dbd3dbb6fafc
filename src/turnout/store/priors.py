"""Imported prior experience: an outcome table's ratings summed per (task, model), by source.

``turnout eval import`` writes a source's cells in one transaction (a re-import replaces them);
every replica reads them into the prior level of its routing experience (``feedback/sync``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, String
from sqlalchemy.orm import Mapped, mapped_column

from turnout.store.models import Base, utcnow


class RoutingPrior(Base):
    """``count`` weighted ratings of ``model_id`` on ``task``, summing to ``total`` (squares:
    ``total_sq``), from the evaluation named ``source``, dated ``imported_at`` (they decay from then
    like ratings do)."""

    __tablename__ = "routing_priors"

    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    task: Mapped[str] = mapped_column(String(64), primary_key=True)
    model_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    count: Mapped[float] = mapped_column(Float)
    total: Mapped[float] = mapped_column(Float)
    total_sq: Mapped[float] = mapped_column(Float)
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)
