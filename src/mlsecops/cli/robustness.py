"""``mlsecops assess robustness``, ``mlsecops harden adversarial-training`` and ``mlsecops certify``.

Thin: each command turns its options into a ``Target`` for the registered check (``assess.robustness``,
``harden.adversarial_training``, ``assess.certify``), runs it and renders the report. Exit 1 when a
finding is at or above ``--fail-on``; exit 2 with one line for a bad model, data file or option.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlsecops.cli._check_cmd import (
    DataOpt,
    LabelOpt,
    ModelOpt,
    OutputKindOpt,
    SeedOpt,
    ShardRowsOpt,
    TimeoutOpt,
    check_options,
    int_list,
    run_check,
    workspace_target,
)
from mlsecops.cli._common import DEFAULT_FAIL_ON, FailOnOpt, FormatOpt, OutputOpt, QuietOpt
from mlsecops.cli._executor_opts import AddressOpt, ExecutorOpt, WorkersOpt
from mlsecops.core.checks import Target

__all__ = ["DataOpt", "LabelOpt", "ModelOpt", "SeedOpt", "add_groups", "assess_app", "harden_app", "register"]

assess_app = typer.Typer(help="Assess a model: robustness under evasion attacks.", no_args_is_help=True)
harden_app = typer.Typer(help="Harden a model: adversarial training.", no_args_is_help=True)


@assess_app.command("robustness")
def robustness(
    model: ModelOpt,
    data: DataOpt,
    attack: Annotated[
        str | None,
        typer.Option(
            help="fgsm, pgd, apgd, square, hopskipjump (comma-separated); default pgd, or square for black-box models."
        ),
    ] = None,
    eps: Annotated[
        str | None, typer.Option(help="Budgets, comma-separated (default 0.05,0.1,0.2 for linf).")
    ] = None,
    norm: Annotated[str, typer.Option(help="linf or l2.")] = "linf",
    steps: Annotated[int | None, typer.Option(min=1, help="Iterations of iterative attacks.")] = None,
    restarts: Annotated[int | None, typer.Option(min=1, help="Random restarts (pgd, apgd).")] = None,
    max_queries: Annotated[
        int | None, typer.Option(min=1, help="Query budget per example (black-box).")
    ] = None,
    max_examples: Annotated[int, typer.Option(min=1, help="Evaluate on at most this many examples.")] = 1000,
    label: LabelOpt = None,
    lower: Annotated[float | None, typer.Option(help="Lower feature bound (default: data minimum).")] = None,
    upper: Annotated[float | None, typer.Option(help="Upper feature bound (default: data maximum).")] = None,
    integer_features: Annotated[
        str | None, typer.Option(help="Indices of integer features, comma-separated.")
    ] = None,
    immutable_features: Annotated[
        str | None, typer.Option(help="Indices of features an attacker cannot change.")
    ] = None,
    model_output: OutputKindOpt = None,
    timeout: TimeoutOpt = 10.0,
    executor: ExecutorOpt = None,
    workers: WorkersOpt = None,
    address: AddressOpt = None,
    shard_rows: ShardRowsOpt = None,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    fail_on: FailOnOpt = DEFAULT_FAIL_ON,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Accuracy under evasion attacks per budget, with a robustness curve and the worst examples."""
    options = check_options(
        model=model,
        data=str(data),
        attack=attack,
        eps=eps,
        norm=norm,
        steps=steps,
        restarts=restarts,
        max_queries=max_queries,
        max_examples=max_examples,
        label=label,
        lower=lower,
        upper=upper,
        integer_features=int_list(integer_features, "--integer-features", "feature indices"),
        immutable_features=int_list(immutable_features, "--immutable-features", "feature indices"),
        output=model_output,
        timeout=timeout,
        executor=executor,
        workers=workers,
        address=address,
        shard_rows=shard_rows,
    )
    run_check("assess.robustness", Target(options=options, seed=seed), fmt, output, fail_on, quiet=quiet)


