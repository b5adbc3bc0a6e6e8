"""Audit head sealed with a keyed MAC.

``audit_head.mac``: HMAC-SHA256, with the workspace's ``keys/audit-head.key``, of the head's position
and hash, so someone who can write the database but not the workspace's files cannot make a head for
a truncated or rewritten chain. NULL on workspaces created before this revision until the first event
written after the upgrade (``workspace.migrate``) seals it.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the MAC column (plain ADD COLUMN: in place on both databases)."""
    op.add_column("audit_head", sa.Column("mac", sa.String(64), nullable=True))


def downgrade() -> None:
    """Drop the MAC column."""
    with op.batch_alter_table("audit_head") as batch:
        batch.drop_column("mac")
