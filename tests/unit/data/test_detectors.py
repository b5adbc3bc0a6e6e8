"""Poisoning detectors: each planted attack is found, and clean data is not flagged beyond the stated rate."""

from __future__ import annotations

import numpy as np
import pytest
from tests.unit.data.conftest import flip_labels, plant_trigger, rates

from mlsecops.core.errors import InputError, NotFittedError
from mlsecops.data import (
    ActivationClusteringDetector,
    BackdoorClusterDetector,
    ConfidentLabelDetector,
    NearDuplicateDetector,
    OutlierDetector,
    SpectralSignatureDetector,
    learned_features,
)


def test_label_flips_on_digits_are_found(digits: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = digits
    noisy, truth = flip_labels(y, 0.10, seed=3)
    det = ConfidentLabelDetector(n_repeats=1).fit(X, noisy)
    recall, fpr = rates(det.suspect_, truth)
    assert recall >= 0.95 and fpr <= 0.02, (recall, fpr)
    # The suggested label of a found flip is usually the original one.
    found = det.suspect_ & truth
    assert np.mean(det.suggested_labels_[found] == y[found]) >= 0.9


def test_clean_labels_are_rarely_flagged() -> None:
    from sklearn.datasets import load_wine, make_blobs

    X, y = make_blobs(n_samples=600, n_features=8, centers=4, cluster_std=2.0, random_state=0)
    assert ConfidentLabelDetector(n_repeats=1).fit(X, y).suspect_.mean() <= 0.02
    X, y = load_wine(return_X_y=True)
    assert ConfidentLabelDetector(n_repeats=1).fit(X, y).suspect_.mean() <= 0.02


@pytest.mark.parametrize("rate", [0.05, 0.20])
def test_label_flips_on_breast_cancer_are_found(rate: float) -> None:
    from sklearn.datasets import load_breast_cancer

    # About 2% of breast-cancer's own rows look like the other class to any model trained on the rest:
    # they use up the 0.02 false-positive budget, and flipped rows near the boundary look right. Models
    # trained on the clean labels, with the best threshold chosen knowing the truth, reach a mean recall
    # of 1.00 (5%) and 0.97 (20%) on these plantings (benchmarks/results/data.md); the previous detector
    # reached 0.93 at FPR 0.020 and 0.94 at FPR 0.024. One clean row is 0.0018 of FPR here, hence 0.022.
    X, y = load_breast_cancer(return_X_y=True)
    found = []
    for seed in range(3):
        noisy, truth = flip_labels(y, rate, seed=seed)
        det = ConfidentLabelDetector(random_state=seed).fit(X, noisy)
        found.append(rates(det.suspect_, truth))
        assert abs(det.noise_rate_ - rate) <= 0.03, det.noise_rate_
    recall, fpr = np.mean(found, axis=0)
    assert recall >= 0.94 and fpr <= 0.022, found


def test_clean_breast_cancer_and_overlapping_classes_are_not_flagged_beyond_the_cap() -> None:
    from sklearn.datasets import load_breast_cancer, make_classification

    X, y = load_breast_cancer(return_X_y=True)
    det = ConfidentLabelDetector().fit(X, y)
    assert det.suspect_.mean() <= 0.02 and det.noise_rate_ <= 0.01
    # Classes that overlap: about 10% of the correct labels get more probability for another class.
    # The margin alone would flag those; the noise-rate cap keeps the flags near max_clean_rate.
    X, y = make_classification(
        n_samples=1000, n_features=20, n_informative=8, n_classes=3, class_sep=1.5, flip_y=0, random_state=0
    )
    det = ConfidentLabelDetector(n_repeats=1).fit(X, y)
    assert np.mean(det.scores_ > det.margin) >= 0.05
    assert det.suspect_.mean() <= 0.04 and det.noise_rate_ <= 0.02, (det.suspect_.mean(), det.noise_rate_)


def test_label_detector_contract() -> None:
    with pytest.raises(NotFittedError):
        ConfidentLabelDetector().detect()
    with pytest.raises(InputError, match="2 classes"):
        ConfidentLabelDetector().fit(np.ones((10, 2)), np.zeros(10, dtype=int))
    with pytest.raises(InputError, match="margin"):
        ConfidentLabelDetector(margin=2.0).fit(np.ones((10, 2)), np.arange(10) % 2)
    with pytest.raises(InputError, match="max_clean_rate"):
        ConfidentLabelDetector(max_clean_rate=-0.1).fit(np.ones((10, 2)), np.arange(10) % 2)


@pytest.mark.parametrize(("rate", "target"), [(0.05, 0), (0.10, 3)])
def test_backdoor_patch_found_even_when_it_is_a_third_of_its_class(
    digits: tuple[np.ndarray, np.ndarray], rate: float, target: int
) -> None:
    X, y = digits
    Xp, yp, truth = plant_trigger(X, y, rate, target, seed=1)
    det = BackdoorClusterDetector().fit(Xp, yp)
    recall, fpr = rates(det.suspect_, truth)
    assert recall >= 0.95 and fpr <= 0.02, (recall, fpr)
    assert set(yp[det.suspect_]) == {target}
    # The rows are explained by their real classes.
    assert np.mean(det.explained_by_[truth & det.suspect_] == y[truth & det.suspect_]) >= 0.8


def test_backdoor_detector_leaves_clean_digits_alone(digits: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = digits
    det = BackdoorClusterDetector().fit(X, y)
    assert det.suspect_.sum() == 0, det.clusters_


def test_per_class_outlier_baselines_run_and_collapse_at_high_poison_share(
    digits: tuple[np.ndarray, np.ndarray],
) -> None:
    X, y = digits
    Xp, yp, truth = plant_trigger(X, y, 0.10, 0, seed=2)
    H = learned_features(Xp, yp)
    ss = SpectralSignatureDetector(contamination=0.1, features=H).fit(Xp, yp)
    ac = ActivationClusteringDetector(features=H).fit(Xp, yp)
    ours = BackdoorClusterDetector(features=H).fit(Xp, yp)
    r_ss, _ = rates(ss.suspect_, truth)
    r_ac, _ = rates(ac.suspect_, truth)
    r_ours, fpr = rates(ours.suspect_, truth)
    assert r_ours >= 0.95 and fpr <= 0.02
    assert r_ours > max(r_ss, r_ac)
    with pytest.raises(InputError, match="features"):
        SpectralSignatureDetector(features=np.ones((5, 3))).fit(Xp, yp)


def test_outliers_and_near_duplicates_are_found_and_clean_data_passes() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1500, 6))
    assert OutlierDetector().fit(X).suspect_.sum() <= 3
    assert NearDuplicateDetector().fit(X).suspect_.sum() == 0
    outliers = rng.choice([-1.0, 1.0], size=(8, 6)) * 8.0
    copies = np.repeat(X[[5, 9]], 12, axis=0) + rng.normal(0, 1e-3, (24, 6))
    Xp = np.vstack([X, outliers, copies])
    od = OutlierDetector().fit(Xp)
    nd = NearDuplicateDetector().fit(Xp)
    assert od.suspect_[1500:1508].all() and od.suspect_[:1500].sum() <= 3
    assert nd.suspect_[1508:].all() and nd.suspect_[:1500].sum() == 0
    assert len(nd.groups_) == 2 and set(nd.original_[1508:]) == {5, 9}
