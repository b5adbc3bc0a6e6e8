"""Running the poisoning detectors on one data set and turning their output into findings.

``scan_rows`` runs the row detectors (label issues, backdoor clusters, outliers, near-duplicates) on a
feature matrix and labels; ``scan_accounts`` runs the coordinated-account detector on a ratings table.
Both return the suspects (0-based row or account id, a score in [0, 1] and a readable reason) and one
summary finding per detector that found something; ``checks`` puts them into the ``data.poison`` report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import JsonValue

from mlsecops.core.errors import InputError
from mlsecops.core.executor import Executor
from mlsecops.core.findings import Finding, Severity
from mlsecops.data._accounts import CoordinatedAccountDetector
from mlsecops.data._backdoor import BackdoorClusterDetector
from mlsecops.data._labels import ConfidentLabelDetector
from mlsecops.data._model_features import ModelSignals
from mlsecops.data._outliers import NearDuplicateDetector, OutlierDetector

__all__ = ["MODEL_MIN_PROBA", "ROW_DETECTORS", "PoisonResult", "scan_accounts", "scan_rows"]

CHECK = "data.poison"
ATLAS = "AML.T0020"
ROW_DETECTORS = ("labels", "backdoor", "outliers", "duplicates")
"""Names of the row detectors, in the order they run."""
MODEL_MIN_PROBA = 0.01

# Severity follows the evidence, so clean data passes a default gate (--fail-on medium) while the
# suspect rows are still listed. Label errors: the detector's estimate of the share of wrong labels
# (``noise_rate_``, from the calibrated likelihood), not the count of rows flagged: clean scikit-learn
# digits, breast-cancer and wine estimate <= 0.3% and a deterministic synthetic label 0%, while 1%
# flips estimate 0.6-1.5% (benchmarks/results/data.md has the full runs). Outliers: real data has some
# rows far from the rest (clean digits: 0.8%), so only a larger share is evidence of injection. On
# small data the estimate itself is uncertain: see _label_severity.
# Tune with --fail-on (low fails on any suspect row) or a policy rule on the metrics
# (`label_issues`, `outliers`, `suspect_share`).
LABEL_NOISE_MEDIUM = 0.005
"""Estimated share of wrong labels from which label issues are a medium finding (low below)."""
LABEL_NOISE_HIGH = 0.02
"""Estimated share of wrong labels from which label issues are a high finding."""
LABEL_NOISE_STDERRS = 2.0
"""Standard errors of the estimated noise rate taken off it before it is compared (small data)."""
OUTLIER_SHARE_MEDIUM = 0.01
"""Share of outlying rows from which outliers are a medium finding (low below)."""
"""A supplied model giving a row's label less probability than this flags the row."""


@dataclass
class PoisonResult:
    """Suspects and findings of one poisoning scan."""

    suspects: list[dict[str, JsonValue]] = field(default_factory=list)
    """``{row, score, reason}`` (or ``{user, score, reason}``), sorted by row / descending score."""
    findings: list[Finding] = field(default_factory=list)
    """One summary finding per detector that flagged something."""
    metrics: dict[str, float] = field(default_factory=dict)
    """Counts per detector."""
    mask: np.ndarray | None = None
    """Boolean mask of suspect rows (row scans only)."""


def _finding(
    name: str, sev: Severity, title: str, detail: str, artifact: str | None, **ev: JsonValue
) -> Finding:
    return Finding(
        check=f"{CHECK}.{name}",
        severity=sev,
        title=title,
        detail=detail,
        artifact=artifact,
        evidence=dict(ev),
        remediation="Review the suspect rows (`--quarantine DIR` writes them apart) before training on the data.",
        atlas=ATLAS,
    )


def _label_severity(noise_rate: float, n_rows: int) -> Severity:
    # The estimate is a share of n rows: on a few hundred rows it moves by a percent or two (models
    # trained on 80% of them get some right labels wrong), so the severity takes the lower end of a
    # two-standard-error band, not the point estimate.
    spread = LABEL_NOISE_STDERRS * float(np.sqrt(noise_rate * (1.0 - noise_rate) / max(n_rows, 1)))
    evidence = max(noise_rate - spread, 0.0)
    if evidence >= LABEL_NOISE_HIGH:
        return Severity.HIGH
    return Severity.MEDIUM if evidence >= LABEL_NOISE_MEDIUM else Severity.LOW


