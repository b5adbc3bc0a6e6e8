"""Everything a posture reads, in a fixed number of queries whatever the number of versions.

``load(ws, models=...)`` reads, in one read-only transaction: the versions, every stage and alias
holding, approvals with their approvers' roles, trusted keys, the stage rows of every pipeline run
(not their bodies), the runs, the lineage edges with the differential-privacy facts recorded on
nodes, the alerts and incidents of those models, and the number of logged requests per served
version over the last hour. Bodies of stored reports are read afterwards only for the stages a posture shows, their
``metrics`` and ``findings`` extracted by the database (the figures they also hold are never loaded).

Which runs speak about a version is decided by content, as the registry decides it for gate runs
(``pipeline.evaluated.covers``): a run counts when one of its model-facing stages read this version's
exact bytes; its other stages (data checks, fairness and privacy audits) are then taken as that run's
judgement of the same candidate.
"""

from __future__ import annotations

import bisect
import json
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import JSON, ColumnElement, String, cast, func, select
from sqlalchemy.orm import Session

from mlsecops.monitor._alert_tables import AlertRow, IncidentRow
from mlsecops.pipeline.evaluated import covers
from mlsecops.registry._tables import (
    Approval,
    Assignment,
    ModelVersion,
    RegisteredModel,
    TrustedKey,
    User,
)
from mlsecops.runtime._decision_tables import DecisionRecord
from mlsecops.store import PipelineRun, StoredReport, Workspace
from mlsecops.store.models import LineageEdge, LineageNode

__all__ = [
    "SERVED_WINDOW_S",
    "AlertFact",
    "RunFact",
    "Snapshot",
    "StageFact",
    "VersionFact",
    "as_of",
    "load",
    "serving_version",
    "stage_bodies",
]

SERVED_WINDOW_S = 3600
"""Requests are counted over the last hour of the decision log: the (model, time) index makes that a
read bounded by an hour of traffic, where a count over the whole log reads all of it (0.8 s for
100,000 rows in ``benchmarks/results/ui.md``'s workspace). Whether a version served at all is read
from its production holdings, which cost nothing."""
OPEN_ALERT = ("open", "acknowledged")
"""Alert statuses that count as open (an acknowledged alert is still unresolved)."""
OPEN_INCIDENT = ("running", "partial", "failed")
"""Incident statuses that need a person: still running, or some action failed."""


@dataclass(frozen=True)
class VersionFact:
    """A version row, as much as a posture needs."""

    id: int
    model_id: int
    model: str
    version: int
    digest: str
    files: dict[str, str]
    created: str
    created_by: str
    archived: bool
    scan_verdict: str
    scan_summary: dict[str, Any]
    signed: bool
    key_hint: str | None
    signed_by: str | None
    gate_run_id: int | None
    lineage_node_id: int | None


@dataclass
class StageFact:
    """One stage row of a pipeline run (without its body)."""

    report_id: int
    run_id: int
    stage: str
    kind: str
    max_severity: str | None
    verdict: str | None
    record: dict[str, Any] | None
    status: tuple[Any, list[str]] | None = None
    """The stage's posture status and reasons once judged (``_parts``; they depend on this row and its
    run only, so a snapshot's ``as_of`` copies share them)."""


@dataclass(frozen=True)
class RunFact:
    """One pipeline run and its gate decision."""

    id: int
    pipeline: str
    finished: str
    passed: bool
    gate: list[Any]
    """The rule results ``{rule, passed, observed}`` as stored (JSON: checked where read)."""
    stages: list[StageFact] = field(default_factory=list)
    rules_by_stage: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """The rule results of ``gate`` by the stage their rule names (``all stages`` for stage-less rules)."""

    def __post_init__(self) -> None:
        for g in self.gate:
            if isinstance(g, dict) and ":" in str(g.get("rule", "")):
                self.rules_by_stage.setdefault(str(g["rule"]).split(":", 1)[0], []).append(g)


@dataclass(frozen=True)
class AlertFact:
    """An alert of a model, attributed to the version that served the model when it was raised."""

    id: int
    kind: str
    model: str
    severity: str
    status: str
    count: int
    first_seen: str
    evidence: dict[str, Any]
    resolved_at: str | None = None


