"""Output helpers with no dependency beyond the standard library (the ``scan`` fast path uses them)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mlsecops.core.errors import InputError
from mlsecops.core.severity import Severity
from mlsecops.report._safe import visible

__all__ = [
    "DEFAULT_FAIL_ON",
    "EXIT_ERROR",
    "EXIT_FAIL",
    "EXIT_OK",
    "FORMATS",
    "fail_on_threshold",
    "format_for",
    "print_error",
    "write_private",
]

EXIT_OK, EXIT_FAIL, EXIT_ERROR = 0, 1, 2
# The one --fail-on default of every reporting command: a finding at or above it exits 1.
DEFAULT_FAIL_ON = "medium"
FORMATS = ("text", "json", "sarif", "html")
# Output file suffix -> (the format it implies, the formats it may hold). A SARIF log is JSON, so a
# .json file may hold either; .sarif.json is SARIF; a suffix not listed implies nothing.
_SUFFIX_FORMATS: dict[str, tuple[str, tuple[str, ...]]] = {
    ".sarif.json": ("sarif", ("sarif",)),
    ".sarif": ("sarif", ("sarif",)),
    ".json": ("json", ("json", "sarif")),
    ".html": ("html", ("html",)),
    ".htm": ("html", ("html",)),
    ".txt": ("text", ("text",)),
}


def format_for(fmt: str | None, output: Path | None, *, default: str = "text") -> str:
    """The output format: ``--format`` when given, else the one ``--output``'s suffix names, else
    ``default`` (text, for every command but the ones whose product is a JSON document).

    Raises:
        InputError: ``--format`` contradicts the suffix (``-f text -o report.json``).
    """
    name = output.name.lower() if output is not None else ""
    implied = next((v for suffix, v in _SUFFIX_FORMATS.items() if name.endswith(suffix)), None)
    if fmt is None:
        return implied[0] if implied is not None else default
    fmt = str(fmt).lower()
    if implied is not None and fmt not in implied[1]:
        raise InputError(
            f"--format {fmt} contradicts the output file {visible(str(output))}, whose suffix means "
            f"{implied[0]}; drop --format (the suffix decides) or name the file for {fmt}"
        )
    return fmt


def fail_on_threshold(value: str) -> Severity | None:
    """``--fail-on`` as a severity, or ``None`` for ``never``.

    Raises:
        ValueError: the value names no severity.
    """
    if value.strip().lower() == "never":
        return None
    try:
        return Severity.parse(value)
    except ValueError as err:
        raise ValueError(f"{err} (or 'never')") from None


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 (reports may name private paths and findings).

    Raises:
        InputError: the file cannot be written.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        # renderers never hand over undecodable text; backslashreplace keeps a slip from losing the report
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as fh:
            fh.write(text)
    except OSError as err:
        raise InputError(f"cannot write {visible(str(path))}: {err.strerror or err}") from err


def print_error(message: str, detail: str | None = None) -> None:
    """One ``mlsecops: error: ...`` line on stderr (red on a terminal), then ``detail`` if given.

    Both may quote the input (a file name, a column): controls and escape sequences are shown as
    backslash escapes, and rich markup in them is printed, never interpreted.
    """
    message = visible(message)
    detail = visible(detail, keep_newlines=True) if detail else detail
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.text import Text

        err = Console(stderr=True, emoji=False)
        line = Text.assemble(("mlsecops: error:", "bold red"), " ", message)
        err.print(line, highlight=False, soft_wrap=True)
        if detail:
            err.print(detail, markup=False, highlight=False)
        return
    sys.stderr.write(f"mlsecops: error: {message}\n")
    if detail:
        sys.stderr.write(detail if detail.endswith("\n") else detail + "\n")
    sys.stderr.flush()