def scan_rows(
    X: np.ndarray,
    y: np.ndarray,
    *,
    detectors: tuple[str, ...] = ROW_DETECTORS,
    classes: list[str] | None = None,
    artifact: str | None = None,
    seed: int = 0,
    trusted: tuple[np.ndarray, np.ndarray] | None = None,
    model: ModelSignals | None = None,
    model_min_proba: float = MODEL_MIN_PROBA,
    progress: Callable[[str, int, int], None] | None = None,
    executor: Executor | None = None,
) -> PoisonResult:
    """Run the row detectors on ``(X, y)``.

    Args:
        X: features, one row per sample (images are flattened).
        y: integer class codes.
        detectors: which of ``ROW_DETECTORS`` to run.
        classes: display names of the class codes.
        artifact: path named in the findings.
        seed: random seed of every detector.
        trusted: known-clean rows ``(X, y)`` (same label codes) that the label models also learn from.
        model: a supplied model's outputs on ``X`` (``model_signals``): its features replace the learned
            ones of the backdoor detector, and rows whose given label it assigns less than
            ``model_min_proba`` (and that the cross-validated label models do not confirm) are label
            issues too.
        model_min_proba: see ``model``.
        progress: called as each detector starts with its name, the number of detectors done and the
            number that will run (a detector needing more classes than the data has is not counted).
        executor: where the label detector's cross-validation folds fit (default: here); the result is
            the same on every engine.

    Raises:
        InputError: an unknown detector name, or data the detectors cannot use.
    """
    unknown = set(detectors) - set(ROW_DETECTORS)
    if unknown:
        raise InputError(f"unknown detectors {sorted(unknown)}; choose from {', '.join(ROW_DETECTORS)}")
    X = X.reshape(X.shape[0], -1)
    n = X.shape[0]
    names = classes or [str(c) for c in range(int(y.max()) + 1)]
    score = np.zeros(n)
    reasons: dict[int, list[str]] = {}
    res = PoisonResult(metrics={"rows": float(n)})

    def flag(rows: np.ndarray, scores: np.ndarray, text: list[str]) -> None:
        for r, s, t in zip(rows.tolist(), scores.tolist(), text, strict=True):
            score[r] = max(score[r], float(np.clip(s, 0.0, 1.0)))
            reasons.setdefault(r, []).append(t)

    n_classes = np.unique(y).size
    # Detectors that run, in order: label models need two classes, the backdoor test three.
    needs = {"labels": 2, "backdoor": 3, "outliers": 0, "duplicates": 0}
    planned = [d for d in ROW_DETECTORS if d in detectors and n_classes >= needs[d]]

    def step(name: str) -> None:
        if progress is not None:
            progress(name, planned.index(name), len(planned))

    if "labels" in planned:
        step("labels")
        lab = ConfidentLabelDetector(random_state=seed, executor=executor).fit(X, y, trusted=trusted)
        rows = np.flatnonzero(lab.suspect_)
        res.metrics["label_issues"] = float(rows.size)
        text = [
            f"label {names[y[r]]} contradicted: out-of-sample p={lab.proba_[r, y[r]]:.2f}, class"
            f" {names[lab.suggested_labels_[r]]} p={lab.proba_[r, lab.suggested_labels_[r]]:.2f}"
            for r in rows
        ]
        flag(rows, (lab.scores_[rows] + 1) / 2, text)
        if model is not None:
            rows = _model_label_issues(model, y, names, model_min_proba, flag, lab)
            res.metrics["model_label_issues"] = float(rows.size)
            res.metrics["label_issues"] += float(np.sum(~lab.suspect_[rows]))
            rows = np.union1d(np.flatnonzero(lab.suspect_), rows)
        if rows.size:
            share = rows.size / n
            res.findings.append(
                _finding(
                    "labels",
                    _label_severity(lab.noise_rate_, n),
                    f"{rows.size} rows with suspected label errors or flips ({share:.1%})",
                    "Models trained without these rows assign another class clearly more probability"
                    " than the given label (confident learning, three rounds; estimated share of wrong"
                    f" labels {lab.noise_rate_:.1%})"
                    + (
                        f", or the supplied model gives the label less than {model_min_proba:g}"
                        " and the cross-validated models do not confirm it."
                        if model is not None
                        else "."
                    ),
                    artifact,
                    rows=[int(r) for r in rows[:50]],
                    estimated_noise_rate=round(lab.noise_rate_, 4),
                )
            )
    if "backdoor" in planned:
        step("backdoor")
        feats = model.features if model is not None else None
        bd = BackdoorClusterDetector(random_state=seed, features=feats).fit(X, y)
        rows = np.flatnonzero(bd.suspect_)
        via = f" (in the {model.source} features of the model)" if model is not None else ""
        res.metrics["backdoor_rows"] = float(rows.size)
        text = [
            f"backdoor: in a cluster of class {names[y[r]]}{via} that the other classes explain"
            f" (ratio {bd.scores_[r]:.2f}); looks like class {names[bd.explained_by_[r]]}"
            for r in rows
        ]
        flag(rows, bd.scores_[rows], text)
        if rows.size:
            targets = sorted({names[y[r]] for r in rows})
            res.findings.append(
                _finding(
                    "backdoor",
                    Severity.CRITICAL,
                    f"{rows.size} rows look like a backdoor relabelled to class {', '.join(targets)}",
                    "A cluster of one class, in features a model learned, is classified as confidently as"
                    " genuine data by a model of the other classes: the rows are other classes' inputs"
                    " carrying a shared pattern (trigger) and the target label.",
                    artifact,
                    target_classes=list(targets),
                    rows=[int(r) for r in rows[:50]],
                    clusters={names[c]: _jsonify(v) for c, v in bd.clusters_.items()},
                )
            )
    if "outliers" in planned:
        step("outliers")
        od = OutlierDetector().fit(X)
        rows = np.flatnonzero(od.suspect_)
        res.metrics["outliers"] = float(rows.size)
        flag(
            rows,
            od.scores_[rows] / (2 * od.threshold),
            [f"outlier: neighbour distance z={od.scores_[r]:.1f}" for r in rows],
        )
        if rows.size:
            res.findings.append(
                _finding(
                    "outliers",
                    Severity.MEDIUM if rows.size / n >= OUTLIER_SHARE_MEDIUM else Severity.LOW,
                    f"{rows.size} outlying rows",
                    "Rows far from every other row (robust z-score of the mean"
                    f" distance to their neighbours above {od.threshold:g}).",
                    artifact,
                    rows=[int(r) for r in rows[:50]],
                )
            )
    if "duplicates" in planned:
        step("duplicates")
        nd = NearDuplicateDetector().fit(X)
        rows = np.flatnonzero(nd.suspect_)
        res.metrics["near_duplicates"] = float(rows.size)
        flag(
            rows,
            np.ones(rows.size),
            [f"near-duplicate of row {nd.original_[r]} (group of {int(nd.scores_[r])})" for r in rows],
        )
        if rows.size:
            res.findings.append(
                _finding(
                    "duplicates",
                    Severity.MEDIUM,
                    f"{rows.size} injected near-duplicate rows in {len(nd.groups_)} groups",
                    "Groups of rows far closer to each other than rows of this"
                    " data normally are: copies that over-weight a few points.",
                    artifact,
                    groups=[[int(v) for v in g[:20]] for g in nd.groups_[:20]],
                )
            )
    mask = np.zeros(n, dtype=bool)
    mask[list(reasons)] = True
    res.mask = mask
    res.suspects = [
        {"row": int(r), "score": round(float(score[r]), 4), "reason": "; ".join(reasons[r])}
        for r in sorted(reasons)
    ]
    res.metrics["suspect_rows"] = float(len(reasons))
    res.metrics["suspect_share"] = round(len(reasons) / n, 6)
    return res


