"""``mlsecops monitor replay``: a logged query stream through the runtime detectors, offline.

Thin: loads the model (through the scanner's ``safe_load``), the baseline and the guard policy, builds
the detectors the policy's ``monitor`` section names (``monitor.detectors.build_detectors``), streams
the log through them (``monitor.replay``) and renders the report. Exit 1 when an alert is at or above
``--fail-on``; exit 2 with one line for a bad log line, model, baseline or policy.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer

from mlsecops.cli._common import (
    DEFAULT_FAIL_ON,
    FailOnOpt,
    FormatOpt,
    OutputOpt,
    QuietOpt,
    emit,
    err_console,
    exit_for,
    open_workspace,
    parse_fail_on,
    progress_hook,
    resolve_format,
    settings,
)

__all__ = ["register"]


def _first_width(path: Path) -> int | None:
    """Width of the first request's rows (for models that cannot tell their input shape)."""
    from mlsecops.monitor.replay import first_query

    query = first_query(path)
    return None if query is None else int(query.inputs.shape[1])


def replay_command(
    queries: Annotated[
        Path, typer.Argument(help="QUERIES.jsonl: one request per line (mlsecops monitor export-log).")
    ],
    model: Annotated[
        str,
        typer.Option(
            "--model", "-m", help="Model that recomputes missing outputs (loaded only if scanned safe)."
        ),
    ],
    baseline: Annotated[
        Path | None,
        typer.Option(help="Training profile (mlsecops data profile JSON) or a training data file."),
    ] = None,
    policy: Annotated[
        Path | None, typer.Option(help="Guard policy (guard.yaml); its monitor section picks the detectors.")
    ] = None,
    model_name: Annotated[
        str | None, typer.Option(help="Model name for lines that name none [default: the model file's stem].")
    ] = None,
    holdout: Annotated[
        Path | None,
        typer.Option(
            help="Rows the model was not trained on (validation split): calibrates the margin-rank "
            "signal that catches active-learning thieves.",
        ),
    ] = None,
    record: Annotated[
        bool,
        typer.Option(
            "--record",
            help="Also store the alerts in the workspace (deduplicated, audited), for alerts and incidents.",
        ),
    ] = False,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    fail_on: FailOnOpt = DEFAULT_FAIL_ON,
    quiet: QuietOpt = False,
) -> None:
    """Replay a decision log through the detectors and report their alerts (exit 1 at --fail-on)."""
    from mlsecops.models import load_model
    from mlsecops.monitor.detectors import build_detectors
    from mlsecops.monitor.replay import load_baseline, read_queries, replay
    from mlsecops.runtime.policy import load_policy

    threshold = parse_fail_on(fail_on)
    chosen = resolve_format(fmt, output)
    guard = load_policy(policy)
    width = _first_width(queries)
    adapter = load_model(model, input_shape=None if width is None else (width,))
    features = math.prod(adapter.input_shape) if adapter.input_shape else width
    base = load_baseline(baseline) if baseline is not None else None
    name = model_name or Path(model).stem
    from mlsecops.monitor.detectors import load_holdout

    rows = load_holdout(holdout) if holdout is not None else None
    detectors = build_detectors(guard.monitor, adapter, baseline=base, model_name=name, holdout=rows)
    with progress_hook("replay", quiet=quiet) as hook:
        stream = read_queries(queries, features=features, n_classes=adapter.n_classes, progress=hook)
        report = replay(stream, adapter, detectors, base, model_name=name, subject=str(queries))
    if record:
        alerts = report.data.get("alerts", [])
        _record(alerts if isinstance(alerts, list) else [])
    emit(report, chosen, output)
    raise typer.Exit(exit_for(report, threshold))


def _record(alerts: list[Any]) -> None:
    """Store replayed alerts in the workspace's alert store (as ``mlsecops monitor``)."""
    from mlsecops.core.severity import Severity
    from mlsecops.monitor.alerts import AlertStore
    from mlsecops.monitor.interface import Alert

    with open_workspace() as ws:
        store = AlertStore(ws, actor=settings().actor)
        done = [
            store.record(
                Alert(
                    kind=a["kind"],
                    principal=a["principal"],
                    model=a["model"],
                    severity=Severity.parse(a["severity"]),
                    query_index=int(a["query_index"]),
                    time=float(a["time"]),
                    evidence=a["evidence"],
                )
            )
            for a in alerts
        ]
    ids = ", ".join(f"{r.alert.id} ({r.change})" for r in done) or "none"
    err_console.print(f"recorded {len(done)} alert(s) in the workspace: {ids}")


def register(monitor_app: typer.Typer) -> None:
    """Add ``replay`` to ``mlsecops monitor``."""
    monitor_app.command("replay")(replay_command)
