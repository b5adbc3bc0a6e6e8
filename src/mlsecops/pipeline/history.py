"""Reading recorded pipeline runs back from the workspace."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import select

from mlsecops.core.errors import InputError
from mlsecops.core.findings import Report
from mlsecops.report import report_from_dict
from mlsecops.store import PipelineRun, StoredReport, Workspace

__all__ = ["RunSummary", "list_runs", "run_report"]


@dataclass(frozen=True)
class RunSummary:
    """One recorded run."""

    id: int
    pipeline: str
    started: str
    finished: str
    actor: str
    passed: bool
    failed_rules: tuple[str, ...]


def list_runs(workspace: Workspace, *, pipeline: str | None = None, limit: int = 50) -> list[RunSummary]:
    """The newest runs first (optionally of one pipeline)."""
    query = select(PipelineRun).order_by(PipelineRun.id.desc()).limit(limit)
    if pipeline is not None:
        query = query.where(PipelineRun.pipeline == pipeline)
    with workspace.session(readonly=True) as s:
        rows = s.execute(query).scalars().all()
        return [
            RunSummary(
                id=r.id,
                pipeline=r.pipeline,
                started=r.started,
                finished=r.finished,
                actor=r.actor,
                passed=r.passed,
                failed_rules=tuple(g["rule"] for g in json.loads(r.gate) if not g["passed"]),
            )
            for r in rows
        ]


def run_report(workspace: Workspace, run_id: int, *, stage: str | None = None) -> Report:
    """The combined report of a run, or the report of one of its stages.

    Raises:
        InputError: no such run, or no such stage in it.
    """
    query = select(StoredReport).where(StoredReport.run_id == run_id)
    query = (
        query.where(StoredReport.stage == stage)
        if stage is not None
        else query.where(StoredReport.stage.is_(None))
    )
    with workspace.session(readonly=True) as s:
        row = s.execute(query).scalars().first()
        if row is None:
            if s.get(PipelineRun, run_id) is None:
                raise InputError(
                    f"no pipeline run {run_id} in this workspace; `mlsecops runs list` shows them"
                )
            raise InputError(f"run {run_id} has no stage {stage!r}")
        return report_from_dict(json.loads(row.body))
