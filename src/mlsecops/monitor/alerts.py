"""The alert store: detector alerts kept in the workspace, deduplicated, audited and announced.

An :class:`~mlsecops.monitor.interface.Alert` from a detector is stored by :meth:`AlertStore.record`.
While an alert of the same (kind, principal, model) is open or acknowledged, a new one is a *repeat*:
it increments the stored alert's count and updates its last-seen time, query index and evidence. A
repeat at a higher severity *escalates* it (an acknowledged alert re-opens: the person who acknowledged
it saw a lesser one); severity never goes down. Once resolved, the next alert of that triple opens a new
row. A database constraint keeps one unresolved row per triple, so several guard workers or replicas
sharing a database dedupe too (the loser of an insert race retries as a repeat).

Every recorded alert (new, escalated or repeat), every acknowledgement and every resolution writes an
audit event (``monitor.alert``, ``monitor.alert_ack``, ``monitor.alert_resolve``) in the transaction
that changes the row. New and escalated alerts and acknowledgements are then announced through the
``notify`` callback given to the store; the runtime passes the registry's HMAC-signed webhooks
(``mlsecops.runtime.response.webhook_notifier``: this layer may not import the registry). A failed
announcement is logged and never undoes or blocks the change.

Alerts come from detectors, which see attacker-chosen input: evidence is made JSON-safe (numpy values,
NaN and infinities, depth, item counts) and bounded in size before it is stored, and over-long names are
shortened with a digest so two different principals never share a row.

>>> # store = AlertStore(ws); rec = store.record(alert); store.acknowledge(rec.alert.id, actor="alice")
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from mlsecops.core.errors import GovernanceRefusal, InputError, WorkspaceError
from mlsecops.core.severity import Severity, utcnow
from mlsecops.monitor._alert_tables import AlertRow
from mlsecops.monitor.interface import Alert
from mlsecops.store import Workspace, audit

__all__ = [
    "ACK_ROLES",
    "MAX_EVIDENCE_BYTES",
    "AlertStatus",
    "AlertStore",
    "Notifier",
    "Recorded",
    "StoredAlert",
    "json_safe",
    "stored_alert",
]

_log = logging.getLogger("mlsecops.monitor.alerts")

ACK_ROLES = frozenset({"admin", "approver", "deployer"})
"""Registry roles (``mlsecops.registry.Role`` values) that may acknowledge or resolve alerts: those that
act on the registry. A ``viewer`` only reads and a ``client`` only calls models. The dashboard
(``mlsecops.web.ACK_ROLES``) and ``mlsecops alerts ack|resolve`` enforce the same set."""

MAX_EVIDENCE_BYTES = 16 * 1024
"""Largest evidence kept per alert (JSON bytes); larger evidence is replaced by its digest and keys."""
MAX_AUDIT_EVIDENCE_BYTES = 2 * 1024
"""Evidence larger than this goes to the audit trail as a digest only (the trail is kept for ever)."""
MAX_EVIDENCE_DEPTH = 6
"""Nesting kept in evidence; deeper values become their type name (a hostile structure stays small)."""
MAX_EVIDENCE_ITEMS = 64
"""Items kept per list or mapping in evidence."""
MAX_LIST_LIMIT = 10_000
"""Most alerts one ``list`` call returns."""
_INSERT_RETRIES = 3
"""Attempts when another writer inserted the same open alert at the same moment (then it is a repeat)."""
_LIMITS = {"kind": 100, "principal": 200, "model": 200}

Notifier = Callable[[str, Mapping[str, Any]], object]
"""``notify(event, payload)``: announce an alert change (e.g. by webhook); its errors are logged only."""


class AlertStatus(StrEnum):
    """Life cycle of a stored alert."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An alert as stored: the detector's alert plus its identity, counts and life cycle."""

    id: int
    kind: str
    principal: str
    model: str
    severity: Severity
    status: AlertStatus
    count: int
    """Times raised (1 + repeats)."""
    first_seen: str
    """UTC ISO time of the observation that first raised it."""
    last_seen: str
    first_query_index: int
    last_query_index: int
    evidence: dict[str, Any]
    """Evidence of the latest repeat."""
    created: str
    acked_by: str | None = None
    acked_at: str | None = None
    ack_note: str | None = None
    resolved_by: str | None = None
    resolved_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form (``mlsecops alerts show --format json``, webhook payloads)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "principal": self.principal,
            "model": self.model,
            "severity": str(self.severity),
            "status": str(self.status),
            "count": self.count,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "first_query_index": self.first_query_index,
            "last_query_index": self.last_query_index,
            "evidence": self.evidence,
            "created": self.created,
            "acknowledged_by": self.acked_by,
            "acknowledged_at": self.acked_at,
            "ack_note": self.ack_note,
            "resolved_by": self.resolved_by,
            "resolved_at": self.resolved_at,
        }


