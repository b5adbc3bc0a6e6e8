"""A re-implementation of PRADA (Juuti et al., "PRADA: Protecting against DNN Model Stealing Attacks",
EuroS&P 2019), the baseline the extraction benchmark compares with.

Per client: one growing set G_c per predicted class c and a set D of minimum distances. For each new
query x with predicted class c, d_min is the L2 distance from x to its nearest neighbour in G_c (none
when G_c is empty: x founds the set). d_min joins D, and x joins G_c when d_min exceeds the class's
threshold T_c = max(T_c, mean(D_c) - std(D_c)) (D_c: the distances of class c). Once D holds enough
values, the Shapiro-Wilk statistic W(D) is computed after every query; W < delta flags the client.
Faithful to the paper in what it does not do: no standardisation beyond the input scale the model
sees (here: features standardised by the training data's spread, as the paper's images are in
[0, 1]), no handling of exact repeats (a retry has d_min = 0), no bound on memory.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import shapiro

MIN_D = 100
"""Distances collected before the test runs (the paper starts testing after 100 queries)."""


class Prada:
    """PRADA's detector for one client."""

    def __init__(self, delta: float, scale: np.ndarray, mean: np.ndarray) -> None:
        self.delta = delta
        self.scale = scale
        self.mean = mean
        self.sets: dict[int, np.ndarray] = {}
        self.sizes: dict[int, int] = {}
        self.thresholds: dict[int, float] = {}
        self.class_d: dict[int, list[float]] = {}
        self.d: list[float] = []
        self.last_w = 1.0

    def observe(self, x: np.ndarray, label: int) -> bool:
        """Feed one query (row) and the victim's label for it; True when the client is flagged."""
        z = (x - self.mean) / self.scale
        if label not in self.sets:
            self.sets[label] = np.empty((64, z.size))
            self.sets[label][0] = z
            self.sizes[label] = 1
            self.thresholds[label] = 0.0
            self.class_d[label] = []
            return False
        group, size = self.sets[label], self.sizes[label]
        diff = group[:size] - z
        dmin = float(np.sqrt(np.einsum("ij,ij->i", diff, diff).min()))
        self.d.append(dmin)
        dc = self.class_d[label]
        dc.append(dmin)
        if dmin > self.thresholds[label]:
            if size == len(group):  # grow the set (amortised doubling)
                group = self.sets[label] = np.concatenate([group, np.empty_like(group)])
            group[size] = z
            self.sizes[label] = size + 1
            self.thresholds[label] = max(self.thresholds[label], float(np.mean(dc) - np.std(dc)))
        if len(self.d) < MIN_D:
            return False
        values = np.asarray(self.d)
        if np.ptp(values) == 0:
            self.last_w = 0.0
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.last_w = float(shapiro(values).statistic)
        return self.last_w < self.delta


def calibrate_delta(
    streams: list[tuple[np.ndarray, np.ndarray]], scale: np.ndarray, mean: np.ndarray
) -> float:
    """The largest delta that flags none of the benign calibration streams (rows, labels), less 0.005.

    As in the paper, delta is set on benign traffic; here on random orders of the training data.
    """
    lowest = 1.0
    for rows, labels in streams:
        p = Prada(0.0, scale, mean)
        for x, y in zip(rows, labels, strict=True):
            p.observe(x, int(y))
            if len(p.d) >= MIN_D:
                lowest = min(lowest, p.last_w)
    return lowest - 0.005
