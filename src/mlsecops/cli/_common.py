"""What every command shares: output options, rendering, the workspace, progress bars, exit codes.

Commands stay thin: parse, call the library, render. ``emit`` writes a report in the chosen format to
``--output`` or stdout; ``exit_for`` turns findings at or above ``--fail-on`` into exit code 1.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mlsecops.cli._output import EXIT_ERROR, EXIT_FAIL, EXIT_OK, fail_on_threshold, write_private
from mlsecops.core.severity import Severity
from mlsecops.report import Format, render

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from mlsecops.core.findings import Report
    from mlsecops.core.settings import Settings
    from mlsecops.store import Workspace

    console: Console
    err_console: Console

__all__ = [
    "EXIT_ERROR",
    "EXIT_FAIL",
    "EXIT_OK",
    "FailOnOpt",
    "FormatOpt",
    "OutputOpt",
    "console",
    "emit",
    "err_console",
    "exit_for",
    "open_workspace",
    "parse_fail_on",
    "progress",
    "settings",
]


_consoles: dict[bool, Console] = {}


def _console(*, stderr: bool) -> Console:
    if stderr not in _consoles:
        from rich.console import Console

        _consoles[stderr] = Console(stderr=stderr)
    return _consoles[stderr]


def __getattr__(name: str) -> Console:
    # ``console`` / ``err_console`` are built on first use: rich costs start-up time JSON output never needs.
    if name == "console":
        return _console(stderr=False)
    if name == "err_console":
        return _console(stderr=True)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.", case_sensitive=False)]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help="Write the report to this file.")]
FailOnOpt = Annotated[
    str, typer.Option("--fail-on", help="Exit 1 when a finding is at or above this severity (or 'never').")
]


def settings() -> Settings:
    """Settings from the environment (``MLSECOPS_HOME``, ``MLSECOPS_DATABASE_URL``, ``MLSECOPS_ACTOR``)."""
    from mlsecops.core.settings import Settings

    return Settings()


def open_workspace(*, create: bool = False) -> Workspace:
    """Open the workspace the environment names (or create it)."""
    from mlsecops.store import Workspace  # the database stack loads only for commands that need it

    return Workspace.from_settings(settings(), create=create)


def emit(report: Report, fmt: Format, output: Path | None) -> None:
    """Render ``report`` to ``output`` (mode 0600) or stdout (coloured text on a terminal)."""
    if output is not None:
        write_private(output, render(report, fmt))
        _console(stderr=True).print(f"report written to {output}")
        return
    if fmt is Format.TEXT:
        from mlsecops.report import report_renderable

        _console(stderr=False).print(report_renderable(report))
    else:
        sys.stdout.write(render(report, fmt))
        sys.stdout.flush()


def parse_fail_on(value: str) -> Severity | None:
    """``--fail-on`` as a severity, or ``None`` for ``never``."""
    try:
        return fail_on_threshold(value)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--fail-on") from None


def exit_for(report: Report, fail_on: Severity | None) -> int:
    """1 when the report has a finding at or above ``fail_on``, else 0."""
    if fail_on is not None and report.at_or_above(fail_on):
        return EXIT_FAIL
    return EXIT_OK


@contextmanager
def progress(total: int, description: str, *, quiet: bool = False) -> Iterator[Progress | None]:
    """A rich progress bar on a terminal; ``None`` (nothing drawn) when quiet or not a terminal."""
    err = _console(stderr=True)
    if quiet or not err.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    with bar:
        bar.add_task(description, total=total)
        yield bar
