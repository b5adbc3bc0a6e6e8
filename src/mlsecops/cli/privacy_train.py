"""``mlsecops harden dp-train`` and ``mlsecops assess encrypted``: the privacy controls of the CLI.

Thin: ``dp-train`` turns its options into a ``Target`` for the registered ``harden.dp_training`` check,
renders its report, and with ``--register NAME`` registers the new model (its lineage, with the privacy
facts, comes along); ``assess encrypted`` calls ``mlsecops.assess.encrypted.evaluate_encrypted``.
Exit 1 when a finding is at or above ``--fail-on`` (a measured leak that contradicts epsilon is high);
exit 2 with one line for a bad model, data file or option, or a model that cannot be made private.
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
    QuietOpt,
    console,
    emit,
    exit_for,
    parse_fail_on,
    progress_hook,
    resolve_format,
    safe,
)
from mlsecops.cli.robustness import DataOpt, LabelOpt, ModelOpt, SeedOpt, add_groups, assess_app, harden_app
from mlsecops.core.checks import Target, get_check
from mlsecops.core.severity import Severity

__all__ = ["register"]


@harden_app.command("dp-train")
def dp_train(
    model: ModelOpt,
    data: DataOpt,
    epsilon: Annotated[float, typer.Option(min=0.0, help="Target epsilon; the noise is solved for it.")],
    label: LabelOpt = None,
    delta: Annotated[float, typer.Option(help="Target delta (below 1/rows).")] = 1e-5,
    epochs: Annotated[int | None, typer.Option(min=1, help="Passes over the data [default: 60].")] = None,
    clip: Annotated[float | None, typer.Option(help="Per-sample gradient clip norm [default: 1.0].")] = None,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="Expected Poisson batch size [default: 256].")
    ] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate [default: 0.01, Adam].")] = None,
    optimizer: Annotated[str, typer.Option(help="adam or sgd.")] = "adam",
    accountant: Annotated[str, typer.Option(help="prv, rdp or gdp (Opacus accountants).")] = "prv",
    lower: Annotated[
        float | None,
        typer.Option(help="Public lower bound of the features (with --upper: scale to [-1, 1])."),
    ] = None,
    upper: Annotated[float | None, typer.Option(help="Public upper bound of the features.")] = None,
    weights: Annotated[Path | None, typer.Option(help="State-dict file for a python:mod:attr model.")] = None,
    test_data: Annotated[
        Path | None,
        typer.Option(
            "--test-data", help="Evaluation set (default: a held-out 20% of DATA, which then does not train)."
        ),
    ] = None,
    out_model: Annotated[
        Path | None,
        typer.Option(
            "--out-model", help="Where to write the private model (.pt2) [default: <model>.dp.pt2]."
        ),
    ] = None,
    register_as: Annotated[
        str | None,
        typer.Option(
            "--register",
            help="Register the private model under this name (needs a workspace and MLSECOPS_API_KEY).",
        ),
    ] = None,
    leakage: Annotated[
        bool,
        typer.Option("--leakage-check/--no-leakage-check", help="Test measured leakage against epsilon."),
    ] = True,
    fine_tune: Annotated[
        bool,
        typer.Option(
            "--fine-tune",
            help="Start from the model's weights (only if they are public: the guarantee covers DATA "
            "only); by default every weight is drawn afresh.",
        ),
    ] = False,
    public_data: Annotated[
        Path | None,
        typer.Option(
            "--public-data",
            help="Public rows (same format and --label as DATA, none of them in DATA) to pre-train on "
            "without noise first: no privacy cost only if they are truly public; recorded in the lineage.",
        ),
    ] = None,
    public_epochs: Annotated[
        int | None, typer.Option(min=1, help="Passes over --public-data [default: 30].")
    ] = None,
    dp_layers: Annotated[
        int | None,
        typer.Option(
            min=1, help="Train only the last N layers privately; the others keep their (pre-trained) weights."
        ),
    ] = None,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    fail_on: FailOnOpt = DEFAULT_FAIL_ON,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Train a PyTorch model with differential privacy (DP-SGD, Opacus) into a new .pt2 file."""
    from mlsecops.cli._common import settings

    given: dict[str, Any] = {
        "model": model,
        "data": str(data),
        "label": label,
        "epsilon": epsilon,
        "delta": delta,
        "epochs": epochs,
        "clip": clip,
        "batch_size": batch_size,
        "lr": lr,
        "optimizer": optimizer,
        "accountant": accountant,
        "lower": lower,
        "upper": upper,
        "weights": str(weights) if weights else None,
        "test_data": str(test_data) if test_data else None,
        "output": str(out_model) if out_model else None,
        "leakage_check": leakage,
        "fine_tune": fine_tune,
        "public_data": str(public_data) if public_data else None,
        "public_epochs": public_epochs,
        "dp_layers": dp_layers,
    }
    options = {k: v for k, v in given.items() if v is not None}
    cfg = settings()
    home = cfg.home if cfg.workspace_exists() else None
    db = cfg.database_url.get_secret_value() if cfg.database_url is not None else None
    if register_as is not None and home is None:
        raise typer.BadParameter("--register needs a workspace (mlsecops init)", param_hint="--register")
    threshold = parse_fail_on(fail_on)
    chosen = resolve_format(fmt, output)
    target = Target(options=options, seed=seed, home=home, database_url=db, actor=cfg.actor)
    with progress_hook("harden.dp_training", quiet=quiet) as hook:
        factory: Any = get_check("harden.dp_training").factory
        report = factory(progress=hook).run(target)
    emit(report, chosen, output)
    code = exit_for(report, threshold)
    if register_as is not None:
        if any(f.severity >= Severity.HIGH for f in report.findings):
            console.print("[bold red]not registered[/]: the measured leakage contradicts the claimed epsilon")
            raise typer.Exit(max(code, 1))
        from mlsecops.cli._registry_common import registry_session

        trained_on = [str(data), *([report.data["lineage"]] if report.data.get("lineage") else [])]
        with registry_session() as reg:
            info = reg.register(register_as, Path(report.data["output"]), trained_on=trained_on)
        console.print(
            f"registered [bold]{safe(register_as)}@{info.version}[/] "
            f"(epsilon {report.metrics['dp_epsilon']:.3g}, delta {report.metrics['dp_delta']:g} in its lineage)"
        )
    raise typer.Exit(code)


@assess_app.command("encrypted")
def encrypted(
    model: ModelOpt,
    data: DataOpt,
    label: LabelOpt = None,
    max_rows: Annotated[int, typer.Option(min=1, help="Evaluate on at most this many rows.")] = 200,
    poly_modulus_degree: Annotated[
        int, typer.Option(help="CKKS ring dimension: 8192 (default) or 16384.")
    ] = 8192,
    seed: SeedOpt = 0,
    fail_on: FailOnOpt = DEFAULT_FAIL_ON,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Encrypted inference (CKKS) of a linear or logistic model: accuracy against plaintext, latency."""
    from mlsecops.assess.encrypted import evaluate_encrypted

    threshold = parse_fail_on(fail_on)
    chosen = resolve_format(fmt, output)
    report = evaluate_encrypted(
        model, data, label=label, max_rows=max_rows, poly_modulus_degree=poly_modulus_degree, seed=seed
    )
    emit(report, chosen, output)
    raise typer.Exit(exit_for(report, threshold))


def register(app: typer.Typer) -> None:
    """Add the groups holding these commands (``cli.robustness.add_groups``: whichever module comes first)."""
    add_groups(app, "assess", "harden")
