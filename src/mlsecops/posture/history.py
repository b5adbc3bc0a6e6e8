"""Which version held each stage or alias of a model, at any past time.

Read from the registry's assignment history (``registry_assignments``: one row per holding, with who
started it and when it ended), which the registry writes in the transaction of every promotion,
rollback and alias change together with its audit event.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from mlsecops.core.errors import InputError
from mlsecops.registry._tables import Assignment, ModelVersion, RegisteredModel
from mlsecops.store import Workspace

__all__ = ["at_time", "parse_time", "production_history"]


def parse_time(when: dt.datetime | str) -> str:
    """A moment as the registry stores times (UTC ISO 8601 with microseconds); naive means UTC.

    Raises:
        InputError: ``when`` is not an ISO 8601 time.
    """
    if isinstance(when, str):
        try:
            when = dt.datetime.fromisoformat(when.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InputError(
                f"time {when!r} is not ISO 8601, e.g. 2026-12-05T13:00:00Z or 2026-12-05 13:00"
            ) from None
    aware = when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _model_id(ws: Workspace, name: str) -> int:
    with ws.session(readonly=True) as s:
        found = s.execute(select(RegisteredModel.id).where(RegisteredModel.name == name)).scalar_one_or_none()
    if found is None:
        raise InputError(f"no registered model named {name!r}; `mlsecops registry list` shows them")
    return int(found)


def production_history(ws: Workspace, name: str) -> list[dict[str, Any]]:
    """Every holding of every stage and alias of ``name``, oldest first.

    Returns:
        ``[{"alias": "production", "version": 3, "from": ISO, "until": ISO or None (still holds),
        "by": who started it, "reason": "promote" | "rollback" | "alias"}]``.

    Raises:
        InputError: no such model.
    """
    model_id = _model_id(ws, name)
    with ws.session(readonly=True) as s:
        rows = s.execute(
            select(Assignment, ModelVersion.version)
            .join(ModelVersion, ModelVersion.id == Assignment.version_id)
            .where(Assignment.model_id == model_id)
            .order_by(Assignment.started, Assignment.id)
        ).all()
        return [
            {
                "alias": a.slot.partition(":")[2],
                "version": int(version),
                "from": a.started,
                "until": a.ended,
                "by": a.started_by,
                "reason": a.reason,
            }
            for a, version in rows
        ]


def at_time(ws: Workspace, name: str, when: dt.datetime | str) -> dict[str, int]:
    """What held each stage and alias of ``name`` at ``when``: ``{"production": 3, "champion": 2}``
    (a stage or alias held by nothing then is absent).

    Raises:
        InputError: no such model, or ``when`` is not a time.
    """
    moment = parse_time(when)
    return {
        h["alias"]: h["version"]
        for h in production_history(ws, name)
        if h["from"] <= moment and (h["until"] is None or h["until"] > moment)
    }
