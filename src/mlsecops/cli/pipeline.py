"""``mlsecops run PIPELINE.yaml`` and ``mlsecops demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mlsecops.cli._common import (
    EXIT_FAIL,
    EXIT_OK,
    FormatOpt,
    Listing,
    OutputOpt,
    QuietOpt,
    cell,
    console,
    emit,
    emit_listing,
    err_console,
    open_workspace,
    progress_hook,
    resolve_format,
    safe,
    settings,
    short_time,
)
from mlsecops.pipeline import RunResult, list_runs, load_pipeline, run_pipeline, run_report
from mlsecops.report import Format
from mlsecops.store import Workspace

__all__ = ["register"]


def _show(result: RunResult) -> None:
    stages = Table(title=f"pipeline {safe(result.pipeline.name)}")
    for col in ("stage", "check", "verdict", "worst finding", "findings"):
        stages.add_column(col)
    for r in result.stages:
        top = r.report.max_severity
        stages.add_row(
            cell(r.stage.name),
            cell(r.stage.check.name),
            cell(r.report.verdict or "-"),
            str(top) if top is not None else "none",
            str(len(r.report.findings)),
        )
    console.print(stages)
    gate = Table(title="policy gate")
    for col in ("rule", "result", "observed"):
        gate.add_column(col, overflow="fold")
    for rule in result.gate.results:
        mark = "[green]PASS[/]" if rule.passed else "[bold red]FAIL[/]"
        gate.add_row(cell(rule.rule), mark, cell(rule.observed))
    if not result.gate.results:
        gate.add_row("(no rules)", "[green]PASS[/]", "")
    console.print(gate)
    verdict = "[bold green]PASSED[/]" if result.passed else "[bold red]FAILED[/]"
    console.print(f"gate {verdict}  (run {result.run_id})")


def _run(
    pipeline_file: Path,
    policy: Path | None,
    fmt: Format | None,
    output: Path | None,
    ws: Workspace,
    *,
    quiet: bool = False,
) -> int:
    fmt = resolve_format(fmt, output)
    pipeline = load_pipeline(pipeline_file, policy_path=policy)
    quiet = quiet or (fmt is not Format.TEXT and output is None)
    with progress_hook(f"pipeline {pipeline.name}", quiet=quiet) as hook:
        result = run_pipeline(pipeline, workspace=ws, actor=settings().actor, progress=hook)
    if fmt is Format.TEXT and output is None:
        _show(result)
    else:
        emit(result.report, fmt, output)
    if result.report_dir is not None:
        err_console.print(
            f"HTML report: {safe(result.report_dir / 'report.html')}", highlight=False, soft_wrap=True
        )
    return EXIT_OK if result.passed else EXIT_FAIL


def run(
    pipeline_file: Annotated[Path, typer.Argument(metavar="PIPELINE.yaml", help="The pipeline file.")],
    policy: Annotated[
        Path | None, typer.Option(help="A policy file that replaces the pipeline's policy.")
    ] = None,
    quiet: QuietOpt = False,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Run the pipeline's stages in order, gate them on the policy, record everything; exit 1 when
    the gate fails.
    """
    with open_workspace() as ws:
        code = _run(pipeline_file, policy, fmt, output, ws, quiet=quiet)
    raise typer.Exit(code)


DEMO_CASES = ("digits", "av", "ecommerce", "healthcare", "all")
"""``mlsecops demo --case`` choices; ``all`` plays av, ecommerce, healthcare and the last act."""


