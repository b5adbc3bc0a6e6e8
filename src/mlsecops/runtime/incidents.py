"""Incidents: what a playbook run did, read back from the workspace with its timeline.

An incident is one run of one playbook on one alert (``mlsecops.runtime.response`` records it): the
alert, each action with its start, end, status and detail, and the outcome. ``Incident.timeline()``
puts them in time order with each event's seconds since the alert was first raised (what ``mlsecops
incidents show --format json`` prints), so detection delay and response time read off directly.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from mlsecops.core.errors import InputError
from mlsecops.core.severity import Severity
from mlsecops.monitor._alert_tables import AlertRow, IncidentAction, IncidentRow
from mlsecops.monitor.alerts import StoredAlert, stored_alert
from mlsecops.store import Workspace

__all__ = ["STATUSES", "ActionRecord", "Incident", "get_incident", "list_incidents", "outcome"]

STATUSES = ("running", "completed", "partial", "failed")
"""An incident's status: actions still running, or the outcome."""


def _seconds(start: str, end: str | None) -> float | None:
    if end is None:
        return None
    return round((dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds(), 6)


@dataclasses.dataclass(frozen=True)
class ActionRecord:
    """One action of an incident."""

    position: int
    action: str
    params: dict[str, Any]
    status: str
    """``done``, ``failed``, ``running`` (a retrain in progress); in a dry run ``would`` or ``would_fail``."""
    started: str
    finished: str | None
    detail: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """JSON form, with the duration in seconds."""
        return {
            "position": self.position,
            "action": self.action,
            "params": self.params,
            "status": self.status,
            "started": self.started,
            "finished": self.finished,
            "duration_s": _seconds(self.started, self.finished),
            "detail": self.detail,
        }


@dataclasses.dataclass(frozen=True)
class Incident:
    """A playbook run: alert -> actions -> outcome, with timings."""

    id: int | None
    """None in a dry run (nothing was recorded)."""
    playbook: str
    alert: StoredAlert
    severity: Severity
    """The alert's severity when the playbook was triggered."""
    triggered: str
    """Time of the alert observation that triggered it."""
    started: str
    finished: str | None
    status: str
    """``running``, ``completed``, ``partial``, ``failed``; ``dry_run`` in a dry run."""
    actions: tuple[ActionRecord, ...]
    actor: str
    dry_run: bool = False

    def timeline(self) -> list[dict[str, Any]]:
        """Events in time order, each with ``t_s``: seconds since the alert was first raised."""
        t0 = self.alert.first_seen
        events: list[dict[str, Any]] = [
            {"at": t0, "event": "alert.raised", "query_index": self.alert.first_query_index},
        ]
        if self.triggered != t0:
            events.append({"at": self.triggered, "event": "alert.escalated", "severity": str(self.severity)})
        events.append({"at": self.started, "event": "playbook.started", "playbook": self.playbook})
        for a in self.actions:
            events.append({"at": a.started, "event": f"action.{a.action}.started"})
            if a.finished is not None:
                events.append({"at": a.finished, "event": f"action.{a.action}.{a.status}"})
        if self.finished is not None:
            events.append({"at": self.finished, "event": f"incident.{self.status}"})
        for e in events:
            e["t_s"] = _seconds(t0, e["at"])
        return sorted(events, key=lambda e: e["at"])

    def to_json(self) -> dict[str, Any]:
        """JSON form (``mlsecops incidents show --format json``), with the timeline."""
        return {
            "id": self.id,
            "playbook": self.playbook,
            "status": self.status,
            "dry_run": self.dry_run,
            "severity": str(self.severity),
            "triggered": self.triggered,
            "started": self.started,
            "finished": self.finished,
            "duration_s": _seconds(self.started, self.finished),
            "time_to_outcome_s": _seconds(self.alert.first_seen, self.finished),
            "actor": self.actor,
            "alert": self.alert.to_json(),
            "actions": [a.to_json() for a in self.actions],
            "timeline": self.timeline(),
        }


def _incident(s: Any, row: IncidentRow) -> Incident:
    alert = s.get(AlertRow, row.alert_id)
    actions = s.execute(
        select(IncidentAction).where(IncidentAction.incident_id == row.id).order_by(IncidentAction.position)
    ).scalars()
    return Incident(
        id=row.id,
        playbook=row.playbook,
        alert=stored_alert(alert),
        severity=Severity.parse(row.severity),
        triggered=row.triggered,
        started=row.started,
        finished=row.finished,
        status=row.status,
        actions=tuple(
            ActionRecord(
                a.position,
                a.action,
                json.loads(a.params),
                a.status,
                a.started,
                a.finished,
                json.loads(a.detail),
            )
            for a in actions
        ),
        actor=row.actor,
    )


def get_incident(ws: Workspace, incident_id: int) -> Incident:
    """One incident with its alert and actions.

    Raises:
        InputError: no such incident.
    """
    with ws.session(readonly=True) as s:
        row = s.get(IncidentRow, incident_id)
        if row is None:
            raise InputError(f"no incident with id {incident_id}; `mlsecops incidents list` shows them")
        return _incident(s, row)


def list_incidents(
    ws: Workspace, *, status: str | None = None, model: str | None = None, limit: int = 100
) -> list[Incident]:
    """Incidents, newest first.

    Raises:
        InputError: an unknown status, or a limit outside 1..10000.
    """
    if not 1 <= limit <= 10_000:
        raise InputError(f"limit must be between 1 and 10000; got {limit}")
    if status is not None and status not in STATUSES:
        raise InputError(f"incident status must be one of {', '.join(STATUSES)}; got {status!r}")
    q = select(IncidentRow).order_by(IncidentRow.id.desc()).limit(limit)
    if status is not None:
        q = q.where(IncidentRow.status == status)
    if model is not None:
        q = q.join(AlertRow, AlertRow.id == IncidentRow.alert_id).where(AlertRow.model == model)
    with ws.session(readonly=True) as s:
        return [_incident(s, r) for r in s.execute(q).scalars()]


def outcome(records: Sequence[ActionRecord]) -> str:
    """``completed`` (no action failed), ``failed`` (all did) or ``partial``."""
    failed = sum(r.status == "failed" for r in records)
    if failed == 0:
        return "completed"
    return "failed" if failed == len(records) else "partial"