@dataclass
class Snapshot:
    """What ``load`` read; every posture of the call is computed from it."""

    versions: list[VersionFact]
    assignments: dict[int, list[tuple[str, int, str, str | None, str]]]
    """model id -> ``(slot, version id, started, ended, started_by)`` oldest first."""
    approvals: dict[int, list[tuple[str, str | None, bool, str]]]
    """version id -> ``(user, role or None, disabled, created)``."""
    trusted: dict[str, str | None]
    """key hint -> revoked time (None while trusted)."""
    runs: dict[int, RunFact]
    runs_of: dict[int, list[int]]
    """version id -> ids of the runs that read its exact bytes, newest first."""
    alerts_of: dict[int, list[AlertFact]]
    """version id -> its alerts."""
    incidents_of: dict[int, list[tuple[int, str, str]]]
    """version id -> ``(incident id, status, triggered)`` of incidents on its alerts."""
    served: dict[tuple[str, str], int]
    """(model, version as logged) -> logged requests in the last ``SERVED_WINDOW_S`` seconds."""
    dp_facts: dict[int, list[dict[str, Any]]]
    """version id -> differential-privacy facts recorded on its lineage ancestors."""
    datasets: dict[int, int]
    """version id -> number of dataset nodes among its lineage ancestors."""
    memo: dict[tuple[int, str], Any] = field(default_factory=dict)
    """Per (version id, part): the run and stages chosen for it (computed once per snapshot)."""


def _json(text: str | None, default: Any) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def _in(values: Iterable[Any]) -> list[Any]:
    return sorted(set(values))


def _versions(s: Session, models: Sequence[str] | None) -> list[VersionFact]:
    query = (
        select(
            ModelVersion.id,
            ModelVersion.model_id,
            RegisteredModel.name,
            ModelVersion.version,
            ModelVersion.digest,
            ModelVersion.files,
            ModelVersion.created,
            ModelVersion.created_by,
            ModelVersion.archived,
            ModelVersion.scan_verdict,
            ModelVersion.scan_summary,
            ModelVersion.signature.is_not(None),
            ModelVersion.signature_key_hint,
            ModelVersion.signed_by,
            ModelVersion.gate_run_id,
            ModelVersion.lineage_node_id,
        )
        .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
        .order_by(RegisteredModel.name, ModelVersion.version)
    )
    if models is not None:
        query = query.where(RegisteredModel.name.in_(_in(models)))
    out = []
    for row in s.execute(query).all():
        files = {str(f[0]): str(f[1]) for f in _json(row[5], [])}
        out.append(
            VersionFact(
                id=row[0],
                model_id=row[1],
                model=row[2],
                version=row[3],
                digest=row[4],
                files=files,
                created=row[6],
                created_by=row[7],
                archived=bool(row[8]),
                scan_verdict=row[9],
                scan_summary=_json(row[10], {}),
                signed=bool(row[11]),
                key_hint=row[12],
                signed_by=row[13],
                gate_run_id=row[14],
                lineage_node_id=row[15],
            )
        )
    return out


def _runs(s: Session) -> dict[int, RunFact]:
    runs = {
        r[0]: RunFact(r[0], r[1], r[2], bool(r[3]), _json(r[4], []))
        for r in s.execute(
            select(
                PipelineRun.id,
                PipelineRun.pipeline,
                PipelineRun.finished,
                PipelineRun.passed,
                PipelineRun.gate,
            )
        ).all()
    }
    rows = s.execute(
        select(
            StoredReport.id,
            StoredReport.run_id,
            StoredReport.stage,
            StoredReport.kind,
            StoredReport.max_severity,
            StoredReport.verdict,
            StoredReport.artifacts,
        )
        .where(StoredReport.run_id.is_not(None), StoredReport.stage.is_not(None))
        .order_by(StoredReport.id)
    ).all()
    for rid, run_id, stage, kind, sev, verdict, record in rows:
        if run_id in runs:
            parsed = _json(record, None)
            runs[run_id].stages.append(
                StageFact(
                    rid, run_id, str(stage), kind, sev, verdict, parsed if isinstance(parsed, dict) else None
                )
            )
    return runs


def _runs_of(versions: Sequence[VersionFact], runs: Mapping[int, RunFact]) -> dict[int, list[int]]:
    """For each version, the runs that read its exact bytes, newest first (an index by digest and by
    file hash finds the candidates; ``covers`` decides).
    """
    by_hash: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for run in runs.values():
        for st in run.stages:
            if st.record is None:
                continue
            for p in st.record.get("paths") or []:
                if not isinstance(p, dict) or p.get("digest") is None:
                    continue
                keys = {str(p["digest"])} | {str(h) for _, h in p.get("files") or []}
                for k in keys:
                    by_hash[k].append((run.id, st.record))
    out: dict[int, list[int]] = {}
    for v in versions:
        probe = {v.digest, *(v.files.values())}
        found = {
            run_id
            for h in probe
            for run_id, record in by_hash.get(h, ())
            if covers(record, v.files, v.digest)
        }
        out[v.id] = sorted(found, key=lambda i: (runs[i].finished, i), reverse=True)
    return out


