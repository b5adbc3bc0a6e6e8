"""Tables of alerts, incidents, response actions and quarantined inputs.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the tables (filled in by the change that adds them)."""


def downgrade() -> None:
    """Drop the tables."""
