"""Numbers formatted for people: three significant digits, thousands separators, bytes, rates, times.

Standard library only, so every renderer (HTML, terminal, the dashboard) can use it.

>>> significant(0.054321), integer(1351468), size(1351468), percent(0.054321), duration(41.72)
('0.0543', '1,351,468', '1.29 MiB', '5.43%', '41.7 s')
>>> metric("robustness/robust_accuracy@pgd_linf_0.05", 0.82), metric("scan/bytes_scanned", 2048)
('82%', '2 KiB')
"""

from __future__ import annotations

import datetime as dt
import math
import re
from enum import StrEnum

__all__ = [
    "Unit",
    "duration",
    "integer",
    "metric",
    "number",
    "percent",
    "significant",
    "size",
    "timestamp",
    "unit_of",
    "value",
]


class Unit(StrEnum):
    """How a number reads: a plain number, a share of one, a byte count, a count, seconds."""

    NUMBER = "number"
    PERCENT = "percent"
    BYTES = "bytes"
    COUNT = "count"
    SECONDS = "seconds"
    TIMESTAMP = "timestamp"
    """Seconds since the Unix epoch, shown as a UTC date and time."""


_NOT_FINITE = {math.inf: "∞", -math.inf: "-∞"}


def _special(x: float) -> str | None:
    if math.isnan(x):
        return "n/a"
    return _NOT_FINITE.get(x)


def _strip(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


def significant(x: float, digits: int = 3) -> str:
    """``x`` to ``digits`` significant digits: ``0.0543``, ``12.3``, ``12,300``, ``1.23e-05``.

    Trailing zeros are dropped (``0.5``, not ``0.500``); magnitudes of 1,000 and more get thousands
    separators instead of an exponent; magnitudes below 0.0001 use scientific notation.
    """
    special = _special(float(x))
    if special is not None:
        return special
    x = float(x)
    if x == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(x)))
    if magnitude < -4:
        mantissa, exponent = f"{x:.{digits - 1}e}".split("e")
        return f"{_strip(mantissa)}e{exponent}"
    rounded = round(x, digits - 1 - magnitude)
    if rounded != 0 and math.floor(math.log10(abs(rounded))) > magnitude:  # 9.996 -> 10.0
        magnitude += 1
    decimals = max(0, digits - 1 - magnitude)
    if decimals == 0:
        return f"{round(rounded):,}"
    return _strip(f"{rounded:,.{decimals}f}")


def integer(n: float) -> str:
    """A count with thousands separators: ``1,351,468``."""
    special = _special(float(n))
    return special if special is not None else f"{round(n):,}"


def number(x: float) -> str:
    """A whole number exactly (with separators) below 10^15, anything else to three significant digits."""
    x = float(x)
    if math.isfinite(x) and x == round(x) and abs(x) < 1e15:
        return integer(x)
    return significant(x)


_IEC = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def size(n: float) -> str:
    """A byte count in IEC units to three significant digits: ``512 B``, ``2 KiB``, ``1.29 MiB``."""
    special = _special(float(n))
    if special is not None:
        return special
    value_, i = float(n), 0
    while abs(value_) >= 1024 and i < len(_IEC) - 1:
        value_ /= 1024
        i += 1
    if i == 0:
        return f"{integer(value_)} B"
    return f"{significant(value_)} {_IEC[i]}"


def percent(share: float, digits: int = 3) -> str:
    """A share of one as a percentage to ``digits`` significant digits: ``5.43%``, ``82%``, ``100%``."""
    special = _special(float(share))
    if special is not None:
        return special
    return f"{significant(100 * float(share), digits)}%"


