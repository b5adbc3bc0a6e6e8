"""``mlsecops init`` and ``mlsecops checks``."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from mlsecops.cli._common import console, open_workspace
from mlsecops.core.checks import all_checks
from mlsecops.store._database import redact_url

__all__ = ["register"]


def init() -> None:
    """Create the workspace (.mlsecops/ here, or MLSECOPS_HOME): database, artifacts/, keys/."""
    with open_workspace(create=True) as ws:
        console.print(f"workspace ready at [bold]{ws.home}[/] (database {redact_url(ws.url)})")


def checks(
    as_json: Annotated[bool, typer.Option("--json", help="Print the catalogue as JSON.")] = False,
) -> None:
    """List the registered checks (the names pipelines and policies use)."""
    specs = all_checks()
    if as_json:
        rows = [
            {"name": s.name, "kind": str(s.kind), "summary": s.summary, "metrics": list(s.metrics)}
            for s in specs
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"{len(specs)} registered checks")
    for col in ("name", "kind", "summary", "metrics"):
        table.add_column(col, overflow="fold")
    for s in specs:
        table.add_row(s.name, str(s.kind), s.summary, ", ".join(s.metrics))
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add the commands of this module to the app."""
    app.command("init")(init)
    app.command("checks")(checks)
