"""events: the transactional outbox, webhooks and their deliveries

``events``: the outbox every event is delivered from (to NATS and to webhooks, each with a pending
flag). ``webhooks``: tenants' subscriptions (their signing secrets live in the secret store).
``webhook_deliveries``: one event on its way to one webhook, retried, then dead-lettered.
``messages.event_pending``: the call's model.request.* event is still to be copied to the outbox.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=True),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("nats_pending", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("hooks_pending", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.UniqueConstraint("id", name="uq_events_id"),
    )
    pending: sa.ColumnClause[bool] = sa.column("nats_pending")
    op.create_index(
        "ix_events_nats_pending", "events", ["seq"], postgresql_where=pending, sqlite_where=pending
    )
    hooks: sa.ColumnClause[bool] = sa.column("hooks_pending")
    op.create_index("ix_events_hooks_pending", "events", ["seq"], postgresql_where=hooks, sqlite_where=hooks)
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("event_types", JSON, nullable=False),
        sa.Column("description", sa.String(200), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_webhooks_tenant_id", "webhooks", ["tenant_id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "webhook_id", sa.String(32), sa.ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("webhook_id", "event_id", name="uq_webhook_delivery"),
    )
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_webhook_deliveries_tenant", "webhook_deliveries", ["tenant_id", "status"])
    with op.batch_alter_table("messages", recreate="never") as batch_op:
        batch_op.add_column(
            sa.Column("event_pending", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    flagged: sa.ColumnClause[bool] = sa.column("event_pending")
    op.create_index(
        "ix_message_event_pending", "messages", ["created_at"], postgresql_where=flagged, sqlite_where=flagged
    )


def downgrade() -> None:
    op.drop_index("ix_message_event_pending", table_name="messages")
    with op.batch_alter_table("messages", recreate="never") as batch_op:
        batch_op.drop_column("event_pending")
    op.drop_index("ix_webhook_deliveries_tenant", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index("ix_webhooks_tenant_id", table_name="webhooks")
    op.drop_table("webhooks")
    op.drop_index("ix_events_hooks_pending", table_name="events")
    op.drop_index("ix_events_nats_pending", table_name="events")
    op.drop_table("events")
