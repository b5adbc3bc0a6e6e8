"""The policy gate judges a metric that carries an interval by the interval, not by the point."""

from __future__ import annotations

import pytest

from mlsecops.core.findings import Report
from mlsecops.pipeline.policy import MetricRule


def _judge(op: str, limit: float, value: float, low: float | None = None, high: float | None = None) -> bool:
    metrics = {"x": value}
    if low is not None:
        metrics["x_ci_low"] = low
    if high is not None:
        metrics["x_ci_high"] = high
    rule = MetricRule(metric="x", op=op, value=limit, stage="s")
    return rule.evaluate({"s": Report(subject="m", kind="k", metrics=metrics)}, {}).passed


@pytest.mark.parametrize(
    ("op", "limit", "value", "low", "high", "passes"),
    [
        ("<=", 0.1, 0.12, 0.08, 0.16, True),  # point beyond, interval straddles: not shown to violate
        ("<=", 0.1, 0.2, 0.15, 0.25, False),  # the whole interval beyond
        ("<=", 0.1, 0.05, 0.01, 0.09, True),
        (">=", 0.8, 0.75, 0.7, 0.85, True),
        (">=", 0.8, 0.6, 0.5, 0.7, False),
        ("<", 0.1, 0.12, 0.1, 0.2, False),  # strict: the low bound equals the limit
        ("==", 0.0, 0.1, -0.05, 0.2, True),
        ("==", 0.0, 0.1, 0.05, 0.2, False),
    ],
)
def test_interval_semantics(
    op: str, limit: float, value: float, low: float, high: float, passes: bool
) -> None:
    assert _judge(op, limit, value, low, high) is passes


def test_without_an_interval_the_point_decides() -> None:
    assert _judge("<=", 0.1, 0.12) is False
    assert _judge("<=", 0.1, 0.12, low=0.05) is False  # half an interval is no interval
    assert _judge("<=", 0.1, 0.12, low=0.2, high=0.05) is False  # a malformed one neither
    assert _judge("<=", 0.1, 0.05) is True
