"""``mlsecops scan PATH...``: static scan of model files, archives and directories.

Thin: expands the paths, calls ``mlsecops.supplychain.scanner.scan_paths`` (a process pool for
directories, a progress bar on a terminal), builds the ``artifact.scan`` report and renders it. Exit 1
when a finding is at or above ``--fail-on``; exit 2 for a missing path or a bad option.

It is the command people run on every model they download and in tight CI loops, so it parses its own
arguments (argparse) and, for ``--format json``, writes the scanner's report document directly: neither
typer, rich nor pydantic is imported, and scanning a checkpoint costs the scan rather than the start-up
of the CLI stack. The typer app only lists it in ``mlsecops --help`` and forwards to ``run_scan``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlsecops.cli._output import (
    DEFAULT_FAIL_ON,
    EXIT_ERROR,
    EXIT_FAIL,
    EXIT_OK,
    FORMATS,
    fail_on_threshold,
    format_for,
    write_private,
)
from mlsecops.core.errors import InputError
from mlsecops.core.severity import Severity, utcnow
from mlsecops.report._safe import json_dumps, visible

if TYPE_CHECKING:
    import typer

    from mlsecops.supplychain.scanner import ArtifactScan

__all__ = ["register", "run_scan"]

HELP = "Scan model artifacts for code-execution payloads without loading them."
_VERDICT_STYLE = {"safe": "green", "suspicious": "yellow", "malicious": "bold red", "error": "magenta"}


def _fail_on(value: str) -> Severity | None:
    try:
        return fail_on_threshold(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _at_least(minimum: float, kind: type[int] | type[float]) -> Callable[[str], int | float]:
    def parse(value: str) -> int | float:
        try:
            number = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{value!r} is not a{'n integer' if kind is int else ' number'}"
            ) from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below the minimum {minimum}")
        return number

    return parse


class _Help(argparse.HelpFormatter):
    """The layout of the other commands' help (click's): ``Usage:``, ``-o, --output FILE``."""

    def add_usage(self, usage: Any, actions: Any, groups: Any, prefix: str | None = None) -> None:
        super().add_usage(usage, actions, groups, "Usage: ")

    def _format_action_invocation(self, action: argparse.Action) -> str:
        if not action.option_strings:
            return super()._format_action_invocation(action)
        names = ", ".join(sorted(action.option_strings, key=len))
        if action.nargs == 0:
            return names
        return f"{names} {self._format_args(action, self._get_default_metavar_for_optional(action))}"


class _Parser(argparse.ArgumentParser):
    """argparse whose messages quote arguments safely (a path may hold escape sequences) and exit 2."""

    def _print_message(self, message: str, file: Any = None) -> None:
        if message:
            (file or sys.stderr).write(visible(message, keep_newlines=True))

    def error(self, message: str) -> Any:
        self.print_usage(sys.stderr)
        sys.stderr.write(f"mlsecops: error: {visible(message)}\n")
        raise SystemExit(EXIT_ERROR)


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``mlsecops scan``."""
    p = _Parser(
        prog="mlsecops scan",
        usage="mlsecops scan [OPTIONS] PATH...",
        description=HELP,
        add_help=False,
        formatter_class=_Help,
        epilog="Exit codes: 0 nothing at or above --fail-on, 1 a finding at or above it, 2 bad input or usage.",
    )
    p.add_argument(
        "paths", nargs="+", type=Path, metavar="PATH", help="Model files, archives or directories."
    )
    p.add_argument(
        "--fail-on",
        type=_fail_on,
        default=fail_on_threshold(DEFAULT_FAIL_ON),
        metavar="SEVERITY",
        help="Exit 1 when a finding is at or above this severity, or 'never' (default: medium).",
    )
    p.add_argument(
        "--format",
        "-f",
        dest="fmt",
        type=str.lower,
        choices=FORMATS,
        metavar="FORMAT",
        default=None,
        help="Output format: text, json, sarif or html (default: from the --output suffix, else text).",
    )
    p.add_argument(
        "--output", "-o", type=Path, metavar="FILE", help="Write the report to this file (mode 0600)."
    )
    p.add_argument(
        "--workers", type=_at_least(1, int), metavar="N", help="Parallel processes (default: CPU count)."
    )
    p.add_argument(
        "--executor",
        choices=("inline", "process", "ray"),
        default=None,
        help="Run the scans through this engine in tasks of up to 64 files (ray: on a cluster whose "
        "nodes read the files at the same paths); default: a local pool.",
    )
    p.add_argument(
        "--address",
        metavar="HOST:PORT",
        default=None,
        help="With --executor ray: the cluster's head (default: RAY_ADDRESS, else a local instance).",
    )
    p.add_argument(
        "--max-seconds",
        type=_at_least(0.001, float),
        default=120.0,
        metavar="S",
        help="Time limit per file, s.",
    )
    p.add_argument(
        "--max-gb",
        type=_at_least(0.001, float),
        default=4.0,
        metavar="GB",
        help="Bytes read per file, in GB.",
    )
    p.add_argument(
        "--policy",
        type=Path,
        metavar="FILE",
        help="Scan policy (YAML): allow, deny and force_allow lists of pickle globals added to the built-in ones.",
    )
    p.add_argument("--no-hash", action="store_true", help="Skip the SHA-256 of each file.")
    p.add_argument("--quiet", "-q", action="store_true", help="No progress bar.")
    p.add_argument("--debug", action="store_true", help="Show tracebacks and debug logs.")
    p.add_argument("-h", "--help", action="help", help="Show this message and exit.")
    # the section titles of every other command's help (click's)
    p._positionals.title, p._optionals.title = "Arguments", "Options"
    return p


