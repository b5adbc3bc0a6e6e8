"""Planted-attack helpers for the data tests: label flips and a trigger patch on digits."""

from __future__ import annotations

import numpy as np
import pytest


def flip_labels(y: np.ndarray, rate: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Flip ``rate`` of the labels to a random other class; return (noisy labels, flipped mask)."""
    rng = np.random.default_rng(seed)
    k = int(y.max()) + 1
    idx = rng.choice(y.size, round(rate * y.size), replace=False)
    noisy = y.copy()
    noisy[idx] = (y[idx] + rng.integers(1, k, idx.size)) % k
    mask = np.zeros(y.size, dtype=bool)
    mask[idx] = True
    return noisy, mask


def plant_trigger(
    X: np.ndarray, y: np.ndarray, rate: float, target: int, seed: int, *, size: int = 2
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stamp a ``size`` x ``size`` patch (value 16) in the bottom-right corner of ``rate`` of the 8x8
    images of other classes and relabel them to ``target``; return (X, y, poisoned mask)."""
    rng = np.random.default_rng(seed)
    n = y.size
    idx = rng.choice(np.flatnonzero(y != target), round(rate * n), replace=False)
    imgs = X.reshape(n, 8, 8).copy()
    imgs[idx, 8 - size :, 8 - size :] = 16.0
    y2 = y.copy()
    y2[idx] = target
    mask = np.zeros(n, dtype=bool)
    mask[idx] = True
    return imgs.reshape(n, 64), y2, mask


def rates(flagged: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(recall, false-positive rate) of ``flagged`` against ``truth``."""
    recall = float((flagged & truth).sum() / max(truth.sum(), 1))
    fpr = float((flagged & ~truth).sum() / max((~truth).sum(), 1))
    return recall, fpr


@pytest.fixture(scope="session")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits (1797 images), as float features and int labels."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X.astype(np.float64), y.astype(np.int64)
