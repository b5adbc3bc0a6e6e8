"""``mlsecops audit log``, ``verify``, ``anchor`` and ``checkpoint``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from mlsecops.cli._common import (
    EXIT_FAIL,
    EXIT_OK,
    FormatOpt,
    Listing,
    OutputOpt,
    cell,
    console,
    emit,
    emit_listing,
    err_console,
    open_workspace,
    resolve_format,
    safe,
    settings,
    short_time,
)
from mlsecops.core.errors import InputError
from mlsecops.report import Format
from mlsecops.store import audit as audit_trail
from mlsecops.store import checkpoints as signed_checkpoints
from mlsecops.store.checks import chain_report

__all__ = ["register"]

audit_app = typer.Typer(help="Read and verify the tamper-evident audit trail.", no_args_is_help=True)


_UNREADABLE = "unreadable_details"
"""Key under which ``audit log`` shows stored details that are not a JSON object any more (edited)."""


def _details(raw: object) -> dict[str, Any]:
    """The stored details, or a marker holding their text when they are not a JSON object any more."""
    if isinstance(raw, str):
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = None
        if isinstance(doc, dict):
            return doc
    return {_UNREADABLE: repr(raw)[:200]}


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
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """List audit events, oldest first (JSON: a list of events with their hashes)."""
    fmt = resolve_format(fmt, output)
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
                "ts": str(e.ts),
                "actor": str(e.actor),
                "action": str(e.action),
                "subject": str(e.subject),
                "details": _details(e.details),
                "hash": str(e.hash),
            }
            for e in events
        ]
    unreadable = [str(e.seq) for e in events if _UNREADABLE in _details(e.details)]
    if unreadable:
        err_console.print(
            f"[bold red]event(s) {', '.join(unreadable[:10])} hold details that are not a JSON object[/]"
            ": the trail was edited; run `mlsecops audit verify`"
        )
    listing = Listing(
        kind="audit.log",
        subject=subject or "audit trail",
        title=f"{len(rows)} audit event(s)",
        key="events",
        rows=rows,
        document=rows,
    )
    emit_listing(listing, fmt, output, text=lambda: _event_lines(rows))


def _event_lines(rows: list[dict[str, Any]]) -> Any:
    """One event per record, readable at 80 columns (CI logs): ``#seq time actor action subject``,
    then the details indented and wrapped below.
    """
    from rich.console import Group
    from rich.padding import Padding
    from rich.text import Text

    parts: list[Any] = [Text(f"{len(rows)} audit event(s), times in UTC", style="bold")]
    for r in rows:
        head = Text.assemble(
            (f"#{r['seq']} ", "bold"),
            short_time(r["ts"]),
            " ",
            cell(r["actor"]),
            " ",
            (cell(r["action"]).plain, "cyan"),
            " ",
            cell(r["subject"]),
        )
        parts.append(head)
        if r["details"]:
            details = ", ".join(f"{k}={_compact(v)}" for k, v in r["details"].items())
            parts.append(Padding(cell(details), (0, 0, 0, 4), expand=False))
    return Group(*parts)


def _compact(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@audit_app.command("verify")
def verify(
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    anchor: Annotated[
        list[str] | None,
        typer.Option(
            "--anchor",
            help="SEQ:HASH printed earlier by `audit anchor` and kept elsewhere; the chain must still "
            "hold it (repeatable).",
        ),
    ] = None,
    checkpoints: Annotated[
        Path | None,
        typer.Option(
            "--checkpoints",
            help="A file of signed checkpoints written by `audit checkpoint --to` and kept elsewhere; "
            "every one must be signed by --public-key and still be in the chain.",
        ),
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option(
            "--public-key",
            help="The checkpoint public key (PEM) kept elsewhere; default: the workspace's own "
            "keys/audit-checkpoint.pub, which only proves whoever holds keys/ made the checkpoints.",
        ),
    ] = None,
) -> None:
    """Walk the hash chain; exit 1 naming the first bad event when anything was edited, deleted,
    reordered or inserted by hand, the sealed head does not match, or an anchor or signed checkpoint
    is gone.
    """
    fmt = resolve_format(fmt, output)
    anchors = [audit_trail.Anchor.parse(a) for a in anchor or ()]
    if public_key is not None and checkpoints is None:
        raise InputError("--public-key is used with --checkpoints FILE")
    marks = signed_checkpoints.read_checkpoints(checkpoints) if checkpoints is not None else []
    with open_workspace() as ws:  # refuses a missing, corrupt or too-new workspace (exit 2)
        key = None
        if marks:
            key_file = public_key or ws.keys_dir / signed_checkpoints.PUBLIC_KEY_FILE
            key = signed_checkpoints.load_public_key(key_file)
        report = chain_report(ws, anchors=anchors, checkpoints=marks, public_key=key)
    if fmt is Format.TEXT and output is None:
        if report.verdict == "intact":
            signed = int(report.metrics.get("audit_checkpoints", 0))
            console.print(
                f"[green]audit trail intact[/]: {int(report.metrics['audit_events'])} event(s) verified"
                + (
                    f"; {signed} signed checkpoint(s) hold, up to event "
                    f"{int(report.metrics['audit_checkpoint_newest'])}"
                    if signed
                    else ""
                )
            )
            if marks and public_key is None:
                err_console.print(
                    "note: checked with the workspace's own public key; pass --public-key with the copy "
                    "kept elsewhere to rule out a rewrite by someone holding keys/"
                )
        else:
            for f in report.findings:
                err_console.print(f"[bold red]{safe(f.title)}[/]: {safe(f.detail)}")
    else:
        emit(report, fmt, output)
    raise typer.Exit(EXIT_OK if report.verdict == "intact" else EXIT_FAIL)


@audit_app.command("anchor")
def anchor() -> None:
    """Verify the chain and print its head as SEQ:HASH.

    Keep the line where whoever can write this workspace cannot (a ticket, another system's log, a
    transparency log); `mlsecops audit verify --anchor SEQ:HASH` later proves that no event up to it
    was changed or deleted, even by someone holding the database and the workspace's keys.
    """
    with open_workspace() as ws, ws.session(readonly=True) as s:
        status = audit_trail.verify(s)
    if not status.ok or status.head is None:
        err_console.print(
            f"[bold red]audit trail tampered at event {status.bad_seq}[/]: {safe(status.reason)}; "
            "no anchor printed"
        )
        raise typer.Exit(EXIT_FAIL)
    typer.echo(str(status.head))


@audit_app.command("checkpoint")
def checkpoint(
    to: Annotated[
        Path,
        typer.Option(
            "--to",
            help="Append the signed checkpoint to this file (keep it, or a copy, where whoever can "
            "write the workspace cannot).",
        ),
    ],
) -> None:
    """Verify the chain, sign its head with the workspace's checkpoint key and append it to a file.

    Run it periodically (cron, a CI job, the guard's `audit.checkpoint_interval_s`); later,
    `mlsecops audit verify --checkpoints FILE --public-key PUB` proves that no event up to the newest
    checkpoint was changed, deleted or replaced, even by someone who rewrote the chain and its keys.
    The key is created on first use: keys/audit-checkpoint.key (0600) and .pub (give the .pub to the
    verifiers).
    """
    with open_workspace() as ws:
        key = signed_checkpoints.load_or_create_key(ws.keys_dir)
        with ws.session() as s:
            mark = signed_checkpoints.sign_head(s, key)
            signed_checkpoints.write_checkpoint(to, mark)
            audit_trail.append(
                s,
                actor=settings().actor,
                action="audit.checkpoint",
                subject=f"audit:{mark.seq}",
                details={"seq": mark.seq, "hash": mark.hash, "key_id": mark.key_id, "file": str(to)},
            )
    typer.echo(
        f"checkpoint of event {mark.seq} ({mark.hash[:16]}...) signed by key {mark.key_id}, appended to {to}"
    )


def register(app: typer.Typer) -> None:
    """Add the ``audit`` command group to the app."""
    app.add_typer(audit_app, name="audit")
