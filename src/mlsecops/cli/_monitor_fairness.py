"""``mlsecops monitor fairness``: group fairness of labelled decisions, window by window.

Thin: parses, calls ``mlsecops.monitor.fairness.fairness_windows`` (``assess fairness``'s code per
window) and renders. Exit 1 when a window's disparity interval lies wholly above the limit (at or above
``--fail-on``); exit 2 with one line for a bad window, model or option.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mlsecops.cli._common import (
    DEFAULT_FAIL_ON,
    FailOnOpt,
    FormatOpt,
    OutputOpt,
    cell,
    console,
    emit,
    exit_for,
    parse_fail_on,
    resolve_format,
)
from mlsecops.report import Format

__all__ = ["register"]


def fairness_command(
    windows: Annotated[
        list[Path], typer.Argument(help="Labelled decisions (CSV, Parquet, .npz), one audit per file.")
    ],
    model: Annotated[
        str, typer.Option("--model", "-m", help="The served model (loaded only if scanned safe).")
    ],
    label: Annotated[str, typer.Option(help="Column with the true outcome.")],
    sensitive: Annotated[str, typer.Option(help="Sensitive column(s), comma-separated.")],
    metric: Annotated[
        str,
        typer.Option(
            help="demographic_parity_difference, equalized_odds_difference or equal_opportunity_difference."
        ),
    ] = "equal_opportunity_difference",
    max_difference: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Alert when the interval lies wholly above this.")
    ] = 0.1,
    bootstrap: Annotated[int, typer.Option(min=0, max=10_000, help="Bootstrap replicates per window.")] = 200,
    min_group_size: Annotated[int, typer.Option(min=1, help="Smaller groups are reported, not judged.")] = 30,
    seed: Annotated[int, typer.Option(help="Bootstrap seed (same seed, same intervals).")] = 0,
    fail_on: FailOnOpt = DEFAULT_FAIL_ON,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Audit each window of labelled decisions for a disparity (exit 1 at --fail-on)."""
    from mlsecops.monitor.fairness import fairness_windows

    threshold = parse_fail_on(fail_on)
    chosen = resolve_format(fmt, output)
    report = fairness_windows(
        model,
        list(windows),
        label=label,
        sensitive=sensitive,
        metric=metric,
        max_difference=max_difference,
        bootstrap=bootstrap,
        min_group_size=min_group_size,
        seed=seed,
    )
    if chosen is Format.TEXT and output is None:
        _trend_table(report.data.get("windows"))
    emit(report, chosen, output)
    raise typer.Exit(exit_for(report, threshold))


def _trend_table(windows: Any) -> None:
    from rich.table import Table

    if not isinstance(windows, list) or not windows:
        return
    table = Table(title="disparity per window", title_justify="left")
    for col in ("window", "rows", "metric", "value", "interval", "beyond"):
        table.add_column(col, overflow="fold")
    for w in windows:
        if isinstance(w, dict):
            table.add_row(
                *(cell(w.get(c)) for c in ("window", "rows", "metric", "value", "interval", "beyond"))
            )
    console.print(table)


def register(monitor_app: typer.Typer) -> None:
    """Add ``fairness`` to ``mlsecops monitor``."""
    monitor_app.command("fairness")(fairness_command)
