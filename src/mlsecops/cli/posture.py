"""``mlsecops posture [NAME[@VERSION]] [--at TIME]``: the security posture of model versions.

Without a name: every version, one line each. With ``NAME``: that model's versions. With
``NAME@VERSION`` (or ``@production``, ``@ALIAS``): every part of that version's posture with why, and
its findings with their MITRE ATLAS and OWASP ML Top 10 ids. ``--at`` shows the postures as they were
at that moment (and resolves a stage or alias as it was then).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import typer

from mlsecops.cli._common import (
    FormatOpt,
    Listing,
    OutputOpt,
    cell,
    emit_listing,
    open_workspace,
    resolve_format,
)
from mlsecops.core.errors import InputError
from mlsecops.posture import VersionPosture, all_postures, at_time, model_posture, parse_time
from mlsecops.registry import parse_ref
from mlsecops.report import Format

__all__ = ["register"]

_STYLE = {
    "ok": "green",
    "warn": "yellow",
    "fail": "bold red",
    "missing": "dim",
    "good": "green",
    "fair": "yellow",
    "poor": "bold red",
    "unknown": "dim",
}


def _resolve(ws: Any, ref: str, at: str | None) -> tuple[str, int | None]:
    """``(name, version)`` of ``NAME``, ``NAME@3``, ``NAME@production`` or ``NAME@ALIAS`` (then or now)."""
    name, which = parse_ref(ref)
    if which is None or which in ("", "latest"):
        return name, None
    if which.isdigit():
        return name, int(which)
    held = at_time(ws, name, at if at is not None else dt.datetime.now(dt.UTC))
    if which not in held:
        when = f" at {parse_time(at)}" if at is not None else ""
        raise InputError(
            f"{name} had no version in {which!r}{when}; `mlsecops registry show {name}` lists its stages"
        )
    return name, held[which]


def _row(p: VersionPosture) -> dict[str, Any]:
    worst = [x.name for x in p.parts if x.status == "fail"]
    return {
        "model": p.model,
        "version": p.version,
        "grade": p.grade,
        "score": p.score,
        "holds": ",".join(p.aliases),
        "alerts": p.open_alerts,
        "failing": ",".join(worst),
    }


def _detail(p: VersionPosture) -> Any:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    head = Text.assemble(
        (f"{p.model}@{p.version}", "bold"),
        "  grade ",
        (p.grade, _STYLE[p.grade]),
        f"  score {p.score if p.score is not None else '-'}",
        f"  holds {', '.join(p.aliases) or '-'}",
        f"  open alerts {p.open_alerts}, incidents {p.open_incidents}",
    )
    table = Table(show_lines=False, expand=False)
    table.add_column("part", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("score", justify="right", no_wrap=True)
    table.add_column("why", overflow="fold")
    for part in p.parts:
        table.add_row(
            cell(part.name),
            Text(part.status, style=_STYLE[part.status]),
            cell("-" if part.score is None else part.score),
            cell(part.summary),
        )
    items: list[Any] = [head, table]
    findings = [(part.name, f) for part in p.parts for f in part.findings]
    if findings:
        items.append(Text("findings", style="bold"))
        for name, f in findings:
            ids = ", ".join((*f.atlas, *f.owasp)) or "-"
            items.append(
                Text.assemble(
                    (
                        f"[{f.severity}] ",
                        _STYLE.get("fail" if f.severity in ("critical", "high") else "warn", ""),
                    ),
                    f"{name}: ",
                    cell(f.title),
                    f"  ({ids})",
                )
            )
    return Group(*items)


def posture_command(
    ref: Annotated[
        str | None, typer.Argument(help="NAME, NAME@VERSION, NAME@production or NAME@ALIAS.")
    ] = None,
    at: Annotated[
        str | None, typer.Option("--at", help="Show the posture as it was at this time (ISO 8601, UTC).")
    ] = None,
    fmt: FormatOpt = None,
    output: OutputOpt = None,
) -> None:
    """Security posture of model versions: scan, signature, ML-BOM, data, robustness, privacy,
    fairness, drift, alerts, gate and approvals, each with why.
    """
    chosen = resolve_format(fmt, output)
    if chosen is Format.SARIF:
        raise InputError("posture is shown as text, json or html; sarif is for findings of one check")
    moment = parse_time(at) if at is not None else None
    with open_workspace() as ws:
        if ref is not None:
            name, version = _resolve(ws, ref, moment)
            if version is not None:
                p = model_posture(ws, name, version, at=moment)
                listing = Listing(
                    kind="posture",
                    subject=f"{p.model}@{p.version}",
                    title=f"posture of {p.model}@{p.version}",
                    key="parts",
                    rows=[{k: v for k, v in part.to_dict().items() if k != "findings"} for part in p.parts],
                    document=p.to_dict(),
                )
                emit_listing(listing, chosen, output, text=lambda: _detail(p))
                return
            found = [p for p in all_postures(ws, at=moment) if p.model == name]
            if not found:
                model_posture(ws, name, 1, at=moment)  # raises the right one-line error
        else:
            found = all_postures(ws, at=moment)
    listing = Listing(
        kind="posture",
        subject=ref or "workspace",
        title="posture of " + (ref or "every model version") + (f" at {moment}" if moment else ""),
        key="versions",
        rows=[_row(p) for p in found],
        document=[p.to_dict() for p in found],
        compact=True,
        no_wrap=("version", "grade", "score", "alerts"),
    )
    emit_listing(listing, chosen, output)


def register(app: typer.Typer) -> None:
    """Add ``posture`` to the app."""
    app.command("posture")(posture_command)