def _lineage(
    s: Session, versions: Sequence[VersionFact]
) -> tuple[dict[int, list[dict[str, Any]]], dict[int, int]]:
    """Differential-privacy facts and dataset counts among each version's lineage ancestors."""
    parents: dict[int, list[int]] = defaultdict(list)
    for parent, child in s.execute(select(LineageEdge.parent_id, LineageEdge.child_id)).all():
        parents[child].append(parent)
    kinds = dict(s.execute(select(LineageNode.id, LineageNode.kind)).all())
    facts: dict[int, dict[str, Any]] = {}
    for node_id, attrs in s.execute(
        select(LineageNode.id, LineageNode.attributes).where(
            LineageNode.attributes.like('%"differential_privacy"%')
        )
    ).all():
        dp = _json(attrs, {}).get("differential_privacy")
        if isinstance(dp, dict):
            facts[node_id] = dp
    dp_of: dict[int, list[dict[str, Any]]] = {}
    data_of: dict[int, int] = {}
    for v in versions:
        if v.lineage_node_id is None:
            continue
        seen = {v.lineage_node_id}
        frontier = [v.lineage_node_id]
        while frontier and len(seen) < 10_000:
            nxt = [p for n in frontier for p in parents.get(n, ()) if p not in seen]
            seen.update(nxt)
            frontier = nxt
        dp_of[v.id] = [facts[n] for n in sorted(seen) if n in facts]
        data_of[v.id] = sum(1 for n in seen if kinds.get(n) == "dataset")
    return dp_of, data_of


def serving_version(
    slots: Sequence[tuple[str, int, str, str | None, str]],
    versions_by_time: Sequence[tuple[str, int]],
    when: str,
) -> int | None:
    """The version id that served a model at ``when``: its production holder then, else the newest
    version registered by then (a guard may serve ``latest``), else none.

    Args:
        slots: the model's holdings ``(slot, version id, started, ended, started_by)``.
        versions_by_time: ``(created, version id)`` of the model's versions, oldest first.
        when: UTC ISO time.
    """
    for slot, vid, started, ended, _ in slots:
        if slot == "stage:production" and started <= when and (ended is None or ended > when):
            return vid
    i = bisect.bisect_right([c for c, _ in versions_by_time], when)
    return versions_by_time[i - 1][1] if i > 0 else None


def _alerts(
    s: Session,
    versions: Sequence[VersionFact],
    assignments: Mapping[int, list[tuple[str, int, str, str | None, str]]],
) -> tuple[dict[int, list[AlertFact]], dict[int, list[tuple[int, str, str]]]]:
    by_model: dict[str, list[VersionFact]] = defaultdict(list)
    for v in versions:
        by_model[v.model].append(v)
    alerts_of: dict[int, list[AlertFact]] = defaultdict(list)
    alert_version: dict[int, int] = {}
    rows = s.execute(
        select(
            AlertRow.id,
            AlertRow.kind,
            AlertRow.model,
            AlertRow.severity,
            AlertRow.status,
            AlertRow.count,
            AlertRow.first_seen,
            AlertRow.evidence,
            AlertRow.resolved_at,
        ).where(AlertRow.model.in_(_in(by_model)))
    ).all()
    timeline = {m: sorted((v.created, v.id) for v in vs) for m, vs in by_model.items()}
    numbers = {(v.model, str(v.version)): v.id for v in versions}
    for aid, kind, model, sev, status, count, first, evidence, resolved in rows:
        ev = _json(evidence, {})
        ev = ev if isinstance(ev, dict) else {}
        vid = numbers.get((model, str(ev.get("version", ""))))
        if vid is None:
            vs = by_model[model]
            vid = serving_version(assignments.get(vs[0].model_id, []), timeline[model], first)
        if vid is None:
            continue
        alert_version[aid] = vid
        alerts_of[vid].append(AlertFact(aid, kind, model, sev, status, count, first, ev, resolved))
    incidents_of: dict[int, list[tuple[int, str, str]]] = defaultdict(list)
    if alert_version:
        for iid, alert_id, status, triggered in s.execute(
            select(IncidentRow.id, IncidentRow.alert_id, IncidentRow.status, IncidentRow.triggered).where(
                IncidentRow.alert_id.in_(_in(alert_version))
            )
        ).all():
            incidents_of[alert_version[alert_id]].append((iid, status, triggered))
    return dict(alerts_of), dict(incidents_of)


