"""``Severity``, the ordered scale every finding uses, and ``utcnow``.

Kept apart from the pydantic models in ``findings`` so that the scanner's hot path and the ``scan``
command import no pydantic: ``from mlsecops.core.findings import Severity`` still works.

>>> from mlsecops.core.severity import Severity
>>> max(Severity.parse("low"), Severity.parse("HIGH"))
<Severity.HIGH: 3>
"""

from __future__ import annotations

import datetime as dt
from enum import IntEnum

__all__ = ["Severity", "utcnow"]


def utcnow() -> dt.datetime:
    """Return the current time as an aware UTC datetime."""
    return dt.datetime.now(dt.UTC)


class Severity(IntEnum):
    """How bad a finding is. Ordered, so ``max()``, ``>=`` and thresholds work directly."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    def __str__(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str | int | Severity) -> Severity:
        """Turn ``"high"``, ``"HIGH"``, ``3`` or a ``Severity`` into a ``Severity``.

        Raises:
            ValueError: the value names no severity.
        """
        if isinstance(value, Severity):
            return value
        if isinstance(value, int):
            return cls(value)
        try:
            return cls[str(value).strip().upper()]
        except KeyError:
            names = ", ".join(str(s) for s in cls)
            raise ValueError(f"severity must be one of {names}; got {value!r}") from None
