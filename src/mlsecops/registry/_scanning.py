"""The one place the registry calls the artifact scanner (``mlsecops.supplychain``'s public API).

``scan_artifact(path)`` returns the scan report and an overall verdict: ``safe``, ``suspicious``,
``malicious`` or ``error`` (could not scan). The registry refuses ``malicious`` and ``error``, and
promotes to production only ``safe``. Should the scanner's API change, only this module changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlsecops.core.findings import Report, Severity

__all__ = ["REFUSED_VERDICTS", "ScanOutcome", "scan_artifact"]

REFUSED_VERDICTS = frozenset({"malicious", "error"})
_RANK = {"safe": 0, "suspicious": 1, "error": 2, "malicious": 3}


@dataclass(frozen=True)
class ScanOutcome:
    """The scanner's judgement of a whole model (file or directory)."""

    verdict: str
    report: Report

    def summary(self, limit: int = 5) -> dict[str, object]:
        """Counts per severity and the worst findings, small enough for the database and the audit."""
        worst = sorted(self.report.findings, key=lambda f: -int(f.severity))[:limit]
        return {
            "verdict": self.verdict,
            "counts": self.report.counts(),
            "top": [
                {"severity": str(f.severity), "title": f.title, "artifact": f.artifact, "check": f.check}
                for f in worst
            ],
        }

    def headline(self, limit: int = 3) -> str:
        """The worst findings in one line."""
        worst = sorted(self.report.findings, key=lambda f: -int(f.severity))[:limit]
        parts = [f"[{f.severity}] {f.title} in {Path(f.artifact).name if f.artifact else '?'}" for f in worst]
        more = len(self.report.findings) - len(worst)
        return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def scan_artifact(path: Path) -> ScanOutcome:
    """Scan a model file or directory with the artifact scanner.

    Raises:
        InputError: the path does not exist.
    """
    from mlsecops.supplychain import scan_paths, scan_report

    many = path.is_dir() and sum(1 for _ in zip(range(64), path.rglob("*"), strict=False)) >= 64
    results = scan_paths([path], workers=None if many else 1)  # a process pool pays off for many files
    report = scan_report(results, subject=str(path))
    verdicts = [str(r.verdict) for r in results] or ["error"]
    verdict = max(verdicts, key=lambda v: _RANK.get(v, 2))
    if not results:
        report = report.with_findings([])
    if verdict == "safe" and report.max_severity is not None and report.max_severity >= Severity.HIGH:
        verdict = "suspicious"
    return ScanOutcome(verdict=verdict, report=report)
