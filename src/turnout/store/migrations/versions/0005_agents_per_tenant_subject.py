"""agents keyed by (tenant_id, id), soft delete, messages.subject

Agent ids were a global primary key, so one tenant's 409 revealed (and reserved) another tenant's
ids. Agents are now keyed by ``(tenant_id, id)`` and API keys and model configurations refer to them
by both columns. ``agents.deleted_at`` marks a deleted agent; ``messages.subject`` keeps who
authenticated apart from the caller-supplied ``user_id``.

On SQLite (foreign keys on) the children lose their old foreign key before ``agents`` is rebuilt,
and get the composite one after it: a rebuilt parent cannot be dropped while rows still refer to it.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.exc import SAWarning

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# SQLite's foreign keys have no names: batch mode reflects them under this convention
SQLITE_NAMES = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
CHILDREN = ("api_keys", "agent_model_config")
COMPOSITE_FK = {"api_keys": "fk_api_keys_agent", "agent_model_config": "fk_agent_model_config_agent"}


def _old_fk(table: str) -> str:
    """The name of ``table``'s foreign key on ``agent_id`` as 0003/0004 created it."""
    if _sqlite():
        return f"fk_{table}_agent_id_agents"
    return f"{table}_agent_id_fkey"  # PostgreSQL's default name


def _sqlite() -> bool:
    return bool(op.get_bind().dialect.name == "sqlite")


@contextmanager
def _agents_rebuilt() -> Iterator[Any]:
    """``agents`` in batch mode (rebuilt on SQLite, whose primary key has no name to drop: the
    rebuilt table takes the new key, and SQLAlchemy's warning that the reflected key column is
    overridden says just that)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"Table '_alembic_tmp_agents' specifies columns", SAWarning)
        with op.batch_alter_table("agents", recreate="always" if _sqlite() else "auto") as batch_op:
            yield batch_op


def _replace_agents_key(batch_op: Any, columns: list[str]) -> None:
    if not _sqlite():
        batch_op.drop_constraint("agents_pkey", type_="primary")
    batch_op.create_primary_key("agents_pkey", columns)


def upgrade() -> None:
    for table in CHILDREN:
        with op.batch_alter_table(table, naming_convention=SQLITE_NAMES) as batch_op:
            batch_op.drop_constraint(_old_fk(table), type_="foreignkey")
    with _agents_rebuilt() as batch_op:
        batch_op.drop_index("ix_agent_tenant")
        _replace_agents_key(batch_op, ["tenant_id", "id"])
        batch_op.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("api_keys") as batch_op:
        batch_op.drop_index("ix_api_key_agent")
        batch_op.create_index("ix_api_key_agent", ["tenant_id", "agent_id"], unique=False)
        batch_op.create_foreign_key(
            COMPOSITE_FK["api_keys"], "agents", ["tenant_id", "agent_id"], ["tenant_id", "id"]
        )
    with op.batch_alter_table("agent_model_config") as batch_op:
        batch_op.drop_index("ix_agent_model_enabled")
        batch_op.drop_index("ix_agent_model_agent")  # the unique constraint's prefix serves its lookups
        batch_op.drop_constraint("uq_agent_model", type_="unique")
        batch_op.create_unique_constraint("uq_agent_model", ["tenant_id", "agent_id", "model_id"])
        batch_op.create_index("ix_agent_model_enabled", ["tenant_id", "agent_id", "is_enabled"], unique=False)
        batch_op.create_foreign_key(
            COMPOSITE_FK["agent_model_config"], "agents", ["tenant_id", "agent_id"], ["tenant_id", "id"]
        )
    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(sa.Column("subject", sa.String(length=255), nullable=True))


def downgrade() -> None:
    """Back to global agent ids: fails if two tenants own the same id (the data cannot fit)."""
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_column("subject")
    for table in CHILDREN:
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_constraint(COMPOSITE_FK[table], type_="foreignkey")
    with _agents_rebuilt() as batch_op:
        batch_op.drop_column("deleted_at")
        _replace_agents_key(batch_op, ["id"])
        batch_op.create_index("ix_agent_tenant", ["tenant_id"], unique=False)
    with op.batch_alter_table("agent_model_config") as batch_op:
        batch_op.drop_index("ix_agent_model_enabled")
        batch_op.drop_constraint("uq_agent_model", type_="unique")
        batch_op.create_unique_constraint("uq_agent_model", ["agent_id", "model_id"])
        batch_op.create_index("ix_agent_model_agent", ["agent_id"], unique=False)
        batch_op.create_index("ix_agent_model_enabled", ["agent_id", "is_enabled"], unique=False)
        batch_op.create_foreign_key(_old_fk("agent_model_config"), "agents", ["agent_id"], ["id"])
    with op.batch_alter_table("api_keys") as batch_op:
        batch_op.drop_index("ix_api_key_agent")
        batch_op.create_index("ix_api_key_agent", ["agent_id"], unique=False)
        batch_op.create_foreign_key(_old_fk("api_keys"), "agents", ["agent_id"], ["id"])
