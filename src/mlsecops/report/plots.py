"""Small, dependency-free SVG charts for HTML reports (line and bar charts).

Analyses attach the result as a ``Figure``; the HTML renderer embeds it as an image, so nothing in it
can run script in the reader's browser.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from xml.sax.saxutils import escape

from mlsecops.core.findings import Figure

__all__ = ["bar_chart", "line_chart"]

_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
_W, _H, _L, _R, _T, _B = 640, 360, 60, 150, 30, 50


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def _axes(
    xmin: float, xmax: float, ymin: float, ymax: float, xlabel: str, ylabel: str, *, log: bool = False
) -> list[str]:
    out = [
        f'<line x1="{_L}" y1="{_H - _B}" x2="{_W - _R}" y2="{_H - _B}" stroke="#333"/>',
        f'<line x1="{_L}" y1="{_T}" x2="{_L}" y2="{_H - _B}" stroke="#333"/>',
        f'<text x="{(_L + _W - _R) / 2}" y="{_H - 10}" text-anchor="middle" font-size="13">{escape(xlabel)}</text>',
        f'<text x="15" y="{(_T + _H - _B) / 2}" text-anchor="middle" font-size="13" '
        f'transform="rotate(-90 15 {(_T + _H - _B) / 2})">{escape(ylabel)}</text>',
    ]
    for i in range(5):
        yv = ymin + (ymax - ymin) * i / 4
        y = _H - _B - (_H - _T - _B) * i / 4
        ytext = _fmt(10**yv if log else yv)
        out.append(f'<text x="{_L - 6}" y="{y + 4}" text-anchor="end" font-size="11">{ytext}</text>')
        out.append(f'<line x1="{_L}" y1="{y}" x2="{_W - _R}" y2="{y}" stroke="#eee"/>')
        xv = xmin + (xmax - xmin) * i / 4
        x = _L + (_W - _L - _R) * i / 4
        xtext = _fmt(10**xv if log else xv)
        out.append(f'<text x="{x}" y="{_H - _B + 16}" text-anchor="middle" font-size="11">{xtext}</text>')
    return out


def _svg(body: list[str], title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" '
        f'font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>'
        f'<text x="{_W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">{escape(title)}</text>'
        + "".join(body)
        + "</svg>"
    )


def line_chart(
    title: str,
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    xlabel: str = "",
    ylabel: str = "",
    ylim: tuple[float, float] | None = None,
    log: bool = False,
) -> Figure:
    """A line chart of named series of ``(x, y)`` points; ``log``: both axes logarithmic (points with a
    coordinate <= 0 are left out; ``ylim`` then bounds the positive values shown).
    """
    if log:
        series = {
            name: [(math.log10(x), math.log10(y)) for x, y in pts if x > 0 and y > 0]
            for name, pts in series.items()
        }
        ylim = (math.log10(ylim[0]), math.log10(ylim[1])) if ylim and ylim[0] > 0 else None
    points = [p for s in series.values() for p in s]
    if not points:
        return Figure(title=title, content=_svg(['<text x="50" y="60">no data</text>'], title))
    xmin, xmax = min(p[0] for p in points), max(p[0] for p in points)
    ymin, ymax = ylim or (min(p[1] for p in points), max(p[1] for p in points))
    xspan, yspan = (xmax - xmin) or 1.0, (ymax - ymin) or 1.0
    body = _axes(xmin, xmin + xspan, ymin, ymin + yspan, xlabel, ylabel, log=log)
    for i, (name, pts) in enumerate(series.items()):
        color = _PALETTE[i % len(_PALETTE)]
        coords = [
            (_L + (_W - _L - _R) * (x - xmin) / xspan, _H - _B - (_H - _T - _B) * (y - ymin) / yspan)
            for x, y in sorted(pts)
        ]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        body.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{path}"/>')
        body.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>' for x, y in coords)
        ly = _T + 18 * i + 10
        body.append(f'<rect x="{_W - _R + 10}" y="{ly - 8}" width="10" height="10" fill="{color}"/>')
        body.append(f'<text x="{_W - _R + 25}" y="{ly + 1}" font-size="12">{escape(name)}</text>')
    return Figure(title=title, content=_svg(body, title))


def bar_chart(title: str, values: Mapping[str, float], *, ylabel: str = "") -> Figure:
    """A bar chart of named values (at most a few dozen bars)."""
    if not values:
        return Figure(title=title, content=_svg(['<text x="50" y="60">no data</text>'], title))
    ymax = max(max(values.values()), 0.0) or 1.0
    n = len(values)
    width = (_W - _L - _R) / n
    body = _axes(0, n, 0, ymax, "", ylabel)[:4]
    for i, (name, v) in enumerate(values.items()):
        h = (_H - _T - _B) * max(v, 0.0) / ymax
        x = _L + i * width
        body.append(
            f'<rect x="{x + 2:.1f}" y="{_H - _B - h:.1f}" width="{width - 4:.1f}" height="{h:.1f}" '
            f'fill="{_PALETTE[0]}"><title>{escape(name)}: {_fmt(v)}</title></rect>'
        )
        body.append(
            f'<text x="{x + width / 2:.1f}" y="{_H - _B + 14}" text-anchor="middle" font-size="10">'
            f"{escape(name[:12])}</text>"
        )
    return Figure(title=title, content=_svg(body, title))
