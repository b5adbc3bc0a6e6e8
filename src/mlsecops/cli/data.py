"""``mlsecops data profile | check | poison | register``: thin wrappers over ``mlsecops.data``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import JsonValue
from rich.table import Table

from mlsecops.cli._common import (
    DEFAULT_FAIL_ON,
    FailOnOpt,
    FormatOpt,
    Listing,
    OutputOpt,
    QuietOpt,
    cell,
    console,
    emit,
    emit_listing,
    err_console,
    exit_for,
    parse_fail_on,
    progress_hook,
    resolve_format,
    safe,
    settings,
)
from mlsecops.cli._executor_opts import AddressOpt, ExecutorOpt, WorkersOpt
from mlsecops.core.checks import Target
from mlsecops.core.errors import InputError
from mlsecops.report import Format

__all__ = ["register"]

data_app = typer.Typer(
    help="Validate data against a baseline, detect poisoning, quarantine, register manifests.",
    no_args_is_help=True,
)

LabelOpt = Annotated[str | None, typer.Option("--label", "-l", help="Label column (CSV/Parquet).")]
SensitiveOpt = Annotated[
    str | None,
    typer.Option(
        "--sensitive",
        help="Sensitive column(s), comma-separated: adds group representation, label rates, missingness "
        "by group and proxy features.",
    ),
]


def _workspace_target(paths: tuple[Path, ...], options: dict[str, JsonValue], *, need: bool) -> Target:
    cfg = settings()
    has_ws = cfg.workspace_exists()
    if need and not has_ws:
        raise InputError(f"no mlsecops workspace at {cfg.home}; create one with `mlsecops init`")
    url = cfg.database_url.get_secret_value() if cfg.database_url is not None else None
    return Target(
        paths=paths, options=options, home=cfg.home if has_ws else None, database_url=url, actor=cfg.actor
    )


@data_app.command("profile")
def profile(
    data: Annotated[Path, typer.Argument(help="Trusted data: CSV, Parquet, .npy or .npz.")],
    label: LabelOpt = None,
    sensitive: SensitiveOpt = None,
    chunk_rows: Annotated[int, typer.Option(min=1000, help="Rows per chunk (memory bound).")] = 200_000,
    fmt: FormatOpt = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write the profile here: the baseline JSON for `data check`, unless --format or the"
            " suffix (.txt, .html, .sarif) asks for another form.",
        ),
    ] = None,
) -> None:
    """Learn a baseline profile (schema, ranges, quantiles, categories, missingness, labels, duplicates).

    The JSON form (the default) is the baseline `data check --baseline` reads.
    """
    from mlsecops.data import iter_chunks, profile_chunks

    chosen = resolve_format(fmt, output, default=Format.JSON)
    sens = [c.strip() for c in sensitive.split(",") if c.strip()] if sensitive else None
    prof = profile_chunks(iter_chunks(data, chunk_rows=chunk_rows), label=label, sensitive=sens)
    rows = [
        {
            "column": c.name,
            "type": c.type,
            "count": c.count,
            "nulls": c.nulls,
            "min": c.min,
            "max": c.max,
            "mean": None if c.mean is None else round(c.mean, 6),
            "categories": len(c.categories) or None,
        }
        for c in prof.columns.values()
    ]
    listing = Listing(
        kind="data.profile",
        subject=str(data),
        title=f"{prof.rows} rows x {len(prof.columns)} columns"
        + (f", label {prof.label}" if prof.label else ""),
        key="columns",
        rows=rows,
        document=prof.model_dump(mode="json"),
        no_wrap=("count", "nulls"),
    )
    emit_listing(listing, chosen, output)
    if output is not None and chosen is Format.JSON:
        err_console.print(f"profiled {prof.rows} rows x {len(prof.columns)} columns (the baseline)")


@data_app.command("check")
def check(
    data: Annotated[list[Path], typer.Argument(help="Data files to validate.")],
    baseline: Annotated[
        Path, typer.Option("--baseline", "-b", help="Baseline profile JSON, or trusted data to profile.")
    ],
    label: LabelOpt = None,
    sensitive: SensitiveOpt = None,
    reference_groups: Annotated[
        str | None,
        typer.Option(
            help="Expected group shares, e.g. 'sex=Female:0.5,Male:0.5;race=...' [default: the baseline's]."
        ),
    ] = None,
    dataset: Annotated[
        str | None, typer.Option(help="Registered data set the files must match (see `data register`).")
    ] = None,
    chunk_rows: Annotated[int, typer.Option(min=1000, help="Rows per chunk (memory bound).")] = 200_000,
    fail_on: FailOnOpt = DEFAULT_FAIL_ON,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Report schema, range, category, missingness, drift and label-shift violations against a baseline."""
    from mlsecops.data.checks import DataValidationCheck

    threshold = parse_fail_on(fail_on)
    fmt = resolve_format(fmt, output)
    options: dict[str, JsonValue] = {"baseline": str(baseline), "chunk_rows": chunk_rows}
    if label:
        options["label"] = label
    if dataset:
        options["dataset"] = dataset
    if sensitive:
        options["sensitive"] = sensitive
    if reference_groups:
        options["reference_groups"] = reference_groups
    target = _workspace_target(tuple(data), options, need=dataset is not None)
    report = DataValidationCheck().run(target)
    emit(report, fmt, output)
    raise typer.Exit(exit_for(report, threshold))


