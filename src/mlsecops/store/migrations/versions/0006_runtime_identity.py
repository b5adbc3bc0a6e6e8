"""Tables of grants, principal controls (block, throttle, label-only) and query budgets.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the tables (filled in by the change that adds them)."""


def downgrade() -> None:
    """Drop the tables."""
