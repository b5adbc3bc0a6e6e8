"""``mlsecops registry users | keys | trust-key | distrust-key``: who may act, and which signing keys
the registry trusts.

The first admin is created without a key: ``mlsecops registry users add alice --role admin`` prints
alice's key once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from mlsecops.cli._common import (
    FormatOpt,
    Listing,
    OutputOpt,
    cell,
    console,
    emit_listing,
    open_workspace,
    resolve_format,
    safe,
)
from mlsecops.cli._registry_common import KEY_ENV, JsonOpt, api_key, registry_session, show_key
from mlsecops.registry import (
    Role,
    authenticate,
    create_api_key,
    create_user,
    list_users,
    revoke_api_key,
    set_user_disabled,
)

__all__ = ["register"]

users_app = typer.Typer(help="Registry users and their roles.", no_args_is_help=True)
apikeys_app = typer.Typer(help="Registry API keys.", no_args_is_help=True)
trust_app = typer.Typer()


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[
        Role,
        typer.Option(
            "--role",
            case_sensitive=False,
            help="admin, approver, deployer, viewer or client (may only infer).",
        ),
    ],
) -> None:
    """Create a user and print its first API key (the first user is an admin and needs no key)."""
    with open_workspace() as ws:
        actor = authenticate(ws, api_key()) if os.environ.get(KEY_ENV) else None
        create_user(ws, name, role, actor=actor)
        show_key(name, create_api_key(ws, name, actor=actor, label="initial"))


@users_app.command("list")
def users_list(fmt: FormatOpt = None, output: OutputOpt = None, as_json: JsonOpt = False) -> None:
    """List users, roles and key ids."""
    fmt = resolve_format("json" if as_json else fmt, output)
    with open_workspace() as ws:
        rows = list_users(ws, actor=authenticate(ws, api_key()))
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
        set_user_disabled(ws, name, not enable, actor=authenticate(ws, api_key()))
    console.print(f"{safe(name)} {'enabled' if enable else 'disabled'}")


@apikeys_app.command("create")
def apikeys_create(
    user: Annotated[str, typer.Argument()],
    label: Annotated[str, typer.Option(help="What the key is for.")] = "",
) -> None:
    """Create another API key for a user (admin)."""
    with open_workspace() as ws:
        show_key(user, create_api_key(ws, user, actor=authenticate(ws, api_key()), label=label))


@apikeys_app.command("revoke")
def apikeys_revoke(key_id: Annotated[str, typer.Argument(help="The key id (the part after mlsk_).")]) -> None:
    """Revoke an API key; it is refused from now on."""
    with open_workspace() as ws:
        revoke_api_key(ws, key_id, actor=authenticate(ws, api_key()))
    console.print(f"key {safe(key_id)} revoked")


@trust_app.command("trust-key")
def trust_key(
    name: Annotated[str, typer.Argument()],
    public_key: Annotated[Path, typer.Argument(help="PEM public key.")],
) -> None:
    """Trust a signing key for promotion to production (admin)."""
    with registry_session() as reg:
        hint = reg.trust_key(name, public_key)
    console.print(f"trusted key {safe(name)} {hint[:16]}...")


@trust_app.command("distrust-key")
def distrust_key(name: Annotated[str, typer.Argument()]) -> None:
    """Stop trusting a signing key (admin)."""
    with registry_session() as reg:
        reg.distrust_key(name)
    console.print(f"key {safe(name)} is no longer trusted")


def register(registry_app: typer.Typer) -> None:
    """Add ``users``, ``keys``, ``trust-key`` and ``distrust-key`` to ``mlsecops registry``."""
    registry_app.add_typer(users_app, name="users")
    registry_app.add_typer(apikeys_app, name="keys")
    for command in trust_app.registered_commands:
        registry_app.registered_commands.append(command)