def scan_accounts(
    user: np.ndarray, item: np.ndarray, rating: np.ndarray, time: np.ndarray, *, artifact: str | None = None
) -> PoisonResult:
    """Run the coordinated-account detector on a ratings table.

    Raises:
        InputError: columns of different lengths or non-numeric ratings/times.
    """
    det = CoordinatedAccountDetector().fit(user, item, rating, time)
    res = PoisonResult(metrics={"ratings": float(len(user)), "accounts": float(det.users_.size)})
    sus = np.flatnonzero(det.suspect_)
    order = sus[np.argsort(-det.scores_[sus], kind="stable")]
    campaign = [_json_id(v) for v in det.campaign_items_.tolist()]
    res.suspects = [
        {
            "user": _json_id(det.users_[k]),
            "score": round(float(min(1.0, det.scores_[k] / 2)), 4),
            "reason": f"{int(det.hits_[k])} coordinated ratings on campaign items (burst or lockstep, against the"
            " items' consensus)",
        }
        for k in order
    ]
    res.metrics["suspect_accounts"] = float(sus.size)
    res.metrics["campaign_items"] = float(len(campaign))
    if sus.size:
        res.findings.append(
            _finding(
                "accounts",
                Severity.HIGH,
                f"{sus.size} accounts act as a coordinated campaign on {len(campaign)} items",
                "These accounts rate the same items in the same bursts (or in"
                " lockstep) with ratings far from what the other accounts think of those items.",
                artifact,
                campaign_items=campaign[:50],
                users=[s["user"] for s in res.suspects[:50]],
            )
        )
    return res


def _model_label_issues(
    model: ModelSignals,
    y: np.ndarray,
    names: list[str],
    min_proba: float,
    flag: Callable[[np.ndarray, np.ndarray, list[str]], None],
    lab: ConfidentLabelDetector,
) -> np.ndarray:
    """Flag rows whose label the supplied model gives less than ``min_proba``; return those rows.

    A model's confident mistakes on clean rows are as frequent as its error rate (2-4% for a small digits
    network), so the model alone is not trusted: a row is flagged only when the cross-validated label
    models do not confirm its label either (their out-of-sample probability of it is below one half).
    """
    already = lab.suspect_
    if model.proba.shape[0] != y.size or model.proba.shape[1] <= int(y.max()):
        raise InputError(f"model probabilities have shape {model.proba.shape} for {y.size} rows")
    own = model.proba[np.arange(y.size), y]
    rows = np.flatnonzero((own < min_proba) & (lab.scores_ > 0.0))
    best = model.proba.argmax(axis=1)
    text = [
        f"label {names[y[r]]} {'also ' if already[r] else ''}contradicted by the supplied model:"
        f" p={own[r]:.3f}, class {names[best[r]]} p={model.proba[r, best[r]]:.2f}"
        for r in rows
    ]
    flag(rows, 1.0 - own[rows], text)
    return rows


def _jsonify(value: list[dict[str, Any]]) -> JsonValue:
    return [{k: v for k, v in d.items() if isinstance(v, int | float | str)} for d in value]


def _json_id(value: object) -> JsonValue:
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    return str(value)
