"""What every command shares: output options, rendering, the workspace, progress bars, exit codes.

Commands stay thin: parse, call the library, render. Every reporting command takes the same
``--format``/``--output`` (``FormatOpt``, ``OutputOpt``): ``emit`` writes a report, ``emit_listing`` a
listing (registry, runs, audit events...), in the format given, or the one the output file's suffix
names (``-o report.json``), or text; a format that contradicts the suffix is refused. ``exit_for`` turns
findings at or above ``--fail-on`` (default ``medium`` everywhere) into exit code 1.

Text that comes from the input goes to the terminal through ``safe`` (inside rich markup) or ``cell``
(a table cell): escape sequences and controls are shown as backslash escapes, markup is not interpreted.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mlsecops.cli._output import (
    DEFAULT_FAIL_ON,
    EXIT_ERROR,
    EXIT_FAIL,
    EXIT_OK,
    fail_on_threshold,
    format_for,
    write_private,
)
from mlsecops.core.severity import Severity
from mlsecops.report import Format, render
from mlsecops.report._safe import json_dumps, visible

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.progress import Progress
    from rich.text import Text

    from mlsecops.core.findings import Report
    from mlsecops.core.settings import Settings
    from mlsecops.store import Workspace

    console: Console
    err_console: Console

__all__ = [
    "DEFAULT_FAIL_ON",
    "EXIT_ERROR",
    "EXIT_FAIL",
    "EXIT_OK",
    "FailOnOpt",
    "FormatOpt",
    "Listing",
    "OutputOpt",
    "QuietOpt",
    "cell",
    "console",
    "emit",
    "emit_listing",
    "err_console",
    "exit_for",
    "open_workspace",
    "parse_fail_on",
    "progress",
    "progress_hook",
    "resolve_format",
    "safe",
    "settings",
    "short_time",
]


_consoles: dict[bool, Console] = {}
# Width of text written to a file (no terminal to measure): wide enough for the tables, yet readable.
_FILE_WIDTH = 120


def _console(*, stderr: bool) -> Console:
    if stderr not in _consoles:
        from rich.console import Console

        # no :emoji: codes: a file name like "a:smile:.pkl" is printed as it is
        _consoles[stderr] = Console(stderr=stderr, emoji=False)
    return _consoles[stderr]


def __getattr__(name: str) -> Console:
    # ``console`` / ``err_console`` are built on first use: rich costs start-up time JSON output never needs.
    if name == "console":
        return _console(stderr=False)
    if name == "err_console":
        return _console(stderr=True)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


FormatOpt = Annotated[
    Format | None,
    typer.Option(
        "--format",
        "-f",
        help="Output format: text, json, sarif or html [default: from the --output suffix, else text].",
        case_sensitive=False,
        show_default=False,
    ),
]
OutputOpt = Annotated[
    Path | None, typer.Option("--output", "-o", help="Write the report to this file (mode 0600).")
]
FailOnOpt = Annotated[
    str,
    typer.Option("--fail-on", help="Exit 1 when a finding is at or above this severity, or 'never'."),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]


def safe(value: object) -> str:
    """Untrusted text for a string that rich reads as markup: controls escaped, markup escaped."""
    from rich.markup import escape

    return escape(visible(str(value)))


def cell(value: object) -> Text:
    """Untrusted text as a table cell (a rich ``Text``: never markup), controls shown as escapes."""
    from rich.text import Text

    return Text(visible("" if value is None else str(value)))


def short_time(iso: str | None) -> str:
    """``2026-12-05T13:14:46.123456+00:00`` as ``2026-12-05 13:14:46`` (narrow tables, UTC)."""
    if not iso:
        return ""
    return visible(iso.replace("T", " ", 1)[:19])


def settings() -> Settings:
    """Settings from the environment (``MLSECOPS_HOME``, ``MLSECOPS_DATABASE_URL``, ``MLSECOPS_ACTOR``)."""
    from mlsecops.core.settings import Settings

    return Settings()


def open_workspace(*, create: bool = False) -> Workspace:
    """Open the workspace the environment names (or create it)."""
    from mlsecops.store import Workspace  # the database stack loads only for commands that need it

    return Workspace.from_settings(settings(), create=create)


def resolve_format(fmt: Format | str | None, output: Path | None, *, default: Format = Format.TEXT) -> Format:
    """``--format``, else the format ``--output``'s suffix names, else ``default`` (text).

    Raises:
        InputError: ``--format`` contradicts the output file's suffix.
    """
    return Format(format_for(None if fmt is None else str(fmt), output, default=str(default)))


def _written(output: Path) -> None:
    _console(stderr=True).print(f"report written to {safe(output)}", highlight=False, soft_wrap=True)


def _rendered(report: Report, chosen: Format, fail_on: Severity | None) -> str:
    if chosen is Format.HTML and fail_on is not None:  # the verdict says whether findings reach --fail-on
        from mlsecops.report import HtmlRenderer

        return HtmlRenderer(fail_on=fail_on).render(report)
    return render(report, chosen)


def emit(report: Report, fmt: Format | None, output: Path | None, *, fail_on: Severity | None = None) -> None:
    """Render ``report`` to ``output`` (mode 0600) or stdout (coloured text on a terminal).

    ``fail_on`` is the command's ``--fail-on``: the HTML verdict then says whether the findings reach it.
    """
    chosen = resolve_format(fmt, output)
    if output is not None:
        write_private(output, _rendered(report, chosen, fail_on))
        _written(output)
        return
    if chosen is Format.TEXT:
        from mlsecops.report import report_renderable

        _console(stderr=False).print(report_renderable(report))
    else:
        sys.stdout.write(_rendered(report, chosen, fail_on))
        sys.stdout.flush()


@dataclass(frozen=True)
class Listing:
    """What a listing command shows (registry models, runs, audit events...), in every format.

    ``document`` is what ``--format json`` prints (each command's established JSON shape); ``rows``
    (flat dicts) make the text table and the ``key`` table of the HTML and SARIF reports.
    """

    kind: str
    """Report kind of the HTML/SARIF forms, e.g. ``registry.list``."""
    subject: str
    title: str
    key: str
    """Name of the rows in the report, e.g. ``models``."""
    rows: Sequence[dict[str, Any]]
    document: Any
    columns: Sequence[str] = ()
    """Text table columns (default: the first row's keys)."""
    no_wrap: Sequence[str] = field(default_factory=tuple)
    """Columns never folded (short ids, times)."""
    compact: bool = False
    """Rule under the header only, no cell borders: many short columns fit 80 characters."""

    def table(self) -> RenderableType:
        """The rows as a rich table: every cell through ``cell``, long columns folded."""
        from rich import box
        from rich.table import Table

        columns = list(self.columns or (self.rows[0].keys() if self.rows else ()))
        if self.compact:
            table = Table(
                title=visible(self.title),
                title_justify="left",
                box=box.SIMPLE_HEAD,
                show_edge=False,
                pad_edge=False,
                collapse_padding=True,
            )
        else:
            table = Table(title=visible(self.title), title_justify="left")
        for col in columns:
            table.add_column(col, overflow="fold", no_wrap=col in self.no_wrap)
        for row in self.rows:
            table.add_row(*(cell(_plain(row.get(c))) for c in columns))
        return table

    def report(self) -> Report:
        """The listing as a report with no findings, for the HTML and SARIF forms."""
        from mlsecops.core.findings import Report

        return Report(subject=self.subject, kind=self.kind, data={self.key: list(self.rows)})


def _plain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json_dumps(value, indent=None, allow_nan=True)
    return str(value)


def emit_listing(
    listing: Listing,
    fmt: Format | str | None,
    output: Path | None,
    *,
    text: Callable[[], RenderableType] | None = None,
    default: Format = Format.TEXT,
) -> None:
    """Show a listing in the chosen format, to ``output`` or stdout.

    Args:
        listing: the rows and the JSON document.
        fmt: ``--format`` (``None``: from the output suffix, else text).
        output: ``--output``.
        text: the text form when it is not the plain table (a tree, a record per line).
        default: the format when neither ``--format`` nor the output suffix names one.
    """
    chosen = resolve_format(fmt, output, default=default)
    body: str
    if chosen is Format.TEXT:
        renderable = text() if text is not None else listing.table()
        if output is None:
            _console(stderr=False).print(renderable)
            return
        import io

        from rich.console import Console

        buffer = io.StringIO()
        Console(file=buffer, width=_FILE_WIDTH, color_system=None, emoji=False).print(renderable)
        body = buffer.getvalue()
    elif chosen is Format.JSON:
        body = json_dumps(listing.document, allow_nan=True) + "\n"
    else:
        body = render(listing.report(), chosen)
    if output is None:
        sys.stdout.write(body)
        sys.stdout.flush()
        return
    write_private(output, body)
    _written(output)


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


@contextmanager
def progress_hook(description: str, *, quiet: bool = False) -> Iterator[Callable[[str, int, int], None]]:
    """A progress callback ``(step, done, total)`` for a library call, drawn as a bar on a terminal.

    The library reports what it does (``"pgd eps=0.1"``, 3 of 9); nothing is drawn when quiet or when
    stderr is not a terminal, and the callback then costs nothing.
    """
    with progress(1, description, quiet=quiet) as bar:

        def hook(step: str, done: int, total: int) -> None:
            if bar is not None:
                text = f"{visible(description)}: {visible(step)}"
                bar.update(bar.task_ids[0], completed=done, total=max(total, 1), description=safe(text))

        yield hook