def duration(seconds: float) -> str:
    """A time span: ``850 µs``, ``12.5 ms``, ``41.7 s``, ``3 min 5 s``, ``2 h 4 min``, ``3 d 4 h``."""
    special = _special(float(seconds))
    if special is not None:
        return special
    s = float(seconds)
    sign, s = ("-" if s < 0 else ""), abs(s)
    if s == 0:
        return "0 s"
    if s < 1e-3:
        return f"{sign}{significant(s * 1e6)} µs"
    if s < 1:
        text = significant(s * 1e3)
        return f"{sign}{text} ms" if text != "1,000" else f"{sign}1 s"
    if s < 59.95:
        return f"{sign}{significant(s)} s"
    whole = round(s)
    for big, small, name_big, name_small in (
        (86400, 3600, "d", "h"),
        (3600, 60, "h", "min"),
        (60, 1, "min", "s"),
    ):
        if whole >= big:
            hi, rest = divmod(whole, big)
            lo = round(rest / small)
            if lo * small >= big:
                hi, lo = hi + 1, 0
            return f"{sign}{hi} {name_big}" + (f" {lo} {name_small}" if lo else "")
    return f"{sign}{whole} s"  # pragma: no cover (59.95 <= s < 60 rounds to 60: handled above)


def timestamp(moment: dt.datetime) -> str:
    """A moment in UTC to the second: ``2026-12-05 21:13:24 UTC`` (naive times are taken as UTC)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


_TOKENS = re.compile(r"[a-z0-9]+")
_RATE_WORDS = frozenset(
    {
        "accuracy",
        "share",
        "rate",
        "success",
        "fraction",
        "coverage",
        "precision",
        "recall",
        "fpr",
        "tpr",
        "fnr",
        "tnr",
        "percent",
        "pct",
    }
)
_NOT_SHARE_WORDS = frozenset({"difference", "ratio", "drop", "gap", "change", "delta"})
"""A difference or ratio of two shares is not itself a share (policies write it as ``<= 0.1``)."""
_BYTE_WORDS = frozenset({"bytes", "byte"})
_TIMESTAMP_WORDS = frozenset({"unix", "epoch", "timestamp", "utc", "date"})
_SECOND_WORDS = frozenset({"seconds", "secs", "sec", "latency", "duration", "elapsed", "s"})
_COUNT_WORDS = frozenset(
    {"count", "rows", "files", "artifacts", "events", "queries", "findings", "violations", "version", "n"}
)


def unit_of(name: str) -> Unit:
    """The unit a metric or column name implies: ``robust_accuracy@pgd`` is a share, ``bytes_scanned``
    bytes, ``time (unix s)`` a moment, ``p99_latency_s`` seconds, ``suspect_rows`` a count; anything
    else a plain number.

    Only the part before ``@`` and after the last ``/`` counts (``stage/metric@attack_params``).
    """
    base = name.rsplit("/", 1)[-1].split("@", 1)[0].lower()
    words = set(_TOKENS.findall(base))
    if words & _BYTE_WORDS or base in ("size", "file_size"):
        return Unit.BYTES
    if words & _RATE_WORDS and not words & _NOT_SHARE_WORDS:
        return Unit.PERCENT
    if words & _TIMESTAMP_WORDS:
        return Unit.TIMESTAMP
    if words & _SECOND_WORDS:
        return Unit.SECONDS
    if words & _COUNT_WORDS:
        return Unit.COUNT
    return Unit.NUMBER


def value(x: float, unit: Unit | str) -> str:
    """``x`` formatted as ``unit`` (a share outside [0, 1] is shown as a plain number, not as a percent)."""
    match Unit(unit):
        case Unit.PERCENT if 0.0 <= float(x) <= 1.0:
            return percent(x)
        case Unit.BYTES:
            return size(x)
        case Unit.SECONDS:
            return duration(x)
        case Unit.TIMESTAMP if math.isfinite(float(x)):
            return timestamp(dt.datetime.fromtimestamp(float(x), dt.UTC))
        case _:
            return number(x)


def metric(name: str, x: float) -> str:
    """A metric's value formatted by the unit its name implies (``unit_of``)."""
    return value(x, unit_of(name))
