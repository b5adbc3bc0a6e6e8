"""Lineage graph: datasets, training runs, model versions and deployments as nodes; edges say which
produced which.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the lineage tables."""
    op.create_table(
        "lineage_nodes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(50), nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("version", sa.String(100), nullable=False, server_default=""),
        sa.Column("digest", sa.String(64), nullable=True),
        sa.Column("attributes", sa.Text, nullable=False, server_default="{}"),
        sa.Column("created", sa.String(40), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.UniqueConstraint("kind", "name", "version", name="uq_lineage_node"),
    )
    op.create_index("ix_lineage_nodes_digest", "lineage_nodes", ["digest"])
    op.create_index("ix_lineage_nodes_name", "lineage_nodes", ["kind", "name"])
    op.create_table(
        "lineage_edges",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("lineage_nodes.id"), nullable=False),
        sa.Column("child_id", sa.Integer, sa.ForeignKey("lineage_nodes.id"), nullable=False),
        sa.Column("relation", sa.String(50), nullable=False),
        sa.UniqueConstraint("parent_id", "child_id", "relation", name="uq_lineage_edge"),
    )
    op.create_index("ix_lineage_edges_child", "lineage_edges", ["child_id"])
    op.create_index("ix_lineage_edges_parent", "lineage_edges", ["parent_id"])


def downgrade() -> None:
    """Drop the lineage tables."""
    op.drop_table("lineage_edges")
    op.drop_table("lineage_nodes")