def demo(
    folder: Annotated[Path, typer.Option("--dir", help="Where to build the demo project.")] = Path(
        "out/demo"
    ),
    build_only: Annotated[
        bool,
        typer.Option(
            "--build-only",
            help="Build the project only; run it later with `mlsecops run` (digits and healthcare).",
        ),
    ] = False,
    case: Annotated[
        str,
        typer.Option(
            "--case",
            help="digits (the secure lifecycle), av (autonomous driving: patches, PGD, a live query attack), "
            "ecommerce (a rating campaign quarantined, a model thief blocked), healthcare (fairness gate, "
            "mitigation, DP), or all (the three cases, then an alert rolls production back; one workspace).",
        ),
    ] = "digits",
) -> None:
    """Build a demo project on bundled data (models, data, pipeline) and run the main job on it."""
    if case not in DEMO_CASES:
        err_console.print(
            f"error: --case must be one of {', '.join(DEMO_CASES)}; got {safe(case)}", highlight=False
        )
        raise typer.Exit(2)
    if build_only and case not in ("digits", "healthcare"):
        err_console.print(
            f"error: --build-only applies to digits and healthcare, not {case}", highlight=False
        )
        raise typer.Exit(2)
    if case == "healthcare":
        raise typer.Exit(_healthcare_demo(folder, build_only=build_only))
    if case != "digits":
        raise typer.Exit(_case_demo(folder, case))
    from mlsecops.pipeline.demo import build_demo  # numpy, scikit-learn and torch load only here

    pipeline_file = build_demo(folder)
    if build_only:
        console.print(
            f"demo project built in [bold]{safe(folder)}[/]; run it with: mlsecops run {safe(pipeline_file)}"
        )
        raise typer.Exit(0)
    console.print(f"demo project built in [bold]{safe(folder)}[/]; running {safe(pipeline_file.name)}")
    with Workspace.init(folder / ".mlsecops", actor=settings().actor) as ws:
        code = _run(pipeline_file, None, Format.TEXT, None, ws)
    raise typer.Exit(code)


