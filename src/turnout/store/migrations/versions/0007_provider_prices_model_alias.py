"""provider default prices and self-hosted setting, model aliases

``llm_providers.default_price_input`` / ``default_price_output`` (USD per 1M tokens) price every
model the provider syncs; ``llm_providers.self_hosted`` overrides the detection from type and
address (NULL: detect). ``llm_model_catalog.alias`` is an admin-chosen name clients may send as
``model``, unique across the catalog.

Every step is an in-place ``ALTER TABLE`` on both databases. On SQLite the downgrade drops the
columns in place too (``DROP COLUMN``, SQLite 3.35+): batch mode would rebuild the tables, and
with foreign keys on, a parent table that other rows refer to cannot be dropped for the rebuild.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("llm_providers") as batch_op:
        batch_op.add_column(sa.Column("default_price_input", sa.Numeric(14, 6), nullable=True))
        batch_op.add_column(sa.Column("default_price_output", sa.Numeric(14, 6), nullable=True))
        batch_op.add_column(sa.Column("self_hosted", sa.Boolean(), nullable=True))
    with op.batch_alter_table("llm_model_catalog") as batch_op:
        batch_op.add_column(sa.Column("alias", sa.String(length=100), nullable=True))
        batch_op.create_index("ix_model_alias", ["alias"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("llm_model_catalog", recreate="never") as batch_op:
        batch_op.drop_index("ix_model_alias")
        batch_op.drop_column("alias")
    with op.batch_alter_table("llm_providers", recreate="never") as batch_op:
        batch_op.drop_column("self_hosted")
        batch_op.drop_column("default_price_output")
        batch_op.drop_column("default_price_input")
