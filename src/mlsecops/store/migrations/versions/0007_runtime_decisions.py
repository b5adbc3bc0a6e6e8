"""Table of the guard's decision log (``runtime_decisions``, see ``runtime/_decision_tables.py``).

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
    """Create the decision log."""
    op.create_table(
        "runtime_decisions",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("ts_us", sa.BigInteger, nullable=False),
        sa.Column("principal", sa.String(200), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("decision", sa.String(100), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("input_digest", sa.String(64), nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("source", sa.String(200), nullable=False, server_default=""),
        sa.Column("inputs", sa.Text, nullable=True),
        sa.Column("outputs", sa.Text, nullable=True),
    )
    op.create_index("ix_runtime_decisions_ts_us", "runtime_decisions", ["ts_us"])
    op.create_index("ix_runtime_decisions_model_ts", "runtime_decisions", ["model", "ts_us"])
    op.create_index("ix_runtime_decisions_principal_ts", "runtime_decisions", ["principal", "ts_us"])


def downgrade() -> None:
    """Drop the decision log."""
    op.drop_index("ix_runtime_decisions_principal_ts", table_name="runtime_decisions")
    op.drop_index("ix_runtime_decisions_model_ts", table_name="runtime_decisions")
    op.drop_index("ix_runtime_decisions_ts_us", table_name="runtime_decisions")
    op.drop_table("runtime_decisions")
