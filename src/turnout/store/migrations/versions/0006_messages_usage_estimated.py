"""messages.usage_estimated: whether a record's tokens (and so its cost) are an estimate

A provider that reports no usage (llama.cpp's streams) gets its tokens estimated
(``turnout.tokens``); the record says so, so reports can tell exact spend from estimated spend.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(
            sa.Column("usage_estimated", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_column("usage_estimated")
