"""Tables of encryption at rest: the settings row and the wrapped data keys.

``store_encryption`` (one row at most: state, KEK source, KEK fingerprint, active data key) and
``store_data_keys`` (each data key wrapped by the KEK). Models in ``mlsecops.store._encryption_tables``.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the tables."""
    op.create_table(
        "store_encryption",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("kek_source", sa.Text, nullable=False),
        sa.Column("kek_id", sa.String(64), nullable=False),
        sa.Column("active_key", sa.String(16), nullable=False),
        sa.Column("updated", sa.String(40), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_store_encryption_single_row"),
    )
    op.create_table(
        "store_data_keys",
        sa.Column("key_id", sa.String(16), primary_key=True),
        sa.Column("wrapped", sa.Text, nullable=False),
        sa.Column("created", sa.String(40), nullable=False),
    )


def downgrade() -> None:
    """Drop the tables."""
    op.drop_table("store_data_keys")
    op.drop_table("store_encryption")
