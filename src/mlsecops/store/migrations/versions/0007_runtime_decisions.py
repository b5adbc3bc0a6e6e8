"""Tables of the guard's decision log and model switches.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the tables (filled in by the change that adds them)."""


def downgrade() -> None:
    """Drop the tables."""
