"""Fail closed within a run: what an earlier scan stage judged unsafe, no later stage touches.

A scanner stage (``artifact.scan``) reports a verdict per file in ``Report.data["artifacts"]``. Every
file it did not judge ``safe`` (``suspicious``, ``malicious``, ``error``) is remembered, and so is every
path of a scanner stage that could not run at all (nothing under it was judged). A later stage that
names such a file, or a directory holding one, in its ``paths`` or in any option whose value is an
existing path, does not run: its report carries a critical ``pipeline.unsafe_artifact`` finding saying
which stage judged what, and the gate fails. Loading, signing and registering are all refused, since
each would either run the artifact's code or lend it trust. Later scanner stages still run (they only
read).

This is the run-level fence. Every model file is also loaded only through the scanner's ``safe_load``,
which scans again at load time, so an artifact swapped after the scan stage is refused too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlsecops.core.checks import CheckKind
from mlsecops.core.findings import Finding, Report, Severity
from mlsecops.pipeline.spec import Stage

__all__ = ["UNSAFE_ARTIFACT_CHECK", "Flagged", "Judgements"]

UNSAFE_ARTIFACT_CHECK = "pipeline.unsafe_artifact"
"""Name of the finding a stage gets when it was not run because of an earlier verdict."""

_MAX_OPTION_PATHS = 256
"""Option values examined as paths per stage (bounds the work on a hostile options mapping)."""


@dataclass(frozen=True)
class Flagged:
    """A path an earlier stage did not judge safe."""

    path: Path
    """Resolved path of the file (or, for a scan that could not run, of what it was given)."""
    verdict: str
    """``suspicious``, ``malicious``, ``error``, or ``not scanned`` (the scan stage could not run)."""
    stage: str
    """The stage that judged it."""
    reason: str
    """The worst finding's title, or why the scan could not run."""


class Judgements:
    """The unsafe verdicts collected so far in one run."""

    def __init__(self) -> None:
        self.flagged: list[Flagged] = []

    def record(self, stage: Stage, report: Report, error: str | None, base_dir: Path) -> None:
        """Remember what a finished scanner stage did not judge safe (nothing for other stages)."""
        if stage.check.kind is not CheckKind.SCANNER:
            return
        if error is not None:
            for p in stage.paths:
                self.flagged.append(Flagged(_resolve(p, base_dir), "not scanned", stage.name, error))
            return
        artifacts = report.data.get("artifacts")
        if not isinstance(artifacts, list):
            if report.verdict not in ("safe", None):  # a scanner without a per-file list: all of it
                for p in stage.paths:
                    self.flagged.append(Flagged(_resolve(p, base_dir), str(report.verdict), stage.name, ""))
            return
        for item in artifacts:
            if not isinstance(item, Mapping) or item.get("verdict") == "safe":
                continue
            findings = item.get("findings")
            if not isinstance(findings, list):
                findings = []
            worst = max(
                (f for f in findings if isinstance(f, Mapping)),
                key=lambda f: _severity_rank(f.get("severity")),
                default=None,
            )
            reason = str(worst.get("title", "")) if worst is not None else ""
            path = _resolve(Path(str(item.get("path", ""))), base_dir)
            self.flagged.append(Flagged(path, str(item.get("verdict")), stage.name, reason))

    def blocking(self, stage: Stage, base_dir: Path) -> Flagged | None:
        """The first flagged artifact ``stage`` would touch, or ``None`` when it may run."""
        if not self.flagged or stage.check.kind is CheckKind.SCANNER:
            return None
        for ref in _references(stage, base_dir):
            for flag in self.flagged:
                if ref == flag.path or ref in flag.path.parents or flag.path in ref.parents:
                    return flag
        return None


def refusal(stage: Stage, flag: Flagged) -> Finding:
    """The finding of a stage that did not run because of ``flag``."""
    why = f" ({flag.reason})" if flag.reason else ""
    return Finding(
        check=UNSAFE_ARTIFACT_CHECK,
        severity=Severity.CRITICAL,
        title=f"stage {stage.name!r} not run: stage {flag.stage!r} judged {flag.path.name} {flag.verdict}",
        detail=(
            f"{flag.path} was judged {flag.verdict} by stage {flag.stage!r}{why}; a stage that would "
            "load, sign or register it does not run (fail closed)"
        ),
        artifact=str(flag.path),
        location={"stage": stage.name, "judged_by": flag.stage},
        remediation="remove or replace the artifact, scan it again, and re-run the pipeline",
        atlas="AML.T0010",
    )


def _severity_rank(value: Any) -> int:
    try:
        return int(Severity.parse(str(value)))
    except ValueError:
        return -1


def _resolve(path: Path, base_dir: Path) -> Path:
    p = path.expanduser()
    if not p.is_absolute():
        p = base_dir / p
    try:
        return p.resolve()
    except (OSError, RuntimeError):  # a symlink loop: compare the path as written
        return p.absolute()


def _references(stage: Stage, base_dir: Path) -> Iterator[Path]:
    """The stage's paths, and every option value (or list item) that names an existing path."""
    for p in stage.paths:
        yield _resolve(p, base_dir)
    budget = _MAX_OPTION_PATHS
    for value in _strings(stage.options):
        if budget == 0:
            return
        budget -= 1
        if not value or "\x00" in value or value.startswith(("http://", "https://", "python:")):
            continue
        try:
            candidate = _resolve(Path(value), base_dir)
            if candidate.exists():
                yield candidate
        except (OSError, ValueError):
            continue


def _strings(value: Any, depth: int = 0) -> Iterator[str]:
    if depth > 4:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _strings(v, depth + 1)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v, depth + 1)
