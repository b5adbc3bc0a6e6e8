"""JSON renderer: the stable, versioned report schema (``mlsecops.report/1``, see docs/report-schema.md).

Keys: ``schema``, ``subject``, ``kind``, ``tool``, ``tool_version``, ``started``, ``finished``,
``verdict``, ``max_severity``, ``counts``, ``findings``, ``metrics``, ``figures``, then the
check-specific keys of ``Report.data`` (for example ``artifacts`` or ``suspect_rows``).
Adding keys is compatible; renaming or removing one bumps the schema number.
"""

from __future__ import annotations

import math
from typing import Any

from mlsecops.core.findings import REPORT_SCHEMA, Finding, Report
from mlsecops.report._safe import json_dumps

__all__ = ["JsonRenderer", "finding_to_dict", "report_from_dict", "report_to_dict"]


def finding_to_dict(finding: Finding) -> dict[str, Any]:
    """A finding as plain JSON-able data (severity by name)."""
    out = finding.model_dump(mode="json")
    out["severity"] = str(finding.severity)
    return out


def _number(value: float) -> float | str:
    # JSON has no NaN or infinity; keep them readable rather than emitting invalid JSON.
    return value if math.isfinite(value) else str(value)


def report_to_dict(report: Report) -> dict[str, Any]:
    """A report as plain JSON-able data in the versioned schema."""
    top = report.max_severity
    out: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "subject": report.subject,
        "kind": report.kind,
        "tool": "mlsecops",
        "tool_version": report.tool_version,
        "started": report.started.isoformat(),
        "finished": report.finished.isoformat(),
        "verdict": report.verdict,
        "max_severity": None if top is None else str(top),
        "counts": report.counts(),
        "findings": [finding_to_dict(f) for f in report.findings],
        "metrics": {k: _number(v) for k, v in report.metrics.items()},
        "figures": [f.model_dump(mode="json") for f in report.figures],
    }
    out.update(report.data)
    return out


def report_from_dict(data: dict[str, Any]) -> Report:
    """Read back a report written by ``report_to_dict`` (for stored reports and the dashboard)."""
    known = {
        "subject",
        "kind",
        "tool_version",
        "started",
        "finished",
        "verdict",
        "findings",
        "metrics",
        "figures",
    }
    ignored = {"schema", "tool", "max_severity", "counts"}
    extra = {k: v for k, v in data.items() if k not in known | ignored}
    return Report.model_validate(
        {
            **{k: data[k] for k in known if k in data},
            "metrics": {k: float(v) for k, v in data.get("metrics", {}).items()},
            "data": extra,
        }
    )


class JsonRenderer:
    """Renders a report as indented JSON."""

    def render(self, report: Report) -> str:
        """Return the report as JSON text (valid UTF-8 even for file names that are not, see ``_safe``)."""
        return json_dumps(report_to_dict(report)) + "\n"
