"""``mlsecops registry register | list | show | promote | rollback | archive | alias | approve |
attach-gate | history | webhook-add``: model versions and their governance.

Users, API keys and trusted signing keys are in ``_registry_identity``; lineage in ``cli/lineage.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from mlsecops.cli._common import (
    FormatOpt,
    Listing,
    OutputOpt,
    cell,
    console,
    emit_listing,
    resolve_format,
    safe,
    short_time,
)
from mlsecops.cli._registry_common import JsonOpt
from mlsecops.cli._registry_common import registry_session as _registry
from mlsecops.core.errors import InputError

__all__ = ["register"]

registry_app = typer.Typer(
    help="The model registry: register, promote, roll back, approve.", no_args_is_help=True
)
# the registry's minimum webhook secret length (add_webhook checks it too); named here to say which
# environment variable is short
_MIN_WEBHOOK_SECRET = 16


@registry_app.command("register")
def register_cmd(
    name: Annotated[str, typer.Argument(help="Model name.")],
    path: Annotated[Path, typer.Argument(help="Model file or directory.")],
    signature: Annotated[
        Path | None,
        typer.Option("--signature", "-s", help="Signature bundle [default: PATH.sig if present]."),
    ] = None,
    trained_on: Annotated[
        list[str] | None,
        typer.Option("--trained-on", help="Data file or lineage node (dataset:NAME@VERSION); repeatable."),
    ] = None,
    description: Annotated[str, typer.Option(help="Model description (new models).")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Scan, store (content-addressed) and register a new version; malicious artifacts are refused."""
    with _registry() as reg:
        info = reg.register(
            name, path, signature=signature, trained_on=trained_on or (), description=description
        )
    if as_json:
        typer.echo(json.dumps(info.to_json(), indent=2))
        return
    signed = (
        f"signed by trusted key {info.signed_by}"
        if info.signed_by
        else ("signed by an untrusted key" if info.signature_key_hint else "unsigned")
    )
    console.print(
        f"registered [bold]{safe(name)}@{info.version}[/]: {info.files} file(s), scan {info.scan_verdict}, {signed}, digest {info.digest[:16]}..."
    )


@registry_app.command("list")
def list_cmd(fmt: FormatOpt = None, output: OutputOpt = None, as_json: JsonOpt = False) -> None:
    """List models, their latest version and what holds each stage and alias."""
    fmt = resolve_format("json" if as_json else fmt, output)
    with _registry() as reg:
        rows = reg.list_models()
    flat = [
        {
            "model": r["name"],
            "latest": r["latest"],
            "stages and aliases": ", ".join(f"{k.split(':')[1]}={v}" for k, v in sorted(r["slots"].items())),
        }
        for r in rows
    ]
    listing = Listing(
        kind="registry.list",
        subject="model registry",
        title=f"{len(rows)} model(s)",
        key="models",
        rows=flat,
        document=rows,
        no_wrap=("latest",),
    )
    emit_listing(listing, fmt, output)


