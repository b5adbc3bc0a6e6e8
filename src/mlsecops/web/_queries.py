"""What the dashboard reads, as plain JSON-able values, in a bounded number of queries per page.

No page issues one query per row: the models page reads every model, version, open assignment,
approval count, gate run and open-alert count in six statements whatever the number of versions, and
the audit page reads one page of events by keyset (``seq < before``), so 100,000 events cost what 50
do. The HTML pages and the JSON API share these functions.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from typing import Any

from sqlalchemy import case, func, select

from mlsecops.core.errors import InputError
from mlsecops.monitor._alert_tables import AlertRow, IncidentRow
from mlsecops.registry._tables import Approval, Assignment, ModelVersion, RegisteredModel
from mlsecops.registry._versions import describe, get_model, get_version, history_rows
from mlsecops.runtime._decision_tables import DecisionRecord
from mlsecops.store import AuditEvent, LineageEdge, LineageNode, PipelineRun, StoredReport, Workspace
from mlsecops.store import lineage as lineage_store
from mlsecops.web._verify import state_seq

__all__ = [
    "AUDIT_PAGE",
    "MAX_LINEAGE_NODES",
    "MAX_LIST",
    "NotFound",
    "OverviewCache",
    "alerts_page",
    "audit_page",
    "incidents_page",
    "model_history",
    "models_overview",
    "parse_time",
    "run_detail",
    "runs_page",
    "runtime_series",
    "version_detail",
    "version_lineage_graph",
]

AUDIT_PAGE = 50
"""Events per audit page."""
MAX_LIST = 200
"""Most alerts, incidents or runs one page lists (newest first)."""
MAX_LINEAGE_NODES = 500
"""Lineage nodes read for one version (upstream and downstream)."""


class NotFound(InputError):
    """The page names something the workspace does not hold (404)."""


def parse_time(text: str | None, field: str) -> str | None:
    """An ISO 8601 time from a form as the stored UTC form (naive times are UTC); empty: None.

    Raises:
        InputError: not an ISO 8601 time.
    """
    if text is None or not text.strip():
        return None
    try:
        when = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"{field} must be an ISO 8601 time such as 2026-01-31T12:00; got {text[:40]!r}"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).isoformat(timespec="microseconds")


# ---------------------------------------------------------------------------------------- models


def models_overview(ws: Workspace) -> list[dict[str, Any]]:
    """Every model with every version: scan, signature, approvals, gate, stages and aliases."""
    with ws.session(readonly=True) as s:
        models = s.execute(
            select(RegisteredModel.id, RegisteredModel.name, RegisteredModel.last_version).order_by(
                RegisteredModel.name
            )
        ).all()
        versions = s.execute(
            select(
                ModelVersion.id,
                ModelVersion.model_id,
                ModelVersion.version,
                ModelVersion.created,
                ModelVersion.created_by,
                ModelVersion.source_name,
                ModelVersion.scan_verdict,
                ModelVersion.signed_by,
                ModelVersion.archived,
                ModelVersion.gate_run_id,
            ).order_by(ModelVersion.model_id, ModelVersion.version.desc())
        ).all()
        slots: dict[int, list[str]] = {}
        for version_id, slot in s.execute(
            select(Assignment.version_id, Assignment.slot).where(Assignment.ended.is_(None))
        ).all():
            slots.setdefault(version_id, []).append(slot)
        approvals = dict(
            s.execute(select(Approval.version_id, func.count()).group_by(Approval.version_id)).tuples().all()
        )
        gate_ids = {v.gate_run_id for v in versions if v.gate_run_id is not None}
        gates: dict[int, bool] = {}
        if gate_ids:
            gates = dict(
                s.execute(select(PipelineRun.id, PipelineRun.passed).where(PipelineRun.id.in_(gate_ids)))
                .tuples()
                .all()
            )
        open_alerts = dict(
            s.execute(
                select(AlertRow.model, func.count())
                .where(AlertRow.status != "resolved")
                .group_by(AlertRow.model)
            )
            .tuples()
            .all()
        )
    by_model: dict[int, list[dict[str, Any]]] = {}
    for v in versions:
        held = sorted(slots.get(v.id, []))
        by_model.setdefault(v.model_id, []).append(
            {
                "version": v.version,
                "created": v.created,
                "created_by": v.created_by,
                "source_name": v.source_name,
                "scan_verdict": v.scan_verdict,
                "signed_by": v.signed_by,
                "archived": v.archived,
                "approvals": int(approvals.get(v.id, 0)),
                "gate_run_id": v.gate_run_id,
                "gate_passed": gates.get(v.gate_run_id) if v.gate_run_id is not None else None,
                "stages": [h.partition(":")[2] for h in held if h.startswith("stage:")],
                "aliases": [h.partition(":")[2] for h in held if h.startswith("alias:")],
            }
        )
    out = []
    for m in models:
        rows = by_model.get(m.id, [])
        production = next((r["version"] for r in rows if "production" in r["stages"]), None)
        out.append(
            {
                "name": m.name,
                "latest": m.last_version,
                "production": production,
                "open_alerts": int(open_alerts.get(m.name, 0)),
                "versions": rows,
            }
        )
    return out


class OverviewCache:
    """``models_overview`` kept until the audit head moves.

    Everything it shows changes only with an audited action (registering, signing, gating,
    approving, promoting, an alert raised, acknowledged or resolved), so the newest event's position
    says when it is stale. Each caller gets its own copy to annotate.
    """

    def __init__(self, ws: Workspace) -> None:
        self._ws = ws
        self._lock = threading.Lock()
        self._head = -1
        self._data: list[dict[str, Any]] = []

    def get(self) -> list[dict[str, Any]]:
        """Every model with every version (a copy)."""
        head = state_seq(self._ws)
        with self._lock:
            fresh = head == self._head
            data = self._data
        if not fresh:
            data = models_overview(self._ws)
            with self._lock:
                self._head, self._data = head, data
        return [{**m, "versions": [dict(v) for v in m["versions"]]} for m in data]


def version_detail(ws: Workspace, name: str, version: int) -> dict[str, Any]:
    """One version: the registry's description, approvals with comments, and its gate run's rules.

    Raises:
        NotFound: no such model or version.
    """
    with ws.session(readonly=True) as s:
        try:
            model = get_model(s, name)
            v = get_version(s, model, version)
        except InputError as err:
            raise NotFound(str(err)) from None
        info = describe(s, model, v).to_json()
        info["approvals"] = [
            {"user": a.user_name, "comment": a.comment, "created": a.created}
            for a in s.execute(
                select(Approval).where(Approval.version_id == v.id).order_by(Approval.id)
            ).scalars()
        ]
        gate: dict[str, Any] | None = None
        if v.gate_run_id is not None:
            run = s.get(PipelineRun, v.gate_run_id)
            if run is not None:
                gate = {
                    "run_id": run.id,
                    "pipeline": run.pipeline,
                    "passed": run.passed,
                    "finished": run.finished,
                    "rules": json.loads(run.gate or "[]"),
                }
        info["gate"] = gate
        info["files_list"] = [{"name": f[0], "sha256": f[1]} for f in json.loads(v.files)[:200]]
    return info


def model_history(ws: Workspace, name: str, *, at: str | None = None) -> list[dict[str, Any]]:
    """Every holding of a stage or alias by a version (oldest first); with ``at``, those open then.

    Raises:
        NotFound: no such model.
    """
    with ws.session(readonly=True) as s:
        try:
            model = get_model(s, name)
        except InputError as err:
            raise NotFound(str(err)) from None
        return [
            {
                "slot": h.slot,
                "version": h.version,
                "started": h.started,
                "started_by": h.started_by,
                "reason": h.reason,
                "ended": h.ended,
                "ended_by": h.ended_by,
            }
            for h in history_rows(s, model, at=at)
        ]


def version_lineage_graph(ws: Workspace, name: str, version: int) -> dict[str, Any] | None:
    """The lineage document of a version (``store.lineage.graph_document``), None when none is recorded."""
    with ws.session(readonly=True) as s:
        node = lineage_store.find_node(s, "model_version", name, str(version))
        if node is None:
            return None
        doc = lineage_store.graph_document(lineage_store.ancestors(s, node, max_nodes=MAX_LINEAGE_NODES))
        # and downstream: the deployments (and anything else) this version went on to produce
        frontier, seen = [node.id], {node.id}
        while frontier and len(doc["nodes"]) < MAX_LINEAGE_NODES:
            edges = s.execute(select(LineageEdge).where(LineageEdge.parent_id.in_(frontier))).scalars().all()
            children = {e.child_id for e in edges} - seen
            rows = (
                s.execute(select(LineageNode).where(LineageNode.id.in_(children))).scalars().all()
                if children
                else []
            )
            for n in rows:
                doc["nodes"][str(n.id)] = {
                    "kind": n.kind,
                    "name": n.name,
                    "version": n.version,
                    "digest": n.digest,
                }
            doc["edges"].extend([e.parent_id, e.child_id, e.relation] for e in edges)
            seen |= children
            frontier = list(children)
        return doc


# ---------------------------------------------------------------------------------------- runtime


def alerts_page(
    ws: Workspace, *, status: str | None = None, model: str | None = None, limit: int = MAX_LIST
) -> list[dict[str, Any]]:
    """Alerts, newest first (``monitor.alerts.AlertStore.list``), as JSON."""
    from mlsecops.monitor.alerts import AlertStore

    return [a.to_json() for a in AlertStore(ws).list(status=status or None, model=model or None, limit=limit)]


def incidents_page(
    ws: Workspace, *, alert_id: int | None = None, model: str | None = None, limit: int = MAX_LIST
) -> list[dict[str, Any]]:
    """Incidents newest first with their alert's kind, principal and model (one query, no actions)."""
    query = (
        select(IncidentRow, AlertRow.kind, AlertRow.principal, AlertRow.model, AlertRow.first_seen)
        .join(AlertRow, AlertRow.id == IncidentRow.alert_id)
        .order_by(IncidentRow.id.desc())
        .limit(limit)
    )
    if alert_id is not None:
        query = query.where(IncidentRow.alert_id == alert_id)
    if model:
        query = query.where(AlertRow.model == model)
    out = []
    with ws.session(readonly=True) as s:
        for row, kind, principal, model_name, first_seen in s.execute(query).all():
            out.append(
                {
                    "id": row.id,
                    "alert_id": row.alert_id,
                    "playbook": row.playbook,
                    "status": row.status,
                    "severity": row.severity,
                    "started": row.started,
                    "finished": row.finished,
                    "time_to_outcome_s": _seconds(first_seen, row.finished),
                    "kind": kind,
                    "principal": principal,
                    "model": model_name,
                }
            )
    return out