@harden_app.command("adversarial-training")
def adversarial_training(
    model: ModelOpt,
    data: DataOpt,
    out_model: Annotated[
        Path | None,
        typer.Option(
            "--out-model",
            help="Where to write the hardened model (default <model>.hardened.pt2; .pt for TorchScript models).",
        ),
    ] = None,
    method: Annotated[str, typer.Option(help="pgd (Madry) or trades.")] = "pgd",
    eps: Annotated[float, typer.Option(min=0.0, help="Training budget.")] = 0.1,
    norm: Annotated[str, typer.Option(help="linf or l2.")] = "linf",
    epochs: Annotated[int, typer.Option(min=1)] = 10,
    steps: Annotated[int, typer.Option(min=1, help="PGD steps per batch.")] = 7,
    lr: Annotated[float, typer.Option(min=0.0, help="Adam learning rate.")] = 3e-3,
    batch_size: Annotated[int, typer.Option(min=1)] = 128,
    beta: Annotated[float, typer.Option(help="TRADES robustness weight.")] = 6.0,
    label: LabelOpt = None,
    weights: Annotated[Path | None, typer.Option(help="State-dict file for a python:mod:attr model.")] = None,
    test_data: Annotated[
        Path | None,
        typer.Option(
            "--test-data",
            help="Separate evaluation set (default: a held-out 20% of DATA, which then does not train).",
        ),
    ] = None,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    fail_on: FailOnOpt = DEFAULT_FAIL_ON,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Adversarially train a PyTorch model into a new file and report robustness before and after."""
    options = check_options(
        model=model,
        data=str(data),
        output=str(out_model) if out_model else None,
        method=method,
        eps=eps,
        norm=norm,
        epochs=epochs,
        steps=steps,
        lr=lr,
        batch_size=batch_size,
        beta=beta,
        label=label,
        weights=str(weights) if weights else None,
        test_data=str(test_data) if test_data else None,
    )
    run_check(
        "harden.adversarial_training", workspace_target(options, seed=seed), fmt, output, fail_on, quiet=quiet
    )


def certify(
    model: ModelOpt,
    data: DataOpt,
    sigma: Annotated[float, typer.Option(min=0.0, help="Gaussian noise standard deviation.")] = 0.25,
    n: Annotated[int, typer.Option("--n", min=1, help="Noise samples for the estimate.")] = 1000,
    n0: Annotated[int, typer.Option("--n0", min=1, help="Noise samples to choose the class.")] = 100,
    alpha: Annotated[float, typer.Option(help="Failure probability of the certificate.")] = 0.001,
    radii: Annotated[str, typer.Option(help="L2 radii to report, comma-separated.")] = "0.25,0.5",
    max_examples: Annotated[int, typer.Option(min=1)] = 500,
    label: LabelOpt = None,
    model_output: OutputKindOpt = None,
    executor: ExecutorOpt = None,
    workers: WorkersOpt = None,
    address: AddressOpt = None,
    shard_rows: ShardRowsOpt = None,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    fail_on: FailOnOpt = DEFAULT_FAIL_ON,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Certified L2 robustness by randomized smoothing: certified accuracy per radius, abstentions."""
    options = check_options(
        model=model,
        data=str(data),
        sigma=sigma,
        n=n,
        n0=n0,
        alpha=alpha,
        radii=radii,
        max_examples=max_examples,
        label=label,
        output=model_output,
        executor=executor,
        workers=workers,
        address=address,
        shard_rows=shard_rows,
    )
    run_check("assess.certify", Target(options=options, seed=seed), fmt, output, fail_on, quiet=quiet)


def add_groups(app: typer.Typer, *names: str) -> None:
    """Add the ``assess`` and/or ``harden`` groups to ``app`` unless a module already did.

    Several command modules put commands on these groups (robustness, privacy, fairness, explain);
    whichever registers first adds the group, and the group holds every module's commands.
    """
    groups = {"assess": assess_app, "harden": harden_app}
    present = {g.name for g in app.registered_groups}
    for name in names:
        if name not in present:
            app.add_typer(groups[name], name=name)


def register(app: typer.Typer) -> None:
    """Add ``assess``, ``harden`` and ``certify`` to the app."""
    add_groups(app, "assess", "harden")
    app.command("certify")(certify)
