"""Security posture of every registered model version, for the dashboard, the CLI and scripts.

A posture answers "is this version at risk, and why" from what the workspace already holds: the
registry (scan verdict, signature, approvals, the attached gate run), the recorded pipeline runs over
the version's exact bytes (data checks, robustness, privacy, fairness: their stored metrics and
findings, never recomputed), the lineage graph (training data, differential privacy), and the runtime
(alerts, incidents, the decision log). Each of its parts says why in one sentence, with the numbers
and where they were read; findings carry MITRE ATLAS and OWASP ML Top 10 ids (``core.taxonomy``).

>>> # from mlsecops.posture import all_postures, model_posture, production_history, at_time, trends
>>> # [p.to_dict() for p in all_postures(ws)]             # every version, in a few queries
>>> # model_posture(ws, "fraud", 3).part("gate").summary
>>> # at_time(ws, "fraud", "2026-12-01T12:00:00Z")        # {"production": 2}
"""

from __future__ import annotations

from mlsecops.posture._model import (
    FAIR_SCORE,
    GOOD_SCORE,
    FindingRef,
    PartPosture,
    VersionPosture,
)
from mlsecops.posture._parts import WEIGHTS
from mlsecops.posture._posture import all_postures, model_posture
from mlsecops.posture.history import at_time, parse_time, production_history
from mlsecops.posture.trends import charts, trends

__all__ = [
    "FAIR_SCORE",
    "GOOD_SCORE",
    "WEIGHTS",
    "FindingRef",
    "PartPosture",
    "VersionPosture",
    "all_postures",
    "at_time",
    "charts",
    "model_posture",
    "parse_time",
    "production_history",
    "trends",
]