def _seconds(start: str, end: str | None) -> float | None:
    if end is None:
        return None
    return round((dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds(), 3)


def runtime_series(
    ws: Workspace, model: str, *, bucket_s: int = 3600
) -> dict[str, list[tuple[float, float]]]:
    """Per time bucket (unix seconds of its start): requests, rejections (status >= 400) and alerts."""
    bucket_us = bucket_s * 1_000_000
    with ws.session(readonly=True) as s:
        rows = s.execute(
            select(
                (DecisionRecord.ts_us // bucket_us).label("b"),
                func.count(),
                func.sum(case((DecisionRecord.status >= 400, 1), else_=0)),
            )
            .where(DecisionRecord.model == model)
            .group_by("b")
            .order_by("b")
        ).all()
        alerts = s.execute(select(AlertRow.first_seen).where(AlertRow.model == model)).scalars().all()
    requests = [(float(int(b) * bucket_s), float(n)) for b, n, _ in rows]
    rejected = [(float(int(b) * bucket_s), float(r or 0)) for b, _, r in rows]
    counts: dict[float, float] = {}
    for seen in alerts:
        t = dt.datetime.fromisoformat(seen).timestamp()
        key = float(int(t // bucket_s) * bucket_s)
        counts[key] = counts.get(key, 0.0) + 1.0
    return {"requests": requests, "rejected": rejected, "alerts": sorted(counts.items())}


# ---------------------------------------------------------------------------------------- audit


def audit_page(
    ws: Workspace,
    *,
    action: str | None = None,
    actor: str | None = None,
    subject: str | None = None,
    since: str | None = None,
    until: str | None = None,
    before: int | None = None,
    limit: int = AUDIT_PAGE,
) -> tuple[list[dict[str, Any]], int | None]:
    """One page of events, newest first, and the ``before`` of the next page (None at the end).

    ``action`` and ``subject`` ending in ``*`` match a prefix; ``since``/``until`` are stored-form
    UTC times (``parse_time``).
    """
    cols = (
        AuditEvent.seq,
        AuditEvent.ts,
        AuditEvent.actor,
        AuditEvent.action,
        AuditEvent.subject,
        AuditEvent.details,
    )
    query = select(*cols).order_by(AuditEvent.seq.desc()).limit(limit + 1)
    for column, value in ((AuditEvent.action, action), (AuditEvent.subject, subject)):
        if value:
            if value.endswith("*"):
                query = query.where(column.startswith(value[:-1], autoescape=True))
            else:
                query = query.where(column == value)
    if actor:
        query = query.where(AuditEvent.actor == actor)
    if since:
        query = query.where(AuditEvent.ts >= since)
    if until:
        query = query.where(AuditEvent.ts <= until)
    if before is not None:
        query = query.where(AuditEvent.seq < before)
    with ws.session(readonly=True) as s:
        rows = s.execute(query).all()
    events = [
        {
            "seq": r.seq,
            "ts": r.ts,
            "actor": r.actor,
            "action": r.action,
            "subject": r.subject,
            "details": r.details,
        }
        for r in rows[:limit]
    ]
    return events, (events[-1]["seq"] if len(rows) > limit else None)


# ---------------------------------------------------------------------------------------- runs


def runs_page(ws: Workspace, *, limit: int = MAX_LIST) -> list[dict[str, Any]]:
    """Pipeline runs newest first with their gate decision and failed rules."""
    from mlsecops.pipeline.history import list_runs

    return [
        {
            "id": r.id,
            "pipeline": r.pipeline,
            "started": r.started,
            "finished": r.finished,
            "actor": r.actor,
            "passed": r.passed,
            "failed_rules": list(r.failed_rules),
        }
        for r in list_runs(ws, limit=limit)
    ]


def run_detail(ws: Workspace, run_id: int) -> dict[str, Any]:
    """A run, its gate rules and its stored reports (ids, stages, verdicts).

    Raises:
        NotFound: no such run.
    """
    with ws.session(readonly=True) as s:
        run = s.get(PipelineRun, run_id)
        if run is None:
            raise NotFound(f"no pipeline run {run_id} in this workspace")
        reports = s.execute(
            select(
                StoredReport.id,
                StoredReport.stage,
                StoredReport.kind,
                StoredReport.verdict,
                StoredReport.max_severity,
            )
            .where(StoredReport.run_id == run_id)
            .order_by(StoredReport.id)
        ).all()
        return {
            "id": run.id,
            "pipeline": run.pipeline,
            "started": run.started,
            "finished": run.finished,
            "actor": run.actor,
            "passed": run.passed,
            "rules": json.loads(run.gate or "[]"),
            "reports": [
                {
                    "id": r.id,
                    "stage": r.stage,
                    "kind": r.kind,
                    "verdict": r.verdict,
                    "max_severity": r.max_severity,
                }
                for r in reports
            ],
        }
