"""Outlier and near-duplicate injection detection on feature rows.

* ``OutlierDetector`` scores each row by its mean distance to its ``k`` nearest neighbours in robustly
  scaled feature space (median / inter-quartile range per feature, so the outliers themselves do not
  set the scale). Scores are compared on a log scale with the robust z-score (median, MAD) of all rows;
  a row is suspect when its z-score exceeds ``threshold``.
* ``NearDuplicateDetector`` finds groups of rows that sit much closer to each other than rows of the data
  normally do: an attacker who injects many slightly perturbed copies of a few crafted points (to
  over-weight them) leaves such groups. Two rows are near-duplicates when their distance is below
  ``radius`` times the median nearest-neighbour distance; groups of at least ``min_group`` rows are
  reported, every member but the first (the presumed original) marked suspect.
"""

from __future__ import annotations

from typing import Self

import numpy as np

from mlsecops.core.errors import InputError, NotFittedError

__all__ = ["NearDuplicateDetector", "OutlierDetector"]


def _as_matrix(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim < 2 or X.shape[0] < 3:
        raise InputError(f"X must have shape (samples >= 3, features...); got {X.shape}")
    X = X.reshape(X.shape[0], -1).astype(np.float64, copy=False)
    if not np.all(np.isfinite(X)):
        raise InputError("X contains NaN or infinite values")
    return X


def _robust_scale(X: np.ndarray) -> np.ndarray:
    med = np.median(X, axis=0)
    iqr = np.subtract(*np.percentile(X, [75, 25], axis=0))
    std = X.std(axis=0)
    scale = np.where(iqr > 0, iqr / 1.349, np.where(std > 0, std, 1.0))
    return np.asarray((X - med) / scale)


class OutlierDetector:
    """k-nearest-neighbour distance outliers with a robust threshold.

    Args:
        n_neighbors: neighbours averaged per row.
        threshold: robust z-score (of log distances) above which a row is suspect.
    """

    def __init__(self, *, n_neighbors: int = 10, threshold: float = 6.0) -> None:
        self.n_neighbors = n_neighbors
        self.threshold = threshold

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> Self:
        """Score the rows of ``X`` (``y`` is ignored).

        Raises:
            InputError: bad shape or non-finite values.
        """
        from sklearn.neighbors import NearestNeighbors

        scaled = _robust_scale(_as_matrix(X))
        k = int(min(self.n_neighbors, scaled.shape[0] - 1))
        dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(scaled).kneighbors(scaled)
        d = np.log(dist[:, 1:].mean(axis=1) + 1e-12)
        med = float(np.median(d))
        mad = float(np.median(np.abs(d - med))) * 1.4826 or 1e-12
        self.scores_ = (d - med) / mad
        self.suspect_ = self.scores_ > self.threshold
        return self

    def score(self, X: np.ndarray | None = None, y: np.ndarray | None = None) -> np.ndarray:
        """Robust z-score per fitted row.

        Raises:
            NotFittedError: ``fit`` was not called.
        """
        if not hasattr(self, "scores_"):
            raise NotFittedError("OutlierDetector is not fitted; call fit(X) first")
        return np.asarray(self.scores_)

    def detect(self, X: np.ndarray | None = None, y: np.ndarray | None = None) -> np.ndarray:
        """Boolean mask of suspect fitted rows.

        Raises:
            NotFittedError: ``fit`` was not called.
        """
        return self.score() > self.threshold


class NearDuplicateDetector:
    """Groups of (near-)identical rows.

    Args:
        radius: near-duplicate distance, as a share of the median nearest-neighbour distance.
        min_group: smallest group reported.
    """

    def __init__(self, *, radius: float = 0.05, min_group: int = 3) -> None:
        self.radius = radius
        self.min_group = min_group

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> Self:
        """Find the near-duplicate groups of ``X``.

        Learned attributes: ``groups_`` (list of row-index arrays, first = presumed original),
        ``scores_`` (group size per row, 0 outside groups), ``suspect_``, ``original_`` (per row, the
        first row of its group, -1 outside groups).

        Raises:
            InputError: bad shape or non-finite values.
        """
        from scipy.sparse.csgraph import connected_components
        from sklearn.neighbors import NearestNeighbors

        scaled = _robust_scale(_as_matrix(X))
        n = scaled.shape[0]
        nn = NearestNeighbors(n_neighbors=2).fit(scaled)
        d1 = nn.kneighbors(scaled)[0][:, 1]
        positive = d1[d1 > 0]
        typical = float(np.median(positive)) if positive.size else 1.0
        r = max(self.radius * typical, 1e-9)
        graph = nn.radius_neighbors_graph(scaled, radius=r, mode="connectivity")
        n_comp, labels = connected_components(graph, directed=False)
        sizes = np.bincount(labels, minlength=n_comp)
        scores = np.zeros(n)
        suspect = np.zeros(n, dtype=bool)
        original = np.full(n, -1)
        groups: list[np.ndarray] = []
        for comp in np.flatnonzero(sizes >= self.min_group):
            members = np.flatnonzero(labels == comp)
            groups.append(members)
            scores[members] = members.size
            suspect[members[1:]] = True
            original[members] = members[0]
        self.groups_ = groups
        self.scores_ = scores
        self.suspect_ = suspect
        self.original_ = original
        return self

    def detect(self, X: np.ndarray | None = None, y: np.ndarray | None = None) -> np.ndarray:
        """Boolean mask of suspect fitted rows.

        Raises:
            NotFittedError: ``fit`` was not called.
        """
        if not hasattr(self, "suspect_"):
            raise NotFittedError("NearDuplicateDetector is not fitted; call fit(X) first")
        return np.asarray(self.suspect_)
