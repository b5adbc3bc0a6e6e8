"""Backdoor detector on triggers it was not designed on: other positions and patterns, a blended trigger,
two target classes, a trigger in tabular data; clean data with split classes is not flagged."""

from __future__ import annotations

import numpy as np
import pytest
from tests.unit.data.conftest import rates

from mlsecops.data import BackdoorClusterDetector


def _stamp(
    X: np.ndarray, y: np.ndarray, *, rate: float, targets: tuple[int, ...], kind: str, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Put a trigger on ``rate`` of the 8x8 digits (split over ``targets``, taken from the other classes)
    and relabel them; return (X, y, poisoned mask)."""
    rng = np.random.default_rng(seed)
    n = y.size
    imgs = X.reshape(n, 8, 8).copy()
    y2 = y.copy()
    truth = np.zeros(n, dtype=bool)
    for t in targets:
        pool = np.flatnonzero(~np.isin(y, targets) & ~truth)
        idx = rng.choice(pool, round(rate * n / len(targets)), replace=False)
        if kind == "blend":  # a fixed random pattern mixed over the whole image
            pattern = np.random.default_rng(100 + t).uniform(0, 16, (8, 8))
            imgs[idx] = 0.8 * imgs[idx] + 0.2 * pattern
        elif kind == "checker-top-left":
            imgs[idx, 0:3, 0:3] = 16.0 * (np.add.outer(np.arange(3), np.arange(3)) % 2 == 0)
        else:  # a 2x2 patch in the centre
            imgs[idx, 3:5, 3:5] = 16.0
        y2[idx] = t
        truth[idx] = True
    return imgs.reshape(n, 64), y2, truth


@pytest.mark.parametrize(("kind", "targets"), [("blend", (2,)), ("checker-top-left", (4, 7))])
def test_other_triggers_and_two_targets_are_found(
    digits: tuple[np.ndarray, np.ndarray], kind: str, targets: tuple[int, ...]
) -> None:
    X, y = digits
    Xp, yp, truth = _stamp(X, y, rate=0.10, targets=targets, kind=kind, seed=3)
    det = BackdoorClusterDetector(random_state=3).fit(Xp, yp)
    recall, fpr = rates(det.suspect_, truth)
    assert recall >= 0.95 and fpr <= 0.02, (recall, fpr, det.clusters_)
    assert set(yp[det.suspect_]) == set(targets)


def _tabular(seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification

    # Every class is two separate blobs: a model of the other classes classifies either blob confidently.
    X, y = make_classification(
        n_samples=1200,
        n_features=20,
        n_informative=10,
        n_classes=4,
        n_clusters_per_class=2,
        class_sep=1.5,
        random_state=seed,
    )
    return X, y.astype(np.int64)


def test_clean_tabular_classes_made_of_several_blobs_are_not_flagged() -> None:
    # Before the consistency test, 15-49% of such data was flagged (seeds 0-2 of 3,000 rows).
    for seed in (0, 1):
        X, y = _tabular(seed)
        det = BackdoorClusterDetector(random_state=seed).fit(X, y)
        assert det.suspect_.mean() <= 0.02, det.clusters_


def _tabular_trigger(seed: int, rate: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One column set to a constant four standard deviations out on ``rate`` of the rows, relabelled."""
    X, y = _tabular(seed)
    rng = np.random.default_rng(seed)
    target = int(rng.integers(0, 4))
    idx = rng.choice(np.flatnonzero(y != target), round(rate * y.size), replace=False)
    f = int(rng.integers(0, X.shape[1]))
    X[idx, f] = X[:, f].mean() + 4 * X[:, f].std()
    y = y.copy()
    y[idx] = target
    truth = np.zeros(y.size, dtype=bool)
    truth[idx] = True
    return X, y, truth


@pytest.mark.parametrize("min_novelty", [0.85, 9.0])
def test_a_novel_constant_in_one_column_is_a_trigger(min_novelty: float) -> None:
    # Seed 0: the poisoned class does not split unusually cleanly, so only the novelty gate finds it (the
    # trigger value never occurs in genuine rows); with the gate off (9.0) it is missed. On this small
    # tabular set the detector finds the trigger on 3 of seeds 0-5 (2 without the gate): a known gap.
    X, y, truth = _tabular_trigger(0, 0.10)
    det = BackdoorClusterDetector(random_state=0, min_novelty=min_novelty).fit(X, y)
    recall, fpr = rates(det.suspect_, truth)
    assert fpr <= 0.02, (fpr, det.clusters_)
    if min_novelty < 1:
        assert recall >= 0.95, (recall, det.clusters_)
    else:
        assert recall < 0.5, recall  # documents why the gate exists
