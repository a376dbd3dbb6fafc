"""routing_priors.loading: each model's loading on the one factor an imported evaluation's scores
share on a task (every model graded on the same prompts), so routing compares models as the table
measured them, paired

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("routing_priors") as batch_op:
        batch_op.add_column(sa.Column("loading", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("routing_priors") as batch_op:
        batch_op.drop_column("loading")
