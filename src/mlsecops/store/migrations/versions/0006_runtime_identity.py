"""Tables of grants, principal controls (block, throttle, label-only) and query budgets.

- ``registry_grants``: which principal may infer on which model (``*`` as either is the explicit
  wildcard), unique per pair.
- ``access_revision``: one row of counters (``identity``, ``grants``, ``controls``) that every change
  the runtime guard caches bumps in its own transaction; created with its row.
- ``runtime_controls``: per-principal block, throttle and label-only state.
- ``runtime_budgets``: rows used per principal, model and UTC day, shared by all guard workers.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the tables and the access revision row."""
    op.create_table(
        "registry_grants",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("principal", sa.String(210), nullable=False),
        sa.Column("created", sa.String(40), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.UniqueConstraint("model", "principal", name="uq_registry_grant"),
    )
    op.create_index("ix_registry_grants_principal", "registry_grants", ["principal"])
    revisions = op.create_table(
        "access_revision",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("identity", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("grants", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("controls", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.bulk_insert(revisions, [{"id": 1, "identity": 0, "grants": 0, "controls": 0}])
    op.create_table(
        "runtime_controls",
        sa.Column("principal", sa.String(210), primary_key=True),
        sa.Column("blocked", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("block_until", sa.String(40), nullable=True),
        sa.Column("block_reason", sa.Text, nullable=False, server_default=""),
        sa.Column("throttle_rps", sa.Float, nullable=True),
        sa.Column("throttle_burst", sa.Integer, nullable=True),
        sa.Column("throttle_until", sa.String(40), nullable=True),
        sa.Column("label_only", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("alert_id", sa.String(100), nullable=True),
        sa.Column("updated", sa.String(40), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
    )
    op.create_table(
        "runtime_budgets",
        sa.Column("principal", sa.String(210), primary_key=True),
        sa.Column("model", sa.String(200), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("used", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("exhausted", sa.String(40), nullable=True),
    )


def downgrade() -> None:
    """Drop the tables."""
    op.drop_table("runtime_budgets")
    op.drop_table("runtime_controls")
    op.drop_table("access_revision")
    op.drop_index("ix_registry_grants_principal", table_name="registry_grants")
    op.drop_table("registry_grants")
