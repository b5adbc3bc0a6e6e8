"""The HTML report for a reader: the verdict sentence, stage sections with inputs, grouped findings,
formatted numbers, and every new field escaped."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from mlsecops.core import Finding, Report, Severity, Target
from mlsecops.core.checks import CheckKind, register, unregister
from mlsecops.core.findings import Figure
from mlsecops.report import Format, line_chart, render, render_fragment
from mlsecops.report._readable import group_findings, verdict
from mlsecops.report.html import HtmlRenderer

EVIL = '<script>alert(1)</script>"\x1b[2J\u202eexe'
RAW = ("<script>", "\x1b", "\u202e")


def _stage(name: str, check: str, counts: dict[str, int], **extra: Any) -> dict[str, Any]:
    full = {s: 0 for s in ("critical", "high", "medium", "low", "info")} | counts
    worst = next((s for s, n in full.items() if n), None)
    return {
        "name": name,
        "check": check,
        "verdict": "x",
        "max_severity": worst,
        "counts": full,
        "error": None,
    } | extra


def _pipeline(
    findings: Sequence[Finding], stages: list[dict[str, Any]], gate: list[dict[str, Any]], **kw: Any
) -> Report:
    passed = all(g["passed"] for g in gate)
    return Report(
        subject="lifecycle",
        kind="pipeline",
        findings=tuple(findings),
        verdict="pass" if passed else "fail",
        data={"pipeline": "p.yaml", "stages": stages, "gate": gate},
        **kw,
    )


def _f(check: str, sev: str, title: str = "t", **kw: Any) -> Finding:
    return Finding(check=check, severity=sev, title=title, **kw)


HIGH_ROBUSTNESS = _pipeline(
    [_f("data.check", "low"), _f("assess.robustness", "high", "pgd fools the model")],
    [
        _stage("validate", "data.check", {"low": 1}),
        _stage("robustness", "assess.robustness", {"high": 1}),
    ],
    [
        {"rule": "validate: max_severity medium", "passed": True, "observed": "worst finding low"},
        {"rule": "robustness: robust_accuracy@pgd_linf_0.05 >= 0.6", "passed": True, "observed": "0.82"},
    ],
)


def test_verdict_pass_with_a_high_finding_says_why_both_hold() -> None:
    v = verdict(HIGH_ROBUSTNESS)
    assert (v.tone, v.headline) == ("warn", "Gate passed")
    assert "all 2 policy rules hold" in v.sentence and "1 high finding remains" in v.sentence
    assert "robustness" in v.sentence and "robust_accuracy@pgd_linf_0.05 >= 0.6 (observed 0.82)" in v.sentence
    assert "not by finding severity" in v.sentence


def test_verdict_pass_within_a_severity_limit_names_the_limit() -> None:
    report = _pipeline(
        [_f("artifact.scan", "high"), _f("artifact.scan", "high")],
        [_stage("scan", "artifact.scan", {"high": 2})],
        [{"rule": "all stages: max_severity critical", "passed": True, "observed": "worst finding high"}],
    )
    v = verdict(report)
    assert v.headline == "Gate passed"
    assert "2 high findings remain" in v.sentence and "max_severity critical" in v.sentence


def test_verdict_pass_on_a_stage_no_rule_judges_says_so() -> None:
    report = _pipeline(
        [_f("assess.certify", "medium")],
        [_stage("certify", "assess.certify", {"medium": 1})],
        [{"rule": "other: max_severity info", "passed": True, "observed": "no findings"}],
    )
    assert "which no policy rule judges" in verdict(report).sentence


def test_verdict_blocked_names_the_failed_rules() -> None:
    report = _pipeline(
        [_f("artifact.scan", "critical")],
        [_stage("scan", "artifact.scan", {"critical": 1}), _stage("rob", "assess.robustness", {})],
        [
            {"rule": "scan: max_severity low", "passed": False, "observed": "worst finding critical"},
            {"rule": "rob: robust_accuracy@pgd_linf_0.05 >= 0.6", "passed": False, "observed": "0.4612345"},
            {"rule": "rob: max_severity high", "passed": True, "observed": "no findings"},
        ],
    )
    v = verdict(report)
    assert (v.tone, v.headline) == ("bad", "Blocked")
    assert v.sentence.startswith(
        "2 of 3 policy rules failed: scan: max_severity low (observed worst finding critical)"
    )
    assert "(observed 0.461)" in v.sentence  # three significant digits


def test_verdict_clean_gate_and_single_checks() -> None:
    clean = _pipeline(
        [], [_stage("s", "c", {})], [{"rule": "s: max_severity info", "passed": True, "observed": ""}]
    )
    assert verdict(clean) == verdict(clean) and verdict(clean).tone == "ok"
    assert "no stage found anything" in verdict(clean).sentence
    safe = Report(subject="m", kind="artifact.scan", verdict="safe")
    assert (verdict(safe).headline, verdict(safe).sentence) == ("Safe", "no findings.")
    # the check's own "pass" beside a high finding: the sentence says what each means
    mixed = Report(subject="d", kind="data.check", verdict="pass", findings=(_f("data.check", "high"),))
    v = verdict(mixed)
    assert v.tone == "bad" and "own conclusion is pass" in v.sentence and "no policy gate" in v.sentence
    bad = Report(
        subject="m",
        kind="artifact.scan",
        verdict="malicious",
        findings=(_f("a", "critical", artifact="evil.pkl"), _f("a", "low", artifact="ok.pkl")),
    )
    assert verdict(bad).sentence == "1 critical and 1 low findings; the worst (critical) in evil.pkl."


def test_verdict_with_fail_on() -> None:
    report = Report(subject="m", kind="assess.robustness", findings=(_f("a", "high"), _f("a", "low")))
    over = verdict(report, fail_on=Severity.MEDIUM)
    assert (over.tone, over.headline) == ("bad", "Fails")
    assert "1 finding at or above the fail-on level (medium)" in over.sentence
    under = verdict(report, fail_on=Severity.CRITICAL)
    assert (under.tone, under.headline) == ("warn", "Passes")
    assert under.sentence == "1 high and 1 low findings, all below the fail-on level (critical)."
    page = HtmlRenderer(fail_on=Severity.CRITICAL).render(report)
    assert "all below the fail-on level (critical)" in page


def test_findings_grouped_with_remediation_once_and_every_location() -> None:
    fix = "Inspect the rows behind this change before training"
    findings = [
        _f(
            "data.check",
            "low",
            f"values outside the baseline range in 'px{i}'",
            location={"column": f"px{i}"},
            remediation=fix,
        )
        for i in range(8)
    ] + [
        _f("data.check", "medium", "label shift", remediation="relabel"),
        _f("data.poison", "low", remediation=fix),
    ]
    groups = group_findings(findings)
    assert [(g.check, g.count) for g in groups] == [("data.check", 1), ("data.check", 8), ("data.poison", 1)]
    assert groups[1].headline == "values outside the baseline range in \u2026"
    page = render(Report(subject="d", kind="data.check", findings=tuple(findings)), Format.HTML)
    assert page.count(fix) == 2  # once per group (data.check, data.poison), not once per finding
    for i in range(8):
        assert f"column px{i}<" in page or f"column px{i}," in page
    assert "8 findings" in page


def test_numbers_are_formatted_for_people() -> None:
    report = Report(
        subject="m",
        kind="artifact.scan",
        metrics={"bytes_scanned": 1_351_468.0, "robust_accuracy@pgd": 0.054321, "rows": 12345.0},
        data={"artifacts": [{"path": "a.pt", "size": 176_464, "share": 0.5}]},
    )
    page = render(report, Format.HTML)
    for text in ("1.29 MiB", "5.43%", "12,345", "172 KiB", "50%"):
        assert text in page, text
    assert 'title="0.054321"' in page  # the exact value on hover


def _hostile_pipeline() -> Report:
    finding = Finding(
        check=f"c.{EVIL}",
        severity="high",
        title=EVIL,
        detail=EVIL,
        artifact=EVIL,
        location={EVIL: EVIL},
        evidence={EVIL: EVIL},
        remediation=EVIL,
        atlas=EVIL,
    )
    stage = _stage(
        EVIL,
        EVIL,
        {"high": 1},
        verdict=EVIL,
        error=EVIL,
        inputs=[{"path": EVIL, "digest": EVIL}],
        figures=1,
    )
    stage["max_severity"] = EVIL
    fig = line_chart(EVIL, {EVIL: [(0, 0), (1, 1)]}, xlabel=EVIL, ylabel=EVIL)
    return Report(
        subject=EVIL,
        kind="pipeline",
        verdict=EVIL,
        findings=(finding,),
        metrics={f"{EVIL}/{EVIL}": 1.0},
        figures=(Figure(title=EVIL, content=fig.content), Figure(title=EVIL, media_type=EVIL, content=EVIL)),
        data={
            "stages": [stage],
            "gate": [{"rule": f"{EVIL}: max_severity low", "passed": False, "observed": EVIL}],
        },
    )


@pytest.mark.parametrize("fragment", [False, True])
def test_hostile_strings_in_every_field_are_escaped(fragment: bool) -> None:
    report = _hostile_pipeline()
    page = render_fragment(report) if fragment else render(report, Format.HTML)
    for raw in RAW:
        assert raw not in page, repr(raw)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&#34;\\x1b[2J\\u202eexe" in page
    assert "<script" not in page.lower()
    # the only URLs are data: images and the page's own anchors; the odd media type became image/png
    for url in re.findall(r'(?:src|href)="([^"]*)"', page):
        assert url.startswith(("data:image/svg+xml;base64,", "data:image/png;base64,", "#stage-")), url
    assert re.search(r"\bon\w+=", page.replace("&#34;", "")) is None  # no event handler attribute


def test_fragment_is_one_scoped_block_for_an_embedding_page() -> None:
    frag = render_fragment(HIGH_ROBUSTNESS)
    assert frag.startswith("<style>") and '<div class="mlsr">' in frag
    assert "<html" not in frag and "<body" not in frag
    assert all(
        rule.lstrip().startswith(".mlsr") for rule in re.findall(r"}([^{}]+){", frag.split("</style>")[0])
    )


@pytest.fixture
def scanner_check() -> Iterator[None]:
    @register("test.readable_scan", kind=CheckKind.SCANNER, summary="finds one thing per path")
    class Scan:
        def run(self, target: Target) -> Report:
            return Report(
                subject="s",
                kind="test.readable_scan",
                findings=tuple(
                    Finding(
                        check="test.readable_scan", severity="medium", title=f"odd {p.name}", artifact=str(p)
                    )
                    for p in target.paths
                ),
                metrics={"bytes_scanned": float(sum(p.stat().st_size for p in target.paths))},
                figures=(line_chart("scan curve", {"a": [(0, 0), (1, 1)]}),),
            )

    @register("test.readable_data", kind=CheckKind.AUDIT, summary="reads a data file, finds nothing")
    class Data:
        def run(self, target: Target) -> Report:
            return Report(subject="d", kind="test.readable_data", verdict="pass", metrics={"rows": 1234.0})

    yield
    unregister("test.readable_scan")
    unregister("test.readable_data")


def test_pipeline_stage_sections_name_inputs_and_hold_their_findings_and_figures(
    tmp_path: Path, scanner_check: None
) -> None:
    from mlsecops.pipeline import load_pipeline, run_pipeline

    (tmp_path / "model.bin").write_bytes(b"\x00" * 3000)
    (tmp_path / "rows.csv").write_text("a\n1\n")
    (tmp_path / "pipeline.yaml").write_text(
        "name: t\nstages:\n  - {name: first, check: test.readable_data, paths: [rows.csv]}\n"
        "  - {name: scan, check: test.readable_scan, paths: [model.bin]}\n"
        "policy:\n  - {stage: scan, max_severity: high}\n"
    )
    result = run_pipeline(load_pipeline(tmp_path / "pipeline.yaml"), workspace=None)
    stage = result.report.data["stages"][1]  # type: ignore[index]
    assert stage["inputs"][0]["path"] == "model.bin" and len(stage["inputs"][0]["digest"]) >= 12  # type: ignore[index]
    page = render(result.report, Format.HTML)
    scan_at, end = page.index("<h2>Stage scan"), len(page)
    assert page.index("<h2>Stage first") < scan_at
    section = page[scan_at:end]
    assert "<code>model.bin</code>" in section and stage["inputs"][0]["digest"][:12] in section  # type: ignore[index]
    assert "odd model.bin" in section and "data:image/svg+xml;base64," in section and "2.93 KiB" in section
    first = page[page.index("<h2>Stage first") : scan_at]
    assert "<code>rows.csv</code>" in first and "1,234" in first and "no rule judges this stage" in first
    head = page[: page.index("<h2>Stage first")]
    assert (
        "Gate passed:</b> the one policy rule holds, though 1 medium finding remains: in stage scan" in head
    )
    assert "within the policy&#39;s limit for it (max_severity high)" in head


def test_listing_banner_moments_and_digests_read_for_people() -> None:
    digest = "ee97dfcff641ad621f2d0a3d852805fd77320b3659bd8f73349e2f767baa5677"
    listing = Report(
        subject="audit trail",
        kind="audit.log",
        data={"events": [{"seq": 1, "ts": "2026-12-05T21:13:53.123456+00:00", "subject": digest}]},
    )
    v = verdict(listing)
    assert (v.headline, v.sentence) == ("Nothing found", "the report lists 1 events.")
    page = render(listing, Format.HTML)
    assert "2026-12-05 21:13:53 UTC" in page and "No findings" not in page
    assert "ee97dfcff641\u2026" in page and f'title="{digest}"' in page  # the start shown, all on hover


def test_observed_numbers_with_an_interval_get_three_digits() -> None:
    report = _pipeline(
        [],
        [_stage("fairness", "assess.fairness", {})],
        [
            {
                "rule": "fairness: equal_opportunity_difference <= 0.1",
                "passed": False,
                "observed": "0.463048 [0.399515, 0.535831]",
            }
        ],
    )
    assert "(observed 0.463 [0.4, 0.536])" in verdict(report).sentence
    assert "0.463048" not in render(report, Format.HTML).split("Raw data")[0]


def test_findings_that_cannot_be_placed_in_stages_are_still_shown() -> None:
    # counts that do not add up (an edited or older report): no finding may silently disappear
    report = _pipeline(
        [_f("artifact.scan", "critical", "os.system in model.pkl"), _f("data.check", "low", "drift")],
        [_stage("scan", "artifact.scan", {"critical": 1})],
        [{"rule": "scan: max_severity low", "passed": False, "observed": "worst finding critical"}],
        figures=(line_chart("unplaced curve", {"a": [(0, 0), (1, 1)]}),),
    )
    page = render(report, Format.HTML)
    tail = page[page.index("<h2>Stage scan") :]
    assert "listed with all the findings below" in tail
    assert "os.system in model.pkl" in tail and "drift" in tail and "<h2>Findings (2)</h2>" in tail
    assert "unplaced curve" in tail
