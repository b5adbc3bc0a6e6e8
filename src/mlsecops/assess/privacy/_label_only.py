"""The label-only membership attack: how robust the predicted label is near a record.

A model's training records sit further from its decision boundary than unseen ones, which shows
through labels alone (Choquette-Choo et al. 2021, "Label-only membership inference"). For every record
the attack asks for the label of ``copies`` noisy versions at several noise levels (Gaussian, scaled
per feature to the records' spread; for images also one-pixel shifts) and scores the fraction still
given the true label. It needs nothing but labels, so output hardening that keeps the label (rounding,
top-k, label-only answers) does not change its result; only the cost in queries, which is
``records x (1 + levels x copies)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mlsecops.models.interface import ModelAdapter

__all__ = ["NOISE_LEVELS", "label_only_scores"]

NOISE_LEVELS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
"""Noise standard deviations, as fractions of each feature's standard deviation over the records."""
COPIES = 12
"""Noisy copies per record and noise level."""
QUERY_BATCH = 8192
"""Rows per call to the model (bounds the memory of one batch of noisy copies)."""


def _labels(model: ModelAdapter, x: np.ndarray) -> np.ndarray:
    out = [model.predict_proba(x[s : s + QUERY_BATCH]).argmax(axis=1) for s in range(0, len(x), QUERY_BATCH)]
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def label_only_scores(
    model: ModelAdapter,
    x: np.ndarray,
    y: np.ndarray,
    *,
    seed: int = 0,
    copies: int = COPIES,
    levels: tuple[float, ...] = NOISE_LEVELS,
    progress: Callable[[str, int, int], None] | None = None,
) -> np.ndarray:
    """Label-robustness score per record: correct now (weight 1) plus the fraction of noisy copies
    that keep the true label, weighted towards the larger noise levels (a record far from the boundary
    survives those).
    """
    rng = np.random.default_rng(seed)
    n = len(x)
    spread = x.reshape(n, -1).std(axis=0)
    spread = np.where(spread > 0, spread, 1.0).reshape(x.shape[1:])
    score = (_labels(model, x) == y).astype(np.float64)
    steps: list[tuple[str, Any]] = [("noise", s) for s in levels]
    if x.ndim >= 3:  # images: shift by one pixel in each direction, a label-only attack's augmentation
        steps += [("shift", d) for d in ((0, 1), (0, -1), (1, 0), (-1, 0))]
    total = len(steps)
    for step, (how, amount) in enumerate(steps):
        if progress is not None:
            progress("label-only queries", step, total)
        weight = 1.0 + step / total
        reps = copies if how == "noise" else 1
        if how == "noise":
            noise = rng.normal(0.0, 1.0, size=(reps, *x.shape)).astype(np.float32) * (amount * spread)
            noisy = (x[None] + noise).reshape(reps * n, *x.shape[1:])
        else:
            noisy = np.roll(x, amount, axis=(-2, -1))
        kept = (_labels(model, noisy.astype(np.float32)).reshape(reps, n) == y).sum(axis=0)
        score += weight * kept / reps
    if progress is not None:
        progress("label-only queries", total, total)
    return np.asarray(score)
