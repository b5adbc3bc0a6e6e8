"""Adversarial examples as a self-contained SVG figure for the HTML report (curves use ``report.plots``).

Written by hand (no plotting library), so reports render anywhere and the check stays light.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import numpy as np

__all__ = ["image_pairs_svg"]


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
    width = 2 * size_w + 40 + max(260, 7 * max(len(cap) for _, _, cap in imgs))
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
