"""Calibration helpers of the extraction detector: benign nearest-row distances at the densest memory a
benign client fills, and the false-alarm rate of the margin-rank CUSUM under its null.

Library-internal (``mlsecops.monitor.extraction`` uses them); numbers only, no state.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["dense_near_distances", "rank_cusum_false_alarm"]

NEAR_CLASS_MIN = 8
"""Fewest reference rows of a class to measure its nearest-row distances (and how they shrink)."""

NEAR_CLASS_ROWS = 1_000
"""Reference rows of a class used at most (a pairwise distance matrix of this size: 8 MB)."""

NEAR_SHRINK = (0.02, 0.5)
"""Bounds of the exponent with which nearest-row distances shrink as the memory grows (``1/k`` for
data of intrinsic dimension ``k``: at least 2 dimensions, at most 50)."""


def _pairwise(z: np.ndarray) -> np.ndarray:
    sq = (z**2).sum(axis=1)
    d = np.sqrt(np.maximum(sq[:, None] - 2 * z @ z.T + sq[None, :], 0.0))
    np.fill_diagonal(d, np.inf)
    return np.asarray(d)


def dense_near_distances(
    z: np.ndarray, labels: np.ndarray, memory_rows: int, rng: np.random.Generator
) -> np.ndarray:
    """Benign nearest-row distances as a memory of ``memory_rows`` rows of one class would give them.

    A client whose population is one class (a one-digit sorter, a skewed clinic) fills its memory with
    rows of that class only, denser than any per-class sample the reference holds when the reference
    has fewer than ``memory_rows`` rows of a class. Per class, the leave-one-out nearest-row distances
    of the reference rows are measured with a memory of ``n - 1`` rows and with a quarter of it; the
    ratio of their medians gives the exponent ``s`` with which distances shrink as the memory grows
    (``m^-s``), and the distances are rescaled by ``((n - 1) / memory_rows)^s`` to the full memory.

    Args:
        z: standardised reference rows ``(n, d)``.
        labels: the model's predicted class of each row (all zeros without answers).
        memory_rows: rows a principal's memory holds.
        rng: random generator (the quarter memory's draw).

    Returns:
        The rescaled distances of every class with at least ``NEAR_CLASS_MIN`` rows (``[inf]`` if none).
    """
    parts = []
    for c in np.unique(labels):
        own = z[labels == c]
        if own.shape[0] > NEAR_CLASS_ROWS:
            own = own[rng.permutation(own.shape[0])[:NEAR_CLASS_ROWS]]
        n = own.shape[0]
        if n < NEAR_CLASS_MIN:
            continue
        d = _pairwise(own)
        full = d.min(axis=1)
        order = rng.permutation(n)
        m = max((n - 1) // 4, 1)
        sub = d[np.ix_(order[m:], order[:m])].min(axis=1)
        med_full, med_sub = float(np.median(full)), float(np.median(sub))
        if med_full > 0 and med_sub > 0:
            s = math.log(med_sub / med_full) / math.log((n - 1) / m)
        else:
            s = NEAR_SHRINK[1]  # ties (duplicate rows): assume the fastest shrinkage, the safe side
        s = min(max(s, NEAR_SHRINK[0]), NEAR_SHRINK[1])
        parts.append(full * ((n - 1) / memory_rows) ** s)
    return np.concatenate(parts) if parts else np.full(1, np.inf)


def rank_cusum_false_alarm(
    increments: tuple[float, float], threshold: float, rows: int, streams: int, seed: int, floor: float
) -> float:
    """Share of simulated benign streams on which the margin-rank CUSUM fires within ``rows`` answers.

    Under the null (a principal's answers drawn like the held-out ones) an answer's margin rank is
    uniform on (0, 1), so the CUSUM's false-alarm rate is a property of its increments alone:
    ``increments[0] + increments[1] * log(max(u, floor))`` with ``u`` uniform.
    """
    rng = np.random.default_rng(seed)
    s = np.zeros(streams)
    fired = np.zeros(streams, dtype=bool)
    for _ in range(rows):
        s = np.maximum(
            0.0, s + increments[0] + increments[1] * np.log(np.maximum(rng.random(streams), floor))
        )
        fired |= s >= threshold
    return float(fired.mean())
