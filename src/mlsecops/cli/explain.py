"""``mlsecops assess explain`` and ``mlsecops assess explain-integrity``.

Thin: each command turns its options into a ``Target`` for the registered check (``assess.explain``,
``assess.explain_integrity``), runs it and renders the report. The commands join the ``assess`` group
of ``mlsecops.cli.robustness``. Exit 1 when a finding is at or above ``--fail-on``; exit 2 with one line
for a bad model, data file or option.
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
    emit,
    exit_for,
    parse_fail_on,
    progress_hook,
    resolve_format,
)
from mlsecops.cli.robustness import DataOpt, LabelOpt, ModelOpt, SeedOpt, add_groups, assess_app
from mlsecops.core.checks import Target, get_check
from mlsecops.report import Format

__all__ = ["register"]

SensitiveOpt = Annotated[
    str | None,
    typer.Option(
        help="Sensitive column of the data file (a model input, or a column the model does not take)."
    ),
]


def _run(
    check: str, target: Target, fmt: Format | None, output: Path | None, fail_on: str, *, quiet: bool
) -> None:
    threshold = parse_fail_on(fail_on)
    chosen = resolve_format(fmt, output)
    with progress_hook(check, quiet=quiet) as hook:
        factory: Any = get_check(check).factory
        report = factory(progress=hook).run(target)
    emit(report, chosen, output)
    raise typer.Exit(exit_for(report, threshold))


def _rows(value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"expected comma-separated row numbers; got {value!r}", param_hint="--rows"
        ) from None


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
    options: dict[str, Any] = {
        "model": model,
        "data": str(data),
        "method": method,
        "max_rows": max_rows,
        "background": background,
    }
    for key, value in (("label", label), ("rows", _rows(rows)), ("sensitive", sensitive)):
        if value is not None:
            options[key] = value
    _run("assess.explain", Target(options=options, seed=seed), fmt, output, fail_on, quiet=quiet)


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
    options: dict[str, Any] = {
        "model": model,
        "data": str(data),
        "sensitive": sensitive,
        "max_rows": max_rows,
    }
    for key, value in (("label", label), ("proxies", proxies)):
        if value is not None:
            options[key] = value
    _run("assess.explain_integrity", Target(options=options, seed=seed), fmt, output, fail_on, quiet=quiet)


def register(app: typer.Typer) -> None:
    """Add the groups holding these commands (``cli.robustness.add_groups``: whichever module comes first)."""
    add_groups(app, "assess")
