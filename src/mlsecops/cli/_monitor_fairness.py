"""``mlsecops monitor fairness``: group fairness of labelled decisions, window by window.

Thin: parses, calls ``mlsecops.monitor.fairness.fairness_windows`` (``assess fairness``'s code per
window file) or, with ``--log MODEL``, ``fairness_of_logged`` over the guard's decision log (groups
recorded by ``logging.group``, labels sent as feedback, explanations by ``logging.explain``), and
renders. Exit 1 when a window's disparity interval lies wholly above the limit (at or above
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
    open_workspace,
    parse_fail_on,
    resolve_format,
)
from mlsecops.core.errors import InputError
from mlsecops.report import Format

__all__ = ["register"]


def fairness_command(
    windows: Annotated[
        list[Path] | None,
        typer.Argument(help="Labelled decisions (CSV, Parquet, .npz), one audit per file."),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="The served model (loaded only if scanned safe).")
    ] = None,
    label: Annotated[str | None, typer.Option(help="Column with the true outcome.")] = None,
    sensitive: Annotated[str | None, typer.Option(help="Sensitive column(s), comma-separated.")] = None,
    log: Annotated[
        str | None,
        typer.Option(
            "--log",
            help="Audit this served model's decision log instead of files (groups from logging.group, "
            "labels from feedback, attributions from logging.explain).",
        ),
    ] = None,
    window: Annotated[
        int, typer.Option(min=100, max=1_000_000, help="With --log: labelled rows per audit window.")
    ] = 1_000,
    attribution_windows: Annotated[
        int, typer.Option(min=1, max=100, help="With --log: time slices of the per-group attributions.")
    ] = 2,
    version: Annotated[str | None, typer.Option(help="With --log: only this version's decisions.")] = None,
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
    if log is not None:
        if windows or model or label or sensitive:
            raise InputError(
                "--log reads the decision log: give no window files, --model, --label or --sensitive"
            )
        report = _from_log(
            log, window, attribution_windows, version, metric, max_difference, bootstrap, min_group_size, seed
        )
        if chosen is Format.TEXT and output is None:
            _trend_table(report.data.get("windows"))
            _attribution_table(report.data.get("attributions"))
        emit(report, chosen, output)
        raise typer.Exit(exit_for(report, threshold))
    if not windows or model is None or label is None or sensitive is None:
        raise InputError("give window files with --model, --label and --sensitive, or --log MODEL")
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


def _from_log(
    name: str,
    window: int,
    attribution_windows: int,
    version: str | None,
    metric: str,
    max_difference: float,
    bootstrap: int,
    min_group_size: int,
    seed: int,
) -> Any:
    from mlsecops.monitor.fairness import fairness_of_logged
    from mlsecops.runtime.decision_audit import labelled_decisions

    with open_workspace() as ws:
        logged = labelled_decisions(ws, name, version=version)
    return fairness_of_logged(
        name,
        labels=logged.labels,
        predictions=logged.predictions,
        groups=logged.groups,
        times=logged.times,
        explained_groups=logged.explained_groups,
        explained=logged.explained,
        window=window,
        attribution_windows=attribution_windows,
        metric=metric,
        max_difference=max_difference,
        bootstrap=bootstrap,
        min_group_size=min_group_size,
        seed=seed,
    )


def _attribution_table(trend: Any) -> None:
    from rich.table import Table

    if not isinstance(trend, dict) or not trend:
        return
    table = Table(title="mean contributions per group (explained decisions)", title_justify="left")
    for col in ("group", "slice", "rows", "top features"):
        table.add_column(col, overflow="fold")
    for group, slices in trend.items():
        for i, sl in enumerate(slices if isinstance(slices, list) else [], start=1):
            top = ", ".join(f"{f} {v:+.3g}" for f, v in sl.get("top", []))
            table.add_row(cell(group), cell(i), cell(sl.get("rows")), cell(top))
    console.print(table)


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
