"""Registry invariants as constraints, and what each pipeline stage evaluated.

- ``registry_assignments``: at most one open holder (``ended IS NULL``) per model and slot, a partial
  unique index on both databases. Concurrent alias changes on PostgreSQL could leave two open holders
  before; the upgrade first closes all but the newest open holder of each slot (``ended_by`` names this
  migration), so the index can be built on a database that was hit.
- ``registry_users.bootstrap`` and ``registry_api_keys.bootstrap``: 1 on the user (and the key) created
  without credentials when the workspace had none, NULL otherwise, and unique: two concurrent first-admin
  bootstraps cannot both succeed.
- ``reports.artifacts``: JSON, per pipeline stage, of every path the stage evaluated with its content
  digest (and its files' digests), so a gate report can be bound to the exact model version it judged.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_OPEN = sa.text("ended IS NULL")


def upgrade() -> None:
    """Repair duplicate open holders, then add the constraints and the column."""
    op.execute(
        sa.text(
            "UPDATE registry_assignments SET "
            "ended = (SELECT MAX(b.started) FROM registry_assignments b WHERE b.model_id = "
            "registry_assignments.model_id AND b.slot = registry_assignments.slot AND b.ended IS NULL), "
            "ended_by = 'migration 0004' "
            "WHERE ended IS NULL AND id NOT IN (SELECT MAX(c.id) FROM registry_assignments c "
            "WHERE c.ended IS NULL GROUP BY c.model_id, c.slot)"
        )
    )
    op.create_index(
        "uq_registry_open_slot",
        "registry_assignments",
        ["model_id", "slot"],
        unique=True,
        sqlite_where=_OPEN,
        postgresql_where=_OPEN,
    )
    # Plain ADD COLUMN and CREATE INDEX: both databases do them in place (no table copy on SQLite).
    for table in ("registry_users", "registry_api_keys"):
        op.add_column(table, sa.Column("bootstrap", sa.Integer, nullable=True))
        op.create_index(f"uq_{table}_bootstrap", table, ["bootstrap"], unique=True)
    op.add_column("reports", sa.Column("artifacts", sa.Text, nullable=True))


def downgrade() -> None:
    """Drop what ``upgrade`` added (the closed duplicate holders stay closed)."""
    with op.batch_alter_table("reports") as batch:
        batch.drop_column("artifacts")
    for table in ("registry_api_keys", "registry_users"):
        op.drop_index(f"uq_{table}_bootstrap", table_name=table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("bootstrap")
    op.drop_index("uq_registry_open_slot", table_name="registry_assignments")
