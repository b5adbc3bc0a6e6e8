"""Model performance without labels (from confidences) and with them (once labels arrive).

Without labels, the accuracy a model should have on a window is the mean of its top-class confidence,
if those confidences are calibrated (confidence-based performance estimation, as in CBPE). They often
are not, so ``fit_calibration`` learns an isotonic map from confidence to the chance of being right on
labelled reference data, and the estimate averages the calibrated confidences. The estimate sees a
change of the input distribution that moves the model into regions where it is less sure; it cannot see
concept drift (the same inputs now mean other labels): only labels show that.

With labels, ``PerformanceStats.accuracy_test`` compares the actual accuracy of the labelled rows with a
reference accuracy (one-sided binomial test) or, without one, with the model's own expected accuracy on
those same rows (sum of confidences, Poisson-binomial variance): a calibrated model that is now right
less often than it is sure has met concept drift.

``PerformanceStats`` is additive (``+=``), so it rides along in the drift detector's sliding windows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from mlsecops.core.errors import InputError

__all__ = ["FEEDBACK_ALPHA", "MIN_ACCURACY_DROP", "Calibration", "PerformanceStats", "fit_calibration"]

MIN_ACCURACY_DROP = 0.02
"""Smallest accuracy drop reported as degradation: on many labels every tiny drop is significant."""
FEEDBACK_ALPHA = 0.01
"""Significance of the labelled-accuracy test; it runs again on every feedback window, so stricter than
the drift tests' 0.05 (one false alarm per ~100 windows of labels)."""


@dataclass(frozen=True)
class Calibration:
    """An isotonic map from top-class confidence to the probability of a correct prediction.

    Attributes:
        x: confidence knots (increasing).
        y: calibrated probability at each knot.
        reference_accuracy: accuracy on the labelled data it was fitted on.
        rows: labelled rows it was fitted on.
    """

    x: tuple[float, ...]
    y: tuple[float, ...]
    reference_accuracy: float
    rows: int

    def __call__(self, confidence: np.ndarray) -> np.ndarray:
        """Calibrated confidences."""
        out: np.ndarray = np.interp(confidence, np.asarray(self.x), np.asarray(self.y))
        return out

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "x": list(self.x),
            "y": list(self.y),
            "reference_accuracy": self.reference_accuracy,
            "rows": self.rows,
        }


def fit_calibration(probabilities: np.ndarray, labels: np.ndarray) -> Calibration:
    """Fit the confidence -> correctness map on labelled reference predictions.

    Raises:
        InputError: fewer than 20 rows, or labels that are not class indices of the probabilities.
    """
    from sklearn.isotonic import IsotonicRegression

    conf, correct = _confidence_and_correct(probabilities, labels)
    if conf.size < 20:
        raise InputError(f"calibration needs at least 20 labelled rows, got {conf.size}")
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(conf, correct)
    return Calibration(
        x=tuple(float(v) for v in iso.X_thresholds_),
        y=tuple(float(v) for v in iso.y_thresholds_),
        reference_accuracy=float(correct.mean()),
        rows=int(conf.size),
    )


def _confidence_and_correct(probabilities: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probabilities, dtype=float)
    if p.ndim != 2 or p.shape[1] < 1:
        raise InputError(f"model outputs must be (rows, classes) probabilities, got shape {p.shape}")
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != p.shape[0]:
        raise InputError(f"{y.shape[0] if y.ndim else 0} labels for {p.shape[0]} rows of outputs")
    try:
        yf = y.astype(np.float64)
    except (TypeError, ValueError):
        raise InputError("labels must be class indices 0..n_classes-1 (numbers)") from None
    if not np.isfinite(yf).all() or (yf != np.round(yf)).any() or (yf < 0).any() or (yf >= p.shape[1]).any():
        raise InputError(f"labels must be class indices 0..{p.shape[1] - 1}")
    return p.max(axis=1), (p.argmax(axis=1) == yf.astype(np.int64)).astype(float)