def load(ws: Workspace, *, models: Sequence[str] | None = None) -> Snapshot:
    """Read what the postures of ``models`` (default: every model) need."""
    with ws.session(readonly=True) as s:
        versions = _versions(s, models)
        model_ids = _in(v.model_id for v in versions)
        version_ids = _in(v.id for v in versions)
        assignments: dict[int, list[tuple[str, int, str, str | None, str]]] = defaultdict(list)
        for mid, slot, vid, started, ended, by in s.execute(
            select(
                Assignment.model_id,
                Assignment.slot,
                Assignment.version_id,
                Assignment.started,
                Assignment.ended,
                Assignment.started_by,
            )
            .where(Assignment.model_id.in_(model_ids))
            .order_by(Assignment.started, Assignment.id)
        ).all():
            assignments[mid].append((slot, vid, started, ended, by))
        approvals: dict[int, list[tuple[str, str | None, bool, str]]] = defaultdict(list)
        for vid, user, role, disabled, created in s.execute(
            select(Approval.version_id, Approval.user_name, User.role, User.disabled, Approval.created)
            .outerjoin(User, User.name == Approval.user_name)
            .where(Approval.version_id.in_(version_ids))
            .order_by(Approval.id)
        ).all():
            approvals[vid].append((user, role, bool(disabled), created))
        trusted = dict(s.execute(select(TrustedKey.key_hint, TrustedKey.revoked)).all())
        runs = _runs(s)
        dp_of, data_of = _lineage(s, versions)
        alerts_of, incidents_of = _alerts(s, versions, assignments)
        served: dict[tuple[str, str], int] = {}
        names = _in(v.model for v in versions)
        if names:
            since_us = int((time.time() - SERVED_WINDOW_S) * 1_000_000)
            for model, version, n in s.execute(
                select(DecisionRecord.model, DecisionRecord.version, func.count())
                .where(DecisionRecord.model.in_(names), DecisionRecord.ts_us >= since_us)
                .group_by(DecisionRecord.model, DecisionRecord.version)
            ).all():
                served[(model, version)] = int(n)
    return Snapshot(
        versions=versions,
        assignments=dict(assignments),
        approvals=dict(approvals),
        trusted=trusted,
        runs=runs,
        runs_of=_runs_of(versions, runs),
        alerts_of=alerts_of,
        incidents_of=incidents_of,
        served=served,
        dp_facts=dp_of,
        datasets=data_of,
    )


def _extract(ws: Workspace, key: str) -> ColumnElement[Any]:
    """``body -> key`` computed by the database (SQLite's ``json_extract``, PostgreSQL's ``->``)."""
    if ws.engine.dialect.name == "postgresql":
        return cast(cast(StoredReport.body, JSON)[key], String)
    return func.json_extract(StoredReport.body, f"$.{key}")


def stage_bodies(
    ws: Workspace, report_ids: Iterable[int]
) -> dict[int, tuple[dict[str, Any], list[dict[str, Any]]]]:
    """``report id -> (metrics, findings)`` of stored reports, in one query, figures left in the database."""
    ids = _in(report_ids)
    if not ids:
        return {}
    out: dict[int, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
    with ws.session(readonly=True) as s:
        for rid, metrics, findings in s.execute(
            select(StoredReport.id, _extract(ws, "metrics"), _extract(ws, "findings")).where(
                StoredReport.id.in_(ids)
            )
        ).all():
            m = metrics if isinstance(metrics, dict) else _json(metrics, {})
            f = findings if isinstance(findings, list) else _json(findings, [])
            out[rid] = (m if isinstance(m, dict) else {}, f if isinstance(f, list) else [])
    return out


def as_of(snap: Snapshot, when: str, attached: Mapping[int, str]) -> Snapshot:
    """What ``snap`` held at ``when`` (UTC ISO): versions registered, runs finished, approvals given,
    alerts raised and not yet resolved, incidents triggered, keys not yet distrusted by then.

    Args:
        snap: a snapshot read now.
        when: the moment.
        attached: version id -> when its current gate run was attached (``registry.gate.attach``).

    Logged request counts are today's (the decision log is not re-counted per moment).
    """
    versions = [
        replace(v, gate_run_id=v.gate_run_id if attached.get(v.id, "~") <= when else None)
        for v in snap.versions
        if v.created <= when
    ]
    runs = {i: r for i, r in snap.runs.items() if r.finished <= when}
    alerts = {
        vid: [
            replace(a, status="open" if a.resolved_at is None or a.resolved_at > when else "resolved")
            for a in items
            if a.first_seen <= when
        ]
        for vid, items in snap.alerts_of.items()
    }
    return Snapshot(
        versions=versions,
        assignments=snap.assignments,
        approvals={vid: [a for a in rows if a[3] <= when] for vid, rows in snap.approvals.items()},
        trusted={h: (r if r is not None and r <= when else None) for h, r in snap.trusted.items()},
        runs=runs,
        runs_of={vid: [r for r in ids if r in runs] for vid, ids in snap.runs_of.items()},
        alerts_of=alerts,
        incidents_of={vid: [i for i in rows if i[2] <= when] for vid, rows in snap.incidents_of.items()},
        served=snap.served,
        dp_facts=snap.dp_facts,
        datasets=snap.datasets,
    )
