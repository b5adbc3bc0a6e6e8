"""Output helpers with no dependency beyond the standard library (the ``scan`` fast path uses them)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mlsecops.core.errors import InputError
from mlsecops.core.severity import Severity

__all__ = ["EXIT_ERROR", "EXIT_FAIL", "EXIT_OK", "fail_on_threshold", "print_error", "write_private"]

EXIT_OK, EXIT_FAIL, EXIT_ERROR = 0, 1, 2


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
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as err:
        raise InputError(f"cannot write {path}: {err.strerror or err}") from err


def print_error(message: str, detail: str | None = None) -> None:
    """One ``mlsecops: error: ...`` line on stderr (red on a terminal), then ``detail`` if given."""
    if sys.stderr.isatty():
        from rich.console import Console

        err = Console(stderr=True)
        err.print(f"[bold red]mlsecops: error:[/] {message}", markup=True, highlight=False, soft_wrap=True)
        if detail:
            err.print(detail, markup=False, highlight=False)
        return
    sys.stderr.write(f"mlsecops: error: {message}\n")
    if detail:
        sys.stderr.write(detail if detail.endswith("\n") else detail + "\n")
    sys.stderr.flush()
