"""The ``artifact.scan`` report as plain JSON-able data, built without pydantic.

``scan_document`` is the one place that decides what a scan report says: its findings, metrics, verdict
and ``artifacts`` list. ``scan_report`` (the ``Report`` used by pipelines, checks and every renderer)
is read back from it, and ``mlsecops scan -f json`` writes it directly, so a JSON scan of a large
checkpoint costs the scan and not the import of the data-model stack. A test keeps both outputs equal.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any

from mlsecops._version import __version__
from mlsecops.core.severity import Severity, utcnow
from mlsecops.supplychain.scanner._types import ArtifactScan, Hit, Verdict

__all__ = ["CHECK_NAME", "REPORT_SCHEMA", "scan_document"]

CHECK_NAME = "artifact.scan"
REPORT_SCHEMA = "mlsecops.report/1"  # mirrors core.findings.REPORT_SCHEMA; a test keeps them equal

_WORST_FIRST = (Verdict.MALICIOUS, Verdict.ERROR, Verdict.SUSPICIOUS, Verdict.SAFE)


def finding_dict(result: ArtifactScan, hit: Hit) -> dict[str, Any]:
    """One hit as a finding of the report schema (the field order of ``core.findings.Finding``)."""
    location: dict[str, str | int] = {"format": result.format}
    if hit.entry:
        location["entry"] = hit.entry
    if hit.offset is not None:
        location["offset"] = hit.offset
    return {
        "check": f"{CHECK_NAME}.{hit.kind}",
        "severity": str(hit.severity),
        "title": hit.title,
        "detail": hit.detail,
        "artifact": result.path,
        "location": location,
        "evidence": {"callable": hit.callable} if hit.callable else {},
        "remediation": hit.remediation,
        "atlas": hit.atlas,
    }


def _number(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def scan_document(
    results: Sequence[ArtifactScan],
    *,
    subject: str | None = None,
    started: dt.datetime | None = None,
    finished: dt.datetime | None = None,
) -> dict[str, Any]:
    """The ``artifact.scan`` report in the JSON schema ``mlsecops.report/1``.

    Findings of all artifacts in order; metrics ``artifacts``, ``artifacts_<verdict>`` and
    ``bytes_scanned``; the verdict is the worst artifact verdict (``safe`` when nothing was scanned); the
    ``artifacts`` list has per file its ``path``, ``sha256``, ``size``, ``format``, ``verdict`` and
    ``findings``.
    """
    findings: list[dict[str, Any]] = []
    artifacts: list[dict[str, Any]] = []
    verdicts = dict.fromkeys(Verdict, 0)
    for r in results:
        fs = [finding_dict(r, h) for h in r.hits]
        findings.extend(fs)
        verdict = r.verdict
        verdicts[verdict] += 1
        artifacts.append(
            {
                "path": r.path,
                "sha256": r.sha256,
                "size": r.size,
                "format": r.format,
                "verdict": str(verdict),
                "findings": fs,
            }
        )
    worst = next((v for v in _WORST_FIRST if verdicts[v]), Verdict.SAFE)
    metrics = {f"artifacts_{v.value}": float(c) for v, c in verdicts.items()}
    metrics["artifacts"] = float(len(results))
    metrics["bytes_scanned"] = float(sum(r.size for r in results))
    counts = {str(s): 0 for s in sorted(Severity, reverse=True)}  # worst first
    for f in findings:
        counts[f["severity"]] += 1
    top = next((name for name, c in counts.items() if c), None)
    start = started if started is not None else utcnow()
    return {
        "schema": REPORT_SCHEMA,
        "subject": subject or ", ".join(r.path for r in results[:3]) + (" ..." if len(results) > 3 else ""),
        "kind": CHECK_NAME,
        "tool": "mlsecops",
        "tool_version": __version__,
        "started": start.isoformat(),
        "finished": (finished if finished is not None else utcnow()).isoformat(),
        "verdict": str(worst),
        "max_severity": top,
        "counts": counts,
        "findings": findings,
        "metrics": {k: _number(v) for k, v in metrics.items()},
        "figures": [],
        "artifacts": artifacts,
    }
