"""routing_priors and routing_task_models: imported evaluations (prior experience per task and model,
and a task classifier trained on their prompts)

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "routing_priors",
        sa.Column("source", sa.String(100), primary_key=True),
        sa.Column("task", sa.String(64), primary_key=True),
        sa.Column("model_id", sa.String(255), primary_key=True),
        sa.Column("count", sa.Float(), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.Column("total_sq", sa.Float(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "routing_task_models",
        sa.Column("source", sa.String(100), primary_key=True),
        sa.Column("model", sa.LargeBinary(), nullable=False),
        sa.Column("trained_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("routing_task_models")
    op.drop_table("routing_priors")
