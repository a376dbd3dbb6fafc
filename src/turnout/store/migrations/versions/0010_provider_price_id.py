"""provider pricing source

``llm_providers.price_id``: the genai-prices provider whose list prices this provider's models when
it does not report prices itself (NULL: its type's, ``ProviderSpec.price_id``). A type serves many
vendors: a ``custom`` OpenAI-compatible provider may be Groq, Together or Mistral, each with its own
prices for the same open models, so the pricing source belongs to the provider, not only its type.

An in-place ``ALTER TABLE`` on both databases, dropped in place on downgrade (as in 0007).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("llm_providers", recreate="never") as batch_op:
        batch_op.add_column(sa.Column("price_id", sa.String(length=50), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("llm_providers", recreate="never") as batch_op:
        batch_op.drop_column("price_id")
