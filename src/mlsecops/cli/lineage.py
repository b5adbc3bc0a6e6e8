"""``mlsecops lineage show``: a model version's lineage back to the raw data digests."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.tree import Tree

from mlsecops.cli._common import (
    FormatOpt,
    Listing,
    OutputOpt,
    emit_listing,
    open_workspace,
    resolve_format,
    safe,
)
from mlsecops.cli._registry_common import JsonOpt
from mlsecops.registry import version_lineage

__all__ = ["register"]

lineage_app = typer.Typer(help="The lineage graph of models and data.", no_args_is_help=True)


def _tree(doc: dict[str, Any]) -> Tree:
    """The lineage document as a tree: the version at the top, each parent under its child."""
    nodes = doc["nodes"]
    parents: dict[int, list[tuple[int, str]]] = {}
    for parent, child, relation in doc["edges"]:
        parents.setdefault(child, []).append((parent, relation))

    def label(node_id: int) -> str:
        n = nodes[str(node_id)]
        digest = f" sha256:{n['digest'][:16]}..." if n["digest"] else ""
        return f"{n['kind']} {n['name']}" + (f"@{n['version']}" if n["version"] else "") + digest

    def grow(branch: Tree, node_id: int, seen: frozenset[int]) -> None:
        for parent, relation in parents.get(node_id, []):
            sub = branch.add(f"[dim]{safe(relation)}[/] " + safe(label(parent)))
            if parent not in seen:
                grow(sub, parent, seen | {parent})

    root = int(doc["root"])
    tree = Tree(safe(label(root)))
    grow(tree, root, frozenset({root}))
    return tree


@lineage_app.command("show")
def lineage_show(
    ref: Annotated[str, typer.Argument(help="MODEL@VERSION (or @production, @ALIAS).")],
    fmt: FormatOpt = None,
    output: OutputOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the lineage of a model version back to the raw data digests."""
    fmt = resolve_format("json" if as_json else fmt, output)
    with open_workspace() as ws, ws.session(readonly=True) as s:
        doc = version_lineage(s, ref)
    nodes = [{"id": int(k), **v} for k, v in doc["nodes"].items()]
    listing = Listing(
        kind="lineage.show", subject=ref, title=f"lineage of {ref}", key="nodes", rows=nodes, document=doc
    )
    emit_listing(listing, fmt, output, text=lambda: _tree(doc))


def register(app: typer.Typer) -> None:
    """Add ``lineage`` to the app."""
    app.add_typer(lineage_app, name="lineage")
