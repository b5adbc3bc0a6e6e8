"""Planted scaffolded classifiers (Slack et al., AIES 2020, "Fooling LIME and SHAP"), for tests and benchmarks.

A scaffold wraps a biased rule and an innocuous one behind an out-of-distribution detector: on inputs the
detector takes for real data it decides on the sensitive feature, on the perturbed inputs LIME and SHAP
generate it decides on an unrelated feature, so the explainers report the unrelated feature as the
reason. Three out-of-distribution detectors (``detector``):

- ``forest`` (the paper's): a random forest trained to tell real rows from the perturbation families of
  ``assess._perturbations`` (by default all of them, LIME-style and SHAP-style); an attacker who wants
  to fool one explainer only trains it on that explainer's families;
- ``knn``: no knowledge of the sampler: a row is real when its distance to its ``KNN_NEIGHBOURS``-th
  nearest real row (standardised features) is within what real rows show (``REAL_QUANTILE``);
- ``isolation``: no knowledge of the sampler either: an isolation forest fitted on the real rows, a row
  being real when its score is within what real rows show.

This is the attack ``assess.explain_integrity`` must catch; it is not meant for anything else.

A scaffold is a Python class, which ``safe_load`` rightly refuses to unpickle; tests and benchmarks use
it in memory through ``SklearnModel``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mlsecops.assess._perturbations import FAMILIES, perturb

__all__ = ["DETECTORS", "ScaffoldedClassifier", "rule_classifier"]

DETECTORS = ("forest", "knn", "isolation")
"""Out-of-distribution detectors a scaffold can hide behind."""
KNN_NEIGHBOURS = 5
"""The ``knn`` detector's neighbour rank."""
REAL_QUANTILE = 0.95
"""Unsupervised detectors take a row for real when its outlier score is within this quantile of the
real rows' own scores (5% of real rows then get the innocuous rule: the attacker's cost)."""


class _Rule:
    """Positive class when feature ``feature`` exceeds ``threshold``."""

    def __init__(self, feature: int, threshold: float) -> None:
        self.feature = feature
        self.threshold = threshold

    def positive(self, x: np.ndarray) -> np.ndarray:
        return x[:, self.feature] > self.threshold


