"""``mlsecops init`` and ``mlsecops checks``."""

from __future__ import annotations

from typing import Annotated

import typer

from mlsecops.cli._common import (
    FormatOpt,
    Listing,
    OutputOpt,
    console,
    emit_listing,
    err_console,
    open_workspace,
    safe,
)
from mlsecops.core.checks import all_checks, unavailable_checks
from mlsecops.core.redaction import redact

__all__ = ["register"]


def init() -> None:
    """Create the workspace (.mlsecops/ here, or MLSECOPS_HOME): database, artifacts/, keys/."""
    with open_workspace(create=True) as ws:
        console.print(f"workspace ready at [bold]{safe(ws.home)}[/] (database {safe(redact(ws.url))})")


def checks(
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    as_json: Annotated[bool, typer.Option("--json", hidden=True, help="Same as --format json.")] = False,
) -> None:
    """List the registered checks (the names pipelines and policies use), their stage options and
    metrics, and any check module an optional library is missing for.
    """
    specs = all_checks()
    rows = [
        {
            "name": s.name,
            "kind": str(s.kind),
            "summary": s.summary,
            "options": "any" if s.options is None else ", ".join(s.options),
            "metrics": ", ".join(s.metrics),
        }
        for s in specs
    ]
    document = [
        {**r, "options": None if s.options is None else list(s.options), "metrics": list(s.metrics)}
        for r, s in zip(rows, specs, strict=True)
    ]
    for module, missing in sorted(unavailable_checks().items()):
        err_console.print(f"note: checks in {safe(module)} are unavailable: {safe(missing)} is not installed")
    listing = Listing(
        kind="checks",
        subject="check catalogue",
        title=f"{len(specs)} registered checks",
        key="checks",
        rows=rows,
        document=document,
    )
    emit_listing(listing, "json" if as_json else fmt, output)


def register(app: typer.Typer) -> None:
    """Add the commands of this module to the app."""
    app.command("init")(init)
    app.command("checks")(checks)