@data_app.command("poison")
def poison(
    data: Annotated[
        Path, typer.Argument(help="CSV/Parquet (features + label, or user,item,rating,time) or .npz.")
    ],
    label: LabelOpt = None,
    kind: Annotated[
        str | None, typer.Option(help="'rows' or 'ratings' (default: ratings for user,item,rating,time).")
    ] = None,
    detectors: Annotated[
        str | None, typer.Option(help="Comma-separated: labels,backdoor,outliers,duplicates (default all).")
    ] = None,
    quarantine: Annotated[
        Path | None, typer.Option(help="Write clean and suspect rows to separate files in this folder.")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="Model trained on the data (.pt2, TorchScript .pt, .pkl/.joblib/.skops, all via the scanner;"
            " python:module:attr, URL): its features drive backdoor detection, its probabilities flag labels."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    max_rows: Annotated[
        int | None,
        typer.Option(
            help="Refuse larger files (default 20,000,000 rows or ratings). Row data over 200,000 rows"
            " is streamed: detectors fit on a 50,000-row uniform sample (labels and backdoor on 20,000"
            " of its rows), every row scored in chunks.",
            min=1,
        ),
    ] = None,
    executor: ExecutorOpt = None,
    workers: WorkersOpt = None,
    address: AddressOpt = None,
    quiet: QuietOpt = False,
    fail_on: FailOnOpt = DEFAULT_FAIL_ON,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Flag rows (label flips, backdoor triggers, outliers, near-duplicates) or coordinated accounts."""
    from mlsecops.data.checks import DataPoisonCheck

    threshold = parse_fail_on(fail_on)
    fmt = resolve_format(fmt, output)
    options: dict[str, JsonValue] = {}
    for key, value in (("label", label), ("kind", kind), ("detectors", detectors), ("model", model)):
        if value:
            options[key] = value
    if max_rows is not None:
        options["max_rows"] = max_rows
    if executor is not None:
        options["executor"] = executor
    if workers is not None:
        options["workers"] = workers
    if address is not None:
        options["address"] = address
    if quarantine is not None:
        options["quarantine"] = str(quarantine)
    target = _workspace_target((data,), options, need=False).model_copy(update={"seed": seed})
    if quarantine is not None and target.home is None:
        err_console.print("[yellow]no workspace: the quarantine files are written but not recorded[/]")
    with progress_hook("detector", quiet=quiet) as hook:  # the total is known once the data is read
        report = DataPoisonCheck(progress=hook).run(target)
    if fmt is Format.TEXT and output is None:
        _suspects_table(report.data)
    emit(report, fmt, output)
    raise typer.Exit(exit_for(report, threshold))


def _suspects_table(data: dict[str, JsonValue]) -> None:
    key = "suspect_rows" if "suspect_rows" in data else "suspect_accounts"
    rows = data.get(key)
    if not isinstance(rows, list) or not rows:
        return
    table = Table(title=f"{len(rows)} {key.replace('_', ' ')} (first 20)")
    first = "row" if key == "suspect_rows" else "user"
    for col in (first, "score", "reason"):
        table.add_column(col, overflow="fold")
    for r in rows[:20]:
        if isinstance(r, dict):
            table.add_row(cell(r.get(first)), cell(r.get("score")), cell(r.get("reason")))
    console.print(table)


@data_app.command("register")
def register_cmd(
    data: Annotated[list[Path], typer.Argument(help="The data set's files (same columns).")],
    name: Annotated[str | None, typer.Option(help="Data set name (default: the first file's stem).")] = None,
    label: LabelOpt = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Store a manifest (per-file SHA-256, rows, schema fingerprint, profile) as a lineage node."""
    from mlsecops.data.manifest import build_manifest, register_dataset

    fmt = resolve_format(fmt, output)
    target = _workspace_target(tuple(data), {}, need=True)
    assert target.home is not None
    manifest = build_manifest(list(data), name=name, label=label)
    version, digest = register_dataset(
        manifest, home=target.home, database_url=target.database_url, actor=target.actor
    )
    result = {
        "name": manifest.name,
        "version": version,
        "digest": digest,
        "files": [f.model_dump() for f in manifest.files],
        "schema_fingerprint": manifest.schema_fingerprint,
    }
    if fmt is Format.TEXT and output is None:
        console.print(
            f"registered data set [bold]{safe(manifest.name)}[/] version {version} "
            f"({len(manifest.files)} file(s), digest {digest[:12]}...)"
        )
        return
    listing = Listing(
        kind="data.register",
        subject=f"{manifest.name}@{version}",
        title=f"data set {manifest.name} version {version}, digest {digest}",
        key="files",
        rows=[f.model_dump(mode="json") for f in manifest.files],
        document=result,
    )
    emit_listing(listing, fmt, output)


def register(app: typer.Typer) -> None:
    """Add the ``data`` command group to the app."""
    app.add_typer(data_app, name="data")
