"""Backdoor (trigger) detection on learned features.

A backdoor attack adds a trigger (a patch, a pattern) to some training inputs and relabels them to a
target class; a model trained on them learns "trigger -> target". In the learned features of such a model
the poisoned rows of the target class form their own group. Three detectors, all ``fit(X, y)`` then
``scores_`` / ``suspect_``:

* ``SpectralSignatureDetector`` (Tran et al., 2018): per class, the squared projection of the centred
  features on their top singular vector; the top ``1.5 * contamination`` share of each class is suspect.
* ``ActivationClusteringDetector`` (Chen et al., 2018): per class, two-means on the reduced features;
  the smaller cluster is suspect when it holds less than ``max_cluster_share`` of the class.
* ``BackdoorClusterDetector`` (ours, the default of ``data.poison``): per class, a two-component Gaussian
  mixture on the reduced features, then a relabel-consistency test that does not assume the poison is
  a minority of its class. A model trained on every *other* class never saw the trigger, so it
  classifies poisoned rows (really images of other classes) as confidently as it classifies its own
  held-out rows, while genuine rows of the class, which it has never seen, get low confidence. A cluster
  whose median confidence reaches ``min_explained`` of that in-distribution reference is "explained by
  other classes". Linear models are confident far from their data too, so genuine subgroups get explained
  as well (on MNIST a 4 written like a 9; in tabular data any distant blob). An explained cluster is
  therefore flagged
  only when two more things hold: (1) its rows differ from the mean of the class that explains them by
  the same change, i.e. some input feature has a robust t-statistic (median over scaled MAD, floored by
  ``_TSTAT_FLOOR``) of at least ``min_consistency`` (a trigger: a patch, a blended pattern, a constant in one column); (2) it stands
  apart: its class splits far more cleanly than the other classes (robust z of the Mahalanobis distance
  between the two clusters >= ``min_separation``), or it is explained ``min_gap`` better than its class's
  other cluster and is an upper outlier (robust z >= ``_RATIO_OUTLIER_Z``) among all clusters' explained
  ratios, or its
  change is novel: on one of its most consistent features, the share of its rows near the cluster's value
  exceeds the share of the other classes' rows near it by ``min_novelty`` (a patch or a constant that the
  genuine data never shows; genuine subgroups share values other classes have too; the measured
  values on clean and poisoned data are in ``benchmarks/results/data-backdoor-redteam.md``). Classes are
  decided most-suspicious first, and rows already flagged are left
  out of later reference models, so poison relabelled into one class cannot make a neighbouring clean
  class look explained. Rows of a poisoned class that the clustering left on the clean side are flagged
  too when the reference model is as sure of them as of its own held-out data.

Per-class outlier methods (the first two) assume the poison is a small minority of its target class; when
it is 10% of the training set it is a third or half of the class and they collapse (measured in
``benchmarks/data``). The third does not rely on that.
"""

from __future__ import annotations

import warnings
from typing import Any, Self

import numpy as np

from mlsecops.core.errors import InputError, NotFittedError
from mlsecops.data._labels import _check_xy

__all__ = [
    "ActivationClusteringDetector",
    "BackdoorClusterDetector",
    "SpectralSignatureDetector",
    "learned_features",
]

