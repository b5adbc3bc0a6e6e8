"""``mlsecops alerts list|show|ack|resolve|respond``, ``mlsecops incidents list|show`` and
``mlsecops incidents quarantine list|release|export``.

Reading alerts and incidents needs the workspace only (like ``mlsecops audit log``). Acknowledging and
resolving record who did it: the owner of the API key in ``MLSECOPS_API_KEY``, whose role must be one
of ``monitor.alerts.ACK_ROLES`` (admin, approver, deployer: as on the dashboard); a viewer or client is
refused (exit 1, recorded as ``monitor.denied``). ``alerts respond`` runs
the playbooks of a guard policy on a stored alert; without ``--dry-run`` it acts (blocks, rolls back),
so it needs an admin's key; with ``--dry-run`` it only shows what would happen and writes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.table import Table

from mlsecops.cli._common import (
    FormatOpt,
    Listing,
    OutputOpt,
    cell,
    console,
    emit_listing,
    err_console,
    open_workspace,
    safe,
    short_time,
)
from mlsecops.cli._registry_common import api_key
from mlsecops.core.errors import GovernanceRefusal
from mlsecops.monitor.alerts import AlertStore, StoredAlert
from mlsecops.registry import Actor, Permission, authenticate
from mlsecops.runtime.incidents import Incident, get_incident, list_incidents
from mlsecops.runtime.policy import load_policy
from mlsecops.runtime.response import ResponseEngine, webhook_notifier
from mlsecops.store import Workspace

__all__ = ["register"]

alerts_app = typer.Typer(
    help="Alerts of the runtime detectors: list, show, acknowledge, resolve, respond.", no_args_is_help=True
)
incidents_app = typer.Typer(
    help="Automated responses: alert -> actions -> outcome, with timings.", no_args_is_help=True
)

LimitOpt = Annotated[int, typer.Option("--limit", help="Most rows shown (newest first).", min=1, max=10_000)]
ModelOpt = Annotated[str | None, typer.Option("--model", help="Only this model's.")]


def _actor(ws: Workspace) -> Actor:
    return authenticate(ws, api_key())


def _row(a: StoredAlert) -> dict[str, Any]:
    return {
        "id": a.id,
        "status": str(a.status),
        "severity": str(a.severity),
        "kind": a.kind,
        "principal": a.principal,
        "model": a.model,
        "count": a.count,
        "first seen": short_time(a.first_seen),
        "last seen": short_time(a.last_seen),
        "ack by": a.acked_by or "",
    }


@alerts_app.command("list")
def alerts_list(
    status: Annotated[str | None, typer.Option("--status", help="open, acknowledged or resolved.")] = None,
    model: ModelOpt = None,
    principal: Annotated[str | None, typer.Option("--principal", help="Only this principal's.")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="Only this kind (extraction, drift...).")] = None,
    limit: LimitOpt = 100,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """List alerts, newest first."""
    with open_workspace() as ws:
        alerts = AlertStore(ws).list(status=status, model=model, principal=principal, kind=kind, limit=limit)
    listing = Listing(
        kind="alerts.list",
        subject="alerts",
        title=f"{len(alerts)} alert(s)",
        key="alerts",
        rows=[_row(a) for a in alerts],
        document=[a.to_json() for a in alerts],
        # eight short columns fit 80 characters; `alerts show ID` or --format json has every field
        columns=("id", "status", "severity", "kind", "principal", "model", "count", "last seen"),
        no_wrap=("id", "status", "severity", "count", "last seen"),
        compact=True,
    )
    emit_listing(listing, fmt, output)


def _alert_listing(a: StoredAlert) -> Listing:
    doc = a.to_json()
    return Listing(
        kind="alerts.show",
        subject=f"alert {a.id}",
        title=f"alert {a.id}: {a.kind} ({a.severity}, {a.status})",
        key="fields",
        rows=[{"field": k, "value": v} for k, v in doc.items()],
        document=doc,
        no_wrap=("field",),
    )


@alerts_app.command("show")
def alerts_show(
    alert_id: Annotated[int, typer.Argument(metavar="ID", help="The alert id (`mlsecops alerts list`).")],
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Show one alert with its evidence."""
    with open_workspace() as ws:
        alert = AlertStore(ws).get(alert_id)
    emit_listing(_alert_listing(alert), fmt, output)


NoteOpt = Annotated[str, typer.Option("--note", help="Why, or what is being done (kept in the audit trail).")]


