"""Tables of alerts, incidents, response actions and quarantined inputs.

``monitor_alerts`` holds one row per (kind, principal, model) while it is not resolved (``open_key``
unique, NULL once resolved); ``response_incidents`` and ``response_actions`` record each playbook run
with its timings; ``response_quarantine`` the time ranges of a principal's or source's logged inputs
that retraining exports leave out. Models in ``mlsecops.monitor._alert_tables``.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the tables."""
    op.create_table(
        "monitor_alerts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(100), nullable=False),
        sa.Column("principal", sa.String(200), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("first_seen", sa.String(40), nullable=False),
        sa.Column("last_seen", sa.String(40), nullable=False),
        sa.Column("first_query_index", sa.Integer, nullable=False),
        sa.Column("last_query_index", sa.Integer, nullable=False),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("created", sa.String(40), nullable=False),
        sa.Column("open_key", sa.String(64), nullable=True, unique=True),
        sa.Column("acked_by", sa.String(200), nullable=True),
        sa.Column("acked_at", sa.String(40), nullable=True),
        sa.Column("ack_note", sa.Text, nullable=True),
        sa.Column("resolved_by", sa.String(200), nullable=True),
        sa.Column("resolved_at", sa.String(40), nullable=True),
    )
    for col in ("kind", "principal", "model", "status"):
        op.create_index(f"ix_monitor_alerts_{col}", "monitor_alerts", [col])
    op.create_table(
        "response_incidents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.Integer, sa.ForeignKey("monitor_alerts.id"), nullable=False),
        sa.Column("playbook", sa.String(200), nullable=False),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("triggered", sa.String(40), nullable=False),
        sa.Column("started", sa.String(40), nullable=False),
        sa.Column("finished", sa.String(40), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
    )
    op.create_index("ix_response_incidents_alert_id", "response_incidents", ["alert_id"])
    op.create_index("ix_response_incidents_status", "response_incidents", ["status"])
    op.create_table(
        "response_actions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("response_incidents.id"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("params", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("started", sa.String(40), nullable=False),
        sa.Column("finished", sa.String(40), nullable=True),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_response_actions_incident_id", "response_actions", ["incident_id"])
    op.create_table(
        "response_quarantine",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("scope", sa.String(20), nullable=False),
        sa.Column("value", sa.String(200), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("start_time", sa.Float, nullable=True),
        sa.Column("end_time", sa.Float, nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("alert_id", sa.Integer, sa.ForeignKey("monitor_alerts.id"), nullable=True),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("response_incidents.id"), nullable=True),
        sa.Column("created", sa.String(40), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("released", sa.String(40), nullable=True),
        sa.Column("released_by", sa.String(200), nullable=True),
    )
    op.create_index("ix_response_quarantine_value", "response_quarantine", ["value"])


def downgrade() -> None:
    """Drop the tables."""
    op.drop_table("response_quarantine")
    op.drop_table("response_actions")
    op.drop_table("response_incidents")
    op.drop_table("monitor_alerts")
