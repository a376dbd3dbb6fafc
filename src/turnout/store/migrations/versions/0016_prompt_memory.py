"""The prompt memory's rows: routing_prompt_rows (an imported evaluation's prompts: task, features,
residuals) and feedback.prompt_vector (a rated answer's prompt features, so every replica, and a
restarted one, adds the rated prompt to its memory)

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
    with op.batch_alter_table("feedback") as batch_op:
        batch_op.add_column(sa.Column("prompt_vector", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feedback") as batch_op:
        batch_op.drop_column("prompt_vector")
    op.drop_table("routing_prompt_rows")
