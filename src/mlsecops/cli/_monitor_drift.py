"""``mlsecops monitor drift``: batch files tested for drift against a baseline profile.

Thin: parses, loads the model if one is given (through the scanner's ``safe_load``), calls
``mlsecops.monitor.drift_batch.drift_report`` and renders. Exit 1 when a window drifted at or above
``--fail-on``; exit 2 with one line for a bad window, baseline, model or option.
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


def drift_command(
    windows: Annotated[
        list[Path], typer.Argument(help="Data files to test (CSV, Parquet, .npy, .npz): one verdict each.")
    ],
    baseline: Annotated[
        Path,
        typer.Option(
            "--baseline",
            "-b",
            help="Training profile (mlsecops data profile JSON) or the reference data file.",
        ),
    ],
    alpha: Annotated[
        float,
        typer.Option(min=1e-9, max=0.5, help="False-alarm rate per clean window (Benjamini-Hochberg level)."),
    ] = 0.05,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Model whose confidences estimate accuracy per window (loaded only if scanned safe).",
        ),
    ] = None,
    labels: Annotated[
        str | None,
        typer.Option(
            help="Label column of the windows (and of a reference data file): actual accuracy; needs --model."
        ),
    ] = None,
    chunk_rows: Annotated[int, typer.Option(min=1000, help="Rows read at a time (memory bound).")] = 200_000,
    fail_on: FailOnOpt = DEFAULT_FAIL_ON,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Test each window for drift: per-column tests, a correlation test, FDR control (exit 1 at --fail-on)."""
    from mlsecops.core.errors import InputError
    from mlsecops.monitor.drift_batch import drift_report

    threshold = parse_fail_on(fail_on)
    chosen = resolve_format(fmt, output)
    if labels is not None and model is None:
        raise InputError("--labels needs --model (the predictions are computed from the model)")
    adapter = _load_model(model, baseline, labels) if model is not None else None
    report = drift_report(baseline, windows, alpha=alpha, model=adapter, labels=labels, chunk_rows=chunk_rows)
    if chosen is Format.TEXT and output is None:
        _verdicts_table(report.data.get("windows"))
    emit(report, chosen, output)
    raise typer.Exit(exit_for(report, threshold))


def _load_model(spec: str, baseline: Path, labels: str | None) -> Any:
    from mlsecops.models import load_model
    from mlsecops.monitor.drift_batch import feature_count

    return load_model(spec, input_shape=(feature_count(baseline, label=labels),))


def _verdicts_table(windows: Any) -> None:
    from rich.table import Table

    if not isinstance(windows, list) or not windows:
        return
    table = Table(title="drift per window", title_justify="left")
    for col in ("window", "drift", "p_value", "columns"):
        table.add_column(col, overflow="fold")
    for w in windows:
        if isinstance(w, dict):
            cols = w.get("columns") or []
            table.add_row(
                cell(w.get("window")),
                cell(w.get("drift")),
                cell(w.get("p_value")),
                cell(", ".join(map(str, cols))),
            )
    console.print(table)


def register(monitor_app: typer.Typer) -> None:
    """Add ``drift`` to ``mlsecops monitor``."""
    monitor_app.command("drift")(drift_command)
