"""The one data model every check shares: a ``Report`` of ``Finding`` values.

A check looks at something (an artifact, a data set, a model, live traffic) and returns one ``Report``.
The report holds what was found (``findings``, each with an ordered ``Severity``), what was measured
(``metrics``, name -> number, read by policy rules) and check-specific structured output (``data``,
for example the ``artifacts`` list of a scan or the ``suspect_rows`` of a poisoning check).
Reports are frozen pydantic models: they cross files and processes, and "changes" build new values.
Aggregation is a function over reports (``merge_reports``), not a new class.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator

from mlsecops._version import __version__
from mlsecops.core.severity import Severity, utcnow

__all__ = [
    "REPORT_SCHEMA",
    "RESERVED_REPORT_KEYS",
    "Figure",
    "Finding",
    "Report",
    "Severity",
    "merge_reports",
    "utcnow",
]

REPORT_SCHEMA = "mlsecops.report/1"
"""Identifier of the JSON report schema; bumped on any incompatible change (see docs/report-schema.md)."""

RESERVED_REPORT_KEYS = frozenset(
    {
        "schema",
        "subject",
        "kind",
        "tool",
        "tool_version",
        "started",
        "finished",
        "verdict",
        "max_severity",
        "findings",
        "metrics",
        "figures",
        "counts",
    }
)
"""Top-level JSON keys owned by the report itself; ``Report.data`` may not use them."""


class Finding(BaseModel):
    """One thing a check found."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    check: str
    """Registered dotted name of the check that produced it, e.g. ``artifact.pickle``."""
    severity: Severity
    """How bad it is."""
    title: str
    """One line a person reads first."""
    detail: str = ""
    """What exactly was seen and why it matters."""
    artifact: str | None = None
    """Path or id of the thing it was found in."""
    location: dict[str, str | int] = Field(default_factory=dict)
    """Where inside the artifact: byte offset, entry name, row, feature, client id."""
    evidence: dict[str, JsonValue] = Field(default_factory=dict)
    """Small JSON-able facts backing the finding."""
    remediation: str = ""
    """What to do about it."""
    atlas: str | None = None
    """MITRE ATLAS technique id where one fits, e.g. ``AML.T0010``."""

    @field_validator("severity", mode="before")
    @classmethod
    def _parse_severity(cls, value: Any) -> Severity:
        return Severity.parse(value)


class Figure(BaseModel):
    """A plot attached to a report; the HTML renderer embeds it, other renderers list it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str
    """Caption shown above the figure."""
    media_type: str = "image/svg+xml"
    """``image/svg+xml`` (``content`` is SVG text) or ``image/png`` (``content`` is base64)."""
    content: str
    """The figure itself."""


class Report(BaseModel):
    """What one check (or one pipeline) produced."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    subject: str
    """What was looked at: a path, a model name@version, a pipeline name."""
    kind: str
    """Registered name of the check, or ``pipeline``."""
    tool_version: str = __version__
    """mlsecops version that produced it."""
    started: dt.datetime = Field(default_factory=utcnow)
    """When the check started (UTC)."""
    finished: dt.datetime = Field(default_factory=utcnow)
    """When the check finished (UTC)."""
    findings: tuple[Finding, ...] = ()
    """What was found, in the order found."""
    metrics: dict[str, float] = Field(default_factory=dict)
    """Measured numbers by name, for policy rules (``robust_accuracy@pgd_linf_0.1``)."""
    verdict: str | None = None
    """The check's own one-word conclusion (``safe``, ``malicious``, ``pass``...), if it has one."""
    data: dict[str, JsonValue] = Field(default_factory=dict)
    """Check-specific structured output, emitted as top-level keys of the JSON report."""
    figures: tuple[Figure, ...] = ()
    """Plots for the HTML report."""

    @model_validator(mode="after")
    def _data_keys_free(self) -> Report:
        clash = RESERVED_REPORT_KEYS.intersection(self.data)
        if clash:
            raise ValueError(f"Report.data may not use reserved keys {sorted(clash)}")
        return self

    @property
    def max_severity(self) -> Severity | None:
        """The worst severity among the findings, or ``None`` when there are none."""
        return max((f.severity for f in self.findings), default=None)

    def counts(self) -> dict[str, int]:
        """Number of findings per severity name, every severity present (zeros included)."""
        out = {str(s): 0 for s in sorted(Severity, reverse=True)}
        for f in self.findings:
            out[str(f.severity)] += 1
        return out

    def at_or_above(self, threshold: Severity) -> list[Finding]:
        """Findings whose severity is ``threshold`` or worse."""
        return [f for f in self.findings if f.severity >= threshold]

    def with_findings(self, findings: Iterable[Finding]) -> Report:
        """Return a copy with ``findings`` appended."""
        return self.model_copy(update={"findings": (*self.findings, *findings)})


def merge_reports(
    subject: str, kind: str, reports: Sequence[Report], *, verdict: str | None = None
) -> Report:
    """Combine several reports into one.

    Findings are concatenated in order; metrics are prefixed with each report's ``kind`` when two reports
    measure the same name, and kept as they are otherwise; figures are concatenated.
    """
    names: dict[str, int] = {}
    for r in reports:
        for m in r.metrics:
            names[m] = names.get(m, 0) + 1
    metrics: dict[str, float] = {}
    for r in reports:
        for m, v in r.metrics.items():
            metrics[f"{r.kind}.{m}" if names[m] > 1 else m] = v
    started = min((r.started for r in reports), default=utcnow())
    finished = max((r.finished for r in reports), default=started)
    return Report(
        subject=subject,
        kind=kind,
        started=started,
        finished=finished,
        findings=tuple(f for r in reports for f in r.findings),
        metrics=metrics,
        verdict=verdict,
        figures=tuple(fig for r in reports for fig in r.figures),
    )