def _say(text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def _case_demo(folder: Path, case: str) -> int:
    """Play ``case`` (or ``all`` of them) in ``folder/<case>`` on the workspace ``folder/.mlsecops``."""
    import time

    home = (folder / ".mlsecops").resolve()
    actor = settings().actor
    home.mkdir(parents=True, exist_ok=True)
    plan = ("av", "ecommerce", "healthcare", "finale") if case == "all" else (case,)
    titles = {
        "av": "autonomous driving: a sign classifier under patch and PGD attacks, hardened; a live query attack",
        "ecommerce": "e-commerce: a 537-account rating campaign and a model thief",
        "healthcare": "healthcare: the fairness gate blocks a biased screening model; mitigation; DP training",
        "finale": "the last act: an alert, the playbook, an automatic rollback, the trail verified",
    }
    codes: dict[str, int] = {}
    started = time.monotonic()
    for k, name in enumerate(plan, start=1):
        console.print(f"\n[bold]== case {k}/{len(plan)}, {titles[name]}[/]", highlight=False)
        t0 = time.monotonic()
        codes[name] = _play(name, folder.resolve() / name, home, actor)
        console.print(f"[dim]{name}: exit {codes[name]} in {time.monotonic() - t0:.0f} s[/]", highlight=False)
    if case == "all":
        console.print(
            f"\nall cases played in {time.monotonic() - started:.0f} s: "
            + ", ".join(f"{n} {'ok' if c == 0 else 'NOT AS EXPECTED'}" for n, c in codes.items()),
            highlight=False,
        )
    return 0 if all(c == 0 for c in codes.values()) else EXIT_FAIL


def _play(name: str, folder: Path, home: Path, actor: str) -> int:
    if name == "av":
        from mlsecops.pipeline.case_av import run_av_case

        return run_av_case(folder, home=home, actor=actor, say=_say)
    if name == "ecommerce":
        from mlsecops.pipeline.case_ecommerce import run_ecommerce_case

        return run_ecommerce_case(folder, home=home, actor=actor, say=_say)
    if name == "healthcare":
        return _healthcare_demo(folder, build_only=False, home=home)
    from mlsecops.pipeline.case_finale import run_finale

    return run_finale(folder, home=home, actor=actor, say=_say)


def _healthcare_demo(folder: Path, *, build_only: bool, home: Path | None = None) -> int:
    """The healthcare case: gate blocks, ``harden fairness`` mitigates, gate passes; DP training and audit."""
    from mlsecops.pipeline.healthcare import build_healthcare_case, mitigate_healthcare_case

    blocked = build_healthcare_case(folder)
    if build_only:
        console.print(
            f"healthcare case built in [bold]{safe(folder)}[/]; run it with: mlsecops run {safe(blocked)}"
        )
        return EXIT_OK
    home = home or folder / ".mlsecops"
    console.print("[bold]1/4[/] the screening model trained on biased records, through the fairness gate")
    with Workspace.init(home, actor=settings().actor) as ws:
        if _run(blocked, None, Format.TEXT, None, ws) != EXIT_FAIL:
            err_console.print("the gate did not block the biased model: the case did not show what it should")
            return EXIT_FAIL
    console.print("[bold]2/4[/] blocked as expected; mitigating (harden fairness, equal true-positive rates)")
    m = mitigate_healthcare_case(folder, home=home, actor=settings().actor).metrics
    console.print(
        f"equal opportunity difference {m['equal_opportunity_difference_before']:.3f} -> "
        f"{m['equal_opportunity_difference_after']:.3f}, accuracy {m['accuracy_before']:.3f} -> "
        f"{m['accuracy_after']:.3f}"
    )
    console.print("[bold]3/4[/] the mitigated model through the same gate")
    with Workspace.init(home, actor=settings().actor) as ws:
        code = _run(folder / "pipeline.yaml", None, Format.TEXT, None, ws)
    if code != EXIT_OK:
        return code
    return _healthcare_privacy(folder, home)


def _healthcare_privacy(folder: Path, home: Path) -> int:
    """Step 4: DP training of the neural screening model and the membership audit before and after."""
    from mlsecops.pipeline.healthcare import PRIVACY_EPSILON, private_healthcare_case

    console.print(
        f"[bold]4/4[/] privacy: the neural screening model trained plainly and with DP-SGD "
        f"(harden dp-train, epsilon {PRIVACY_EPSILON:g}), each audited for membership inference "
        "(loss attack, LiRA with reference models)"
    )
    s = private_healthcare_case(folder, home=home, actor=settings().actor)
    console.print(
        f"DP-SGD spent epsilon {s['epsilon_spent']:.2f} (target {s['epsilon_target']:g}, delta "
        f"{s['delta']:g}, noise multiplier {s['noise_multiplier']:.2f}); lineage {safe(str(s['lineage']))}",
        highlight=False,
    )
    plain, dp = s["models"]["non-private"], s["models"]["dp"]
    for label, key in (
        ("membership AUC", "membership_auc"),
        ("membership advantage", "membership_advantage"),
        ("TPR at 1% FPR", "membership_tpr@0.01"),
        ("test accuracy", "test_accuracy"),
    ):
        console.print(f"  {label:<22} non-private {plain[key]:.3f} -> DP {dp[key]:.3f}", highlight=False)
    console.print(f"privacy reports in [bold]{safe(folder / 'privacy')}[/]")
    return EXIT_OK


runs_app = typer.Typer(help="Recorded pipeline runs and their reports.", no_args_is_help=True)


@runs_app.command("list")
def runs_list(
    pipeline: Annotated[str | None, typer.Option(help="Only runs of this pipeline.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many runs.")] = 50,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """List recorded runs, newest first."""
    fmt = resolve_format(fmt, output)
    with open_workspace() as ws:
        runs = list_runs(ws, pipeline=pipeline, limit=limit)
    rows = [
        {
            "run": r.id,
            "pipeline": r.pipeline,
            "finished": r.finished,
            "actor": r.actor,
            "passed": r.passed,
            "failed_rules": list(r.failed_rules),
        }
        for r in runs
    ]
    listing = Listing(
        kind="pipeline.runs",
        subject=pipeline or "all pipelines",
        title=f"{len(runs)} run(s)",
        key="runs",
        rows=rows,
        document=rows,
    )

    def text() -> Table:
        table = Table(title=f"{len(runs)} run(s)")
        for col in ("run", "pipeline", "finished (UTC)", "actor", "gate", "failed rules"):
            table.add_column(col, overflow="fold", no_wrap=col in ("run", "gate"))
        for r in runs:
            gate = "[green]PASS[/]" if r.passed else "[bold red]FAIL[/]"
            table.add_row(
                str(r.id),
                cell(r.pipeline),
                short_time(r.finished),
                cell(r.actor),
                gate,
                cell("; ".join(r.failed_rules)),
            )
        return table

    emit_listing(listing, fmt, output, text=text)


@runs_app.command("show")
def runs_show(
    run_id: Annotated[int, typer.Argument(help="The run number (`mlsecops runs list`).")],
    stage: Annotated[
        str | None, typer.Option(help="Show this stage's report instead of the combined one.")
    ] = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Render a recorded run's report in any format."""
    with open_workspace() as ws:
        report = run_report(ws, run_id, stage=stage)
    emit(report, fmt, output)


def register(app: typer.Typer) -> None:
    """Add ``run``, ``demo`` and ``runs`` to the app."""
    app.command("run")(run)
    app.command("demo")(demo)
    app.add_typer(runs_app, name="runs")
