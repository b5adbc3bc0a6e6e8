"""What the HTML report shows, worked out from a Report: the verdict sentence, findings grouped with their
remediation, each pipeline stage with its inputs, rules, metrics, findings and figures, and tables whose
numbers read as people write them (``humanize``). Plain values only; ``html`` draws them, escaped.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlsecops.core.findings import Figure, Finding, Report, Severity
from mlsecops.report import humanize

__all__ = [
    "Group",
    "Stage",
    "Verdict",
    "cell",
    "count_phrase",
    "gate_rules",
    "group_findings",
    "observed",
    "stages",
    "table",
    "verdict",
]

_MAX_ROWS = 500
_MAX_ITEMS = 100
"""Findings listed per group; the rest are counted (every one is in the JSON report)."""
_GOOD_WORDS = frozenset(
    {"pass", "passed", "safe", "robust", "intact", "verified", "signed", "ok", "clean", "fair", "registered"}
)
_BAD_WORDS = frozenset(
    {
        "fail",
        "failed",
        "malicious",
        "vulnerable",
        "error",
        "refused",
        "tampered",
        "blocked",
        "unsafe",
        "biased",
    }
)
_ISO_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$")
_SEVERITY_RULE = re.compile(r"^(?P<stage>.+): max_severity (?P<limit>[a-z]+)$")
_METRIC_RULE = re.compile(r"^(?P<stage>.+): (?P<metric>\S+) (?P<op><=|>=|==|!=|<|>) (?P<value>\S+)$")


@dataclass(frozen=True)
class Verdict:
    """The banner: a tone (``ok``, ``warn``, ``bad``), a short headline and one sentence."""

    tone: str
    headline: str
    sentence: str


@dataclass(frozen=True)
class Group:
    """Findings of one check with one remediation, worst first."""

    check: str
    severity: str
    headline: str
    remediation: str
    atlas: str
    artifact: str | None
    items: list[Finding]
    count: int


@dataclass(frozen=True)
class Stage:
    """One pipeline stage as its section shows it."""

    name: str
    check: str
    verdict: str
    worst: str | None
    error: str | None
    inputs: list[dict[str, Any]] | None
    rules: list[dict[str, Any]]
    metrics: list[tuple[str, str, float]]
    groups: list[Group]
    figures: list[Figure] = field(default_factory=list)
    count: int = 0


def _plural(n: int, word: str) -> str:
    return f"{humanize.integer(n)} {word}{'' if n == 1 else 's'}"


def _and(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def count_phrase(counts: Mapping[str, int]) -> str:
    """``1 high, 2 medium and 10 low findings`` (severities without findings left out)."""
    parts = [f"{humanize.integer(n)} {sev}" for sev, n in counts.items() if n]
    if not parts:
        return "no findings"
    return f"{_and(parts)} finding{'' if sum(counts.values()) == 1 else 's'}"


def gate_rules(report: Report) -> list[dict[str, Any]] | None:
    """The gate's rule results (``data.gate``) of a pipeline report, or ``None`` for a report without."""
    gate = report.data.get("gate")
    if not isinstance(gate, list) or not all(isinstance(g, dict) and "rule" in g for g in gate):
        return None
    return [g for g in gate if isinstance(g, dict)]


def _stage_rows(report: Report) -> list[dict[str, Any]]:
    rows = report.data.get("stages")
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def observed(rule: Mapping[str, Any]) -> str:
    """A rule's observed value as people read it (a metric rule's number to three significant digits)."""
    text = str(rule.get("observed", ""))
    if _METRIC_RULE.match(str(rule.get("rule", ""))) and not _SEVERITY_RULE.match(str(rule.get("rule", ""))):
        return _DECIMAL.sub(lambda m: humanize.significant(float(m.group())), text)
    return text


def _why_allowed(stage: str, worst: Severity, rules: Sequence[Mapping[str, Any]]) -> str:
    """Why a passed gate lets ``stage``'s worst finding through, from the rules that judge the stage."""
    limits, metric_rules = [], []
    for r in rules:
        text = str(r.get("rule", ""))
        if (m := _SEVERITY_RULE.match(text)) and m["stage"] in (stage, "all stages"):
            limits.append(m["limit"])
        elif (m := _METRIC_RULE.match(text)) and m["stage"] == stage:
            metric_rules.append(f"{m['metric']} {m['op']} {m['value']} (observed {observed(r)})")
    if limits:
        limit = min(limits, key=lambda s: int(Severity.parse(s)))
        return f"stage {stage}, within the policy's limit for it (max_severity {limit})"
    if metric_rules:
        return f"stage {stage}, which the policy judges by {_and(metric_rules)}, not by finding severity"
    return f"stage {stage}, which no policy rule judges"


