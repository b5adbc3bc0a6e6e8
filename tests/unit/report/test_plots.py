"""Charts: 1-2-5 ticks covering the data, decade ticks on log axes, unit-bearing tick labels, escaped text."""

from __future__ import annotations

import itertools
import math
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from mlsecops.report.plots import bar_chart, line_chart, log_ticks, nice_ticks, time_ticks

_SVG = "{http://www.w3.org/2000/svg}"


def _mantissa(step: float) -> float:
    return round(step / 10 ** math.floor(math.log10(step) + 1e-6), 3)


def test_nice_ticks_step_1_2_5_and_cover_the_range() -> None:
    rng = np.random.default_rng(0)
    for _ in range(500):
        a = int(rng.integers(-6, 7))
        lo = float(rng.uniform(-1, 1)) * 10.0**a
        hi = lo + float(rng.uniform(0.1, 10)) * 10.0 ** (a + int(rng.integers(-5, 4)))
        ticks = nice_ticks(lo, hi)
        steps = np.diff(ticks)
        assert np.allclose(steps, steps[0], rtol=1e-6), ticks
        assert _mantissa(float(steps[0])) in (1.0, 2.0, 5.0), ticks
        assert ticks[0] <= lo + 1e-9 * abs(lo) and ticks[-1] >= hi - 1e-9 * abs(hi), (lo, hi, ticks)
        assert 3 <= len(ticks) <= 11, (lo, hi, ticks)


def test_nice_ticks_examples() -> None:
    assert nice_ticks(0, 1) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(0, 0.1) == [0.0, 0.02, 0.04, 0.06, 0.08, 0.1]  # no 0.30000000000000004
    assert nice_ticks(-7, 123) == [-50.0, 0.0, 50.0, 100.0, 150.0]
    assert nice_ticks(3, 3) == [2.6, 2.8, 3.0, 3.2, 3.4]  # a single value gets a range around it
    with pytest.raises(ValueError):
        nice_ticks(0, math.inf)


def test_log_ticks_are_decades() -> None:
    assert log_ticks(0.003, 1.0) == [0.001, 0.01, 0.1, 1.0]
    assert log_ticks(5, 5) == [1.0, 10.0]
    wide = log_ticks(1e-12, 1e3)
    assert len(wide) <= 9 and wide[0] <= 1e-12 and wide[-1] >= 1e3
    exps = [round(math.log10(t)) for t in wide]
    assert all(b - a == exps[1] - exps[0] for a, b in itertools.pairwise(exps))
    with pytest.raises(ValueError):
        log_ticks(0, 1)


def _labels(svg: str) -> list[str]:
    root = ET.fromstring(svg)  # well-formed XML
    return [t.text or "" for t in root.iter(f"{_SVG}text")]


def test_accuracy_axis_reads_in_percent_and_eps_axis_in_nice_steps() -> None:
    fig = line_chart(
        "curve",
        {"pgd": [(0.0, 0.97), (0.05, 0.82), (0.1, 0.46)]},
        xlabel="eps",
        ylabel="accuracy",
        ylim=(0, 1),
    )
    labels = _labels(fig.content)
    for tick in ("0%", "20%", "40%", "60%", "80%", "100%", "0.02", "0.04", "0.06", "0.08", "0.1"):
        assert tick in labels, (tick, labels)
    assert not any(re.fullmatch(r"0\.0\d{2,}", t) for t in labels)  # no 0.025-style quarter ticks


def test_units_on_ticks_bytes_seconds_log() -> None:
    sizes = _labels(
        line_chart("s", {"a": [(0, 0), (150, 5e6)]}, xlabel="elapsed seconds", ylabel="bytes").content
    )
    assert {"0 B", "1 MiB", "5 MiB"} <= set(sizes), sizes  # whole MiB steps, not 977 KiB
    assert {"0 s", "1 min", "2 min"} <= set(sizes), sizes  # minutes on a long time axis
    roc = line_chart(
        "roc",
        {"a": [(0.001, 0.002), (0.01, 0.05), (1, 1)]},
        xlabel="false positive rate",
        ylabel="true positive rate",
        ylim=(0.001, 1.0),
        log=True,
    )
    assert {"0.1%", "1%", "10%", "100%"} <= set(_labels(roc.content))
    # a unit given by the caller wins; a share axis with values above 1 falls back to numbers
    assert "40%" in _labels(line_chart("x", {"a": [(0, 0), (1, 1)]}, yunit="percent").content)
    assert "%" not in "".join(_labels(line_chart("x", {"a": [(0, 0), (1, 3)]}, ylabel="rate").content))


def test_bar_chart_has_nice_percent_ticks() -> None:
    labels = _labels(bar_chart("s", {"female": 0.12, "male": 0.31}, ylabel="selection rate").content)
    assert {"0%", "10%", "20%", "30%", "40%"} <= set(labels), labels
    assert "no data" in _labels(bar_chart("s", {"x": math.nan}).content)


def test_hostile_names_stay_text_in_the_svg() -> None:
    evil = '<script>alert(1)</script>"&'
    fig = line_chart(evil, {evil: [(0, 0), (1, 1)]}, xlabel=evil, ylabel=evil)
    bar = bar_chart(evil, {evil: 1.0}, ylabel=evil)
    for svg in (fig.content, bar.content):
        root = ET.fromstring(svg)
        assert not [e for e in root.iter() if e.tag.endswith("script")]
        assert "<script>" not in svg
        assert any(evil in (t.text or "") for t in root.iter(f"{_SVG}text"))


def test_time_axis_ticks_on_the_utc_clock() -> None:
    t0 = 1_796_000_000.0  # 2026-11-30 00:53:20 UTC
    ticks = time_ticks(t0, t0 + 7 * 3600)
    assert all(t % 3600 == 0 for t in ticks) and ticks[0] <= t0 and ticks[-1] >= t0 + 7 * 3600
    assert all(t % 60 == 0 for t in time_ticks(t0, t0 + 250))
    days = time_ticks(t0, t0 + 40 * 86400)
    assert all(t % 86400 == 0 for t in days) and 3 <= len(days) <= 8
    labels = _labels(
        line_chart(
            "traffic", {"r": [(t0 + i * 600, float(i)) for i in range(40)]}, xlabel="time (unix s)"
        ).content
    )
    assert {"02:00", "04:00", "06:00", "2026-11-30"} <= set(labels), labels
    assert not any(t.endswith(" h") for t in labels)  # moments, not durations
