"""``mlsecops scan PATH...``: static scan of model files, archives and directories.

Thin: expands the paths, calls ``mlsecops.supplychain.scanner.scan_paths`` (a process pool for
directories, a progress bar on a terminal), builds the ``artifact.scan`` report and renders it. Exit 1
when a finding is at or above ``--fail-on``; exit 2 for a missing path or a bad option.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from mlsecops.cli._common import (
    FailOnOpt,
    FormatOpt,
    OutputOpt,
    console,
    emit,
    exit_for,
    parse_fail_on,
    progress,
)
from mlsecops.core.findings import utcnow
from mlsecops.report import Format
from mlsecops.supplychain.scanner import ArtifactScan, ScanLimits, iter_files, scan_paths, scan_report

__all__ = ["register"]

_VERDICT_STYLE = {"safe": "green", "suspicious": "yellow", "malicious": "bold red", "error": "magenta"}


def scan(
    paths: Annotated[list[Path], typer.Argument(help="Model files, archives or directories to scan.")],
    fail_on: FailOnOpt = "medium",
    fmt: FormatOpt = Format.TEXT,
    output: OutputOpt = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Parallel processes (default: CPU count).")
    ] = None,
    max_seconds: Annotated[float, typer.Option(min=0.001, help="Time limit per file, in seconds.")] = 120.0,
    max_gb: Annotated[
        float, typer.Option(min=0.001, help="Bytes read per file before giving up, in GB.")
    ] = 4.0,
    no_hash: Annotated[bool, typer.Option("--no-hash", help="Skip the SHA-256 of each file.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Scan model artifacts for code-execution payloads without loading them."""
    threshold = parse_fail_on(fail_on)
    started = utcnow()
    limits = ScanLimits(max_seconds=max_seconds, max_read_bytes=int(max_gb * (1 << 30)))
    total = sum(1 for _ in iter_files(paths))
    with progress(total, "scanning", quiet=quiet) as bar:

        def tick(_: ArtifactScan) -> None:
            if bar is not None:
                bar.advance(bar.tasks[0].id)

        results = scan_paths(paths, limits=limits, workers=workers, sha256=not no_hash, progress=tick)
    report = scan_report(results, subject=", ".join(str(p) for p in paths), started=started)
    if fmt is Format.TEXT and output is None:
        _table(results)
    emit(report, fmt, output)
    raise typer.Exit(exit_for(report, threshold))


def _table(results: list[ArtifactScan]) -> None:
    table = Table(title=f"{len(results)} artifact(s)")
    for col in ("path", "format", "verdict", "worst finding"):
        table.add_column(col, overflow="fold")
    for r in results:
        verdict = str(r.verdict)
        worst = max(r.hits, key=lambda h: h.severity, default=None)
        where = f" [{worst.entry}]" if worst is not None and worst.entry else ""
        table.add_row(
            escape(r.path),
            r.format,
            f"[{_VERDICT_STYLE[verdict]}]{verdict}[/]",
            escape(f"{worst.title}{where}") if worst is not None else "",
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``scan`` to the app."""
    app.command("scan")(scan)
