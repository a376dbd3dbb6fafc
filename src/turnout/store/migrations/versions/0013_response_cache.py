"""response cache: its embedded store, the agent's setting, and the records of hits

``response_cache``: cached answers keyed by the hash of the tenant and the normalised request
(the embedded store, used when no Redis is configured). ``agents.response_cache``: the agent's
cache setting (JSON; NULL: its policy's applies). ``messages.cache_hit``: the call was answered
from the cache (no provider called, cost 0).

Columns are added in place on both databases (``recreate="never"``, as in 0008).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "response_cache",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("model_id", sa.String(512), nullable=False),
        sa.Column("answer", JSON, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_response_cache_expires", "response_cache", ["expires_at"])
    with op.batch_alter_table("agents", recreate="never") as batch_op:
        batch_op.add_column(sa.Column("response_cache", JSON, nullable=True))
    with op.batch_alter_table("messages", recreate="never") as batch_op:
        batch_op.add_column(sa.Column("cache_hit", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("messages", recreate="never") as batch_op:
        batch_op.drop_column("cache_hit")
    with op.batch_alter_table("agents", recreate="never") as batch_op:
        batch_op.drop_column("response_cache")
    op.drop_index("ix_response_cache_expires", table_name="response_cache")
    op.drop_table("response_cache")
