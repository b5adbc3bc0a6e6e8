"""``mlsecops registry ...`` (models, versions, stages, aliases, approvals, users, keys) and
``mlsecops lineage show``.

The acting user is the owner of the API key in ``MLSECOPS_API_KEY`` (never a command-line option,
where it would show in the process list). The first admin is created without a key:
``mlsecops registry users add alice --role admin`` prints alice's key once.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.tree import Tree

from mlsecops.cli._common import (
    FormatOpt,
    Listing,
    OutputOpt,
    cell,
    console,
    emit_listing,
    err_console,
    open_workspace,
    resolve_format,
    safe,
    short_time,
)
from mlsecops.core.errors import InputError, PermissionDenied
from mlsecops.registry import (
    Registry,
    Role,
    authenticate,
    create_api_key,
    create_user,
    list_users,
    revoke_api_key,
    set_user_disabled,
)
from mlsecops.store import Workspace

__all__ = ["bom_context", "register"]

registry_app = typer.Typer(
    help="The model registry: register, promote, roll back, approve.", no_args_is_help=True
)
users_app = typer.Typer(help="Registry users and their roles.", no_args_is_help=True)
apikeys_app = typer.Typer(help="Registry API keys.", no_args_is_help=True)
lineage_app = typer.Typer(help="The lineage graph of models and data.", no_args_is_help=True)
_KEY_ENV = "MLSECOPS_API_KEY"
JsonOpt = Annotated[bool, typer.Option("--json", hidden=True, help="Same as --format json.")]
# the registry's minimum webhook secret length (add_webhook checks it too); named here to say which
# environment variable is short
_MIN_WEBHOOK_SECRET = 16


def _api_key() -> str:
    key = os.environ.get(_KEY_ENV, "").strip()
    if not key:
        raise PermissionDenied(
            f"set {_KEY_ENV} to your registry API key (an admin creates it with `mlsecops registry keys create`)"
        )
    return key


@contextmanager
def _registry() -> Iterator[Registry]:
    with open_workspace() as ws:
        yield Registry(ws, authenticate(ws, _api_key()))


def _show_key(user: str, key: str) -> None:
    console.print(f"API key for [bold]{safe(user)}[/] (shown only now; store it as {_KEY_ENV}):")
    typer.echo(key)


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[
        Role, typer.Option("--role", case_sensitive=False, help="admin, approver, deployer or viewer.")
    ],
) -> None:
    """Create a user and print its first API key (the first user is an admin and needs no key)."""
    with open_workspace() as ws:
        actor = authenticate(ws, _api_key()) if os.environ.get(_KEY_ENV) else None
        create_user(ws, name, role, actor=actor)
        _show_key(name, create_api_key(ws, name, actor=actor, label="initial"))


@users_app.command("list")
def users_list(fmt: FormatOpt = None, output: OutputOpt = None, as_json: JsonOpt = False) -> None:
    """List users, roles and key ids."""
    fmt = resolve_format("json" if as_json else fmt, output)
    with open_workspace() as ws:
        rows = list_users(ws, actor=authenticate(ws, _api_key()))
    listing = Listing(
        kind="registry.users",
        subject="registry users",
        title=f"{len(rows)} user(s)",
        key="users",
        rows=rows,
        document=rows,
    )
    emit_listing(listing, fmt, output, text=lambda: _users_table(rows))


def _users_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title=f"{len(rows)} user(s)")
    for col in ("name", "role", "disabled", "keys (id: revoked?)"):
        table.add_column(col)
    for r in rows:
        keys = ", ".join(f"{k['id']}{' (revoked)' if k['revoked'] else ''}" for k in r["keys"])
        table.add_row(cell(r["name"]), str(r["role"]), str(r["disabled"]), cell(keys))
    return table


@users_app.command("disable")
def users_disable(
    name: Annotated[str, typer.Argument()],
    enable: Annotated[bool, typer.Option("--enable", help="Enable instead.")] = False,
) -> None:
    """Disable a user (all their keys are refused) or enable it again."""
    with open_workspace() as ws:
        set_user_disabled(ws, name, not enable, actor=authenticate(ws, _api_key()))
    console.print(f"{safe(name)} {'enabled' if enable else 'disabled'}")


@apikeys_app.command("create")
def apikeys_create(
    user: Annotated[str, typer.Argument()],
    label: Annotated[str, typer.Option(help="What the key is for.")] = "",
) -> None:
    """Create another API key for a user (admin)."""
    with open_workspace() as ws:
        _show_key(user, create_api_key(ws, user, actor=authenticate(ws, _api_key()), label=label))


@apikeys_app.command("revoke")
def apikeys_revoke(key_id: Annotated[str, typer.Argument(help="The key id (the part after mlsk_).")]) -> None:
    """Revoke an API key; it is refused from now on."""
    with open_workspace() as ws:
        revoke_api_key(ws, key_id, actor=authenticate(ws, _api_key()))
    console.print(f"key {safe(key_id)} revoked")


@registry_app.command("trust-key")
def trust_key(
    name: Annotated[str, typer.Argument()],
    public_key: Annotated[Path, typer.Argument(help="PEM public key.")],
) -> None:
    """Trust a signing key for promotion to production (admin)."""
    with _registry() as reg:
        hint = reg.trust_key(name, public_key)
    console.print(f"trusted key {safe(name)} {hint[:16]}...")


@registry_app.command("distrust-key")
def distrust_key(name: Annotated[str, typer.Argument()]) -> None:
    """Stop trusting a signing key (admin)."""
    with _registry() as reg:
        reg.distrust_key(name)
    console.print(f"key {safe(name)} is no longer trusted")


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
    files and an approval)."""
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
    when = None
    if at is not None:
        try:
            parsed = dt.datetime.fromisoformat(at)
        except ValueError:
            raise InputError(
                f"--at must be an ISO date or time such as 2026-11-22T10:00; got {at!r}"
            ) from None
        when = (
            (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC))
            .astimezone(dt.UTC)
            .isoformat(timespec="microseconds")
        )
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


