"""Postures of registered model versions, read in a fixed number of queries.

``all_postures(ws)`` reads one ``Snapshot`` of the workspace and the metrics and findings of the
stage reports it will show (one more query), then computes every version's parts in memory; so does
``model_posture`` for the versions of one model. See ``_parts`` for each part and ``_model`` for the
score and the grade.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select

from mlsecops.core.errors import InputError
from mlsecops.posture._model import VersionPosture, grade_of, score_of
from mlsecops.posture._parts import Bodies, build_parts, wanted_reports
from mlsecops.posture._snapshot import Snapshot, VersionFact, as_of, load, stage_bodies
from mlsecops.posture.history import parse_time
from mlsecops.store import Workspace
from mlsecops.store.models import AuditEvent

__all__ = ["all_postures", "attach_times", "model_posture", "postures_from"]


def _slots(v: VersionFact, snap: Snapshot) -> tuple[str, ...]:
    held = [
        slot.partition(":")[2]
        for slot, vid, _, ended, _ in snap.assignments.get(v.model_id, [])
        if vid == v.id and ended is None
    ]
    return tuple(sorted(held))


def _posture(v: VersionFact, snap: Snapshot, bodies: Bodies) -> VersionPosture:
    parts, open_alerts, open_incidents = build_parts(v, snap, bodies)
    score = score_of(parts)
    return VersionPosture(
        model=v.model,
        version=v.version,
        score=score,
        grade=grade_of(score, parts),
        aliases=_slots(v, snap),
        registered=v.created,
        parts=parts,
        open_alerts=open_alerts,
        open_incidents=open_incidents,
    )


def postures_from(
    snap: Snapshot, bodies: Bodies, *, only: Sequence[int] | None = None
) -> list[VersionPosture]:
    """The postures of the snapshot's versions (or of the version ids ``only``), by model and version."""
    keep = None if only is None else set(only)
    return [_posture(v, snap, bodies) for v in snap.versions if keep is None or v.id in keep]


def attach_times(ws: Workspace, snap: Snapshot) -> dict[int, str]:
    """Version id -> when its gate run was attached (the newest ``registry.gate.attach`` event)."""
    refs = {f"{v.model}@{v.version}": v.id for v in snap.versions}
    with ws.session(readonly=True) as s:
        rows = s.execute(
            select(AuditEvent.subject, AuditEvent.ts)
            .where(AuditEvent.action == "registry.gate.attach")
            .order_by(AuditEvent.seq)
        ).all()
    return {refs[subject]: ts for subject, ts in rows if subject in refs}


def _at(ws: Workspace, snap: Snapshot, at: dt.datetime | str | None) -> Snapshot:
    if at is None:
        return snap
    return as_of(snap, parse_time(at), attach_times(ws, snap))


def all_postures(ws: Workspace, *, at: dt.datetime | str | None = None) -> list[VersionPosture]:
    """The posture of every registered model version, ordered by model name and version.

    Args:
        ws: the workspace.
        at: the postures as they were at this moment (naive: UTC), from the same stored facts.
    """
    snap = _at(ws, load(ws), at)
    return postures_from(snap, stage_bodies(ws, wanted_reports(snap)))


def model_posture(
    ws: Workspace, name: str, version: int, *, at: dt.datetime | str | None = None
) -> VersionPosture:
    """The posture of ``name`` version ``version`` (as it was at ``at``, when given).

    Raises:
        InputError: no such model or version (at that moment).
    """
    snap = _at(ws, load(ws, models=[name]), at)
    match = [v for v in snap.versions if v.version == version]
    if not snap.versions:
        if at is not None:
            raise InputError(f"{name} had no registered version at {parse_time(at)}")
        raise InputError(f"no registered model named {name!r}; `mlsecops registry list` shows them")
    if not match:
        latest = max(v.version for v in snap.versions)
        raise InputError(f"{name} has no version {version} (latest is {latest})")
    only = Snapshot(**{**snap.__dict__, "versions": match})
    return postures_from(only, stage_bodies(ws, wanted_reports(only)))[0]
