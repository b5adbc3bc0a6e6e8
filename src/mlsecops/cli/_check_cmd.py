"""What the commands that run one registered check share (``assess ...``, ``harden ...``, ``certify``).

Each such command turns its options into a ``Target`` (``check_options`` drops the ones not given;
``workspace_target`` adds the workspace for checks that write into it), and ``run_check`` runs the check
with a progress bar, renders the report and exits 1 when a finding reaches ``--fail-on``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from mlsecops.cli._common import emit, exit_for, parse_fail_on, progress_hook, resolve_format, settings
from mlsecops.core.checks import Target, get_check
from mlsecops.report import Format

__all__ = [
    "DataOpt",
    "LabelOpt",
    "ModelOpt",
    "OutputKindOpt",
    "SeedOpt",
    "ShardRowsOpt",
    "TimeoutOpt",
    "check_options",
    "int_list",
    "run_check",
    "workspace_target",
]

ModelOpt = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help="Model: .pt2, .pt (TorchScript), .onnx, .pkl/.joblib/.skops (loaded only if scanned safe), URL, python:mod:attr (runs it).",
    ),
]
DataOpt = Annotated[
    Path, typer.Option("--data", "-d", help="Data: .npz with X and y, or CSV/Parquet with --label.")
]
LabelOpt = Annotated[str | None, typer.Option(help="Label column of a CSV/Parquet data file.")]
SeedOpt = Annotated[int, typer.Option(help="Random seed; the same seed gives the same report.")]
ShardRowsOpt = Annotated[
    int | None, typer.Option(min=1, help="With --executor: examples per shard [default: 128].")
]
OutputKindOpt = Annotated[
    str | None,
    typer.Option("--model-output", help="What the model returns: logits (PyTorch default) or proba."),
]
TimeoutOpt = Annotated[float, typer.Option(min=0.01, help="Seconds per request to a model endpoint.")]


def check_options(**kw: Any) -> dict[str, Any]:
    """The check's options: the keywords given, without those that are ``None`` (not given)."""
    return {k: v for k, v in kw.items() if v is not None}


def workspace_target(options: dict[str, Any], *, seed: int) -> Target:
    """A ``Target`` that also names the workspace (when there is one), its database and the actor."""
    cfg = settings()
    home = cfg.home if cfg.workspace_exists() else None
    db = cfg.database_url.get_secret_value() if cfg.database_url is not None else None
    return Target(options=options, seed=seed, home=home, database_url=db, actor=cfg.actor)


def int_list(value: str | None, flag: str, what: str) -> list[int] | None:
    """``"1,2,3"`` as ``[1, 2, 3]`` (``None`` stays ``None``); a usage error names ``flag`` and ``what``."""
    if value is None:
        return None
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated {what}; got {value!r}", param_hint=flag) from None


def run_check(
    check: str,
    target: Target,
    fmt: Format | None,
    output: Path | None,
    fail_on: str,
    *,
    quiet: bool,
) -> NoReturn:
    """Run the registered ``check`` on ``target`` with a progress bar, render its report, and exit.

    A format that contradicts the output file is refused before the (long) run. The HTML verdict says
    whether the findings reach ``--fail-on``. Exits 1 when one does, else 0.
    """
    threshold = parse_fail_on(fail_on)
    chosen = resolve_format(fmt, output)
    with progress_hook(check, quiet=quiet) as hook:
        factory: Any = get_check(check).factory  # every check run this way takes a progress callback
        report = factory(progress=hook).run(target)
    emit(report, chosen, output, fail_on=threshold)
    raise typer.Exit(exit_for(report, threshold))