def _gate_verdict(report: Report, rules: list[dict[str, Any]]) -> Verdict:
    failed = [r for r in rules if not r.get("passed")]
    worst = report.max_severity
    if failed:
        shown = [f"{r['rule']} (observed {observed(r)})" for r in failed[:3]]
        more = f" and {len(failed) - 3} more" if len(failed) > 3 else ""
        return Verdict(
            "bad",
            "Blocked",
            f"{len(failed)} of {_plural(len(rules), 'policy rule')} failed: {'; '.join(shown)}{more}.",
        )
    held = {0: "the policy has no rules", 1: "the one policy rule holds"}.get(
        len(rules), f"all {_plural(len(rules), 'policy rule')} hold"
    )
    if worst is None:
        return Verdict("ok", "Gate passed", f"{held} and no stage found anything.")
    n_worst = len([f for f in report.findings if f.severity == worst])
    if worst < Severity.MEDIUM:
        return Verdict(
            "ok", "Gate passed", f"{held}; the worst finding is {worst} ({_plural(n_worst, 'finding')})."
        )
    where = [str(s.get("name")) for s in _stage_rows(report) if s.get("max_severity") == str(worst)]
    reasons = [_why_allowed(name, worst, rules) for name in where] or ["stages the policy does not judge"]
    return Verdict(
        "warn",
        "Gate passed",
        f"{held}, though {_plural(n_worst, f'{worst} finding')} remain{'s' if n_worst == 1 else ''}: "
        f"in {'; in '.join(reasons)}.",
    )


def verdict(report: Report, *, fail_on: Severity | None = None) -> Verdict:
    """The one sentence a reader needs first, reconciling the gate (or ``--fail-on``, or the check's own
    verdict) with the worst finding, so a "pass" never sits beside a "high" without the reason.
    """
    rules = gate_rules(report)
    if rules is not None:
        return _gate_verdict(report, rules)
    worst, counts = report.max_severity, count_phrase(report.counts())
    word = (report.verdict or "").strip()
    head = word[:1].upper() + word[1:] if word else ("Findings" if worst is not None else "No findings")
    if fail_on is not None:
        over = report.at_or_above(fail_on)
        if over:
            return Verdict(
                "bad",
                "Fails",
                f"{_plural(len(over), 'finding')} at or above the fail-on level ({fail_on}); {counts} in all.",
            )
        if worst is None:
            return Verdict("ok", "Passes", "no findings.")
        tone = "warn" if worst >= Severity.MEDIUM else "ok"
        return Verdict(tone, "Passes", f"{counts}, all below the fail-on level ({fail_on}).")
    if worst is None and not word:  # a listing (runs, audit events, alerts): say what it holds
        held = [f"{len(v)} {k.replace('_', ' ')}" for k, v in report.data.items() if isinstance(v, list)]
        return Verdict(
            "ok", "Nothing found", f"the report lists {_and(held)}." if held else "the report is empty."
        )
    if worst is None:
        tone = "bad" if word.lower() in _BAD_WORDS else "ok"
        return Verdict(tone, head, "no findings.")
    tone = (
        "bad"
        if worst >= Severity.HIGH or word.lower() in _BAD_WORDS
        else "warn"
        if worst >= Severity.MEDIUM
        else "ok"
    )
    if word.lower() in _GOOD_WORDS and worst >= Severity.MEDIUM:
        return Verdict(
            tone,
            head,
            f"the check's own conclusion is {word}, yet {counts} need review (worst: {worst}); "
            "no policy gate was applied to this report.",
        )
    worst_items = [f for f in report.findings if f.severity == worst]
    artifacts = sorted({f.artifact for f in worst_items if f.artifact})
    where = (
        f" in {_and(artifacts)}"
        if 0 < len(artifacts) <= 3
        else f" in {len(artifacts)} artifacts"
        if artifacts
        else ""
    )
    if len(worst_items) == len(report.findings):
        return Verdict(tone, head, f"{counts}{where}.")
    return Verdict(tone, head, f"{counts}; the worst ({worst}){where or ' is ' + str(worst)}.")


def _headline(titles: Sequence[str]) -> str:
    if len(set(titles)) == 1:
        return titles[0]
    prefix = titles[0]
    for t in titles[1:]:
        while not t.startswith(prefix):
            prefix = prefix[:-1]
    prefix = prefix[: prefix.rfind(" ")].rstrip(" ,:(") if " " in prefix else ""
    return f"{prefix} \u2026" if len(prefix) >= 12 else titles[0]


