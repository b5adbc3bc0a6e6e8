"""The inputs perturbation-based explainers feed a model, generated the way they generate them.

Used by the explanation-integrity check (``assess.explain_integrity``) to see a model as LIME and SHAP
see it, and by the planted scaffolded models (``assess._scaffold``) to learn to recognise those inputs:

- ``lime-gaussian``: a real row plus Gaussian noise scaled by each feature's standard deviation (LIME's
  tabular sampler without discretisation);
- ``lime-marginal``: every feature drawn independently from its empirical marginal (LIME's tabular
  sampler with quartile discretisation draws each feature's bin by its frequency, then a value in it);
- ``shap-coalition``: a real row whose features outside a random coalition are taken from a background
  row (KernelSHAP's masking with an independent masker), coalition sizes drawn by the Shapley kernel.
"""

from __future__ import annotations

import numpy as np

from mlsecops.core.errors import InputError

__all__ = ["FAMILIES", "perturb"]

FAMILIES = ("lime-gaussian", "lime-marginal", "shap-coalition")
"""Perturbation families, named after the explainer whose sampler each imitates."""


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
    if family == "shap-coalition":
        background = data[rng.integers(0, rows, size=n)]
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
