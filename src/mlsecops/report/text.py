"""Terminal renderer: rich tables of findings and metrics, coloured by severity on a terminal.

Every text that comes from the input (subject, titles, details, artifact names, locations, metric
names) passes through ``visible`` and goes into rich as a ``Text``, never as markup: an escape sequence
or a ``[bold]`` in a file name is shown as characters, never acted on.
"""

from __future__ import annotations

import io

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from mlsecops.core.findings import Report, Severity
from mlsecops.report import humanize
from mlsecops.report._safe import json_dumps, visible

__all__ = ["SEVERITY_STYLE", "TextRenderer", "report_renderable"]

SEVERITY_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}


def _where(location: dict[str, str | int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in location.items())


def _safe(value: object, *, lines: bool = False) -> Text:
    """Untrusted text as a rich ``Text`` (no markup) with controls shown as escapes."""
    return Text(visible(str(value), keep_newlines=lines))


def report_renderable(report: Report) -> Group:
    """The report as rich renderables (header, findings table, metrics table)."""
    top = report.max_severity
    head = Text.assemble(
        ("subject ", "bold"),
        _safe(report.subject),
        "   ",
        ("check ", "bold"),
        _safe(report.kind),
        "   ",
        ("verdict ", "bold"),
        _safe(report.verdict or "-"),
        "   ",
        ("worst ", "bold"),
        (
            str(top) if top is not None else "none",
            SEVERITY_STYLE.get(top, "") if top is not None else "green",
        ),
    )
    parts: list[Panel | Table | Text] = [Panel(head, title="mlsecops report", expand=False)]
    if report.findings:
        table = Table(title=f"{len(report.findings)} finding(s)", show_lines=False, expand=False)
        for col in ("severity", "check", "title", "artifact", "where"):
            table.add_column(col, overflow="fold")
        for f in sorted(report.findings, key=lambda f: -f.severity):
            table.add_row(
                Text(str(f.severity), style=SEVERITY_STYLE[f.severity]),
                _safe(f.check),
                Text("\n").join(_safe(t) for t in (f.title, f.detail) if t) or _safe(f.title),
                _safe(f.artifact or ""),
                _safe(_where(f.location)),
            )
        parts.append(table)
    else:
        parts.append(Text("no findings", style="green"))
    if report.metrics:
        metrics = Table(title="metrics", expand=False)
        metrics.add_column("metric")
        metrics.add_column("value", justify="right")
        for name, value in report.metrics.items():
            metrics.add_row(_safe(name), humanize.metric(name, value))
        parts.append(metrics)
    for key, item in report.data.items():
        if isinstance(item, list):
            parts.append(
                Text(visible(f"{key}: {len(item)} item(s) (see --format json for all)"), style="dim")
            )
        elif not isinstance(item, dict):
            parts.append(
                Text(visible(f"{key}: {json_dumps(item, indent=None, allow_nan=True)}"), style="dim")
            )
    return Group(*parts)


class TextRenderer:
    """Renders a report for people: rich tables, plain text unless ``color`` is set."""

    def __init__(self, *, color: bool = False, width: int = 120) -> None:
        self.color = color
        self.width = width

    def render(self, report: Report) -> str:
        """Return the report as terminal text."""
        buffer = io.StringIO()
        console = Console(
            file=buffer,
            width=self.width,
            force_terminal=self.color,
            color_system="standard" if self.color else None,
            emoji=False,
            highlight=False,
        )
        console.print(report_renderable(report))
        return buffer.getvalue()
