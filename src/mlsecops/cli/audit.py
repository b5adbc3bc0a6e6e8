"""``mlsecops audit log`` and ``mlsecops audit verify``."""

from __future__ import annotations

import datetime as dt
import json
from enum import StrEnum
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from mlsecops.cli._common import (
    EXIT_FAIL,
    EXIT_OK,
    FormatOpt,
    OutputOpt,
    console,
    emit,
    err_console,
    open_workspace,
)
from mlsecops.core.errors import InputError
from mlsecops.report import Format
from mlsecops.store import audit as audit_trail
from mlsecops.store.checks import chain_report

__all__ = ["register"]

audit_app = typer.Typer(help="Read and verify the tamper-evident audit trail.", no_args_is_help=True)


class LogFormat(StrEnum):
    """Formats of ``audit log``."""

    TEXT = "text"
    JSON = "json"


def _when(value: str | None, flag: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InputError(
            f"{flag} must be an ISO date or time such as 2026-11-22 or 2026-11-22T10:00; got {value!r}"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


@audit_app.command("log")
def log(
    subject: Annotated[str | None, typer.Option(help="Only events about this subject.")] = None,
    action: Annotated[
        str | None, typer.Option(help="Only this action; 'registry.*' matches a prefix.")
    ] = None,
    actor: Annotated[str | None, typer.Option(help="Only events by this actor.")] = None,
    since: Annotated[str | None, typer.Option(help="From this UTC time (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option(help="Up to this UTC time (ISO 8601).")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many events.")] = None,
    fmt: Annotated[LogFormat, typer.Option("--format", "-f", case_sensitive=False)] = LogFormat.TEXT,
) -> None:
    """List audit events, oldest first."""
    since_dt, until_dt = _when(since, "--since"), _when(until, "--until")
    with open_workspace() as ws, ws.session(readonly=True) as s:
        events = list(
            audit_trail.iter_events(
                s, subject=subject, action=action, actor=actor, since=since_dt, until=until_dt, limit=limit
            )
        )
        rows = [
            {
                "seq": e.seq,
                "ts": e.ts,
                "actor": e.actor,
                "action": e.action,
                "subject": e.subject,
                "details": json.loads(e.details),
                "hash": e.hash,
            }
            for e in events
        ]
    if fmt is LogFormat.JSON:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    table = Table(title=f"{len(rows)} audit event(s)")
    for col in ("seq", "time (UTC)", "actor", "action", "subject", "details"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            str(r["seq"]),
            r["ts"],
            escape(r["actor"]),
            escape(r["action"]),
            escape(r["subject"]),
            escape(json.dumps(r["details"], ensure_ascii=False)),
        )
    console.print(table)


@audit_app.command("verify")
def verify(fmt: FormatOpt = Format.TEXT, output: OutputOpt = None) -> None:
    """Walk the hash chain; exit 1 naming the first bad event when anything was edited, deleted,
    reordered or inserted by hand."""
    with open_workspace() as ws:  # refuses a missing, corrupt or too-new workspace (exit 2)
        report = chain_report(ws)
    if fmt is Format.TEXT and output is None:
        if report.verdict == "intact":
            console.print(
                f"[green]audit trail intact[/]: {int(report.metrics['audit_events'])} event(s) verified"
            )
        else:
            for f in report.findings:
                err_console.print(f"[bold red]{escape(f.title)}[/]: {escape(f.detail)}")
    else:
        emit(report, fmt, output)
    raise typer.Exit(EXIT_OK if report.verdict == "intact" else EXIT_FAIL)


def register(app: typer.Typer) -> None:
    """Add the ``audit`` command group to the app."""
    app.add_typer(audit_app, name="audit")