class PerformanceStats:
    """Running sums of confidences (all rows) and of correctness (labelled rows)."""

    _FIELDS = ("rows", "conf", "conf_var", "labelled", "correct", "labelled_conf", "labelled_var")

    def __init__(self) -> None:
        self.rows = 0
        self.conf = 0.0
        self.conf_var = 0.0
        self.labelled = 0
        self.correct = 0.0
        self.labelled_conf = 0.0
        self.labelled_var = 0.0

    def __iadd__(self, other: PerformanceStats) -> PerformanceStats:
        for f in self._FIELDS:
            setattr(self, f, getattr(self, f) + getattr(other, f))
        return self

    def add_outputs(self, probabilities: np.ndarray, calibration: Calibration | None = None) -> None:
        """Add the model's outputs for rows without labels (rows with non-finite outputs are skipped)."""
        p = np.asarray(probabilities, dtype=float)
        if p.ndim != 2 or not p.size:
            return
        p = p[np.isfinite(p).all(axis=1)]
        conf = p.max(axis=1)
        if calibration is not None:
            conf = calibration(conf)
        self.rows += int(conf.size)
        self.conf += float(conf.sum())
        self.conf_var += float((conf * (1 - conf)).sum())

    def add_labels(
        self, labels: np.ndarray, probabilities: np.ndarray, calibration: Calibration | None = None
    ) -> None:
        """Add labelled rows with the model's outputs for them.

        Raises:
            InputError: lengths differ, or labels are not class indices.
        """
        conf, correct = _confidence_and_correct(probabilities, labels)
        if calibration is not None:
            conf = calibration(conf)
        self.labelled += int(conf.size)
        self.correct += float(correct.sum())
        self.labelled_conf += float(conf.sum())
        self.labelled_var += float((conf * (1 - conf)).sum())

    def summary(self) -> dict[str, Any]:
        """Estimated accuracy (with a 95 % interval), and the actual accuracy where labels arrived."""
        out: dict[str, Any] = {"rows": self.rows}
        if self.rows:
            est = self.conf / self.rows
            half = 1.96 * math.sqrt(self.conf_var) / self.rows
            out["estimated_accuracy"] = round(est, 4)
            out["estimated_accuracy_95"] = [round(max(est - half, 0.0), 4), round(min(est + half, 1.0), 4)]
        if self.labelled:
            out["labelled"] = self.labelled
            out["accuracy"] = round(self.correct / self.labelled, 4)
        return out

    def accuracy_test(self, *, reference: float | None, alpha: float) -> dict[str, Any]:
        """Whether the labelled accuracy is significantly below ``reference`` (or the expected accuracy).

        Returns:
            JSON-ready evidence with ``degraded`` (bool), ``accuracy``, ``expected``, ``p_value``, ``test``.
        """
        n = self.labelled
        if n == 0:
            return {"degraded": False, "labelled": 0}
        acc = self.correct / n
        if reference is not None:
            expected = reference
            p = float(stats.binom.cdf(round(self.correct), n, min(max(reference, 0.0), 1.0)))
            test = "binomial vs reference accuracy"
        else:
            expected = self.labelled_conf / n
            sd = math.sqrt(max(self.labelled_var, 1e-12))
            p = float(stats.norm.cdf((self.correct - self.labelled_conf) / sd))
            test = "accuracy vs the model's own confidence"
        degraded = p <= alpha and expected - acc >= MIN_ACCURACY_DROP
        return {
            "degraded": degraded,
            "labelled": n,
            "accuracy": round(acc, 4),
            "expected": round(expected, 4),
            "p_value": float(f"{p:.4g}"),
            "test": test,
        }

    def state(self) -> dict[str, float]:
        """JSON-ready sums."""
        return {f: float(getattr(self, f)) for f in self._FIELDS}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PerformanceStats:
        """Rebuild from ``state()``."""
        out = cls()
        for f in cls._FIELDS:
            value = float(state[f])
            setattr(out, f, int(value) if f in ("rows", "labelled") else value)
        return out