@dataclass(frozen=True, slots=True)
class Recorded:
    """What :meth:`AlertStore.record` did with one alert."""

    alert: StoredAlert
    change: Literal["new", "escalated", "repeat"]
    previous: Severity | None
    """The stored severity before this alert (None for a new one)."""


def _now() -> str:
    return utcnow().isoformat(timespec="microseconds")


def _iso(unix: float) -> str:
    """Unix seconds as UTC ISO; a time that is not a plausible date becomes now."""
    try:
        if not math.isfinite(unix):
            raise ValueError
        return dt.datetime.fromtimestamp(unix, dt.UTC).isoformat(timespec="microseconds")
    except (ValueError, OverflowError, OSError, TypeError):
        return _now()


def _fit(value: str, field: str) -> str:
    """``value`` within the column's length; a longer one keeps a prefix plus a digest of the whole,
    so two different long values never collide.
    """
    limit = _LIMITS[field]
    text = str(value)
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{text[: limit - 18]}~{digest}"


def json_safe(value: Any, depth: int = 0) -> Any:
    """``value`` as plain JSON: numpy scalars and arrays unwrapped, non-finite floats as strings,
    depth and item counts bounded (``MAX_EVIDENCE_DEPTH``, ``MAX_EVIDENCE_ITEMS``), anything else as a
    short string.
    """
    if value is None or isinstance(value, bool | str | int):
        return value[:1000] if isinstance(value, str) else value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:
        return json_safe(item(), depth)
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and getattr(value, "ndim", None) is not None:
        value = tolist()
    if depth >= MAX_EVIDENCE_DEPTH:
        return f"<{type(value).__name__}>"
    if isinstance(value, Mapping):
        items = list(value.items())[:MAX_EVIDENCE_ITEMS]
        return {str(k)[:200]: json_safe(v, depth + 1) for k, v in items}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v, depth + 1) for v in list(value)[:MAX_EVIDENCE_ITEMS]]
    return str(value)[:200]


def _evidence(evidence: object) -> tuple[dict[str, Any], str]:
    """Bounded, JSON-safe evidence and its JSON text (a detector that sent no mapping still gets one)."""
    safe = json_safe(evidence)
    if not isinstance(safe, dict):
        safe = {"value": safe}
    text = json.dumps(safe, sort_keys=True, separators=(",", ":"))
    if len(text.encode()) > MAX_EVIDENCE_BYTES:
        safe = {
            "truncated": True,
            "sha256": hashlib.sha256(text.encode()).hexdigest(),
            "keys": sorted(safe)[:MAX_EVIDENCE_ITEMS],
        }
        text = json.dumps(safe, sort_keys=True, separators=(",", ":"))
    return safe, text


def _open_key(kind: str, principal: str, model: str) -> str:
    return hashlib.sha256(json.dumps([kind, principal, model]).encode()).hexdigest()


def stored_alert(row: AlertRow) -> StoredAlert:
    """A stored alert read from its row (for modules that query the alert tables themselves)."""
    return StoredAlert(
        id=row.id,
        kind=row.kind,
        principal=row.principal,
        model=row.model,
        severity=Severity.parse(row.severity),
        status=AlertStatus(row.status),
        count=row.count,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        first_query_index=row.first_query_index,
        last_query_index=row.last_query_index,
        evidence=json.loads(row.evidence),
        created=row.created,
        acked_by=row.acked_by,
        acked_at=row.acked_at,
        ack_note=row.ack_note,
        resolved_by=row.resolved_by,
        resolved_at=row.resolved_at,
    )


def _lost_insert_race(err: BaseException) -> bool:
    cause = err if isinstance(err, IntegrityError) else err.__cause__
    if isinstance(cause, IntegrityError):
        return True
    return isinstance(cause, DBAPIError) and getattr(cause.orig, "sqlstate", None) in {"40001", "40P01"}