def group_findings(findings: Iterable[Finding]) -> list[Group]:
    """Findings grouped by check and remediation, each group worst first; groups worst and largest first."""
    buckets: dict[tuple[str, str], list[Finding]] = {}
    for f in findings:
        buckets.setdefault((f.check, f.remediation), []).append(f)
    out = []
    for (check, remediation), items in buckets.items():
        items = sorted(items, key=lambda f: -int(f.severity))
        artifacts = {f.artifact for f in items}
        atlas = sorted({f.atlas for f in items if f.atlas})
        out.append(
            Group(
                check=check,
                severity=str(items[0].severity),
                headline=_headline([f.title for f in items]),
                remediation=remediation,
                atlas=", ".join(atlas),
                artifact=artifacts.pop() if len(artifacts) == 1 else None,
                items=items[:_MAX_ITEMS],
                count=len(items),
            )
        )
    return sorted(out, key=lambda g: (-int(Severity.parse(g.severity)), -g.count))


def _slices(sizes: Sequence[int], items: Sequence[Any]) -> list[list[Any]] | None:
    if sum(sizes) != len(items):
        return None
    out, at = [], 0
    for n in sizes:
        out.append(list(items[at : at + n]))
        at += n
    return out


def stages(report: Report) -> list[Stage] | None:
    """The stages of a pipeline report (``data.stages``), each with what belongs to it; ``None`` for a
    report of one check. Findings and figures go to their stage by the counts the run recorded.
    """
    rows = _stage_rows(report)
    if not rows or report.kind != "pipeline":
        return None
    sizes = [sum(int(v) for v in (r.get("counts") or {}).values()) for r in rows]
    per_findings = _slices(sizes, report.findings) or [[] for _ in rows]
    fig_sizes = [int(r["figures"]) if isinstance(r.get("figures"), int) else -1 for r in rows]
    per_figures = _slices(fig_sizes, report.figures) if min(fig_sizes, default=0) >= 0 else None
    rules = gate_rules(report) or []
    out = []
    for i, r in enumerate(rows):
        name = str(r.get("name", ""))
        mine = [
            g
            for g in rules
            if (m := _SEVERITY_RULE.match(str(g.get("rule"))) or _METRIC_RULE.match(str(g.get("rule"))))
            and m["stage"] in (name, "all stages")
        ]
        prefix = f"{name}/"
        metrics = [
            (k[len(prefix) :], humanize.metric(k, v), v)
            for k, v in report.metrics.items()
            if k.startswith(prefix)
        ]
        inputs = r.get("inputs")
        out.append(
            Stage(
                name=name,
                check=str(r.get("check", "")),
                verdict=str(r.get("verdict") or "-"),
                worst=r.get("max_severity"),
                error=r.get("error"),
                inputs=inputs if isinstance(inputs, list) else None,
                rules=mine,
                metrics=metrics,
                groups=group_findings(per_findings[i]),
                figures=per_figures[i] if per_figures is not None else [],
                count=sizes[i],
            )
        )
    return out


def cell(column: str, value: Any) -> str:
    """A table cell's text: numbers formatted by the column's unit, anything else as text."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int | float):
        return humanize.value(value, humanize.unit_of(column))
    if isinstance(value, str) and _ISO_MOMENT.match(value):
        try:
            return humanize.timestamp(dt.datetime.fromisoformat(value))
        except ValueError:
            return value
    return str(value)


_DECIMAL = re.compile(r"(?<![\w.])-?\d+\.\d+(?:e[-+]?\d+)?(?![\w.])")
_HEX = re.compile(r"^(sha256:)?[0-9a-f]{40,}$")


def _cell(column: str, value: Any) -> tuple[Any, str, str]:
    """``(shown, css class, full text on hover)``: booleans and nulls as they are for the template."""
    if isinstance(value, bool) or value is None:
        return value, "", ""
    text = cell(column, value)
    if isinstance(value, int | float):
        return text, "num", str(value)
    if text != value:  # a moment, reformatted
        return text, "when", str(value)
    if _HEX.match(text):  # a digest: its start is what people compare; all of it on hover
        return text[: text.find(":") + 13] + "…", "hex", text
    return text, "", ""


def table(key: str, value: object) -> dict[str, Any] | None:
    """A list of flat objects (gate rules, stages, artifacts, suspect rows) as a table, else None."""
    if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
        return None
    columns: list[str] = []
    for row in value:
        for k, v in row.items():
            if k not in columns and not isinstance(v, dict | list):
                columns.append(k)
    if not columns:
        return None
    rows = [[_cell(c, row.get(c)) for c in columns] for row in value[:_MAX_ROWS]]
    return {
        "title": key.replace("_", " "),
        "columns": columns,
        "rows": rows,
        "more": max(0, len(value) - _MAX_ROWS),
    }
