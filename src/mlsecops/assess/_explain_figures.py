"""A horizontal bar chart of signed contributions (local explanations), as self-contained SVG.

``report.plots.bar_chart`` draws non-negative values only; a local explanation pushes the probability
both ways, so it gets its own chart: bars to the right raise the predicted class's probability, bars to
the left lower it. Written by hand (no plotting library), like the other report figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape

__all__ = ["signed_bars_svg"]

_W, _ROW, _LABEL, _PAD = 640, 22, 170, 70  # _PAD leaves room for the value printed past a bar


def signed_bars_svg(items: Sequence[tuple[str, float]], *, xlabel: str = "") -> str:
    """One bar per ``(name, value)``, red for negative and blue for positive, centred on zero."""
    if not items:
        return '<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>'
    span = max(abs(v) for _, v in items) or 1.0
    half = (_W - _LABEL - 2 * _PAD) / 2
    zero = _LABEL + _PAD + half
    height = _ROW * len(items) + 50
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{height}" viewBox="0 0 {_W} {height}" '
        'font-family="sans-serif" font-size="11"><rect width="100%" height="100%" fill="white"/>',
        f'<line x1="{zero:.1f}" y1="10" x2="{zero:.1f}" y2="{height - 30}" stroke="#333"/>',
    ]
    for i, (name, value) in enumerate(items):
        y = 12 + i * _ROW
        w = half * abs(value) / span
        x = zero if value >= 0 else zero - w
        color = "#1f77b4" if value >= 0 else "#d62728"
        parts.append(
            f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{_ROW - 6}" fill="{color}">'
            f"<title>{escape(name)}: {value:+.4g}</title></rect>"
        )
        parts.append(f'<text x="{_LABEL - 4}" y="{y + 12}" text-anchor="end">{escape(name[:28])}</text>')
        tx = zero + w + 4 if value >= 0 else zero - w - 4
        anchor = "start" if value >= 0 else "end"
        parts.append(f'<text x="{tx:.1f}" y="{y + 12}" text-anchor="{anchor}">{value:+.3g}</text>')
    parts.append(
        f'<text x="{zero:.1f}" y="{height - 10}" text-anchor="middle" font-size="12">{escape(xlabel)}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)
