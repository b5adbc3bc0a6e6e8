"""``mlsecops assess explain`` and ``mlsecops assess explain-integrity``.

Thin: each command turns its options into a ``Target`` for the registered check (``assess.explain``,
``assess.explain_integrity``), runs it and renders the report. The commands join the ``assess`` group
of ``mlsecops.cli.robustness``. Exit 1 when a finding is at or above ``--fail-on``; exit 2 with one line
for a bad model, data file or option.
"""

from __future__ import annotations

from typing import Annotated

import typer

from mlsecops.cli._check_cmd import DataOpt, LabelOpt, ModelOpt, SeedOpt, check_options, int_list, run_check
from mlsecops.cli._common import DEFAULT_FAIL_ON, FailOnOpt, FormatOpt, OutputOpt, QuietOpt
from mlsecops.cli.robustness import add_groups, assess_app
from mlsecops.core.checks import Target

__all__ = ["register"]

SensitiveOpt = Annotated[
    str | None,
    typer.Option(
        help="Sensitive column of the data file (a model input, or a column the model does not take)."
    ),
]


@assess_app.command("explain")
def explain(
    model: ModelOpt,
    data: DataOpt,
    label: LabelOpt = None,
    rows: Annotated[
        str | None, typer.Option(help="Rows to explain locally (0-based), comma-separated.")
    ] = None,
    sensitive: SensitiveOpt = None,
    method: Annotated[str, typer.Option(help="auto (SHAP if installed), permutation or shap.")] = "auto",
    max_rows: Annotated[int, typer.Option(min=10, help="Rows the global explanation uses.")] = 1000,
    background: Annotated[
        int, typer.Option(min=1, help="Background sample for SHAP and local explanations.")
    ] = 100,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    fail_on: FailOnOpt = DEFAULT_FAIL_ON,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Which features drive the model: global ranking, local explanations, rankings per group."""
    options = check_options(
        model=model,
        data=str(data),
        method=method,
        max_rows=max_rows,
        background=background,
        label=label,
        rows=int_list(rows, "--rows", "row numbers"),
        sensitive=sensitive,
    )
    target = Target(options=options, seed=seed)
    run_check("assess.explain", target, fmt, output, fail_on, quiet=quiet)


@assess_app.command("explain-integrity")
def explain_integrity(
    model: ModelOpt,
    data: DataOpt,
    sensitive: Annotated[str, typer.Option(help="Sensitive column(s), comma-separated (model inputs).")],
    label: LabelOpt = None,
    proxies: Annotated[
        str | None, typer.Option(help="Proxy columns to watch as well (default: found from the data).")
    ] = None,
    max_rows: Annotated[int, typer.Option(min=50, help="Rows the comparison uses.")] = 1000,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    fail_on: FailOnOpt = DEFAULT_FAIL_ON,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Whether the model hides its use of a sensitive feature from perturbation-based explainers."""
    options = check_options(
        model=model, data=str(data), sensitive=sensitive, max_rows=max_rows, label=label, proxies=proxies
    )
    target = Target(options=options, seed=seed)
    run_check("assess.explain_integrity", target, fmt, output, fail_on, quiet=quiet)


def register(app: typer.Typer) -> None:
    """Add the groups holding these commands (``cli.robustness.add_groups``: whichever module comes first)."""
    add_groups(app, "assess")
