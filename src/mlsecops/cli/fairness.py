"""``mlsecops assess fairness`` and ``mlsecops harden fairness``.

Thin: each command turns its options into a ``Target`` for the registered check (``assess.fairness``,
``harden.fairness``), runs it and renders the report. The commands join the ``assess`` and ``harden``
groups of ``mlsecops.cli.robustness``. Exit 1 when a finding is at or above ``--fail-on``; exit 2 with
one line for a bad model, data file or option.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mlsecops.cli._check_cmd import (
    DataOpt,
    LabelOpt,
    ModelOpt,
    OutputKindOpt,
    SeedOpt,
    check_options,
    run_check,
    workspace_target,
)
from mlsecops.cli._common import DEFAULT_FAIL_ON, FailOnOpt, FormatOpt, OutputOpt, QuietOpt
from mlsecops.cli.robustness import add_groups, assess_app, harden_app
from mlsecops.core.checks import Target

__all__ = ["register"]

SensitiveOpt = Annotated[
    str,
    typer.Option(
        "--sensitive", "-s", help="Sensitive column(s), comma-separated; several give intersectional groups."
    ),
]
FeaturesOpt = Annotated[
    str | None,
    typer.Option(
        help="The model's input columns, comma-separated [default: the names a scikit-learn model was "
        "fitted with, else every column but the label and the sensitive ones]."
    ),
]
MinGroupOpt = Annotated[
    int, typer.Option("--min-group-size", min=1, help="Smaller groups are reported as too small, not judged.")
]
BootstrapOpt = Annotated[
    int, typer.Option("--bootstrap", min=0, help="Bootstrap replicates for the intervals (0: none).")
]


@assess_app.command("fairness")
def fairness(
    model: ModelOpt,
    data: DataOpt,
    sensitive: SensitiveOpt,
    label: LabelOpt = None,
    features: FeaturesOpt = None,
    min_group_size: MinGroupOpt = 30,
    bootstrap: BootstrapOpt = 1000,
    confidence: Annotated[float, typer.Option(min=0.5, max=0.999, help="Interval level.")] = 0.95,
    calibration: Annotated[
        bool | None,
        typer.Option(
            "--calibration/--no-calibration",
            help="Calibration by group [default: when the model gives probabilities; --calibration "
            "refuses a model without].",
        ),
    ] = None,
    max_difference: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="A difference whose interval lies above this is a finding."),
    ] = 0.1,
    min_ratio: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="A ratio whose interval lies below this is a finding.")
    ] = 0.8,
    model_output: OutputKindOpt = None,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    fail_on: FailOnOpt = DEFAULT_FAIL_ON,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Group fairness of a binary classifier: rates per group, disparities with bootstrap intervals."""
    options = check_options(
        model=model,
        data=str(data),
        label=label,
        sensitive=sensitive,
        features=features,
        min_group_size=min_group_size,
        bootstrap=bootstrap,
        confidence=confidence,
        calibration=None if calibration is None else str(calibration).lower(),
        max_difference=max_difference,
        min_ratio=min_ratio,
        output=model_output,
    )
    run_check("assess.fairness", Target(options=options, seed=seed), fmt, output, fail_on, quiet=quiet)


@harden_app.command("fairness")
def harden_fairness(
    model: ModelOpt,
    data: Annotated[Path, typer.Option("--data", "-d", help="Training data: CSV/Parquet with --label.")],
    sensitive: SensitiveOpt,
    label: LabelOpt = None,
    method: Annotated[
        str,
        typer.Option(
            help="threshold (post-processing, fairlearn ThresholdOptimizer) or reductions (retraining, "
            "fairlearn ExponentiatedGradient; scikit-learn models)."
        ),
    ] = "threshold",
    constraint: Annotated[
        str,
        typer.Option(
            help="demographic_parity, equalized_odds, true_positive_rate_parity, false_positive_rate_parity; "
            "threshold also true_negative_rate_parity, false_negative_rate_parity; reductions also "
            "error_rate_parity."
        ),
    ] = "demographic_parity",
    out_model: Annotated[
        Path | None,
        typer.Option(
            "--out-model",
            help="Where to write the mitigated model, a .fair.json manifest [default: <model>.fair.json].",
        ),
    ] = None,
    test_data: Annotated[
        Path | None,
        typer.Option(
            "--test-data", help="Evaluation set for the before/after audit [default: 30% of DATA held out]."
        ),
    ] = None,
    features: FeaturesOpt = None,
    min_group_size: MinGroupOpt = 30,
    bootstrap: BootstrapOpt = 200,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    fail_on: FailOnOpt = DEFAULT_FAIL_ON,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Mitigate group unfairness into a new model; report the audit before and after and the utility cost."""
    options: dict[str, Any] = check_options(
        model=model,
        data=str(data),
        label=label,
        sensitive=sensitive,
        method=method,
        constraint=constraint,
        output=str(out_model) if out_model else None,
        test_data=str(test_data) if test_data else None,
        features=features,
        min_group_size=min_group_size,
        bootstrap=bootstrap,
    )
    run_check("harden.fairness", workspace_target(options, seed=seed), fmt, output, fail_on, quiet=quiet)


def register(app: typer.Typer) -> None:
    """Add the groups holding these commands (``cli.robustness.add_groups``: whichever module comes first)."""
    add_groups(app, "assess", "harden")
