"""Run a pipeline: every stage's check in order, then the policy gate, then record it all.

A stage that cannot run (its check raises) does not stop the others: its report carries a critical
``pipeline.stage_error`` finding and the gate fails (fail closed). A stage that would touch an artifact
an earlier scanner stage of the same run did not judge ``safe`` (or could not scan) is not run at all:
its report carries a critical ``pipeline.unsafe_artifact`` finding and the gate fails (``_verdicts``).
The run, each stage's report, the combined report and the gate decision are written to the workspace in
one transaction together with a ``pipeline.run`` audit event (each model-facing stage's row also records the digests of the paths it
evaluated, see ``pipeline.evaluated``), and the combined report is written as HTML, JSON and SARIF under
``<workspace>/reports/run-<id>/``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mlsecops.core.checks import Target
from mlsecops.core.errors import InputError, MlsecopsError
from mlsecops.core.findings import Finding, Report, Severity, utcnow
from mlsecops.pipeline._verdicts import Flagged, Judgements, refusal
from mlsecops.pipeline.evaluated import judged_stages, read_paths, stage_record
from mlsecops.pipeline.policy import GateResult, evaluate
from mlsecops.pipeline.spec import Pipeline, Stage
from mlsecops.report import Format, render, report_to_dict
from mlsecops.store import PipelineRun, StoredReport, Workspace, audit

__all__ = ["RunResult", "StageResult", "run_pipeline", "stored_report"]

_log = logging.getLogger("mlsecops.pipeline")
ProgressHook = Callable[[str, int, int], None]


@dataclass(frozen=True)
class StageResult:
    """What one stage produced."""

    stage: Stage
    report: Report
    error: str | None = None
    evaluated: dict[str, Any] | None = None
    """The digests of the paths a model-facing stage evaluated (``pipeline.evaluated``)."""


@dataclass(frozen=True)
class RunResult:
    """A finished pipeline run."""

    pipeline: Pipeline
    stages: tuple[StageResult, ...]
    gate: GateResult
    report: Report
    """All stages combined: findings in order, metrics as ``<stage>/<metric>``, gate in ``data``."""
    run_id: int | None = None
    report_dir: Path | None = None

    @property
    def passed(self) -> bool:
        """Whether the gate passed."""
        return self.gate.passed


def _run_stage(stage: Stage, pipeline: Pipeline, workspace: Workspace | None, actor: str) -> StageResult:
    target = Target(
        paths=stage.paths,
        options=stage.options,
        seed=pipeline.seed,
        home=workspace.home if workspace is not None else None,
        database_url=workspace.url if workspace is not None else None,
        actor=actor,
        base_dir=pipeline.base_dir,
    )
    started = utcnow()
    try:
        return StageResult(stage, stage.check.create().run(target))
    except MlsecopsError as err:
        why = err.diagnostics()
    except Exception as err:  # fail closed: a crashing check is a failed stage, not a passed one
        _log.debug("stage %s crashed", stage.name, exc_info=True)
        why = f"{type(err).__name__}: {err}".splitlines()[0]
    finding = Finding(
        check="pipeline.stage_error",
        severity=Severity.CRITICAL,
        title=f"stage {stage.name!r} could not run",
        detail=why,
        location={"stage": stage.name},
        remediation="fix the stage's input or options and run the pipeline again",
    )
    report = Report(
        subject=stage.name, kind=stage.check.name, started=started, findings=(finding,), verdict="error"
    )
    return StageResult(stage, report, why)


def _refused_stage(stage: Stage, flag: Flagged) -> StageResult:
    finding = refusal(stage, flag)
    report = Report(subject=stage.name, kind=stage.check.name, findings=(finding,), verdict="refused")
    return StageResult(stage, report, finding.title)


def _inputs(result: StageResult, base: Path) -> list[dict[str, Any]]:
    """The stage's paths as the report names them (relative to the pipeline file where inside it), each
    with the content digest the stage evaluated (``pipeline.evaluated``; null for data stages).
    """
    digests = {p["path"]: p.get("digest") for p in (result.evaluated or {}).get("paths", [])}
    out = []
    for path in result.stage.paths:
        shown = os.path.relpath(path, base) if path.is_relative_to(base) else str(path)
        out.append({"path": shown, "digest": digests.get(str(path))})
    return out


def _combine(pipeline: Pipeline, results: list[StageResult], gate: GateResult) -> Report:
    metrics = {f"{r.stage.name}/{k}": v for r in results for k, v in r.report.metrics.items()}
    stages = [
        {
            "name": r.stage.name,
            "check": r.stage.check.name,
            "verdict": r.report.verdict,
            "max_severity": None if r.report.max_severity is None else str(r.report.max_severity),
            "counts": r.report.counts(),
            "error": r.error,
            "inputs": _inputs(r, pipeline.base_dir),
            "figures": len(r.report.figures),
        }
        for r in results
    ]
    return Report(
        subject=pipeline.name,
        kind="pipeline",
        started=min(r.report.started for r in results),
        finished=utcnow(),
        findings=tuple(f for r in results for f in r.report.findings),
        metrics=metrics,
        verdict="pass" if gate.passed else "fail",
        data={"pipeline": str(pipeline.source), "stages": stages, "gate": gate.to_json()},
        figures=tuple(fig for r in results for fig in r.report.figures),
    )


def _write_reports(report: Report, folder: Path) -> None:
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for fmt, name in (
        (Format.HTML, "report.html"),
        (Format.JSON, "report.json"),
        (Format.SARIF, "report.sarif"),
    ):
        path = folder / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(render(report, fmt))


def stored_report(run_id: int, stage: str | None, report: Report, evaluated: Any) -> StoredReport:
    """The database row of one report of a run: a stage's (with what it evaluated), or the combined one
    (``stage`` ``None``).
    """
    top = report.max_severity
    return StoredReport(
        run_id=run_id,
        stage=stage,
        kind=report.kind,
        subject=report.subject,
        created=report.finished.isoformat(),
        max_severity=None if top is None else str(top),
        verdict=report.verdict,
        body=json.dumps(report_to_dict(report)),
        artifacts=None if evaluated is None else json.dumps(evaluated),
    )


def _record(workspace: Workspace, result: RunResult, actor: str) -> int:
    with workspace.session() as s:
        run = PipelineRun(
            pipeline=result.pipeline.name,
            pipeline_sha256=result.pipeline.sha256,
            started=result.report.started.isoformat(),
            finished=result.report.finished.isoformat(),
            actor=actor,
            passed=result.passed,
            gate=json.dumps(result.gate.to_json()),
        )
        s.add(run)
        s.flush()
        rows = [(r.stage.name, r.report, r.evaluated) for r in result.stages] + [(None, result.report, None)]
        for stage, report, evaluated in rows:
            s.add(stored_report(run.id, stage, report, evaluated))
        audit.append(
            s,
            actor=actor,
            action="pipeline.run",
            subject=result.pipeline.name,
            details={
                "run_id": run.id,
                "pipeline_sha256": result.pipeline.sha256,
                "passed": result.passed,
                "stages": [r.stage.name for r in result.stages],
                "failed_rules": [r.rule for r in result.gate.results if not r.passed],
            },
        )
        return run.id


def _require_inputs(pipeline: Pipeline) -> None:
    # A missing input is bad input (exit 2), not a failed gate: say which before anything runs, writes
    # keys or registers, so a mistyped path never leaves half a run behind.
    missing = [(s.name, p) for s in pipeline.stages for p in s.paths if not os.path.lexists(p)]
    if missing:
        shown = ", ".join(f"{name}: {path}" for name, path in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise InputError(
            f"pipeline {pipeline.name!r}: {len(missing)} stage input(s) missing ({shown}{more}); "
            f"paths resolve against the pipeline file's folder {pipeline.base_dir}"
        )


def run_pipeline(
    pipeline: Pipeline,
    *,
    workspace: Workspace | None = None,
    actor: str = "cli",
    progress: ProgressHook | None = None,
) -> RunResult:
    """Run every stage, judge the policy, and record the run when a workspace is given.

    Args:
        pipeline: a loaded pipeline (``load_pipeline``).
        workspace: where to record the run and write its reports; ``None`` records nothing.
        actor: who runs it, for the audit trail.
        progress: called as ``progress(stage_name, done, total)`` before each stage and at the end.

    Raises:
        InputError: a stage's input path does not exist (nothing runs and nothing is recorded).
    """
    _require_inputs(pipeline)
    results: list[StageResult] = []
    total = len(pipeline.stages)
    judged = judged_stages(pipeline.rules, pipeline.stages)
    verdicts = Judgements()  # what earlier scanner stages did not judge safe: later stages leave it alone
    for i, stage in enumerate(pipeline.stages):
        if progress is not None:
            progress(stage.name, i, total)
        flag = verdicts.blocking(stage, pipeline.base_dir)
        if flag is not None:
            results.append(_refused_stage(stage, flag))
            continue
        before = read_paths(stage)  # the digests of what the stage evaluates, bound to the run record
        ran = _run_stage(stage, pipeline, workspace, actor)
        verdicts.record(stage, ran.report, ran.error, pipeline.base_dir)
        results.append(replace(ran, evaluated=stage_record(stage, before, judged=stage.name in judged)))
    if progress is not None:
        progress("gate", total, total)
    reports = {r.stage.name: r.report for r in results}
    errors = {r.stage.name: r.error for r in results if r.error is not None}
    gate = evaluate(pipeline.rules, reports, errors)
    result = RunResult(pipeline, tuple(results), gate, _combine(pipeline, results, gate))
    if workspace is None:
        return result
    run_id = _record(workspace, result, actor)
    folder = workspace.home / "reports" / f"run-{run_id}"
    _write_reports(result.report, folder)
    return RunResult(pipeline, tuple(results), gate, result.report, run_id, folder)
