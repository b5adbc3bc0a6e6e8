"""Small self-contained SVG figures for the HTML report: the robustness curve and adversarial examples.

Written by hand (no plotting library), so reports render anywhere and the check stays light.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

import numpy as np

__all__ = ["curve_svg", "image_pairs_svg"]

_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def curve_svg(
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    xlabel: str = "eps",
    ylabel: str = "accuracy",
    width: int = 520,
    height: int = 320,
) -> str:
    """A line chart of accuracy (0..1) against the budget, one line per named series."""
    left, right, top, bottom = 56, 150, 20, 44
    pw, ph = width - left - right, height - top - bottom
    xs = [x for pts in series.values() for x, _ in pts] or [0.0, 1.0]
    xmax = max(xs) if max(xs) > 0 else 1.0

    def px(x: float) -> float:
        return left + pw * x / xmax

    def py(y: float) -> float:
        return top + ph * (1 - y)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>',
    ]
    for i in range(6):
        yv = i / 5
        parts.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{py(yv):.1f}" y2="{py(yv):.1f}" stroke="#eee"/>'
        )
        parts.append(f'<text x="{left - 6}" y="{py(yv) + 4:.1f}" text-anchor="end">{yv:.1f}</text>')
    for i in range(5):
        xv = xmax * i / 4
        parts.append(f'<text x="{px(xv):.1f}" y="{top + ph + 16}" text-anchor="middle">{xv:.3g}</text>')
    parts.append(f'<text x="{left + pw / 2}" y="{height - 8}" text-anchor="middle">{escape(xlabel)}</text>')
    parts.append(
        f'<text x="14" y="{top + ph / 2}" text-anchor="middle" transform="rotate(-90 14 {top + ph / 2})">'
        f"{escape(ylabel)}</text>"
    )
    for k, (name, pts) in enumerate(series.items()):
        color = _COLORS[k % len(_COLORS)]
        ordered = sorted(pts)
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in ordered)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for x, y in ordered:
            parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{color}"/>')
        ly = top + 14 + 16 * k
        parts.append(
            f'<line x1="{left + pw + 10}" x2="{left + pw + 28}" y1="{ly - 4}" y2="{ly - 4}" '
            f'stroke="{color}" stroke-width="2"/>'
        )
        parts.append(f'<text x="{left + pw + 32}" y="{ly}">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def image_pairs_svg(
    pairs: Sequence[tuple[np.ndarray, np.ndarray, str]], *, lower: float, upper: float, cell: int = 6
) -> str:
    """Original and adversarial images side by side, one row per example, with a caption.

    Each image is ``(H, W)`` or ``(C, H, W)`` (channels averaged to grey); pixel values are scaled from
    ``[lower, upper]`` to grey levels.
    """
    if not pairs:
        return '<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>'
    imgs = [(_grey(a), _grey(b), cap) for a, b, cap in pairs]
    h, w = imgs[0][0].shape
    size_w, size_h = w * cell, h * cell
    row_h = size_h + 18
    width = 2 * size_w + 40 + 260
    height = row_h * len(imgs) + 6
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="11" shape-rendering="crispEdges">'
    ]
    span = (upper - lower) or 1.0
    for r, (a, b, cap) in enumerate(imgs):
        y0 = 4 + r * row_h
        for col, img in enumerate((a, b)):
            x0 = 4 + col * (size_w + 12)
            level = np.clip((img - lower) / span, 0, 1)
            for i in range(h):
                for j in range(w):
                    g = int(255 * (1 - level[i, j]))
                    parts.append(
                        f'<rect x="{x0 + j * cell}" y="{y0 + i * cell}" width="{cell}" height="{cell}" '
                        f'fill="rgb({g},{g},{g})"/>'
                    )
        parts.append(f'<text x="{2 * size_w + 32}" y="{y0 + size_h / 2 + 4:.0f}">{escape(cap)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _grey(img: np.ndarray) -> np.ndarray:
    arr = np.asarray(img, dtype=np.float64)
    if arr.ndim == 3:
        arr = arr.mean(axis=0) if arr.shape[0] <= 4 else arr.mean(axis=2)
    return arr