def run_scan(argv: list[str]) -> int:
    """Run ``mlsecops scan`` with the arguments after ``scan``; return the exit code.

    Raises:
        InputError: a path does not exist, or the report cannot be written.
    """
    try:
        ns = parser().parse_args(argv)
    except SystemExit as stop:  # argparse has printed the usage line and the error (or the help)
        return stop.code if isinstance(stop.code, int) else EXIT_OK
    try:
        fmt = format_for(ns.fmt, ns.output)
    except InputError as err:
        from mlsecops.cli._output import print_error

        print_error(err.diagnostics())
        return EXIT_ERROR
    from mlsecops.supplychain.scanner import ScanLimits, iter_files, load_policy, scan_document, scan_paths

    started = utcnow()
    policy = load_policy(ns.policy) if ns.policy is not None else None
    if policy is not None and policy.force_allow:
        names = ", ".join(sorted(policy.force_allow))
        sys.stderr.write(
            f"WARNING: scan policy {visible(str(ns.policy))} forces allowed what the deny-list denies: "
            f"{visible(names)}. Files that use them are NOT reported as malicious.\n"
        )
    limits = ScanLimits(max_seconds=ns.max_seconds, max_read_bytes=int(ns.max_gb * (1 << 30)), policy=policy)
    subject = ", ".join(str(p) for p in ns.paths)
    bars: AbstractContextManager[Any] = nullcontext()
    if not ns.quiet and sys.stderr.isatty():
        from mlsecops.cli._common import progress  # rich only when a bar is drawn

        bars = progress(sum(1 for _ in iter_files(ns.paths)), "scanning")
    with bars as bar:

        def tick(_: ArtifactScan) -> None:
            if bar is not None:
                bar.advance(bar.tasks[0].id)

        engine = None
        if ns.executor is not None:
            from mlsecops.core.executor import get_executor

            engine = get_executor(ns.executor, workers=ns.workers, address=ns.address)
        elif ns.address is not None:
            raise InputError("--address is used with --executor ray")
        results = scan_paths(
            ns.paths,
            limits=limits,
            workers=ns.workers,
            sha256=not ns.no_hash,
            progress=tick,
            executor=engine,
        )
    threshold: Severity | None = ns.fail_on
    failed = threshold is not None and any(h.severity >= threshold for r in results for h in r.hits)
    if fmt == "json":
        doc = scan_document(results, subject=subject, started=started)
        text = json_dumps(doc) + "\n"
        if ns.output is not None:
            write_private(ns.output, text)
            sys.stderr.write(f"report written to {visible(str(ns.output))}\n")
        else:
            sys.stdout.write(text)
            sys.stdout.flush()
    else:
        from mlsecops.cli._common import emit
        from mlsecops.report import Format
        from mlsecops.supplychain.scanner import scan_report

        if fmt == "text" and ns.output is None:
            _table(results)
        emit(scan_report(results, subject=subject, started=started), Format(fmt), ns.output)
    return EXIT_FAIL if failed else EXIT_OK


def _table(results: list[ArtifactScan]) -> None:
    from rich.table import Table

    from mlsecops.cli._common import cell, console

    table = Table(title=f"{len(results)} artifact(s)")
    for col in ("path", "format", "verdict", "worst finding"):
        table.add_column(col, overflow="fold")
    for r in results:
        verdict = str(r.verdict)
        worst = max(r.hits, key=lambda h: h.severity, default=None)
        where = f" [{worst.entry}]" if worst is not None and worst.entry else ""
        table.add_row(
            cell(r.path),
            cell(r.format),
            f"[{_VERDICT_STYLE[verdict]}]{verdict}[/]",
            cell(f"{worst.title}{where}") if worst is not None else "",
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    """List ``scan`` in the typer app; it forwards its arguments to ``run_scan``."""
    import typer

    def scan(ctx: typer.Context) -> None:
        raise typer.Exit(run_scan(list(ctx.args)))

    scan.__doc__ = HELP
    scan.__annotations__["ctx"] = typer.Context  # typer resolves annotations; this module's are strings
    app.command(
        "scan",
        help=HELP + " Run 'mlsecops scan --help' for the options.",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
        add_help_option=False,
    )(scan)