# Fixed constants of the cluster detector (its tunable thresholds are BackdoorClusterDetector's
# parameters). Inputs are first scaled to [0, 1] per feature, so the distances below are in those units.
_MAD_TO_SD = 1.4826
"""Scales a median absolute deviation to a standard deviation under normality."""
_TSTAT_FLOOR = 0.05
"""Added to the scaled MAD in the consistency t-statistic, so a feature that never varies (MAD 0) cannot
make a tiny shared change look like a perfectly consistent trigger."""
_NEAR_VALUE = 0.1
"""Window around a cluster's median value within which a row "sits at" it (novelty test)."""
_NOVELTY_FEATURES = 8
"""Most consistent features on which the novelty test looks for a value the other classes rarely show."""
_RATIO_OUTLIER_Z = 1.5
"""Robust z-score among all clusters' explained ratios above which a cluster is an upper outlier (the
explained-gap path)."""
_CARRY_TOLERANCE = 0.5
"""A row carries the trigger on a feature when its change is within this share of the flagged rows' median
change there."""
_CARRY_SHARE = 0.5
"""Share of the trigger features a row must carry to be flagged with its class's poisoned cluster."""
_MAX_TRIGGER_FEATURES = 50
"""At most this many trigger features are compared when extending a flagged cluster to its class."""
_REFERENCE_DIMS = 64
"""Wider inputs are projected on this many principal axes before the reference models are fitted."""
_MAD_SCALE_FLOOR = 0.1
"""The robust z-score's scale is at least this share of the median (few classes, near-equal values)."""