@alerts_app.command("ack")
def alerts_ack(
    alert_id: Annotated[int, typer.Argument(metavar="ID")],
    note: NoteOpt = "",
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Acknowledge an open alert as the owner of MLSECOPS_API_KEY (audited; announced by webhook)."""
    with open_workspace() as ws:
        actor = _actor(ws)
        alert = AlertStore(ws, notify=webhook_notifier(ws, actor=actor.name)).acknowledge(
            alert_id, actor=actor.name, note=note, role=actor.role
        )
    emit_listing(_alert_listing(alert), fmt, output)


@alerts_app.command("resolve")
def alerts_resolve(
    alert_id: Annotated[int, typer.Argument(metavar="ID")],
    note: NoteOpt = "",
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Resolve an alert (audited); the next alert of its kind, principal and model opens a new one."""
    with open_workspace() as ws:
        actor = _actor(ws)
        alert = AlertStore(ws).resolve(alert_id, actor=actor.name, note=note, role=actor.role)
    emit_listing(_alert_listing(alert), fmt, output)


@alerts_app.command("respond")
def alerts_respond(
    alert_id: Annotated[int, typer.Argument(metavar="ID")],
    policy: Annotated[Path, typer.Option("--policy", help="The guard policy whose playbooks to run.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would happen; change nothing.")
    ] = False,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Run the policy's playbooks that match a stored alert (admin), or show them with --dry-run."""
    guard_policy = load_policy(policy)
    with open_workspace() as ws:
        if not dry_run:
            actor = _actor(ws)
            if not actor.can(Permission.ADMIN):
                raise GovernanceRefusal(
                    f"{actor.name} ({actor.role}) may not run playbooks; that needs the role admin"
                )
        engine = ResponseEngine(ws, guard_policy, dry_run=dry_run)
        incidents = engine.respond(alert_id)
        if any(i.status == "running" for i in incidents):  # a retrain: this process must see it end
            err_console.print("waiting for the retraining pipeline (bounded by its timeout_s)...")
            engine.wait()
            incidents = [get_incident(ws, i.id) if i.id is not None else i for i in incidents]
        if engine.announcer is not None:
            engine.announcer.flush()
    title = ("would run" if dry_run else "ran") + f" {len(incidents)} playbook(s)"
    _emit_incidents(incidents, fmt, output, title=title, actions=True)


# ---------------------------------------------------------------------------------------------- incidents


def _incident_row(i: Incident) -> dict[str, Any]:
    doc = i.to_json()
    return {
        "id": i.id if i.id is not None else "(dry run)",
        "status": i.status,
        "playbook": i.playbook,
        "alert": f"{i.alert.id} {i.alert.kind}",
        "principal": i.alert.principal,
        "model": i.alert.model,
        "actions": ", ".join(f"{a.action}:{a.status}" for a in i.actions),
        "started": short_time(i.started),
        "time to outcome (s)": doc["time_to_outcome_s"],
    }


def _actions_table(incidents: list[Incident], title: str) -> Table:
    """Each action of each incident with what it did (or, in a dry run, would do)."""
    table = Table(title=title, title_justify="left")
    for col in ("incident", "playbook", "action", "status", "detail"):
        table.add_column(col, overflow="fold", no_wrap=col in ("incident", "status"))
    for i in incidents:
        for a in i.actions:
            shown = a.detail.get("would") or a.detail.get("error") or a.detail
            table.add_row(
                cell(i.id if i.id is not None else "-"),
                cell(i.playbook),
                cell(a.action),
                cell(a.status),
                cell(shown),
            )
    return table


def _emit_incidents(
    incidents: list[Incident], fmt: Any, output: Path | None, *, title: str, actions: bool = False
) -> None:
    listing = Listing(
        kind="incidents.list",
        subject="incidents",
        title=title,
        key="incidents",
        rows=[_incident_row(i) for i in incidents],
        document=[i.to_json() for i in incidents],
        no_wrap=("id", "status"),
    )
    emit_listing(listing, fmt, output, text=(lambda: _actions_table(incidents, title)) if actions else None)


@incidents_app.command("list")
def incidents_list(
    status: Annotated[
        str | None, typer.Option("--status", help="running, completed, partial or failed.")
    ] = None,
    model: ModelOpt = None,
    limit: LimitOpt = 100,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """List incidents (playbook runs), newest first."""
    with open_workspace() as ws:
        incidents = list_incidents(ws, status=status, model=model, limit=limit)
    _emit_incidents(incidents, fmt, output, title=f"{len(incidents)} incident(s)")


def _timeline(i: Incident) -> Group:
    doc = i.to_json()
    head = Table(
        title=f"incident {i.id}: playbook {safe(i.playbook)}, {i.status}",
        title_justify="left",
        show_header=False,
    )
    head.add_column("field", no_wrap=True)
    head.add_column("value", overflow="fold")
    alert = i.alert
    for k, v in (
        (
            "alert",
            f"{alert.id} {alert.kind} ({alert.severity}) principal {alert.principal!r} model {alert.model!r}",
        ),
        ("first seen", f"{alert.first_seen} (query {alert.first_query_index})"),
        ("started", i.started),
        ("finished", i.finished or "(running)"),
        ("time to outcome (s)", doc["time_to_outcome_s"]),
    ):
        head.add_row(k, cell(v))
    steps = Table(title="timeline", title_justify="left")
    for col in ("t (s)", "event", "detail"):
        steps.add_column(col, overflow="fold", no_wrap=col == "t (s)")
    details = {f"action.{a.action}.{a.status}": a.detail for a in i.actions}
    for e in doc["timeline"]:
        extra = details.get(e["event"], {k: v for k, v in e.items() if k not in ("at", "event", "t_s")})
        steps.add_row(f"{e['t_s']:.3f}", cell(e["event"]), cell(extra or ""))
    return Group(head, steps)


@incidents_app.command("show")
def incidents_show(
    incident_id: Annotated[
        int, typer.Argument(metavar="ID", help="The incident id (`mlsecops incidents list`).")
    ],
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Show an incident: the alert, each action with its timing and detail, the outcome (--format json:
    the timeline).
    """
    with open_workspace() as ws:
        incident = get_incident(ws, incident_id)
    doc = incident.to_json()
    listing = Listing(
        kind="incidents.show",
        subject=f"incident {incident_id}",
        title=f"incident {incident_id}",
        key="timeline",
        rows=doc["timeline"],
        document=doc,
        columns=("t_s", "event", "at"),
    )
    emit_listing(listing, fmt, output, text=lambda: _timeline(incident))


# ---------------------------------------------------------------------------------------------- quarantine

quarantine_app = typer.Typer(
    help="Quarantined logged inputs: list the ranges, release one, export training data without them.",
    no_args_is_help=True,
)


@quarantine_app.command("list")
def quarantine_list(
    active: Annotated[bool, typer.Option("--active", help="Only ranges not released.")] = False,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """List quarantine ranges (a principal's or a source's logged inputs kept out of training data)."""
    from mlsecops.runtime.quarantine import list_quarantines

    with open_workspace() as ws:
        rows = list_quarantines(ws, active_only=active)
    listing = Listing(
        kind="quarantine.list",
        subject="quarantine",
        title=f"{len(rows)} quarantine range(s)",
        key="quarantines",
        rows=rows,
        document=rows,
        columns=(
            "id",
            "scope",
            "value",
            "model",
            "start_time",
            "end_time",
            "incident_id",
            "released",
            "copy",
        ),
        no_wrap=("id", "scope"),
    )
    emit_listing(listing, fmt, output)


@quarantine_app.command("release")
def quarantine_release(
    quarantine_id: Annotated[int, typer.Argument(metavar="ID")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit trail).")],
) -> None:
    """Release a quarantine range (admin): training exports include its requests again."""
    from mlsecops.runtime.quarantine import release

    with open_workspace() as ws:
        actor = _actor(ws)
        if not actor.can(Permission.ADMIN):
            raise GovernanceRefusal(
                f"{actor.name} ({actor.role}) may not release a quarantine; that needs the role admin"
            )
        release(ws, quarantine_id, actor=actor.name, reason=reason)
    console.print(f"quarantine {quarantine_id} released")


@quarantine_app.command("export")
def quarantine_export(
    model: Annotated[str, typer.Argument(help="Served model name.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="JSON Lines file (mode 0600).")],
) -> None:
    """Write a model's logged requests without the quarantined ones (training data for a retrain), in
    the replay format of `mlsecops monitor export-log`.
    """
    from mlsecops.runtime.quarantine import export_for_training

    with open_workspace() as ws:
        result, left_out = export_for_training(ws, model, output)
    err_console.print(
        f"exported {result.written - left_out} request(s) of {safe(model)} to {safe(output)}; "
        f"{left_out} quarantined request(s) left out"
    )


def register(app: typer.Typer) -> None:
    """Add ``alerts`` and ``incidents`` (with ``incidents quarantine``) to the app."""
    incidents_app.add_typer(quarantine_app, name="quarantine")
    app.add_typer(alerts_app, name="alerts")
    app.add_typer(incidents_app, name="incidents")
