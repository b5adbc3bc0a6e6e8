"""Small, dependency-free SVG charts for HTML reports (line and bar charts) with readable axes.

Axes get "nice" ticks: steps of 1, 2 or 5 times a power of ten on linear axes (``nice_ticks``), whole
decades on logarithmic ones (``log_ticks``). Tick labels carry the unit (``20%``, ``1.5 MiB``,
``250 ms``), inferred from the axis label (``humanize.unit_of``: "accuracy" is a share, "bytes" a size)
unless the caller names it. Analyses attach the result as a ``Figure``; the HTML renderer embeds it as
an image, so nothing in it can run script in the reader's browser, and every label is XML-escaped.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from xml.sax.saxutils import escape

from mlsecops.core.findings import Figure
from mlsecops.report.humanize import Unit, unit_of, value

__all__ = ["bar_chart", "line_chart", "log_ticks", "nice_ticks", "time_ticks"]

_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
_W, _H, _L, _R, _T, _B = 640, 360, 70, 150, 30, 50
_PLOT_W, _PLOT_H = _W - _L - _R, _H - _T - _B


def _nice_step(span: float, target: int) -> float:
    raw = span / max(target, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 5.0, 10.0):
        if raw <= m * power * (1 + 1e-9):
            return m * power
    return 10.0 * power  # pragma: no cover (the loop always returns)


def nice_ticks(lo: float, hi: float, *, target: int = 5) -> list[float]:
    """Ticks covering ``[lo, hi]`` at a step of 1, 2 or 5 times a power of ten, about ``target`` of them.

    The first tick is at or below ``lo`` and the last at or above ``hi`` (an axis drawn from the first to
    the last tick shows every point). An empty range gets ticks around its one value.

    >>> nice_ticks(0, 1)
    [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    >>> nice_ticks(0.013, 0.551)
    [0.0, 0.2, 0.4, 0.6]
    """
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError("ticks need a finite range")
    lo, hi = min(lo, hi), max(lo, hi)
    if hi == lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    step = _nice_step(hi - lo, target)
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    digits = max(0, -math.floor(math.log10(step)) + 1)
    return [round(k * step, digits) + 0.0 for k in range(first, last + 1)]


def log_ticks(lo: float, hi: float, *, most: int = 8) -> list[float]:
    """Whole decades covering ``[lo, hi]`` (both > 0), every other decade or sparser past ``most`` ticks.

    >>> log_ticks(0.003, 1.0)
    [0.001, 0.01, 0.1, 1.0]
    """
    if not (0 < lo <= hi and math.isfinite(hi)):
        raise ValueError("log ticks need 0 < lo <= hi")
    first, last = math.floor(math.log10(lo) + 1e-9), math.ceil(math.log10(hi) - 1e-9)
    last = max(last, first + 1)
    every = max(1, math.ceil((last - first + 1) / most))
    first -= first % every
    last = first + every * math.ceil((last - first) / every)
    return [10.0**k for k in range(first, last + 1, every)]


_TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def time_ticks(lo: float, hi: float, *, target: int = 5) -> list[float]:
    """Ticks for moments in Unix seconds at a clock-friendly step (1, 2, 5, 10, 15, 30 s or min; 1, 2,
    3, 6, 12 h; then 1-2-5 days), aligned to the UTC clock and covering ``[lo, hi]``.

    >>> [int(t) for t in time_ticks(1_000_000_030, 1_000_000_250)]
    [1000000020, 1000000080, 1000000140, 1000000200, 1000000260]
    """
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError("ticks need a finite range")
    lo, hi = min(lo, hi), max(lo, hi)
    if hi == lo:
        lo, hi = lo - 30, hi + 30
    span = hi - lo
    step = next((float(s) for s in _TIME_STEPS if span / s <= target), None)
    if step is None:
        step = 86400.0 * max(1.0, _nice_step(span / 86400, target))
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [k * step for k in range(first, last + 1)]


def _time_label(t: float, step: float) -> str:
    moment = dt.datetime.fromtimestamp(t, dt.UTC)
    return moment.strftime("%Y-%m-%d" if step >= 86400 else "%H:%M" if step >= 60 else "%H:%M:%S")


def _unit(label: str, unit: Unit | str | None, values: Sequence[float]) -> Unit:
    """The caller's unit, else the label's; a share outside [0, 1] is shown as a plain number."""
    chosen = Unit(unit) if unit is not None else unit_of(label)
    if chosen is Unit.PERCENT and any(v < 0 or v > 1 for v in values):
        return Unit.NUMBER
    return chosen


def _text(x: float, y: float, text: str, *, anchor: str = "middle", size: int = 11, extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}"{extra}>{escape(text)}</text>'


def _frame(xlabel: str, ylabel: str) -> list[str]:
    mid_y = _T + _PLOT_H / 2
    return [
        f'<line x1="{_L}" y1="{_H - _B}" x2="{_W - _R}" y2="{_H - _B}" stroke="#333"/>',
        f'<line x1="{_L}" y1="{_T}" x2="{_L}" y2="{_H - _B}" stroke="#333"/>',
        _text(_L + _PLOT_W / 2, _H - 10, xlabel, size=13),
        _text(15, mid_y, ylabel, size=13, extra=f' transform="rotate(-90 15 {mid_y:.1f})"'),
    ]


def _yticks(ticks: Sequence[float], pos: Sequence[float], unit: Unit) -> list[str]:
    out = []
    for t, y in zip(ticks, pos, strict=True):
        out.append(f'<line x1="{_L}" y1="{y:.1f}" x2="{_W - _R}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<line x1="{_L - 4}" y1="{y:.1f}" x2="{_L}" y2="{y:.1f}" stroke="#333"/>')
        out.append(_text(_L - 7, y + 4, value(t, unit), anchor="end"))
    return out


def _xticks(ticks: Sequence[float], pos: Sequence[float], unit: Unit) -> list[str]:
    out = []
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 86400.0
    for i, (t, x) in enumerate(zip(ticks, pos, strict=True)):
        out.append(f'<line x1="{x:.1f}" y1="{_H - _B}" x2="{x:.1f}" y2="{_H - _B + 4}" stroke="#333"/>')
        if unit is Unit.TIMESTAMP:  # clock times; the date under the first tick and where the day turns
            out.append(_text(x, _H - _B + 16, _time_label(t, step)))
            day = _time_label(t, 86400)
            if step < 86400 and (i == 0 or day != _time_label(ticks[i - 1], 86400)):
                out.append(_text(x, _H - _B + 28, day, size=9))
        else:
            out.append(_text(x, _H - _B + 16, value(t, unit)))
    return out


def _svg(body: list[str], title: str, *, extra: int = 0) -> str:
    height = _H + extra  # room below the frame for slanted bar labels
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{height}" viewBox="0 0 {_W} {height}" '
        f'font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>'
        + _text(_W / 2, 18, title, size=14, extra=' font-weight="bold"')
        + "".join(body)
        + "</svg>"
    )


def _scale(unit: Unit, span: float) -> float:
    """Ticks of a byte axis step in whole KiB/MiB/...; of a time axis in minutes or hours when long."""
    if unit is Unit.BYTES and span >= 1024:
        return 1024.0 ** min(6, math.floor(math.log(span, 1024)))
    if unit is Unit.SECONDS and span >= 7200:
        return 3600.0
    if unit is Unit.SECONDS and span >= 120:
        return 60.0
    return 1.0


class _Axis:
    """Data values to pixels along one axis, linear or logarithmic, over nice ticks in ``unit``."""

    def __init__(
        self, values: Sequence[float], lim: tuple[float, float] | None, unit: Unit, *, log: bool
    ) -> None:
        self.log = log
        if log:
            lo, hi = lim if lim is not None else (min(values), max(values))
            self.ticks = log_ticks(lo, hi)
            self.lo, self.hi = math.log10(self.ticks[0]), math.log10(self.ticks[-1])
            return
        lo, hi = lim if lim is not None else (min(values), max(values))
        if unit is Unit.TIMESTAMP:
            ticks = time_ticks(lo, hi)
        else:
            k = _scale(unit, hi - lo)
            ticks = [t * k for t in nice_ticks(lo / k, hi / k)]
        if lim is not None:
            self.ticks = [t for t in ticks if lim[0] - 1e-12 <= t <= lim[1] + 1e-12]
            self.lo, self.hi = lim if lim[1] > lim[0] else (lim[0], lim[0] + 1.0)
        else:
            self.ticks = ticks
            self.lo, self.hi = ticks[0], ticks[-1]

    def frac(self, v: float) -> float:
        """Where ``v`` falls between the axis ends, 0 to 1 (outside for points beyond a fixed limit)."""
        pos = math.log10(v) if self.log else v
        return (pos - self.lo) / ((self.hi - self.lo) or 1.0)


def line_chart(
    title: str,
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    xlabel: str = "",
    ylabel: str = "",
    ylim: tuple[float, float] | None = None,
    log: bool = False,
    xunit: Unit | str | None = None,
    yunit: Unit | str | None = None,
) -> Figure:
    """A line chart of named series of ``(x, y)`` points.

    Args:
        title: shown above the chart (and as the figure's caption).
        series: legend name -> points; non-finite points are left out.
        xlabel: the x axis label.
        ylabel: the y axis label.
        ylim: the y range shown (points outside it are drawn beyond the frame).
        log: both axes logarithmic, ticks at decades (points with a coordinate <= 0 are left out;
            ``ylim`` then bounds the positive values shown).
        xunit: how x tick labels read (``percent``, ``bytes``, ``seconds``...); by default inferred
            from ``xlabel``.
        yunit: the same for y, inferred from ``ylabel``.
    """
    clean = {
        name: [(float(x), float(y)) for x, y in pts if math.isfinite(x) and math.isfinite(y)]
        for name, pts in series.items()
    }
    if log:
        clean = {name: [(x, y) for x, y in pts if x > 0 and y > 0] for name, pts in clean.items()}
        ylim = ylim if ylim and ylim[0] > 0 else None
    points = [p for s in clean.values() for p in s]
    if not points:
        return Figure(title=title, content=_svg([_text(50, 60, "no data", anchor="start")], title))
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    xu, yu = _unit(xlabel, xunit, xs), _unit(ylabel, yunit, [*ys, *(ylim or ())])
    xaxis, yaxis = _Axis(xs, None, xu, log=log), _Axis(ys, ylim, yu, log=log)
    body = _frame(xlabel, ylabel)
    body += _yticks(yaxis.ticks, [_H - _B - _PLOT_H * yaxis.frac(t) for t in yaxis.ticks], yu)
    body += _xticks(xaxis.ticks, [_L + _PLOT_W * xaxis.frac(t) for t in xaxis.ticks], xu)
    for i, (name, pts) in enumerate(clean.items()):
        color = _PALETTE[i % len(_PALETTE)]
        coords = [(_L + _PLOT_W * xaxis.frac(x), _H - _B - _PLOT_H * yaxis.frac(y)) for x, y in sorted(pts)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        body.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{path}"/>')
        body.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>' for x, y in coords)
        ly = _T + 18 * i + 10
        body.append(f'<rect x="{_W - _R + 10}" y="{ly - 8}" width="10" height="10" fill="{color}"/>')
        body.append(_text(_W - _R + 25, ly + 1, name, anchor="start", size=12))
    return Figure(title=title, content=_svg(body, title))


def bar_chart(
    title: str, values: Mapping[str, float], *, ylabel: str = "", yunit: Unit | str | None = None
) -> Figure:
    """A bar chart of named values (at most a few dozen bars; negative values are drawn as zero).

    ``yunit`` names how the axis reads; by default it is inferred from ``ylabel``.
    """
    shown = {name: v for name, v in values.items() if math.isfinite(v)}
    if not shown:
        return Figure(title=title, content=_svg([_text(50, 60, "no data", anchor="start")], title))
    unit = _unit(ylabel, yunit, list(shown.values()))
    ticks = [
        t for t in _Axis([0.0, max(max(shown.values()), 0.0) or 1.0], None, unit, log=False).ticks if t >= 0
    ]
    top = ticks[-1]
    width = _PLOT_W / len(shown)
    slanted = any(len(n) * 6 > width for n in shown)
    body = _frame("", ylabel)
    body += _yticks(ticks, [_H - _B - _PLOT_H * t / top for t in ticks], unit)
    for i, (name, v) in enumerate(shown.items()):
        h = _PLOT_H * max(v, 0.0) / top
        x = _L + i * width
        body.append(
            f'<rect x="{x + 2:.1f}" y="{_H - _B - h:.1f}" width="{max(width - 4, 1):.1f}" height="{h:.1f}" '
            f'fill="{_PALETTE[0]}"><title>{escape(name)}: {escape(value(v, unit))}</title></rect>'
        )
        if slanted:  # many bars or long names: labels at 45 degrees, ending under their bar
            label = name if len(name) <= 16 else name[:15] + "\u2026"
            cx, cy = x + width / 2 + 3, _H - _B + 10
            body.append(
                _text(cx, cy, label, anchor="end", size=10, extra=f' transform="rotate(-45 {cx:.1f} {cy})"')
            )
        else:
            label = name if len(name) <= 12 else name[:11] + "\u2026"
            body.append(_text(x + width / 2, _H - _B + 14, label, size=10))
    longest = max(min(len(n), 16) for n in shown)
    return Figure(title=title, content=_svg(body, title, extra=int(longest * 4.3) if slanted else 0))
