"""Numbers for people: significant digits, separators, bytes, percentages, times, units from names."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from mlsecops.report import humanize
from mlsecops.report.humanize import Unit


@pytest.mark.parametrize(
    ("x", "text"),
    [
        (0, "0"),
        (1, "1"),
        (0.5, "0.5"),
        (0.054321, "0.0543"),
        (12.345, "12.3"),
        (123.456, "123"),
        (1234.5, "1,230"),
        (1_351_468.0, "1,350,000"),
        (9.996, "10"),  # rounds up a decade
        (999.6, "1,000"),
        (-0.00123, "-0.00123"),
        (0.0001234, "0.000123"),
        (1.234e-7, "1.23e-07"),
        (math.nan, "n/a"),
        (math.inf, "∞"),
        (-math.inf, "-∞"),
    ],
)
def test_significant_three_digits_with_separators(x: float, text: str) -> None:
    assert humanize.significant(x) == text


def test_number_keeps_whole_numbers_exact() -> None:
    assert humanize.number(1_351_468.0) == "1,351,468"
    assert humanize.number(405) == "405"
    assert humanize.number(0.054321) == "0.0543"
    assert humanize.number(1e20) == "100,000,000,000,000,000,000"  # beyond 10^15: 3 digits, still no exponent
    assert humanize.integer(-12345.4) == "-12,345"


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 B"),
        (512, "512 B"),
        (1023, "1,023 B"),
        (1024, "1 KiB"),
        (1536, "1.5 KiB"),
        (176_464, "172 KiB"),
        (1_351_468, "1.29 MiB"),
        (5 * 1024**3, "5 GiB"),
        (1024**7, "1,020 EiB"),  # past the last unit: counted in it, 3 digits
    ],
)
def test_size_in_iec_units(n: int, text: str) -> None:
    assert humanize.size(n) == text


@pytest.mark.parametrize(
    ("share", "text"),
    [(0.054321, "5.43%"), (0.82, "82%"), (1.0, "100%"), (0.0, "0%"), (0.00012, "0.012%"), (0.99999, "100%")],
)
def test_percent(share: float, text: str) -> None:
    assert humanize.percent(share) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (2e-5, "20 µs"),
        (0.0123, "12.3 ms"),
        (0.9999, "1 s"),
        (41.72, "41.7 s"),
        (59.97, "1 min"),
        (65, "1 min 5 s"),
        (3725, "1 h 2 min"),
        (7200, "2 h"),
        (90_000, "1 d 1 h"),
        (3599.9, "1 h"),  # 59 min 60 s never shows
        (-2.5, "-2.5 s"),
    ],
)
def test_duration(seconds: float, text: str) -> None:
    assert humanize.duration(seconds) == text


def test_timestamp_is_utc_to_the_second() -> None:
    cet = dt.timezone(dt.timedelta(hours=1))
    assert (
        humanize.timestamp(dt.datetime(2026, 12, 5, 22, 13, 24, 999, tzinfo=cet)) == "2026-12-05 21:13:24 UTC"
    )
    assert humanize.timestamp(dt.datetime(2026, 12, 5, 21, 13, 24)) == "2026-12-05 21:13:24 UTC"


@pytest.mark.parametrize(
    ("name", "unit"),
    [
        ("robustness/robust_accuracy@pgd_linf_0.05", Unit.PERCENT),
        ("attack_success@fgsm_linf_0.1", Unit.PERCENT),
        ("poison/suspect_share", Unit.PERCENT),
        ("certify/abstain_rate", Unit.PERCENT),
        ("scan/bytes_scanned", Unit.BYTES),
        ("size", Unit.BYTES),
        ("sign/signed_bytes", Unit.BYTES),
        ("p99_latency_s", Unit.SECONDS),
        ("validate/rows", Unit.COUNT),
        ("median_queries", Unit.COUNT),
        ("epsilon", Unit.NUMBER),
        ("effect_size", Unit.NUMBER),  # not bytes
        ("certified_accuracy@0.25", Unit.PERCENT),  # the budget after @ does not count
        ("bytes_of@accuracy", Unit.BYTES),
        ("time (unix s)", Unit.TIMESTAMP),
        ("fairness/accuracy_difference_ci_low", Unit.NUMBER),  # a difference of shares, not a share
        ("accuracy drop", Unit.NUMBER),
        ("started_utc", Unit.TIMESTAMP),
    ],
)
def test_unit_of_metric_names(name: str, unit: Unit) -> None:
    assert humanize.unit_of(name) is unit


def test_metric_formats_by_the_name() -> None:
    assert humanize.metric("robustness/robust_accuracy@pgd_linf_0.05", 0.82) == "82%"
    assert humanize.metric("scan/bytes_scanned", 1_351_468.0) == "1.29 MiB"
    assert humanize.metric("validate/rows", 405.0) == "405"
    assert humanize.metric("epsilon", 3.14159) == "3.14"
    # a "rate" outside [0, 1] is not a share: shown as a number, never as 250%
    assert humanize.metric("requests_rate", 2.5) == "2.5"
    assert humanize.value(0.25, "percent") == "25%"
    assert humanize.value(1_796_000_000, "timestamp") == "2026-11-30 00:53:20 UTC"
    with pytest.raises(ValueError):
        humanize.value(1.0, "furlongs")