class ScaffoldedClassifier:
    """Biased on real-looking inputs (decides on ``sensitive``), innocuous on explainer perturbations.

    Args:
        sensitive: column the biased rule decides on (positive above its median).
        innocuous: column the rule shown to explainers decides on (positive above its median).
        families: perturbation families the ``forest`` detector learns to recognise.
        n_estimators: trees of the ``forest`` and ``isolation`` detectors.
        detector: one of :data:`DETECTORS`.
        seed: random seed.
        constant: when set, the class answered wherever the detector sees a perturbation, instead of
            the innocuous rule (a scaffold that shows explainers a model deciding on nothing there).
    """

    def __init__(
        self,
        *,
        sensitive: int,
        innocuous: int,
        families: Sequence[str] = FAMILIES,
        n_estimators: int = 100,
        detector: str = "forest",
        seed: int = 0,
        constant: int | None = None,
    ) -> None:
        self.sensitive = sensitive
        self.innocuous = innocuous
        self.families = families
        self.n_estimators = n_estimators
        self.detector = detector
        self.seed = seed
        self.constant = constant

    def fit(self, x: np.ndarray, y: np.ndarray | None = None) -> ScaffoldedClassifier:
        """Learn the detector (real rows vs perturbations) and the two rules' thresholds."""
        data = np.asarray(x, dtype=np.float64)
        if self.detector == "forest":
            self.detector_ = self._fit_forest(data)
        elif self.detector == "knn":
            self.detector_ = _KnnDetector(data)
        elif self.detector == "isolation":
            self.detector_ = _IsolationDetector(data, self.n_estimators, self.seed)
        else:
            raise ValueError(f"detector must be one of {', '.join(DETECTORS)}; got {self.detector!r}")
        self.biased_ = _Rule(self.sensitive, _split(data[:, self.sensitive]))
        self.shown_ = _Rule(self.innocuous, _split(data[:, self.innocuous]))
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = data.shape[1]
        return self

    def _fit_forest(self, data: np.ndarray) -> Any:
        from sklearn.ensemble import RandomForestClassifier

        rng = np.random.default_rng(self.seed)
        per = max(1, len(data) // len(self.families))  # as many perturbed rows as real ones: balanced
        fake = np.concatenate([perturb(f, data, per, rng) for f in self.families])
        xs = np.concatenate([data, fake])
        ys = np.concatenate([np.ones(len(data)), np.zeros(len(fake))])
        return RandomForestClassifier(
            n_estimators=self.n_estimators, min_samples_leaf=2, random_state=self.seed, n_jobs=1
        ).fit(xs, ys)

    def _real(self, arr: np.ndarray) -> np.ndarray:
        if isinstance(self.detector_, _KnnDetector | _IsolationDetector):
            return self.detector_.real(arr)
        return np.asarray(self.detector_.predict_proba(arr)[:, 1] >= 0.5)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """One-hot probabilities: the biased rule where the detector sees real data, else the innocuous one
        (or the constant class).
        """
        arr = np.asarray(x, dtype=np.float64)
        real = self._real(arr)
        shown = self.shown_.positive(arr) if self.constant is None else np.full(len(arr), self.constant == 1)
        pos = np.where(real, self.biased_.positive(arr), shown)
        return np.stack([1.0 - pos, pos.astype(np.float64)], axis=1)

    def biased_share(self, x: np.ndarray) -> float:
        """Share of rows of ``x`` on which the scaffold follows its biased rule (real data: near 1)."""
        return float(np.mean(self._real(np.asarray(x, dtype=np.float64))))

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class labels."""
        return np.asarray(self.predict_proba(x).argmax(axis=1))


class _KnnDetector:
    """Real when the distance to the k-th nearest real row is within the real rows' own distances."""

    def __init__(self, data: np.ndarray) -> None:
        from sklearn.neighbors import NearestNeighbors

        self.mean = data.mean(axis=0)
        std = data.std(axis=0)
        self.scale = np.where(std > 0, std, 1.0)
        z = (data - self.mean) / self.scale
        self.nn = NearestNeighbors(n_neighbors=KNN_NEIGHBOURS + 1).fit(z)
        own = self.nn.kneighbors(z)[0][:, -1]  # the row itself is its own nearest neighbour: skip it
        self.limit = float(np.quantile(own, REAL_QUANTILE))

    def real(self, x: np.ndarray) -> np.ndarray:
        dist = self.nn.kneighbors((x - self.mean) / self.scale, n_neighbors=KNN_NEIGHBOURS)[0][:, -1]
        return np.asarray(dist <= self.limit)


class _IsolationDetector:
    """Real when the isolation forest's score is within the real rows' own scores."""

    def __init__(self, data: np.ndarray, n_estimators: int, seed: int) -> None:
        from sklearn.ensemble import IsolationForest

        self.forest = IsolationForest(n_estimators=n_estimators, random_state=seed, n_jobs=1).fit(data)
        self.limit = float(np.quantile(self.forest.score_samples(data), 1.0 - REAL_QUANTILE))

    def real(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.forest.score_samples(x) >= self.limit)


class _RuleClassifier:
    def __init__(self, feature: int, threshold: float, n_features: int) -> None:
        self.rule = _Rule(feature, threshold)
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = n_features

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        pos = self.rule.positive(np.asarray(x, dtype=np.float64)).astype(np.float64)
        return np.stack([1.0 - pos, pos], axis=1)


def rule_classifier(x: np.ndarray, feature: int) -> _RuleClassifier:
    """An honest but biased model: decides on ``feature`` (above its median) for every input."""
    data = np.asarray(x, dtype=np.float64)
    return _RuleClassifier(feature, _split(data[:, feature]), data.shape[1])


def _split(col: np.ndarray) -> float:
    """A threshold that splits a column as evenly as its values allow (binary columns at their midpoint)."""
    values = np.unique(col)
    if len(values) == 2:
        return float(values.mean())
    return float(np.median(col))
