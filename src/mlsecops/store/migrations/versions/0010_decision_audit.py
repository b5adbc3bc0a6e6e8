"""Decision auditing columns of the decision log (``runtime_decisions``, see ``runtime/_decision_tables.py``).

``groups`` (the sensitive group of each row), ``predictions`` (the predicted class of each row),
``explanation`` (top feature contributions of sampled rows) and ``labels`` (true classes, on rows
logged from feedback). All JSON, all nullable: rows logged before this revision have none.

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

_COLUMNS = ("groups", "predictions", "explanation", "labels")


def upgrade() -> None:
    """Add the four JSON columns."""
    with op.batch_alter_table("runtime_decisions") as batch:
        for name in _COLUMNS:
            batch.add_column(sa.Column(name, sa.Text, nullable=True))


def downgrade() -> None:
    """Drop them."""
    with op.batch_alter_table("runtime_decisions") as batch:
        for name in reversed(_COLUMNS):
            batch.drop_column(name)
