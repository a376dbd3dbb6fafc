"""Imported evaluations: an outcome table's ratings summed per (task, model), and the task
classifier trained on its prompts, by source.

``turnout eval import`` writes a source in one transaction (a re-import replaces it); every replica
reads the cells into the prior level of its routing experience and every source's classifier into
its task detection (``routing/priors``, polled by ``feedback/sync``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, LargeBinary, String
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
    # the model's loading on the task's common factor in the source's table (``table_loadings``)
    loading: Mapped[float | None] = mapped_column(Float, nullable=True)
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)


class RoutingTaskModel(Base):
    """The task classifier trained on the evaluation ``source``'s labelled prompts (``routing/
    task_model``, saved with numpy): live prompts get its task names, so the source's prior
    experience, kept per task, applies to them."""

    __tablename__ = "routing_task_models"

    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    model: Mapped[bytes] = mapped_column(LargeBinary)
    trained_at: Mapped[datetime] = mapped_column(default=utcnow)


class RoutingPromptRows(Base):
    """The evaluation ``source``'s prompts as the prompt memory holds them (``routing/
    prompt_memory.EvaluationRows``, saved with numpy): task, features and residuals per prompt."""

    __tablename__ = "routing_prompt_rows"

    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    rows: Mapped[bytes] = mapped_column(LargeBinary)
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)
