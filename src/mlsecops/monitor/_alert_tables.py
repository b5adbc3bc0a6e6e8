"""Tables of alerts, incidents, response actions and quarantined inputs (created by migration ``0008``).

An alert row stands for every repeat of one (kind, principal, model) while it is not resolved:
``open_key`` (the SHA-256 of the three) is set on open and acknowledged alerts and emptied on
resolution, and a unique constraint on it (NULLs are distinct on both databases) makes two open
rows for one triple impossible, whichever process or replica raised them. Incidents, their actions
and quarantine ranges belong to the runtime's response (``mlsecops.runtime.response``); they live
here so that one migration holds the whole alerting schema. Times are UTC ISO 8601 strings with
microseconds, like the audit trail; quarantine ranges are Unix seconds, like the decision log they
filter.
"""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from mlsecops.store.models import Base

__all__ = ["AlertRow", "IncidentAction", "IncidentRow", "QuarantineRange"]


class AlertRow(Base):
    """One alert and all its repeats while it is open or acknowledged."""

    __tablename__ = "monitor_alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(100), index=True)
    principal: Mapped[str] = mapped_column(String(200), index=True)
    model: Mapped[str] = mapped_column(String(200), index=True)
    severity: Mapped[str] = mapped_column(String(10))
    """The highest severity seen so far (an alert escalates, it never de-escalates)."""
    status: Mapped[str] = mapped_column(String(20), index=True)
    """``open``, ``acknowledged`` or ``resolved``."""
    count: Mapped[int] = mapped_column(Integer)
    """How many times it was raised (1 + repeats)."""
    first_seen: Mapped[str] = mapped_column(String(40))
    """Time of the observation that first raised it."""
    last_seen: Mapped[str] = mapped_column(String(40))
    first_query_index: Mapped[int] = mapped_column(Integer)
    last_query_index: Mapped[int] = mapped_column(Integer)
    evidence: Mapped[str] = mapped_column(Text)
    """JSON: the evidence of the latest repeat (bounded, see ``MAX_EVIDENCE_BYTES``)."""
    created: Mapped[str] = mapped_column(String(40))
    """When it was stored (wall clock; ``first_seen`` is the observation's time)."""
    open_key: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    """SHA-256 of (kind, principal, model) while not resolved, else NULL: one open row per triple."""
    acked_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    acked_at: Mapped[str | None] = mapped_column(String(40), nullable=True)
    ack_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    resolved_at: Mapped[str | None] = mapped_column(String(40), nullable=True)


class IncidentRow(Base):
    """One playbook run: the alert that triggered it, its actions and their outcome."""

    __tablename__ = "response_incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("monitor_alerts.id"), index=True)
    playbook: Mapped[str] = mapped_column(String(200))
    severity: Mapped[str] = mapped_column(String(10))
    """The alert's severity when the playbook was triggered."""
    triggered: Mapped[str] = mapped_column(String(40))
    """Time of the alert observation that triggered it (the start of the timeline)."""
    started: Mapped[str] = mapped_column(String(40))
    finished: Mapped[str | None] = mapped_column(String(40), nullable=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    """``running``, ``completed`` (every action done), ``partial`` (some failed) or ``failed``."""
    actor: Mapped[str] = mapped_column(String(200))


class IncidentAction(Base):
    """One action of an incident, in playbook order."""

    __tablename__ = "response_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("response_incidents.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(20))
    params: Mapped[str] = mapped_column(Text)
    """JSON of the playbook's parameters for the action."""
    status: Mapped[str] = mapped_column(String(20))
    """``running`` (a retrain in progress), ``done`` or ``failed``."""
    started: Mapped[str] = mapped_column(String(40))
    finished: Mapped[str | None] = mapped_column(String(40), nullable=True)
    detail: Mapped[str] = mapped_column(Text)
    """JSON: what the action did (versions, key ids, run id) or why it failed."""


class QuarantineRange(Base):
    """The logged inputs of a principal or source within a time range, kept out of retraining data."""

    __tablename__ = "response_quarantine"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(20))
    """``principal`` or ``source``."""
    value: Mapped[str] = mapped_column(String(200), index=True)
    model: Mapped[str] = mapped_column(String(200))
    """The model whose inputs are quarantined; empty: every model."""
    start_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    """Unix seconds; NULL: from the first logged input."""
    end_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    """Unix seconds; NULL: open-ended (everything logged from then on too)."""
    reason: Mapped[str] = mapped_column(Text)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("monitor_alerts.id"), nullable=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("response_incidents.id"), nullable=True)
    created: Mapped[str] = mapped_column(String(40))
    created_by: Mapped[str] = mapped_column(String(200))
    released: Mapped[str | None] = mapped_column(String(40), nullable=True)
    released_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
