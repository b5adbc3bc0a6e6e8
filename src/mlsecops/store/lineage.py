"""The lineage graph: which data and runs produced which model versions and deployments.

Nodes are identified by ``(kind, name, version)`` and may carry a content digest and JSON attributes
(a dataset manifest, training parameters, metrics). ``link(parent, child, relation)`` records that the
parent was used to produce the child. Every new node and edge writes an audit event in the same
transaction. ``ancestors`` walks the graph back to the raw data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mlsecops.core.errors import InputError
from mlsecops.core.findings import utcnow
from mlsecops.store import audit
from mlsecops.store.models import LineageEdge, LineageNode

__all__ = ["LineageGraph", "add_node", "ancestors", "find_node", "graph_document", "link", "node_attributes"]


def find_node(session: Session, kind: str, name: str, version: str = "") -> LineageNode | None:
    """The node with this identity, or ``None``."""
    return session.execute(
        select(LineageNode).where(
            LineageNode.kind == kind, LineageNode.name == name, LineageNode.version == version
        )
    ).scalar_one_or_none()


def node_attributes(node: LineageNode) -> dict[str, Any]:
    """The node's attributes as a dict."""
    value = json.loads(node.attributes or "{}")
    return value if isinstance(value, dict) else {}


def add_node(
    session: Session,
    *,
    kind: str,
    name: str,
    version: str = "",
    digest: str | None = None,
    attributes: Mapping[str, Any] | None = None,
    actor: str,
) -> LineageNode:
    """Create a node (or return the existing one with the same identity and digest).

    Raises:
        InputError: a node with this identity exists with a different digest (content changed without
            a new version).
    """
    existing = find_node(session, kind, name, version)
    if existing is not None:
        if digest is not None and existing.digest not in (None, digest):
            raise InputError(
                f"{kind} {name!r} version {version or '(none)'} is already recorded with digest "
                f"{(existing.digest or '')[:12]}..., not {digest[:12]}...; the content changed: register a new version"
            )
        return existing
    node = LineageNode(
        kind=kind,
        name=name,
        version=version,
        digest=digest,
        attributes=json.dumps(dict(attributes or {}), sort_keys=True),
        created=utcnow().isoformat(),
        actor=actor,
    )
    session.add(node)
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="lineage.node",
        subject=f"{kind}:{name}" + (f"@{version}" if version else ""),
        details={"node": node.id, "digest": digest},
    )
    return node


def link(session: Session, parent: LineageNode, child: LineageNode, relation: str, *, actor: str) -> None:
    """Record that ``parent`` produced ``child`` (idempotent)."""
    exists = session.execute(
        select(LineageEdge.id).where(
            LineageEdge.parent_id == parent.id,
            LineageEdge.child_id == child.id,
            LineageEdge.relation == relation,
        )
    ).first()
    if exists is not None:
        return
    session.add(LineageEdge(parent_id=parent.id, child_id=child.id, relation=relation))
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="lineage.link",
        subject=f"{child.kind}:{child.name}" + (f"@{child.version}" if child.version else ""),
        details={"parent": parent.id, "child": child.id, "relation": relation},
    )


@dataclass(frozen=True)
class LineageGraph:
    """A node and everything upstream of it."""

    root: LineageNode
    nodes: dict[int, LineageNode]
    edges: list[tuple[int, int, str]]
    """``(parent_id, child_id, relation)``."""


def ancestors(session: Session, node: LineageNode, *, max_nodes: int = 10_000) -> LineageGraph:
    """Walk parent edges from ``node`` back to the roots (raw data)."""
    nodes = {node.id: node}
    edges: list[tuple[int, int, str]] = []
    frontier = [node.id]
    while frontier and len(nodes) < max_nodes:
        rows = session.execute(select(LineageEdge).where(LineageEdge.child_id.in_(frontier))).scalars().all()
        frontier = []
        for e in rows:
            edges.append((e.parent_id, e.child_id, e.relation))
            if e.parent_id not in nodes:
                parent = session.get(LineageNode, e.parent_id)
                if parent is not None:
                    nodes[parent.id] = parent
                    frontier.append(parent.id)
    return LineageGraph(root=node, nodes=nodes, edges=edges)


def graph_document(graph: LineageGraph) -> dict[str, Any]:
    """The graph as JSON: ``{"root": id, "nodes": {"id": {kind, name, version, digest}}, "edges":
    [[parent_id, child_id, relation], ...]}`` (what ``mlsecops lineage show -f json`` prints).
    """
    return {
        "root": graph.root.id,
        "nodes": {
            str(n.id): {"kind": n.kind, "name": n.name, "version": n.version, "digest": n.digest}
            for n in graph.nodes.values()
        },
        "edges": [list(e) for e in graph.edges],
    }
