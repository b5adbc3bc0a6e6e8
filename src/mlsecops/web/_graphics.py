"""Pictures drawn on the server: the lineage graph and trend charts, as SVG ``data:`` URIs.

Shown through ``<img>``, an SVG cannot run script or fetch anything, whatever text it holds; every
label is XML-escaped as well. Charts come from ``mlsecops.report.plots`` (the reports' own charts).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape

__all__ = ["chart_uri", "lineage_svg", "svg_uri"]

_NODE_W, _NODE_H, _GAP_X, _GAP_Y, _PAD = 220, 46, 70, 18, 20
_MAX_PER_COLUMN = 40
"""Nodes drawn per depth; more are summarised in a "+N more" box (the table lists every node)."""
_COLORS = {
    "dataset": "#dbeafe",
    "training_run": "#fef3c7",
    "model_version": "#dcfce7",
    "deployment": "#fce7f3",
    "quarantine": "#fee2e2",
}


def svg_uri(svg: str) -> str:
    """``data:image/svg+xml;base64,...`` of an SVG document."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def chart_uri(
    title: str, series: Mapping[str, Sequence[tuple[float, float]]], *, xlabel: str, ylabel: str
) -> str:
    """A line chart (``report.plots.line_chart``) as a data URI."""
    from mlsecops.report.plots import line_chart

    return svg_uri(line_chart(title, series, xlabel=xlabel, ylabel=ylabel).content)


def _label(node: Mapping[str, Any]) -> tuple[str, str]:
    name = str(node.get("name", ""))
    version = str(node.get("version") or "")
    head = f"{node.get('kind', '')}"
    text = name + (f"@{version}" if version else "")
    return head, text if len(text) <= 30 else text[:29] + "\u2026"


def lineage_svg(doc: Mapping[str, Any]) -> str:
    """The graph of ``store.lineage.graph_document`` drawn left (raw data) to right (the version).

    Columns are depths from the root (the version is the rightmost); edges are straight lines
    labelled with their relation.
    """
    nodes: Mapping[str, Mapping[str, Any]] = doc.get("nodes", {})
    edges: list[list[Any]] = [list(e) for e in doc.get("edges", [])]
    root = str(doc.get("root"))
    parents: dict[str, list[str]] = {}
    children: dict[str, list[str]] = {}
    for parent, child, _ in edges:
        parents.setdefault(str(child), []).append(str(parent))
        children.setdefault(str(parent), []).append(str(child))
    # depth > 0 upstream of the version, < 0 downstream (deployments), 0 the version itself
    depth = {root: 0}
    for step, links in ((1, parents), (-1, children)):
        frontier = [root]
        while frontier:
            nxt = []
            for n in frontier:
                for m in links.get(n, []):
                    if m not in depth:
                        depth[m] = depth[n] + step
                        nxt.append(m)
            frontier = nxt
    up = max(depth.values(), default=0)
    levels = up - min(depth.values(), default=0)
    columns: dict[int, list[str]] = {}
    for node_id in sorted(depth, key=lambda k: (-depth[k], int(k) if k.isdigit() else 0)):
        columns.setdefault(up - depth[node_id], []).append(node_id)
    pos: dict[str, tuple[float, float]] = {}
    body: list[str] = []
    tallest = max((min(len(c), _MAX_PER_COLUMN + 1) for c in columns.values()), default=1)
    width = _PAD * 2 + (levels + 1) * _NODE_W + levels * _GAP_X
    height = _PAD * 2 + tallest * _NODE_H + (tallest - 1) * _GAP_Y
    for col, ids in columns.items():
        x = _PAD + col * (_NODE_W + _GAP_X)
        for row, node_id in enumerate(ids[:_MAX_PER_COLUMN]):
            y = _PAD + row * (_NODE_H + _GAP_Y)
            pos[node_id] = (x, y)
            node = nodes.get(node_id, {})
            head, text = _label(node)
            fill = _COLORS.get(str(node.get("kind")), "#f3f4f6")
            stroke = "#15803d" if node_id == root else "#6b7280"
            body.append(
                f'<rect x="{x}" y="{y}" width="{_NODE_W}" height="{_NODE_H}" rx="6" fill="{fill}" '
                f'stroke="{stroke}" stroke-width="{2 if node_id == root else 1}"/>'
                f'<text x="{x + 8}" y="{y + 17}" font-size="11" fill="#374151">{escape(head)}</text>'
                f'<text x="{x + 8}" y="{y + 35}" font-size="13">{escape(text)}</text>'
            )
        if len(ids) > _MAX_PER_COLUMN:
            y = _PAD + _MAX_PER_COLUMN * (_NODE_H + _GAP_Y)
            body.append(
                f'<text x="{x + 8}" y="{y + 20}" font-size="12">+{len(ids) - _MAX_PER_COLUMN} more</text>'
            )
    lines: list[str] = []
    for parent, child, relation in edges:
        a, b = pos.get(str(parent)), pos.get(str(child))
        if a is None or b is None:
            continue
        x1, y1 = a[0] + _NODE_W, a[1] + _NODE_H / 2
        x2, y2 = b[0], b[1] + _NODE_H / 2
        lines.append(
            f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#9ca3af" marker-end="url(#arrow)"/>'
            f'<text x="{(x1 + x2) / 2}" y="{(y1 + y2) / 2 - 4}" font-size="10" text-anchor="middle" '
            f'fill="#6b7280">{escape(str(relation))}</text>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif">'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#9ca3af"/></marker></defs>'
        '<rect width="100%" height="100%" fill="white"/>' + "".join(lines) + "".join(body) + "</svg>"
    )
