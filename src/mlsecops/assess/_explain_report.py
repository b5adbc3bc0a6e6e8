"""The explanation data types of ``assess.explain`` and the report built from them.

``Explanation`` holds a global ``FeatureRanking`` (SHAP or permutation importance), the permutation
ranking, ``LocalExplanation`` per chosen row and a ``GroupRanking`` per sensitive group;
``explanation_report`` turns it into a ``Report`` with bar charts (global, per group) and signed bar
charts (per row) for the HTML report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mlsecops.assess._explain_figures import signed_bars_svg
from mlsecops.core.findings import Figure, Finding, Report, Severity, utcnow
from mlsecops.report.plots import bar_chart

__all__ = [
    "MIN_GROUP_ROWS",
    "SENSITIVE_MIN_SHARE",
    "SENSITIVE_TOP_K",
    "SHOWN_FEATURES",
    "Explanation",
    "FeatureRanking",
    "GroupRanking",
    "LocalExplanation",
    "explanation_report",
]

MIN_GROUP_ROWS = 30
"""Groups with fewer rows are reported as too small to rank: their importances are noise."""
SENSITIVE_TOP_K = 3
"""A sensitive column among this many most important features raises a finding..."""
SENSITIVE_MIN_SHARE = 0.1
"""...when its importance is also at least this share of the top feature's: with few features, a
feature the model ignores can rank third on noise alone."""
SHOWN_FEATURES = 15
"""Features drawn in each chart (all are in the report's data)."""


@dataclass(frozen=True)
class FeatureRanking:
    """One importance value per feature, from one method."""

    method: str
    """``permutation`` (accuracy drop) or ``shap`` (mean absolute SHAP value of the probabilities)."""
    names: tuple[str, ...]
    """Feature names, in column order."""
    importance: np.ndarray
    """Importance per feature; larger is more important."""
    std: np.ndarray | None = None
    """Spread over permutation repeats (``None`` for SHAP)."""

    def ranked(self) -> list[tuple[str, float]]:
        """``(feature, importance)`` pairs, most important first (ties keep column order)."""
        order = np.argsort(-self.importance, kind="stable")
        return [(self.names[i], float(self.importance[i])) for i in order]

    def rank_of(self, feature: str) -> int:
        """1-based rank of ``feature`` (1 = most important)."""
        return [n for n, _ in self.ranked()].index(feature) + 1


@dataclass(frozen=True)
class LocalExplanation:
    """Why the model decided as it did for one row."""

    row: int
    """Row index in the data file (0-based, header excluded)."""
    predicted: str
    """The predicted class."""
    probability: float
    """The model's probability of that class."""
    base: float
    """Expected probability of that class over the background."""
    contributions: dict[str, float]
    """Per feature: how much it moved the probability from ``base`` (positive: towards the class)."""


@dataclass(frozen=True)
class GroupRanking:
    """Features ranked within one group of a sensitive column."""

    group: str
    n: int
    ranking: FeatureRanking | None
    """``None`` when the group has fewer than ``MIN_GROUP_ROWS`` rows."""


@dataclass(frozen=True)
class Explanation:
    """Global, local and per-group explanations of one model on one data set."""

    method: str
    """Method of the main ranking: ``permutation`` or ``shap`` (``shap-tree``, ``shap-permutation``)."""
    ranking: FeatureRanking
    """The main global ranking (SHAP where used, else permutation importance)."""
    permutation: FeatureRanking
    """Permutation importance, always computed."""
    local: tuple[LocalExplanation, ...] = ()
    groups: tuple[GroupRanking, ...] = ()
    sensitive: str | None = None
    n_rows: int = 0
    accuracy: float = 0.0


def explanation_report(
    expl: Explanation, *, subject: str, started: Any = None, kind: str = "assess.explain"
) -> Report:
    """Turn an explanation into a report: metrics, rankings, local explanations, charts, findings."""
    ranked = expl.ranking.ranked()
    names = list(expl.ranking.names)
    metrics: dict[str, float] = {f"importance@{n}": round(v, 6) for n, v in ranked}
    metrics["accuracy"] = round(expl.accuracy, 6)
    findings: list[Finding] = []
    if expl.sensitive is not None and expl.sensitive in names:
        rank = expl.ranking.rank_of(expl.sensitive)
        metrics["sensitive_rank"] = rank
        value = float(expl.ranking.importance[names.index(expl.sensitive)])
        best = max(float(expl.ranking.importance.max()), 0.0)
        if rank <= SENSITIVE_TOP_K and value > 0 and value >= SENSITIVE_MIN_SHARE * best:
            findings.append(
                Finding(
                    check=kind,
                    severity=Severity.MEDIUM,
                    title=f"the sensitive feature {expl.sensitive!r} is the model's #{rank} most important "
                    "feature",
                    detail=f"{expl.method} importance ranks {expl.sensitive!r} {rank} of {len(names)}: the "
                    "model's decisions depend on it directly",
                    artifact=subject,
                    location={"feature": expl.sensitive},
                    evidence={"rank": rank, "importance": metrics[f"importance@{expl.sensitive}"]},
                    remediation="audit the model's outcomes by group (mlsecops assess fairness); drop the "
                    "feature and its proxies, or mitigate (mlsecops harden fairness)",
                )
            )
    figures = [
        bar_chart(
            f"Global feature importance ({expl.method})",
            dict(ranked[:SHOWN_FEATURES]),
            ylabel="mean |SHAP| (probability)" if expl.ranking.method == "shap" else "accuracy drop",
        )
    ]
    if expl.ranking.method == "shap":
        figures.append(
            bar_chart(
                "Permutation importance (accuracy drop)",
                dict(expl.permutation.ranked()[:SHOWN_FEATURES]),
                ylabel="accuracy drop",
            )
        )
    local_rows: list[Any] = []
    for le in expl.local:
        top = sorted(le.contributions.items(), key=lambda kv: -abs(kv[1]))
        local_rows.append(
            {
                "row": le.row,
                "predicted": le.predicted,
                "probability": round(le.probability, 6),
                "base": round(le.base, 6),
                "contributions": {k: round(v, 6) for k, v in top},
            }
        )
        figures.append(
            Figure(
                title=f"Row {le.row}: predicted {le.predicted} (p={le.probability:.2f}, base {le.base:.2f})",
                content=signed_bars_svg(top[:SHOWN_FEATURES], xlabel="change in probability"),
            )
        )
    group_rows: list[Any] = []
    for gr in expl.groups:
        entry: dict[str, Any] = {"group": gr.group, "n": gr.n}
        if gr.ranking is None:
            entry["status"] = f"too small to rank (fewer than {MIN_GROUP_ROWS} rows)"
        else:
            entry["ranking"] = [[n, round(v, 6)] for n, v in gr.ranking.ranked()]
            figures.append(
                bar_chart(
                    f"Feature importance in group {expl.sensitive}={gr.group} (n={gr.n})",
                    dict(gr.ranking.ranked()[:SHOWN_FEATURES]),
                    ylabel="importance",
                )
            )
        group_rows.append(entry)
    data: dict[str, Any] = {
        "explanation": {
            "method": expl.method,
            "n_rows": expl.n_rows,
            "ranking": [[n, round(v, 6)] for n, v in ranked],
            "permutation": [
                [n, round(v, 6), round(float(expl.permutation.std[names.index(n)]), 6)]
                for n, v in expl.permutation.ranked()
            ]
            if expl.permutation.std is not None
            else [],
        },
        "local_explanations": local_rows,
        "group_rankings": group_rows,
    }
    return Report(
        subject=subject,
        kind=kind,
        started=started or utcnow(),
        finished=utcnow(),
        findings=tuple(findings),
        metrics=metrics,
        verdict="sensitive-feature-used" if findings else "explained",
        data=data,
        figures=tuple(figures),
    )