@registry_app.command("show")
def show(
    ref: Annotated[str, typer.Argument(help="NAME, NAME@VERSION, NAME@production, NAME@ALIAS.")],
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a version: digest, scan, signature, gate report, approvals, stages and aliases."""
    fmt = resolve_format("json" if as_json else fmt, output)
    with _registry() as reg:
        info = reg.show(ref)
    doc = info.to_json()
    listing = Listing(
        kind="registry.show",
        subject=f"{info.name}@{info.version}",
        title=f"{info.name}@{info.version}",
        key="fields",
        rows=[{"field": k, "value": v} for k, v in doc.items()],
        document=doc,
        no_wrap=("field",),
    )
    emit_listing(listing, fmt, output)


@registry_app.command("promote")
def promote(
    name: Annotated[str, typer.Argument()],
    version: Annotated[int, typer.Argument()],
    to: Annotated[str, typer.Option("--to", help="staging or production.")],
) -> None:
    """Promote a version (production needs a trusted signature, a clean scan, a passing gate run over its
    files and an approval).
    """
    with _registry() as reg:
        before = reg.promote(name, version, to=to)
    console.print(
        f"{safe(name)}@{version} is now in {to}" + (f" (replacing version {before})" if before else "")
    )


@registry_app.command("rollback")
def rollback(name: Annotated[str, typer.Argument()]) -> None:
    """Put the previous production version back into production (it must meet the production bar now)."""
    with _registry() as reg:
        frm, to = reg.rollback(name)
    console.print(f"{safe(name)}: production rolled back from version {frm} to version {to}")


@registry_app.command("archive")
def archive(name: Annotated[str, typer.Argument()], version: Annotated[int, typer.Argument()]) -> None:
    """Archive a version (it leaves its stages and aliases and cannot be promoted)."""
    with _registry() as reg:
        reg.archive(name, version)
    console.print(f"{safe(name)}@{version} archived")


@registry_app.command("alias")
def alias(
    name: Annotated[str, typer.Argument()],
    alias_name: Annotated[str, typer.Argument(metavar="ALIAS")],
    version: Annotated[int | None, typer.Argument()] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Remove the alias.")] = False,
) -> None:
    """Point an alias (such as champion) at a version, or remove it with --delete."""
    with _registry() as reg:
        if delete:
            reg.delete_alias(name, alias_name)
            console.print(f"alias {safe(alias_name)} of {safe(name)} removed")
            return
        if version is None:
            raise InputError("give the VERSION the alias should point at (or --delete)")
        reg.set_alias(name, alias_name, version)
    console.print(f"{safe(name)}@{safe(alias_name)} -> version {version}")


@registry_app.command("approve")
def approve(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION, pinned (not latest, a stage or an alias).")],
    comment: Annotated[str, typer.Option(help="Why.")] = "",
) -> None:
    """Approve one pinned version for production (approver role; not your own registration)."""
    with _registry() as reg:
        reg.approve(ref, comment=comment)
    console.print(f"{safe(ref)} approved")


@registry_app.command("attach-gate")
def attach_gate(
    ref: Annotated[str, typer.Argument(help="NAME@VERSION.")],
    run_id: Annotated[
        int, typer.Argument(help="A passing `mlsecops run` id whose judged stages scanned this version.")
    ],
) -> None:
    """Attach a passing pipeline run that evaluated this version's exact files as its gate report."""
    with _registry() as reg:
        reg.attach_gate(ref, run_id)
    console.print(f"gate report of run {run_id} attached to {safe(ref)}")


@registry_app.command("history")
def history(
    name: Annotated[str, typer.Argument()],
    at: Annotated[
        str | None, typer.Option(help="Only what held each stage/alias at this UTC time (ISO 8601).")
    ] = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Which version held which stage or alias, from when to when."""
    fmt = resolve_format("json" if as_json else fmt, output)
    when: dt.datetime | None = None
    if at is not None:
        try:
            parsed = dt.datetime.fromisoformat(at)
        except ValueError:
            raise InputError(
                f"--at must be an ISO date or time such as 2026-11-22T10:00; got {at!r}"
            ) from None
        when = parsed
    with _registry() as reg:
        rows = reg.history(name, at=when)
    doc = [dict(r.__dict__) for r in rows]
    title = f"{name}: {len(rows)} holding(s)" + (f" at {at}" if at else "")
    listing = Listing(
        kind="registry.history", subject=name, title=title, key="holdings", rows=doc, document=doc
    )
    emit_listing(listing, fmt, output, text=lambda: _holdings(title, rows))


def _holdings(title: str, rows: list[Any]) -> Any:
    """One line per holding, readable at 80 columns (CI logs): slot, version, from (by, how), until."""
    from rich.console import Group
    from rich.text import Text

    lines: list[Any] = [Text(f"{title}, times in UTC", style="bold")]
    for r in rows:
        until = (
            Text("now", style="green")
            if not r.ended
            else Text.assemble(short_time(r.ended), " by ", cell(r.ended_by or ""))
        )
        lines.append(
            Text.assemble(
                cell(r.slot),
                (f" v{r.version}", "bold"),
                "  ",
                short_time(r.started),
                " by ",
                cell(r.started_by),
                " (",
                cell(r.reason),
                ") -> ",
                until,
            )
        )
    return Group(*lines)


@registry_app.command("webhook-add")
def webhook_add(
    url: Annotated[str, typer.Argument()],
    secret_env: Annotated[
        str, typer.Option(help="Environment variable holding the HMAC secret (16+ chars).")
    ] = "MLSECOPS_WEBHOOK_SECRET",
    event: Annotated[
        list[str] | None, typer.Option("--event", help="Event to send (repeatable; default: all).")
    ] = None,
) -> None:
    """Announce registrations, promotions and rollbacks to URL, HMAC-SHA256 signed (admin)."""
    secret = os.environ.get(secret_env, "")
    if len(secret) < _MIN_WEBHOOK_SECRET:
        have = f"it holds {len(secret)} characters" if secret else "it is not set"
        raise InputError(
            f"set {secret_env} to the webhook's HMAC secret of at least {_MIN_WEBHOOK_SECRET} characters"
            f" ({have}); --secret-env names another variable"
        )
    with _registry() as reg:
        hook = reg.add_webhook(url, secret, event or ("*",))
    console.print(f"webhook {safe(hook)} added")


def register(app: typer.Typer) -> None:
    """Add ``registry`` (with ``users``, ``keys`` and the trusted signing keys) to the app."""
    from mlsecops.cli import _registry_grants, _registry_identity

    _registry_identity.register(registry_app)
    _registry_grants.register(registry_app)
    app.add_typer(registry_app, name="registry")
