"""The values a posture is made of, and how a score and a grade follow from its parts.

A part is one question about a version (is its scan clean, is it signed, did its gate pass...) with a
status, a score, a weight, one sentence saying why, the numbers behind it, where they were read, and
the findings mapped to MITRE ATLAS and the OWASP ML Top 10. The version's score is the weighted mean
of the scores of the parts that are known; a part whose evidence is missing is shown as ``missing``
with a score of ``None`` and does not enter the mean. The grade reads the score (``good`` from
``GOOD_SCORE``, ``fair`` from ``FAIR_SCORE``), except that any failing part makes it ``poor`` whatever
the mean: a malicious scan is not averaged away by ten clean parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "FAIR_SCORE",
    "GOOD_SCORE",
    "STATUS_SCORE",
    "FindingRef",
    "Grade",
    "PartPosture",
    "Status",
    "VersionPosture",
    "grade_of",
    "score_of",
]

Status = Literal["ok", "warn", "fail", "missing"]
Grade = Literal["good", "fair", "poor", "unknown"]

GOOD_SCORE = 80
"""Lowest score graded ``good`` (with no failing part)."""
FAIR_SCORE = 50
"""Lowest score graded ``fair``; below it ``poor``."""
STATUS_SCORE: dict[str, int] = {"ok": 100, "warn": 50, "fail": 0}
"""A part's score when its status is all it has to say (parts with a natural 0-100 measure, such as
the ML-BOM's share of known facts, report that instead)."""


@dataclass(frozen=True)
class FindingRef:
    """A finding as the posture shows it: what, how bad, which threats, what to do."""

    title: str
    severity: str
    atlas: tuple[str, ...] = ()
    owasp: tuple[str, ...] = ()
    remediation: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "title": self.title,
            "severity": self.severity,
            "atlas": list(self.atlas),
            "owasp": list(self.owasp),
            "remediation": self.remediation,
        }


@dataclass(frozen=True)
class PartPosture:
    """One part of a version's posture."""

    name: str
    status: Status
    score: int | None
    """0-100; ``None`` when the part is missing."""
    weight: int
    summary: str
    """One sentence saying why (for a missing part: what is missing and how to get it)."""
    evidence: dict[str, Any] = field(default_factory=dict)
    """Named numbers (and short facts) behind the status."""
    source: str = ""
    """Where it was read: ``registry``, ``run 12 stage robust``, ``monitor_alerts``..."""
    findings: tuple[FindingRef, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "name": self.name,
            "status": self.status,
            "score": self.score,
            "weight": self.weight,
            "summary": self.summary,
            "evidence": dict(self.evidence),
            "source": self.source,
            "findings": [f.to_dict() for f in self.findings],
        }


def score_of(parts: tuple[PartPosture, ...]) -> int | None:
    """Weighted mean of the known parts' scores, rounded; ``None`` when no part is known."""
    known = [(p.score, p.weight) for p in parts if p.score is not None and p.weight > 0]
    total = sum(w for _, w in known)
    if not total:
        return None
    return round(sum(s * w for s, w in known) / total)


def grade_of(score: int | None, parts: tuple[PartPosture, ...]) -> Grade:
    """``poor`` when a part fails; else by score; ``unknown`` when nothing is known."""
    if score is None:
        return "unknown"
    if any(p.status == "fail" for p in parts) or score < FAIR_SCORE:
        return "poor"
    return "good" if score >= GOOD_SCORE else "fair"


@dataclass(frozen=True)
class VersionPosture:
    """The security posture of one registered model version."""

    model: str
    version: int
    score: int | None
    grade: Grade
    aliases: tuple[str, ...]
    """Stages and aliases it holds now (``production``, ``champion``...)."""
    registered: str
    """UTC ISO time of its registration."""
    parts: tuple[PartPosture, ...]
    open_alerts: int
    open_incidents: int

    def part(self, name: str) -> PartPosture:
        """The part named ``name``.

        Raises:
            KeyError: no such part.
        """
        for p in self.parts:
            if p.name == name:
                return p
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (the shape the dashboard and ``mlsecops posture -f json`` use)."""
        return {
            "model": self.model,
            "version": self.version,
            "score": self.score,
            "grade": self.grade,
            "aliases": list(self.aliases),
            "registered": self.registered,
            "parts": [p.to_dict() for p in self.parts],
            "open_alerts": self.open_alerts,
            "open_incidents": self.open_incidents,
        }
