"""Severity, Finding and Report: ordering, validation, aggregation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mlsecops.core import Finding, Report, Severity, merge_reports


def _f(sev: str, check: str = "x.y") -> Finding:
    return Finding(check=check, severity=sev, title=f"{sev} thing")


def test_severity_is_ordered_and_parses() -> None:
    assert Severity.CRITICAL > Severity.HIGH > Severity.MEDIUM > Severity.LOW > Severity.INFO
    assert Severity.parse("High") is Severity.HIGH
    assert Severity.parse(2) is Severity.MEDIUM
    assert str(Severity.CRITICAL) == "critical"
    with pytest.raises(ValueError, match="severity must be one of"):
        Severity.parse("severe")


def test_finding_is_frozen_and_strict() -> None:
    f = _f("low")
    with pytest.raises(ValidationError):
        f.title = "changed"  # type: ignore[misc]  # frozen on purpose
    with pytest.raises(ValidationError):
        Finding(check="x.y", severity="low", title="t", unknown_field=1)  # type: ignore[call-arg]


def test_report_max_severity_and_counts() -> None:
    r = Report(subject="s", kind="x.y", findings=(_f("low"), _f("high"), _f("low")))
    assert r.max_severity is Severity.HIGH
    assert r.counts() == {"critical": 0, "high": 1, "medium": 0, "low": 2, "info": 0}
    assert [f.severity for f in r.at_or_above(Severity.MEDIUM)] == [Severity.HIGH]
    assert Report(subject="s", kind="x.y").max_severity is None


def test_report_data_cannot_shadow_report_keys() -> None:
    with pytest.raises(ValidationError, match="reserved"):
        Report(subject="s", kind="x.y", data={"findings": []})


def test_merge_prefixes_only_colliding_metrics() -> None:
    a = Report(subject="a", kind="a.check", findings=(_f("low"),), metrics={"acc": 0.9, "n": 3})
    b = Report(subject="b", kind="b.check", findings=(_f("high"),), metrics={"acc": 0.5})
    m = merge_reports("both", "pipeline", [a, b])
    assert m.metrics == {"a.check.acc": 0.9, "n": 3, "b.check.acc": 0.5}
    assert m.max_severity is Severity.HIGH and len(m.findings) == 2
