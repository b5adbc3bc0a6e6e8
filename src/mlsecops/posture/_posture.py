"""Postures of registered model versions, read in a fixed number of queries.

``all_postures(ws)`` reads one ``Snapshot`` of the workspace and the metrics and findings of the
stage reports it will show (one more query), then computes every version's parts in memory; so does
``model_posture`` for the versions of one model. See ``_parts`` for each part and ``_model`` for the
score and the grade.
"""

from __future__ import annotations

from collections.abc import Sequence

from mlsecops.core.errors import InputError
from mlsecops.posture._model import VersionPosture, grade_of, score_of
from mlsecops.posture._parts import Bodies, build_parts, wanted_reports
from mlsecops.posture._snapshot import Snapshot, VersionFact, load, stage_bodies
from mlsecops.store import Workspace

__all__ = ["all_postures", "model_posture", "postures_from"]


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


def all_postures(ws: Workspace) -> list[VersionPosture]:
    """The posture of every registered model version, ordered by model name and version."""
    snap = load(ws)
    return postures_from(snap, stage_bodies(ws, wanted_reports(snap)))


def model_posture(ws: Workspace, name: str, version: int) -> VersionPosture:
    """The posture of ``name`` version ``version``.

    Raises:
        InputError: no such model or version.
    """
    snap = load(ws, models=[name])
    match = [v for v in snap.versions if v.version == version]
    if not snap.versions:
        raise InputError(f"no registered model named {name!r}; `mlsecops registry list` shows them")
    if not match:
        latest = max(v.version for v in snap.versions)
        raise InputError(f"{name} has no version {version} (latest is {latest})")
    only = Snapshot(**{**snap.__dict__, "versions": match})
    return postures_from(only, stage_bodies(ws, wanted_reports(only)))[0]
