"""routing_priors.pairing: an imported evaluation's paired variance ratio per task (every model
graded on the same prompts), so the router's posterior compares models as the table measured them

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
        batch_op.add_column(sa.Column("pairing", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("routing_priors") as batch_op:
        batch_op.drop_column("pairing")
