"""``mlsecops monitor decisions``: the newest logged decisions of a model, with group and explanation.

Thin: reads ``runtime.decision_audit.recent_decisions`` and renders a table (or JSON with ``--json``).
Never shows raw inputs (``monitor export-log`` writes them where the policy kept them).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

import typer

from mlsecops.cli._common import cell, console, open_workspace

__all__ = ["register"]


def decisions_command(
    model: Annotated[str, typer.Argument(help="Served model name.")],
    explain: Annotated[
        bool, typer.Option("--explain", help="Only explained decisions, with their top contributions.")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Newest decisions shown.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
) -> None:
    """Show a model's newest logged decisions: group, predicted class, labels and explanation."""
    from mlsecops.runtime.decision_audit import recent_decisions

    with open_workspace() as ws:
        rows = recent_decisions(ws, model, limit=limit, explained_only=explain)
    if as_json:
        typer.echo(json.dumps({"model": model, "decisions": rows}, indent=2))
        return
    _table(model, rows, explain)


def _table(model: str, rows: list[dict[str, Any]], explain: bool) -> None:
    from rich.table import Table

    table = Table(title=f"decisions of {model} (newest first)", title_justify="left")
    cols = ["time", "principal", "decision", "rows", "groups", "predictions", "labels"]
    if explain:
        cols.append("explanation")
    for c in cols:
        table.add_column(c, overflow="fold")
    for r in rows:
        when = dt.datetime.fromtimestamp(float(r["time"]), dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
        values: list[Any] = [when, r["principal"], r["decision"], r["rows"]]
        values += [_short(r.get(k)) for k in ("groups", "predictions", "labels")]
        if explain:
            values.append(_explanation(r.get("explanation")))
        table.add_row(*(cell(v) for v in values))
    console.print(table)
    if not rows:
        console.print("no logged decisions" + (" with an explanation (logging.explain)" if explain else ""))


def _short(value: Any) -> str:
    if not isinstance(value, list):
        return "-"
    text = ", ".join(str(v) for v in value[:5])
    return text + (f" (+{len(value) - 5})" if len(value) > 5 else "")


def _explanation(doc: Any) -> str:
    if not isinstance(doc, dict) or not isinstance(doc.get("rows"), list) or not doc["rows"]:
        return "-"
    first = doc["rows"][0]
    top = ", ".join(f"{f} {v:+.3g}" for f, v in first.get("top", [])[:5])
    more = f" (+{len(doc['rows']) - 1} row(s))" if len(doc["rows"]) > 1 else ""
    return f"{doc.get('method', '?')} class {first.get('class')}: {top}{more}"


def register(monitor_app: typer.Typer) -> None:
    """Add ``decisions`` to the ``monitor`` group."""
    monitor_app.command("decisions")(decisions_command)
