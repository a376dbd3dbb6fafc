"""messages: cost inputs and spend dimensions

``cached_tokens``, ``cache_write_tokens`` and ``reasoning_tokens`` (parts of the prompt and
completion counts, each priced on its own), ``cost_estimated`` (the usage was estimated or a
missing price was stood in for), ``api_key_id`` and ``policy`` (so spend can be grouped by key and
routing policy). ``llm_model_catalog.pricing_cache_read`` / ``pricing_cache_write``: USD per 1M
cached-prompt tokens read or written (NULL: the input price).

Every step adds nullable (or defaulted) columns in place on both databases; the downgrade drops them
in place too (``recreate="never"``, as in 0007).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_MESSAGE_INTS = ("cached_tokens", "cache_write_tokens", "reasoning_tokens")


def upgrade() -> None:
    with op.batch_alter_table("messages", recreate="never") as batch_op:
        for name in _MESSAGE_INTS:
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("cost_estimated", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("api_key_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("policy", sa.String(length=50), nullable=True))
    with op.batch_alter_table("llm_model_catalog", recreate="never") as batch_op:
        batch_op.add_column(sa.Column("pricing_cache_read", sa.Numeric(14, 6), nullable=True))
        batch_op.add_column(sa.Column("pricing_cache_write", sa.Numeric(14, 6), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("llm_model_catalog", recreate="never") as batch_op:
        batch_op.drop_column("pricing_cache_write")
        batch_op.drop_column("pricing_cache_read")
    with op.batch_alter_table("messages", recreate="never") as batch_op:
        for name in ("policy", "api_key_id", "cost_estimated", *reversed(_MESSAGE_INTS)):
            batch_op.drop_column(name)