def _lineage_tree(ws: Workspace, ref: str) -> tuple[Tree, dict[str, Any]]:
    from mlsecops.registry import parse_ref
    from mlsecops.store import lineage

    name, which = parse_ref(ref)
    with ws.session(readonly=True) as s:
        if which is None or not which.isdigit():
            from mlsecops.registry import resolve

            _, v = resolve(s, ref)
            which = str(v.version)
        node = lineage.find_node(s, "model_version", name, which)
        if node is None:
            raise InputError(f"no lineage recorded for {name}@{which}")
        graph = lineage.ancestors(s, node)
        children: dict[int, list[tuple[int, str]]] = {}
        for parent, child, relation in graph.edges:
            children.setdefault(child, []).append((parent, relation))

        def label(n: Any) -> str:
            digest = f" sha256:{n.digest[:16]}..." if n.digest else ""
            return f"{n.kind} {n.name}" + (f"@{n.version}" if n.version else "") + digest

        tree = Tree(safe(label(node)))
        doc: dict[str, Any] = {"root": node.id, "nodes": {}, "edges": [list(e) for e in graph.edges]}
        for n in graph.nodes.values():
            doc["nodes"][str(n.id)] = {
                "kind": n.kind,
                "name": n.name,
                "version": n.version,
                "digest": n.digest,
            }

        def grow(branch: Tree, node_id: int, seen: set[int]) -> None:
            for parent, relation in children.get(node_id, []):
                p = graph.nodes[parent]
                sub = branch.add(f"[dim]{relation}[/] " + safe(label(p)))
                if parent not in seen:
                    grow(sub, parent, seen | {parent})

        grow(tree, node.id, {node.id})
    return tree, doc


@lineage_app.command("show")
def lineage_show(
    ref: Annotated[str, typer.Argument(help="MODEL@VERSION (or @production, @ALIAS).")],
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the lineage of a model version back to the raw data digests."""
    fmt = resolve_format("json" if as_json else fmt, output)
    with open_workspace() as ws:
        tree, doc = _lineage_tree(ws, ref)
    nodes = [{"id": int(k), **v} for k, v in doc["nodes"].items()]
    listing = Listing(
        kind="lineage.show", subject=ref, title=f"lineage of {ref}", key="nodes", rows=nodes, document=doc
    )
    emit_listing(listing, fmt, output, text=lambda: tree)


def bom_context(ref: str) -> dict[str, Any]:
    """What the registry knows about a version, for ``mlsecops bom --ref``: datasets, scan, signature."""
    with open_workspace() as ws:
        reg = Registry(ws, authenticate(ws, _api_key()))
        info = reg.show(ref)
        _, doc = _lineage_tree(ws, f"{info.name}@{info.version}")
        metrics: dict[str, float] = {}
        if info.gate_run_id is not None:
            from sqlalchemy import select

            from mlsecops.store import StoredReport

            with ws.session(readonly=True) as s:
                body = s.execute(
                    select(StoredReport.body).where(
                        StoredReport.run_id == info.gate_run_id, StoredReport.stage.is_(None)
                    )
                ).scalar_one_or_none()
            if body is not None:
                metrics = dict(json.loads(body).get("metrics", {}))
    datasets = [n for n in doc["nodes"].values() if n["kind"] == "dataset"]
    err_console.print(f"BOM for registry version {info.name}@{info.version}")
    return {"version": info.to_json(), "datasets": datasets, "metrics": metrics}


def register(app: typer.Typer) -> None:
    """Add ``registry`` (with ``users`` and ``keys``) and ``lineage`` to the app."""
    registry_app.add_typer(users_app, name="users")
    registry_app.add_typer(apikeys_app, name="keys")
    app.add_typer(registry_app, name="registry")
    app.add_typer(lineage_app, name="lineage")
