"""routing_prompt_rows: an imported evaluation's prompts (task, features, residuals) for the prompt
memory

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "routing_prompt_rows",
        sa.Column("source", sa.String(100), primary_key=True),
        sa.Column("rows", sa.LargeBinary(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("routing_prompt_rows")
