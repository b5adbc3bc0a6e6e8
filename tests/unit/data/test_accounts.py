"""Coordinated fake accounts in synthetic ratings: campaigns of every size are found, genuine users are not."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from mlsecops.core.errors import InputError, NotFittedError
from mlsecops.data import CoordinatedAccountDetector, generate_ratings


def _rates(det: CoordinatedAccountDetector, fake: np.ndarray) -> tuple[float, float]:
    is_fake = np.isin(det.users_, fake)
    recall = float((det.suspect_ & is_fake).sum() / max(is_fake.sum(), 1))
    fpr = float((det.suspect_ & ~is_fake).sum() / (~is_fake).sum())
    return recall, fpr


@pytest.mark.parametrize(("n_fake", "campaign_days"), [(100, 4.0), (537, 4.0), (1000, 4.0), (537, 60.0)])
def test_campaign_accounts_are_found(n_fake: int, campaign_days: float) -> None:
    data = generate_ratings(
        n_users=3000, n_items=1500, n_fake=n_fake, campaign_days=campaign_days, seed=n_fake
    )
    det = CoordinatedAccountDetector().fit(data.user, data.item, data.rating, data.time)
    recall, fpr = _rates(det, data.fake_users)
    assert recall >= 0.95 and fpr <= 0.02, (recall, fpr)
    assert set(data.target_items) <= set(det.campaign_items_.tolist())


def _heavy_genuine_flagged(det: CoordinatedAccountDetector, data_user: np.ndarray, fake: np.ndarray) -> int:
    users, counts = np.unique(data_user, return_counts=True)
    genuine = ~np.isin(users, fake)
    heavy = users[genuine][np.argsort(-counts[genuine])[:50]]
    return int(np.isin(det.detect(), heavy).sum())


@pytest.mark.parametrize(
    "variant",
    [
        {"smear": True},  # nuke good items with 1 star
        {"fake_rating": 4},  # 4 stars, not 5: a block of one rating near the top
        {"n_targets": 10, "target_share": 0.1},  # most fakes rate one target only: one hit in a pure burst
        {"popular_targets": True},  # targets with many genuine ratings around the burst
        {"campaign_days": 28.0, "fake_rating": 4, "camouflage": 20, "n_targets": 8, "target_share": 0.4},
    ],
    ids=["smear", "four-stars", "one-target-each", "popular-targets", "stealth"],
)
def test_campaign_variants_are_found(variant: dict[str, Any]) -> None:
    data = generate_ratings(n_users=3000, n_items=1500, n_fake=300, seed=11, **variant)
    det = CoordinatedAccountDetector().fit(data.user, data.item, data.rating, data.time)
    recall, fpr = _rates(det, data.fake_users)
    assert recall >= 0.95 and fpr <= 0.02, (recall, fpr)
    assert _heavy_genuine_flagged(det, data.user, data.fake_users) == 0


def test_small_slow_smear_over_many_targets_is_found() -> None:
    # 100 accounts give 2 stars to ~3 of 10 good items each over four weeks: no burst, and each target pair
    # shares only ~9 accounts, so only the co-count's significance reveals the lockstep. Accounts with a
    # single target and nothing else in common with the campaign cannot be told from genuine raters.
    data = generate_ratings(
        n_users=3000,
        n_items=1500,
        n_fake=100,
        smear=True,
        fake_rating=4,
        campaign_days=28.0,
        n_targets=10,
        target_share=0.3,
        seed=13,
    )
    det = CoordinatedAccountDetector().fit(data.user, data.item, data.rating, data.time)
    on_targets = np.bincount(
        data.user, weights=np.isin(data.item, data.target_items), minlength=det.users_.size
    )
    several = data.fake_users[on_targets[data.fake_users] >= 2]
    assert np.isin(several, det.detect()).all()
    recall, fpr = _rates(det, data.fake_users)
    assert recall >= 0.8 and fpr == 0.0, (recall, fpr)


def test_genuine_viral_items_are_not_a_campaign() -> None:
    # Three well-liked items get 300 genuine ratings each within days, a third from brand-new accounts.
    data = generate_ratings(n_users=3000, n_items=1500, n_fake=0, viral_items=3, seed=5)
    det = CoordinatedAccountDetector().fit(data.user, data.item, data.rating, data.time)
    assert det.burst_items_.size >= 3
    assert det.suspect_.sum() == 0 and det.campaign_items_.size == 0


def test_millisecond_times_find_the_same_accounts() -> None:
    data = generate_ratings(n_users=3000, n_items=1500, n_fake=300, seed=12)
    seconds = CoordinatedAccountDetector().fit(data.user, data.item, data.rating, data.time).detect()
    millis = data.time * 1000 + 1_700_000_000_000  # epoch milliseconds, as many exporters write them
    found = CoordinatedAccountDetector().fit(data.user, data.item, data.rating, millis).detect()
    assert np.isin(data.fake_users, seconds).mean() >= 0.95
    assert np.array_equal(found, seconds)


@pytest.mark.parametrize("seed", [0, 1])
def test_genuine_stream_has_no_campaign(seed: int) -> None:
    data = generate_ratings(n_users=3000, n_items=1500, n_fake=0, seed=seed)
    det = CoordinatedAccountDetector().fit(data.user, data.item, data.rating, data.time)
    assert det.suspect_.sum() == 0 and det.campaign_items_.size == 0


def test_generator_shape_and_ground_truth() -> None:
    data = generate_ratings(n_users=500, n_items=300, n_fake=50, seed=3)
    assert len(data) == data.item.size == data.rating.size == data.time.size
    assert set(np.unique(data.rating)) <= {1, 2, 3, 4, 5}
    assert np.all(np.diff(data.time) >= 0)
    assert data.fake_users.size == 50 and np.isin(data.fake_users, data.user).all()
    counts = np.bincount(data.item, minlength=300)
    assert counts[:10].sum() > counts[-100:].sum()  # Zipf: the head outweighs the long tail


def test_account_detector_errors() -> None:
    with pytest.raises(NotFittedError):
        CoordinatedAccountDetector().detect()
    with pytest.raises(InputError, match="equal length"):
        CoordinatedAccountDetector().fit(np.arange(3), np.arange(2), np.ones(3), np.ones(3))
    with pytest.raises(InputError, match="finite"):
        CoordinatedAccountDetector().fit(np.arange(3), np.arange(3), np.array([1.0, np.nan, 2.0]), np.ones(3))
