"""``mlsecops monitor export-log``: the guard's decision log of one model, in the replay format."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from mlsecops.cli._common import err_console, open_workspace, safe
from mlsecops.core.errors import InputError

__all__ = ["register"]


def _when(value: str | None, flag: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InputError(
            f"{flag} must be an ISO date or time such as 2026-11-22 or 2026-11-22T10:00; got {value[:40]!r}"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def export_log(
    model: Annotated[str, typer.Argument(help="Served model name.")],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="JSON Lines file to write (mode 0600: it holds request data)."),
    ],
    since: Annotated[str | None, typer.Option(help="From this UTC time (ISO 8601), inclusive.")] = None,
    until: Annotated[str | None, typer.Option(help="Up to this UTC time (ISO 8601), inclusive.")] = None,
    version: Annotated[str | None, typer.Option(help="Only requests answered by this version.")] = None,
    include_rejected: Annotated[
        bool,
        typer.Option(help='Also write rejected requests, marked "accepted": false with their decision.'),
    ] = False,
) -> None:
    """Write a model's logged requests as QUERIES.jsonl for `mlsecops monitor replay` (oldest first).

    Only requests logged with raw inputs (guard policy `logging.raw_inputs: true`) can be replayed; the
    others are counted and skipped.
    """
    from mlsecops.runtime.decisions import export_jsonl

    since_dt, until_dt = _when(since, "--since"), _when(until, "--until")
    if since_dt is not None and until_dt is not None and since_dt > until_dt:
        raise InputError("--since is after --until: nothing could match")
    with open_workspace() as ws:
        result = export_jsonl(
            ws,
            model,
            output,
            since=since_dt,
            until=until_dt,
            version=version,
            include_rejected=include_rejected,
        )
    err_console.print(f"exported {result.written} request(s) of {safe(model)} to {safe(output)}")
    if result.skipped:
        err_console.print(
            f"[yellow]{result.skipped} logged request(s) had no raw inputs and were skipped[/]: "
            "set `logging.raw_inputs: true` in the guard policy to make requests replayable"
        )
    if result.rejected:
        err_console.print(f"{result.rejected} rejected request(s) left out (--include-rejected writes them)")
    if result.unreplayable:
        err_console.print(
            f"{result.unreplayable} request(s) left out: no principal, or inputs that are not rows of "
            "finite numbers (rejected as invalid)"
        )
    if result.corrupt:
        err_console.print(f"[bold red]{result.corrupt} row(s) held unreadable JSON and were left out[/]")


def register(monitor_app: typer.Typer) -> None:
    """Add ``export-log`` to the ``monitor`` group."""
    monitor_app.command("export-log")(export_log)