def learned_features(X: np.ndarray, y: np.ndarray, *, hidden: int = 64, random_state: int = 0) -> np.ndarray:
    """Hidden-layer activations of a small neural network trained on ``(X, y)``.

    Inputs are scaled to [0, 1] per feature; the network is scikit-learn's ``MLPClassifier`` with one
    ReLU layer, so no deep-learning library is needed.
    """
    from sklearn.neural_network import MLPClassifier

    lo, hi = X.min(axis=0), X.max(axis=0)
    X_unit = (X - lo) / np.where(hi > lo, hi - lo, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp = MLPClassifier((hidden,), max_iter=500, random_state=random_state).fit(X_unit, y)
    return np.asarray(np.maximum(X_unit @ mlp.coefs_[0] + mlp.intercepts_[0], 0.0))


def _class_means(X_unit: np.ndarray, y: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """Per class, the mean of its usable rows (zeros for a class with none)."""
    means = np.zeros((int(y.max()) + 1, X_unit.shape[1]))
    for k in np.unique(y[usable]):
        means[k] = X_unit[usable & (y == k)].mean(axis=0)
    return means


def _shift(
    means: np.ndarray, X_unit: np.ndarray, S: np.ndarray, pred: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per feature, the median change of rows ``S`` from the mean of the class they are explained by, and
    how consistent it is (median over scaled MAD + ``_TSTAT_FLOOR``): a trigger is the same change in every
    row.
    """
    change = X_unit[S] - means[np.maximum(pred, 0)]
    med = np.median(change, axis=0)
    return med, np.abs(med) / (_MAD_TO_SD * np.median(np.abs(change - med), axis=0) + _TSTAT_FLOOR)


def _novelty(X_unit: np.ndarray, S: np.ndarray, rest: np.ndarray, tstat: np.ndarray) -> float:
    """How much more often rows ``S`` sit at their own median than rows ``rest`` do (within
    ``_NEAR_VALUE``), at best over the ``_NOVELTY_FEATURES`` features with the most consistent change.
    """
    feats = np.argsort(-tstat, kind="stable")[:_NOVELTY_FEATURES]
    med = np.median(X_unit[S][:, feats], axis=0)
    near_s = np.mean(np.abs(X_unit[S][:, feats] - med) <= _NEAR_VALUE, axis=0)
    near_rest = np.mean(np.abs(X_unit[rest][:, feats] - med) <= _NEAR_VALUE, axis=0) if rest.any() else 0.0
    return float(np.max(near_s - near_rest))


def _separation(points: np.ndarray, lab: np.ndarray) -> float:
    """Mahalanobis distance between the means of the two clusters ``lab`` of ``points`` (pooled covariance)."""
    if min(np.sum(lab == 0), np.sum(lab == 1)) < 2:
        return 0.0
    m0, m1 = points[lab == 0].mean(axis=0), points[lab == 1].mean(axis=0)
    centred = np.vstack([points[lab == 0] - m0, points[lab == 1] - m1])
    cov = np.atleast_2d(np.cov(centred.T)) + 1e-9 * np.eye(points.shape[1])
    return float(np.sqrt(max((m1 - m0) @ np.linalg.solve(cov, m1 - m0), 0.0)))


def _robust_z(values: dict[int, float]) -> dict[int, float]:
    """Robust z-scores (median, scaled MAD floored at a tenth of the median) of a per-class statistic."""
    if not values:
        return {}
    v = np.array(list(values.values()))
    med = float(np.median(v))
    scale = max(_MAD_TO_SD * float(np.median(np.abs(v - med))), _MAD_SCALE_FLOOR * abs(med), 1e-9)
    return {c: (x - med) / scale for c, x in values.items()}


def _inputs(X_unit: np.ndarray, seed: int) -> np.ndarray:
    """Reference-model inputs: the scaled inputs, wide ones projected on their top ``_REFERENCE_DIMS``
    principal axes (faster reference models).
    """
    if X_unit.shape[1] <= _REFERENCE_DIMS:
        return X_unit
    from sklearn.decomposition import PCA

    return np.asarray(PCA(_REFERENCE_DIMS, random_state=seed).fit_transform(X_unit))


def _reduce(features: np.ndarray, n_components: int, seed: int) -> np.ndarray:
    """Standardised learned features reduced to ``n_components`` principal axes (clustering input)."""
    from sklearn.decomposition import PCA

    std = features.std(axis=0)
    standard = (features - features.mean(axis=0)) / np.where(std > 0, std, 1.0)
    k = int(min(n_components, standard.shape[0] - 1, standard.shape[1]))
    return np.asarray(PCA(k, random_state=seed).fit_transform(standard)) if k >= 1 else standard


class _Base:
    features: np.ndarray | None
    random_state: int

    def _features(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        if self.features is not None:
            given = np.asarray(self.features, dtype=np.float64)
            if given.ndim < 1 or given.shape[0] != X.shape[0]:
                raise InputError(f"features must have one row per sample; got {given.shape} for X {X.shape}")
            return given.reshape(given.shape[0], -1)
        return learned_features(X, y, random_state=self.random_state)

    def detect(self, X: np.ndarray | None = None, y: np.ndarray | None = None) -> np.ndarray:
        """Boolean mask of the suspect rows of the fitted data.

        Raises:
            NotFittedError: ``fit`` was not called.
        """
        if not hasattr(self, "suspect_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit(X, y) first")
        return np.asarray(self.suspect_)

    def score(self, X: np.ndarray | None = None, y: np.ndarray | None = None) -> np.ndarray:
        """Suspicion score per row of the fitted data (higher is more suspect).

        Raises:
            NotFittedError: ``fit`` was not called.
        """
        if not hasattr(self, "scores_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit(X, y) first")
        return np.asarray(self.scores_)


class SpectralSignatureDetector(_Base):
    """Spectral signatures: per-class outlier scores along the top singular direction.

    Args:
        contamination: expected poisoned share of a class; the top ``1.5 * contamination`` are suspect.
        features: precomputed learned features (one row per sample); learned from ``X`` when None.
        random_state: seed of the feature learner.
    """

    def __init__(
        self, *, contamination: float = 0.1, features: np.ndarray | None = None, random_state: int = 0
    ) -> None:
        self.contamination = contamination
        self.features = features
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> Self:
        """Score every row within its class.

        Raises:
            InputError: bad shapes or values, or contamination outside (0, 0.5].
        """
        if not 0 < self.contamination <= 0.5:
            raise InputError(f"contamination must be in (0, 0.5]; got {self.contamination}")
        X, y = _check_xy(X, y)
        learned = self._features(X, y)
        scores = np.zeros(len(y))
        suspect = np.zeros(len(y), dtype=bool)
        for c in np.unique(y):
            idx = np.flatnonzero(y == c)
            if idx.size < 3:
                continue
            centred = learned[idx] - learned[idx].mean(axis=0)
            _, _, vt = np.linalg.svd(centred, full_matrices=False)
            s = (centred @ vt[0]) ** 2
            scores[idx] = s / (s.max() or 1.0)
            k = int(np.ceil(1.5 * self.contamination * idx.size))
            suspect[idx[np.argsort(-s)[:k]]] = True
        self.scores_ = scores
        self.suspect_ = suspect
        return self


class ActivationClusteringDetector(_Base):
    """Activation clustering: per class, the smaller of two k-means clusters, when small enough.

    Args:
        max_cluster_share: the smaller cluster is suspect when it holds less than this share of its class.
        n_components: dimensions kept by PCA before clustering.
        features: precomputed learned features; learned from ``X`` when None.
        random_state: seed.
    """

    def __init__(
        self,
        *,
        max_cluster_share: float = 0.35,
        n_components: int = 10,
        features: np.ndarray | None = None,
        random_state: int = 0,
    ) -> None:
        self.max_cluster_share = max_cluster_share
        self.n_components = n_components
        self.features = features
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> Self:
        """Cluster every class and flag small clusters.

        Raises:
            InputError: bad shapes or values.
        """
        from sklearn.cluster import KMeans

        X, y = _check_xy(X, y)
        learned = self._features(X, y)
        scores = np.zeros(len(y))
        suspect = np.zeros(len(y), dtype=bool)
        for c in np.unique(y):
            idx = np.flatnonzero(y == c)
            if idx.size < 4:
                continue
            lab = KMeans(2, n_init=10, random_state=self.random_state).fit_predict(
                _reduce(learned[idx], self.n_components, self.random_state)
            )
            small = int(np.argmin(np.bincount(lab, minlength=2)))
            share = float(np.mean(lab == small))
            scores[idx[lab == small]] = 1.0 - share
            if share < self.max_cluster_share:
                suspect[idx[lab == small]] = True
        self.scores_ = scores
        self.suspect_ = suspect
        return self


class BackdoorClusterDetector(_Base):
    """Per-class clusters of learned features, flagged when other classes explain them (see module doc).

    Args:
        min_explained: a cluster is poisoned when its median confidence under a model of the other classes
            reaches this share of that model's confidence on its own held-out rows.
        min_cluster: smallest cluster size (rows) considered.
        min_separation: robust z-score, across classes, of the distance between a class's two clusters
            that makes an explained cluster stand apart on its own.
        min_gap: how much better than its class's other cluster an explained cluster must be explained
            when its class does not split unusually cleanly.
        min_consistency: smallest per-feature robust t-statistic of the change shared by a cluster's rows
            relative to the classes that explain them (the trigger).
        min_novelty: share of a cluster's rows at its own value of a trigger feature, minus the share of
            the other classes' rows at that value, that makes the change novel (see the module doc).
        n_components: dimensions kept by PCA before clustering.
        features: precomputed learned features; learned from ``X`` when None.
        random_state: seed.
    """

    def __init__(
        self,
        *,
        min_explained: float = 0.9,
        min_cluster: int = 5,
        min_separation: float = 3.5,
        min_gap: float = 0.2,
        min_consistency: float = 3.0,
        min_novelty: float = 0.85,
        n_components: int = 5,
        features: np.ndarray | None = None,
        random_state: int = 0,
    ) -> None:
        self.min_explained = min_explained
        self.min_cluster = min_cluster
        self.min_separation = min_separation
        self.min_gap = min_gap
        self.min_consistency = min_consistency
        self.min_novelty = min_novelty
        self.n_components = n_components
        self.features = features
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> Self:
        """Find the poisoned clusters of ``(X, y)``.

        Learned attributes: ``scores_`` (per row, the explained ratio of its cluster), ``suspect_``,
        ``explained_by_`` (per row, the class the reference model assigns; -1 for unflagged rows),
        ``clusters_`` (per class, a list of ``{size, explained, consistency}``), ``separation_`` (per class,
        the robust z-score of its split).

        Raises:
            InputError: bad shapes or values, fewer than 3 classes.
        """
        from sklearn.mixture import GaussianMixture

        X, y = _check_xy(X, y)
        classes = np.unique(y)
        if classes.size < 3:
            raise InputError("backdoor detection needs at least 3 classes (one target, two or more others)")
        learned = self._features(X, y)
        lo, hi = X.min(axis=0), X.max(axis=0)
        X_unit = (X - lo) / np.where(hi > lo, hi - lo, 1.0)
        X_ref = _inputs(X_unit, self.random_state)
        groups: dict[int, list[np.ndarray]] = {}
        separation: dict[int, float] = {}
        for c in classes:
            idx = np.flatnonzero(y == c)
            if idx.size < 2 * self.min_cluster:
                continue
            reduced = _reduce(learned[idx], self.n_components, self.random_state)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                lab = GaussianMixture(
                    2, covariance_type="full", n_init=3, random_state=self.random_state
                ).fit_predict(reduced)
            groups[int(c)] = [idx[lab == k] for k in (0, 1) if np.sum(lab == k) >= self.min_cluster]
            separation[int(c)] = _separation(reduced, lab)
        z = _robust_z(separation)
        self.separation_ = {c: round(v, 3) for c, v in z.items()}
        scores = np.zeros(len(y))
        suspect = np.zeros(len(y), dtype=bool)
        explained_by = np.full(len(y), -1)
        report: dict[int, list[dict[str, Any]]] = {}
        undecided = set(groups)
        # One class is decided per pass (or the loop ends), so at most one pass per class.
        for _ in range(len(groups)):
            if not undecided:
                break
            tentative: list[tuple[float, int, np.ndarray, np.ndarray]] = []
            per_class = {c: self._explained(X_ref, y, c, groups[c], ~suspect) for c in sorted(undecided)}
            ratio_z = _robust_z({i: r for i, (r, _) in enumerate(e for c in per_class for e in per_class[c])})
            means = _class_means(X_unit, y, ~suspect)  # the same for every cluster of this pass
            i = 0
            for c, explained in per_class.items():
                ratios = []
                lowest = min(r for r, _ in explained) if len(explained) > 1 else None
                for S, (ratio, pred) in zip(groups[c], explained, strict=True):
                    _, tstat = _shift(means, X_unit, S, pred)
                    cons = float(tstat.max())
                    novel = _novelty(X_unit, S, (y != c) & ~suspect, tstat)
                    ratios.append(
                        {
                            "size": int(S.size),
                            "explained": round(ratio, 4),
                            "consistency": round(cons, 2),
                            "novelty": round(novel, 3),
                        }
                    )
                    scores[S] = ratio
                    # Other classes explain some genuine subgroups too (a 4 written like a 9; in tabular data,
                    # any far-away blob). A poisoned cluster also differs from the class that explains it by
                    # the same change in every row (the trigger), and stands apart: its class splits far more
                    # cleanly than the other classes do, or it is explained clearly better than its class's
                    # other cluster and than the clusters of other classes.
                    apart = (
                        novel >= self.min_novelty
                        or z.get(c, 0.0) >= self.min_separation
                        or (
                            lowest is not None
                            and ratio - lowest >= self.min_gap
                            and ratio_z[i] >= _RATIO_OUTLIER_Z
                        )
                    )
                    i += 1
                    if ratio >= self.min_explained and cons >= self.min_consistency and apart:
                        tentative.append((ratio, c, S, pred))
                report[c] = ratios
            if not tentative:
                break
            if len(tentative) > 1:
                # Poison relabelled into class d can make a clean cluster of its source class look explained
                # (by d). Re-test each candidate with the other candidates left out of the reference model:
                # the artefact loses its explanation, the poison keeps it.
                retest = []
                for ratio, c, S, _ in tentative:
                    others = np.zeros(len(y), dtype=bool)
                    for _, c2, S2, _ in tentative:
                        if c2 != c:
                            others[S2] = True
                    (r2, p2), *_ = self._explained(X_ref, y, c, [S], ~suspect & ~others)
                    retest.append((min(ratio, r2), c, S, p2))
                tentative = retest
            best = max(tentative, key=lambda t: t[0])
            if best[0] < self.min_explained:
                break
            _, c, S, pred = best
            suspect[S] = True
            explained_by[S] = pred
            undecided.discard(c)
        # Rows of a poisoned class that clustering left on the clean side: a model of the other classes
        # (trained without any suspect row) is as sure of them as of its own data.
        for c in np.unique(y[suspect]):
            rest = np.flatnonzero((y == c) & ~suspect)
            reference = self._reference(X_ref, y, int(c), rest, ~suspect)
            if reference is None:
                continue
            proba, typical = reference
            conf = proba.max(axis=1)
            # ... and they carry the trigger: on the features where the flagged rows change consistently,
            # they change the same way (in tabular data the model is confident on genuine rows too).
            means = _class_means(X_unit, y, ~suspect)
            flagged = np.flatnonzero((y == c) & suspect)
            med, shared = _shift(means, X_unit, flagged, explained_by[flagged])
            n_trigger = int(np.sum(shared >= self.min_consistency))
            feats = np.argsort(-shared)[: max(1, min(_MAX_TRIGGER_FEATURES, n_trigger))]
            change = X_unit[rest][:, feats] - means[proba.argmax(axis=1)][:, feats]
            within = np.abs(change - med[feats]) <= _CARRY_TOLERANCE * np.abs(med[feats])
            carries = np.mean(within, axis=1) >= _CARRY_SHARE
            extra = (conf >= typical) & carries
            suspect[rest[extra]] = True
            explained_by[rest[extra]] = proba.argmax(axis=1)[extra]
            scores[rest] = conf / typical
        self.scores_ = scores
        self.suspect_ = suspect
        self.explained_by_ = explained_by
        self.clusters_ = report
        return self

    def _reference(
        self, X_ref: np.ndarray, y: np.ndarray, c: int, rows: np.ndarray, usable: np.ndarray
    ) -> tuple[np.ndarray, float] | None:
        """Class probabilities of ``rows`` from a model of the other classes, and that model's typical
        (median) confidence on held-out rows of its own classes; ``None`` without two other classes.
        """
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold

        other = np.flatnonzero((y != c) & usable)
        if np.unique(y[other]).size < 2 or rows.size == 0:
            return None
        # One half of the other classes trains the reference model; the other half says how confident it
        # is on data it did not see but that belongs to its classes.
        tr, te = next(
            StratifiedKFold(2, shuffle=True, random_state=self.random_state).split(X_ref[other], y[other])
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf = LogisticRegression(C=1.0, max_iter=300, tol=1e-3).fit(X_ref[other[tr]], y[other[tr]])
        ref = clf.predict_proba(X_ref[other[te]]).max(axis=1)
        proba = np.zeros((rows.size, int(y.max()) + 1))
        proba[:, np.asarray(clf.classes_, dtype=int)] = clf.predict_proba(X_ref[rows])
        return proba, max(float(np.median(ref)), 1e-9)

    def _explained(
        self, X_ref: np.ndarray, y: np.ndarray, c: int, clusters: list[np.ndarray], usable: np.ndarray
    ) -> list[tuple[float, np.ndarray]]:
        """Per cluster of class ``c``: (explained ratio, class the other-class model assigns per row)."""
        rows = np.concatenate(clusters) if clusters else np.empty(0, int)
        reference = self._reference(X_ref, y, c, rows, usable)
        if reference is None:
            return [(0.0, np.full(S.size, -1)) for S in clusters]
        proba, typical = reference
        out = []
        start = 0
        for S in clusters:
            p = proba[start : start + S.size]
            start += S.size
            out.append((float(np.median(p.max(axis=1))) / typical, p.argmax(axis=1)))
        return out
