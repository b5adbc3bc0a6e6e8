"""``mlsecops registry grant | revoke-grant | grants | block | unblock | controls``: who may call which
model in the runtime guard, and per-principal blocks.

All of them need an admin's API key in ``MLSECOPS_API_KEY``. Principals are user names, ``jwt:SUBJECT``
for JWT callers, or ``*`` (grants only: every authenticated principal whose role may infer); ``*`` as
the model grants every model. Each change is an audit event, and guards apply it on their next request.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from typing import Annotated

import typer

from mlsecops.cli._common import FormatOpt, Listing, OutputOpt, console, emit_listing, open_workspace, safe
from mlsecops.core.errors import GovernanceRefusal, InputError, PermissionDenied
from mlsecops.core.findings import utcnow
from mlsecops.registry import Actor, Permission, authenticate, grant, list_grants, revoke_grant
from mlsecops.store import Workspace

__all__ = ["register"]

_KEY_ENV = "MLSECOPS_API_KEY"
_DURATION = re.compile(r"^(\d{1,6})([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _admin(ws: Workspace, subject: str) -> Actor:
    key = os.environ.get(_KEY_ENV, "").strip()
    if not key:
        raise PermissionDenied(f"set {_KEY_ENV} to an admin's registry API key")
    actor = authenticate(ws, key)
    if not actor.can(Permission.ADMIN):
        raise GovernanceRefusal(
            f"{actor.name} ({actor.role}) may not change {subject}; that needs the role admin"
        )
    return actor


def _actor(ws: Workspace) -> Actor:
    key = os.environ.get(_KEY_ENV, "").strip()
    if not key:
        raise PermissionDenied(f"set {_KEY_ENV} to an admin's registry API key")
    return authenticate(ws, key)


def grant_cmd(
    model: Annotated[str, typer.Argument(help="Model name, or '*' for every model.")],
    principal: Annotated[str, typer.Argument(help="User name, jwt:SUBJECT, or '*' for every principal.")],
) -> None:
    """Allow a principal to call a model in the runtime guard (admin)."""
    with open_workspace() as ws:
        added = grant(ws, model, principal, actor=_actor(ws))
    console.print(f"{safe(principal)} {'may now call' if added else 'was already granted'} {safe(model)}")


def revoke_grant_cmd(
    model: Annotated[str, typer.Argument(help="Model name, or '*'.")],
    principal: Annotated[str, typer.Argument(help="User name, jwt:SUBJECT, or '*'.")],
) -> None:
    """Remove a grant; guards refuse the principal from their next request on (admin)."""
    with open_workspace() as ws:
        revoke_grant(ws, model, principal, actor=_actor(ws))
    console.print(f"{safe(principal)} may no longer call {safe(model)}")


def grants_cmd(
    model: Annotated[
        str | None, typer.Option("--model", help="Only grants naming this model (or '*').")
    ] = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """List grants (admin)."""
    with open_workspace() as ws:
        rows = list_grants(ws, actor=_actor(ws), model=model)
    listing = Listing(
        kind="registry.grants",
        subject="registry grants",
        title=f"{len(rows)} grant(s)",
        key="grants",
        rows=rows,
        document=rows,
        columns=("model", "principal", "created", "created_by"),
        no_wrap=("created",),
    )
    emit_listing(listing, fmt, output)


def _until(until: str | None, duration: str | None) -> dt.datetime | None:
    if until is not None and duration is not None:
        raise InputError("give --until or --for, not both")
    if duration is not None:
        match = _DURATION.match(duration.strip())
        if match is None:
            raise InputError(f"--for {duration!r}: expected a number and s, m, h or d (e.g. 30m, 2h, 7d)")
        return utcnow() + dt.timedelta(seconds=int(match.group(1)) * _UNIT_S[match.group(2)])
    if until is not None:
        try:
            when = dt.datetime.fromisoformat(until)
        except ValueError:
            raise InputError(f"--until {until!r}: expected an ISO 8601 time with a UTC offset") from None
        if when.tzinfo is None:
            raise InputError(f"--until {until!r}: give the UTC offset (e.g. 2026-12-31T12:00:00+00:00)")
        return when
    return None


def block_cmd(
    principal: Annotated[str, typer.Argument(help="User name, jwt:SUBJECT or guard:anonymous.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the audit trail).")],
    until: Annotated[
        str | None, typer.Option("--until", help="End of the block (ISO 8601 with offset).")
    ] = None,
    duration: Annotated[str | None, typer.Option("--for", help="Length of the block: 30m, 2h, 7d.")] = None,
) -> None:
    """Refuse every request of a principal (403) in every guard, from its next request on (admin)."""
    from mlsecops.runtime.controls import block_principal

    end = _until(until, duration)
    with open_workspace() as ws:
        actor = _admin(ws, f"principal:{principal}")
        block_principal(ws, principal, reason=reason, actor=actor.name, until=end)
    console.print(f"{safe(principal)} blocked" + (f" until {end.isoformat()}" if end else ""))


def unblock_cmd(
    principal: Annotated[str, typer.Argument(help="User name, jwt:SUBJECT or guard:anonymous.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the audit trail).")],
) -> None:
    """Lift a block (admin)."""
    from mlsecops.runtime.controls import unblock_principal

    with open_workspace() as ws:
        actor = _admin(ws, f"principal:{principal}")
        unblock_principal(ws, principal, reason=reason, actor=actor.name)
    console.print(f"{safe(principal)} unblocked")


def controls_cmd(fmt: FormatOpt = None, output: OutputOpt = None) -> None:
    """List principals with a block, throttle or label-only switch (admin)."""
    from mlsecops.runtime.controls import list_controls

    with open_workspace() as ws:
        _admin(ws, "controls")
        rows = [c.to_json() for c in list_controls(ws)]
    listing = Listing(
        kind="registry.controls",
        subject="runtime controls",
        title=f"{len(rows)} principal(s) with controls",
        key="controls",
        rows=rows,
        document=rows,
        columns=("principal", "blocked", "block_until", "block_reason", "throttle", "label_only"),
    )
    emit_listing(listing, fmt, output)


def register(registry_app: typer.Typer) -> None:
    """Add the grant and control commands to ``mlsecops registry``."""
    registry_app.command("grant")(grant_cmd)
    registry_app.command("revoke-grant")(revoke_grant_cmd)
    registry_app.command("grants")(grants_cmd)
    registry_app.command("block")(block_cmd)
    registry_app.command("unblock")(unblock_cmd)
    registry_app.command("controls")(controls_cmd)
