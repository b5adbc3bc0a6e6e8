"""Initial schema: audit trail, artifact index, pipeline runs and reports.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the first tables."""
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("ts", sa.String(40), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("prev_hash", name="uq_audit_prev_hash"),
        sa.UniqueConstraint("hash", name="uq_audit_hash"),
    )
    for col in ("ts", "actor", "action", "subject"):
        op.create_index(f"ix_audit_events_{col}", "audit_events", [col])
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "artifacts",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("original_name", sa.String(500), nullable=False),
        sa.Column("created", sa.String(40), nullable=False),
    )
    op.create_table(
        "pipeline_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("pipeline", sa.String(200), nullable=False, index=True),
        sa.Column("pipeline_sha256", sa.String(64), nullable=False),
        sa.Column("started", sa.String(40), nullable=False),
        sa.Column("finished", sa.String(40), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("gate", sa.Text, nullable=False),
    )
    op.create_table(
        "reports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("pipeline_runs.id"), nullable=True, index=True),
        sa.Column("stage", sa.String(200), nullable=True),
        sa.Column("kind", sa.String(200), nullable=False, index=True),
        sa.Column("subject", sa.String(1000), nullable=False),
        sa.Column("created", sa.String(40), nullable=False),
        sa.Column("max_severity", sa.String(20), nullable=True),
        sa.Column("verdict", sa.String(50), nullable=True),
        sa.Column("body", sa.Text, nullable=False),
    )


def downgrade() -> None:
    """Drop every table of the first schema."""
    for table in ("reports", "pipeline_runs", "artifacts", "audit_head", "audit_events"):
        op.drop_table(table)
