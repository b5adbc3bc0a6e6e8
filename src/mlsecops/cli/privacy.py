"""``mlsecops assess privacy``: the membership-inference audit, output defences and inversion probes.

Thin: the options become a ``Target`` for the registered check ``assess.privacy``, which runs and is
rendered like every other. The command joins the ``assess`` group of ``mlsecops.cli.robustness``.
Exit 1 when a finding is at or above ``--fail-on``; exit 2 with one line for a bad model, data file or
option (overlapping sets, too few rows, outputs that are not probabilities).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlsecops.cli._check_cmd import (
    LabelOpt,
    ModelOpt,
    OutputKindOpt,
    SeedOpt,
    TimeoutOpt,
    check_options,
    run_check,
)
from mlsecops.cli._common import DEFAULT_FAIL_ON, FailOnOpt, FormatOpt, OutputOpt, QuietOpt
from mlsecops.cli.robustness import add_groups, assess_app
from mlsecops.core.checks import Target

__all__ = ["register"]


@assess_app.command("privacy")
def privacy(
    model: ModelOpt,
    members: Annotated[
        Path,
        typer.Option(
            help="Records the model was trained on: .npz with X and y, or CSV/Parquet with --label."
        ),
    ],
    non_members: Annotated[
        Path, typer.Option("--non-members", help="Records from the same distribution it was not trained on.")
    ],
    reference_data: Annotated[
        Path | None,
        typer.Option("--reference-data", help="Pool of other records the reference models train on."),
    ] = None,
    label: LabelOpt = None,
    attacks: Annotated[
        str | None,
        typer.Option(
            help="loss, confidence, calibrated, lira_offline, lira_online, rmia, label_only (comma-separated); "
            "default: every one that applies."
        ),
    ] = None,
    references: Annotated[
        int, typer.Option(min=2, help="Reference models to train (K); the cost of the strong attacks.")
    ] = 8,
    executor: Annotated[
        str, typer.Option(help="Where reference models train: process (local pool), inline, or ray.")
    ] = "process",
    workers: Annotated[int | None, typer.Option(min=1, help="Worker processes [default: CPU count].")] = None,
    address: Annotated[
        str | None,
        typer.Option(
            help="With --executor ray: the cluster's head HOST:PORT [default: RAY_ADDRESS, else local]."
        ),
    ] = None,
    defences: Annotated[
        bool, typer.Option("--defences/--no-defences", help="Evaluate output defences against the audit.")
    ] = True,
    sensitive: Annotated[
        str | None,
        typer.Option(help="A feature to probe attribute inference on (column name; f<i> for .npz)."),
    ] = None,
    reconstruct: Annotated[
        bool | None,
        typer.Option(
            "--reconstruct/--no-reconstruct", help="Class reconstruction [default: for image data]."
        ),
    ] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Epochs of PyTorch reference models.")] = None,
    lr: Annotated[
        float | None, typer.Option(min=0.0, help="Adam learning rate of PyTorch references.")
    ] = None,
    model_output: OutputKindOpt = None,
    timeout: TimeoutOpt = 10.0,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    fail_on: FailOnOpt = DEFAULT_FAIL_ON,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Membership inference (TPR at low FPR), output defences and inversion probes on one model."""
    options = check_options(
        model=model,
        members=str(members),
        non_members=str(non_members),
        reference_data=str(reference_data) if reference_data else None,
        label=label,
        attacks=attacks,
        references=references,
        executor=executor,
        workers=workers,
        address=address,
        defences=defences,
        sensitive=sensitive,
        reconstruct=reconstruct,
        epochs=epochs,
        lr=lr,
        output=model_output,
        timeout=timeout,
    )
    run_check("assess.privacy", Target(options=options, seed=seed), fmt, output, fail_on, quiet=quiet)


def register(app: typer.Typer) -> None:
    """Add the groups holding these commands (``cli.robustness.add_groups``: whichever module comes first)."""
    add_groups(app, "assess")