class AlertStore:
    """The workspace's alerts.

    Args:
        ws: the workspace.
        actor: who records alerts (the audit events' actor), e.g. ``guard`` or ``monitor``.
        notify: announces new and escalated alerts and acknowledgements (``None``: nobody).
    """

    def __init__(self, ws: Workspace, *, actor: str = "monitor", notify: Notifier | None = None) -> None:
        self.ws = ws
        self.actor = actor
        self.notify = notify

    # ------------------------------------------------------------------ recording

    def record(self, alert: Alert) -> Recorded:
        """Store ``alert``: a new row, or a repeat (and maybe escalation) of the open one.

        Raises:
            WorkspaceError: the database cannot be written.
        """
        attempt = 0
        while True:
            attempt += 1
            try:
                with self.ws.session() as s:
                    recorded = self._record(s, alert)
                break
            except (WorkspaceError, IntegrityError) as err:
                if attempt >= _INSERT_RETRIES or not _lost_insert_race(err):
                    raise
        if recorded.change != "repeat":
            self._announce("alert.raised", {"change": recorded.change, "alert": recorded.alert.to_json()})
        return recorded

    def record_all(self, alerts: Iterable[Alert]) -> list[Recorded]:
        """:meth:`record` each alert, in order."""
        return [self.record(a) for a in alerts]

    def _record(self, s: Session, alert: Alert) -> Recorded:
        kind, principal, model = (
            _fit(alert.kind, "kind"),
            _fit(alert.principal, "principal"),
            _fit(alert.model, "model"),
        )
        severity = Severity.parse(alert.severity)
        evidence, evidence_text = _evidence(alert.evidence)
        seen = _iso(float(alert.time))
        query_index = int(alert.query_index)
        key = _open_key(kind, principal, model)
        row = s.execute(
            select(AlertRow).where(AlertRow.open_key == key).with_for_update()
        ).scalar_one_or_none()
        previous: Severity | None = None
        if row is None:
            row = AlertRow(
                kind=kind,
                principal=principal,
                model=model,
                severity=str(severity),
                status=str(AlertStatus.OPEN),
                count=1,
                first_seen=seen,
                last_seen=seen,
                first_query_index=query_index,
                last_query_index=query_index,
                evidence=evidence_text,
                created=_now(),
                open_key=key,
            )
            s.add(row)
            s.flush()
            change: Literal["new", "escalated", "repeat"] = "new"
        else:
            previous = Severity.parse(row.severity)
            row.count += 1
            row.last_seen = max(row.last_seen, seen)
            row.last_query_index = max(row.last_query_index, query_index)
            row.evidence = evidence_text
            change = "repeat"
            if severity > previous:
                row.severity = str(severity)
                row.status = str(AlertStatus.OPEN)  # the acknowledgement was of a lesser alert
                change = "escalated"
        details: dict[str, Any] = {
            "alert_id": row.id,
            "change": change,
            "kind": kind,
            "principal": principal,
            "model": model,
            "severity": str(severity),
            "count": row.count,
            "query_index": query_index,
            "time": seen,
        }
        if previous is not None:
            details["previous_severity"] = str(previous)
        if len(evidence_text.encode()) <= MAX_AUDIT_EVIDENCE_BYTES:
            details["evidence"] = evidence
        else:
            details["evidence_sha256"] = hashlib.sha256(evidence_text.encode()).hexdigest()
        audit.append(s, actor=self.actor, action="monitor.alert", subject=f"alert:{row.id}", details=details)
        return Recorded(stored_alert(row), change, previous)

    # ------------------------------------------------------------------ reading

    def get(self, alert_id: int) -> StoredAlert:
        """One alert by id.

        Raises:
            InputError: no such alert.
        """
        with self.ws.session(readonly=True) as s:
            row = s.get(AlertRow, alert_id)
            if row is None:
                raise InputError(f"no alert with id {alert_id}; `mlsecops alerts list` shows them")
            return stored_alert(row)

    def list(
        self,
        *,
        status: AlertStatus | str | None = None,
        model: str | None = None,
        principal: str | None = None,
        kind: str | None = None,
        limit: int = 100,
    ) -> list[StoredAlert]:
        """Alerts, newest first, filtered by any of status, model, principal and kind.

        Raises:
            InputError: an unknown status or a limit outside 1..``MAX_LIST_LIMIT``.
        """
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InputError(f"limit must be between 1 and {MAX_LIST_LIMIT}; got {limit}")
        query = select(AlertRow).order_by(AlertRow.id.desc()).limit(limit)
        if status is not None:
            try:
                query = query.where(AlertRow.status == str(AlertStatus(str(status))))
            except ValueError:
                known = ", ".join(str(s) for s in AlertStatus)
                raise InputError(f"alert status must be one of {known}; got {status!r}") from None
        for column, value in (
            (AlertRow.model, model),
            (AlertRow.principal, principal),
            (AlertRow.kind, kind),
        ):
            if value is not None:
                query = query.where(column == value)
        with self.ws.session(readonly=True) as s:
            return [stored_alert(r) for r in s.execute(query).scalars()]

    # ------------------------------------------------------------------ life cycle

    def acknowledge(
        self, alert_id: int, *, actor: str, note: str = "", role: str | None = None
    ) -> StoredAlert:
        """Mark an open alert acknowledged by ``actor`` (audited as ``monitor.alert_ack``).

        ``role`` is the actor's registry role when a person or key acts (the CLI, the dashboard):
        outside ``ACK_ROLES`` the acknowledgement is refused and the refusal recorded as
        ``monitor.denied``. Without it the caller is trusted code (the guard's own responses).

        Raises:
            GovernanceRefusal: ``role`` may not acknowledge alerts.
            InputError: no such alert, or it is resolved or acknowledged already.
        """
        self._require_role(alert_id, actor=actor, role=role, verb="acknowledge")
        stored = self._transition(alert_id, AlertStatus.ACKNOWLEDGED, actor=actor, note=note)
        self._announce("alert.acknowledged", {"alert": stored.to_json()})
        return stored

    def resolve(self, alert_id: int, *, actor: str, note: str = "", role: str | None = None) -> StoredAlert:
        """Close an alert (audited as ``monitor.alert_resolve``); the next one of its kind, principal
        and model opens a new alert. ``role`` is checked as in ``acknowledge``.

        Raises:
            GovernanceRefusal: ``role`` may not resolve alerts.
            InputError: no such alert, or it is resolved already.
        """
        self._require_role(alert_id, actor=actor, role=role, verb="resolve")
        return self._transition(alert_id, AlertStatus.RESOLVED, actor=actor, note=note)

    def _require_role(self, alert_id: int, *, actor: str, role: str | None, verb: str) -> None:
        """Refuse (audited as ``monitor.denied``, in its own transaction) a role outside ``ACK_ROLES``.

        Raises:
            GovernanceRefusal: the role may not act on alerts.
        """
        if role is None or str(role) in ACK_ROLES:
            return
        with self.ws.session() as s:
            audit.append(
                s,
                actor=actor,
                action="monitor.denied",
                subject=f"alert:{alert_id}",
                details={"permission": f"alert.{verb}", "role": str(role)},
            )
        allowed = " or ".join(sorted(ACK_ROLES))
        raise GovernanceRefusal(f"{actor} ({role}) may not {verb} alerts; that needs the role {allowed}")

    def _transition(self, alert_id: int, to: AlertStatus, *, actor: str, note: str) -> StoredAlert:
        note = note[:2000]
        with self.ws.session() as s:
            row = s.execute(
                select(AlertRow).where(AlertRow.id == alert_id).with_for_update()
            ).scalar_one_or_none()
            if row is None:
                raise InputError(f"no alert with id {alert_id}; `mlsecops alerts list` shows them")
            if row.status == str(AlertStatus.RESOLVED) or row.status == str(to):
                raise InputError(f"alert {alert_id} is {row.status} already")
            now = _now()
            if to is AlertStatus.ACKNOWLEDGED:
                row.acked_by, row.acked_at, row.ack_note = actor, now, note
                action = "monitor.alert_ack"
            else:
                row.resolved_by, row.resolved_at, row.open_key = actor, now, None
                if note:
                    row.ack_note = f"{row.ack_note}\n{note}" if row.ack_note else note
                action = "monitor.alert_resolve"
            row.status = str(to)
            audit.append(
                s,
                actor=actor,
                action=action,
                subject=f"alert:{row.id}",
                details={"kind": row.kind, "principal": row.principal, "model": row.model, "note": note},
            )
            return stored_alert(row)

    def _announce(self, event: str, payload: dict[str, Any]) -> None:
        if self.notify is None:
            return
        try:
            self.notify(event, payload)
        except Exception as err:  # an announcement never undoes or blocks the recorded change
            _log.warning("announcing %s failed: %s: %s", event, type(err).__name__, err)
