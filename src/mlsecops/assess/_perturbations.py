"""The inputs perturbation-based explainers feed a model, generated the way they generate them.

Used by the explanation-integrity check (``assess.explain_integrity``) to see a model as LIME and SHAP
see it, and by the planted scaffolded models (``assess._scaffold``) to learn to recognise those inputs:

- ``lime-gaussian``: a real row plus Gaussian noise scaled by each feature's standard deviation (LIME's
  tabular sampler without discretisation);
- ``lime-marginal``: every feature drawn independently from its empirical marginal;
- ``lime-quartile``: LIME's default tabular sampler: per feature a quartile bin drawn by its frequency,
  then a value from a normal with the bin's mean and spread, clipped to the bin (features with at most
  ``CATEGORICAL_LEVELS`` values are drawn by their frequencies);
- ``shap-coalition``: a real row whose features outside a random coalition are taken from a background
  row (KernelSHAP's masking with an independent masker), coalition sizes drawn by the Shapley kernel;
- ``shap-kmeans``: the same with a summarised background, as ``shap.kmeans(data, 10)`` makes it (k-means
  centroids, each value snapped to the nearest value the feature takes).

An attacker tunes a scaffold's detector to the sampler of the explainer it wants to fool; the more of the
samplers in use the check covers, the fewer places are left to hide.
"""

from __future__ import annotations

import numpy as np

from mlsecops.core.errors import InputError

__all__ = ["FAMILIES", "perturb"]

FAMILIES = ("lime-gaussian", "lime-marginal", "lime-quartile", "shap-coalition", "shap-kmeans")
"""Perturbation families, named after the explainer whose sampler each imitates."""
CATEGORICAL_LEVELS = 4
"""A feature with at most this many distinct values is sampled as categorical (LIME does not bin it)."""
KMEANS_CENTROIDS = 10
"""Background summary size of ``shap-kmeans`` (the number SHAP's documentation uses)."""


def perturb(family: str, data: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` perturbed rows of ``family`` around rows of ``data`` (which also serves as background).

    Raises:
        InputError: an unknown family, or no data.
    """
    if len(data) == 0:
        raise InputError("perturbations need at least one data row")
    rows, m = len(data), data.shape[1]
    base = data[rng.integers(0, rows, size=n)]
    if family == "lime-gaussian":
        std = data.std(axis=0)
        return (base + rng.normal(size=(n, m)) * np.where(std > 0, std, 1.0)).astype(data.dtype)
    if family == "lime-marginal":
        cols = [data[rng.integers(0, rows, size=n), j] for j in range(m)]
        return np.stack(cols, axis=1).astype(data.dtype)
    if family == "lime-quartile":
        return np.stack([_quartile_sample(data[:, j], n, rng) for j in range(m)], axis=1).astype(data.dtype)
    if family == "shap-coalition":
        background = data[rng.integers(0, rows, size=n)]
        keep = _coalitions(n, m, rng)
        return np.where(keep, base, background).astype(data.dtype)
    if family == "shap-kmeans":
        centroids = _kmeans_summary(data, int(rng.integers(0, 2**31 - 1)))
        background = centroids[rng.integers(0, len(centroids), size=n)]
        keep = _coalitions(n, m, rng)
        return np.where(keep, base, background).astype(data.dtype)
    raise InputError(f"unknown perturbation family {family!r}; one of {', '.join(FAMILIES)}")


def _coalitions(n: int, m: int, rng: np.random.Generator) -> np.ndarray:
    """Boolean masks (True = feature kept from the explained row), sizes drawn by the Shapley kernel."""
    if m < 2:
        return rng.random((n, m)) < 0.5
    sizes = np.arange(1, m)
    weight = (m - 1) / (sizes * (m - sizes))  # the Shapley kernel summed over coalitions of one size
    k = rng.choice(sizes, size=n, p=weight / weight.sum())
    order = np.argsort(rng.random((n, m)), axis=1)
    ranks = np.argsort(order, axis=1)
    return ranks < k[:, None]


def _quartile_sample(col: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """LIME's discretised sampler for one feature: a quartile bin by frequency, a clipped normal value in it."""
    values, counts = np.unique(col, return_counts=True)
    if len(values) <= CATEGORICAL_LEVELS:
        return np.asarray(rng.choice(values, size=n, p=counts / counts.sum()))
    edges = np.unique(np.quantile(col, [0.0, 0.25, 0.5, 0.75, 1.0]))
    which = np.clip(np.searchsorted(edges, col, side="right") - 1, 0, len(edges) - 2)
    share = np.bincount(which, minlength=len(edges) - 1) / len(col)
    pick = rng.choice(len(edges) - 1, size=n, p=share)
    out = np.empty(n)
    for b in range(len(edges) - 1):
        sel = pick == b
        members = col[which == b]
        mean, std = (float(members.mean()), float(members.std())) if members.size else (float(edges[b]), 0.0)
        out[sel] = np.clip(
            rng.normal(mean, std if std > 0 else 1e-9, size=int(sel.sum())), edges[b], edges[b + 1]
        )
    return out


def _kmeans_summary(data: np.ndarray, seed: int) -> np.ndarray:
    """k-means centroids of ``data``, each value snapped to the nearest value of its feature."""
    from sklearn.cluster import KMeans

    k = min(KMEANS_CENTROIDS, len(np.unique(data, axis=0)))
    centroids = np.array(KMeans(n_clusters=k, n_init=3, random_state=seed).fit(data).cluster_centers_)
    for j in range(data.shape[1]):
        values = np.unique(data[:, j])
        idx = (
            np.clip(np.searchsorted(values, centroids[:, j]), 1, len(values) - 1) if len(values) > 1 else None
        )
        if idx is None:
            centroids[:, j] = values[0]
            continue
        left, right = values[idx - 1], values[idx]
        centroids[:, j] = np.where(centroids[:, j] - left <= right - centroids[:, j], left, right)
    return np.asarray(centroids, dtype=np.float64)
