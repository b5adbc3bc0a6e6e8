"""Model registry: users and API keys, trusted signing keys, models, versions, stage/alias history,
approvals and webhooks.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the registry tables."""
    op.create_table(
        "registry_users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("created", sa.String(40), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "registry_api_keys",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key_id", sa.String(32), nullable=False, unique=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("registry_users.id"), nullable=False),
        sa.Column("salt", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(128), nullable=False),
        sa.Column("label", sa.String(200), nullable=False, server_default=""),
        sa.Column("created", sa.String(40), nullable=False),
        sa.Column("revoked", sa.String(40), nullable=True),
    )
    op.create_index("ix_registry_api_keys_user_id", "registry_api_keys", ["user_id"])
    op.create_table(
        "registry_trusted_keys",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("key_hint", sa.String(64), nullable=False, unique=True),
        sa.Column("pem", sa.Text, nullable=False),
        sa.Column("created", sa.String(40), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("revoked", sa.String(40), nullable=True),
    )
    op.create_table(
        "registry_models",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("created", sa.String(40), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("last_version", sa.Integer, nullable=False, server_default="0"),
        sa.Column("generation", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "registry_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("registry_models.id"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("files", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("source_name", sa.String(500), nullable=False),
        sa.Column("created", sa.String(40), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("archived", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("scan_verdict", sa.String(20), nullable=False),
        sa.Column("scan_summary", sa.Text, nullable=False, server_default="{}"),
        sa.Column("signature", sa.Text, nullable=True),
        sa.Column("signature_key_hint", sa.String(64), nullable=True),
        sa.Column("signed_by", sa.String(200), nullable=True),
        sa.Column("gate_run_id", sa.Integer, sa.ForeignKey("pipeline_runs.id"), nullable=True),
        sa.Column("lineage_node_id", sa.Integer, sa.ForeignKey("lineage_nodes.id"), nullable=True),
        sa.UniqueConstraint("model_id", "version", name="uq_registry_version"),
    )
    op.create_index("ix_registry_versions_model_id", "registry_versions", ["model_id"])
    op.create_index("ix_registry_versions_digest", "registry_versions", ["digest"])
    op.create_table(
        "registry_assignments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("registry_models.id"), nullable=False),
        sa.Column("slot", sa.String(120), nullable=False),
        sa.Column("version_id", sa.Integer, sa.ForeignKey("registry_versions.id"), nullable=False),
        sa.Column("started", sa.String(40), nullable=False),
        sa.Column("started_by", sa.String(200), nullable=False),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("ended", sa.String(40), nullable=True),
        sa.Column("ended_by", sa.String(200), nullable=True),
    )
    op.create_index("ix_registry_assignments_model_id", "registry_assignments", ["model_id"])
    op.create_index("ix_registry_assignments_version_id", "registry_assignments", ["version_id"])
    op.create_table(
        "registry_approvals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("version_id", sa.Integer, sa.ForeignKey("registry_versions.id"), nullable=False),
        sa.Column("user_name", sa.String(200), nullable=False),
        sa.Column("comment", sa.Text, nullable=False, server_default=""),
        sa.Column("created", sa.String(40), nullable=False),
        sa.UniqueConstraint("version_id", "user_name", name="uq_registry_approval"),
    )
    op.create_index("ix_registry_approvals_version_id", "registry_approvals", ["version_id"])
    op.create_table(
        "registry_webhooks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("secret", sa.String(200), nullable=False),
        sa.Column("events", sa.String(500), nullable=False),
        sa.Column("created", sa.String(40), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    )


def downgrade() -> None:
    """Drop the registry tables."""
    for table in (
        "registry_webhooks",
        "registry_approvals",
        "registry_assignments",
        "registry_versions",
        "registry_models",
        "registry_trusted_keys",
        "registry_api_keys",
        "registry_users",
    ):
        op.drop_table(table)
