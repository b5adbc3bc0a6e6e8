"""Synthetic e-commerce ratings with Zipf popularity and a coordinated fake-account campaign.

``generate_ratings`` builds a ratings stream (``user, item, rating, time``) of genuine users who pick
items by Zipf popularity and rate them near each item's hidden quality, plus an optional campaign: a
few hundred fake accounts, created within a few days, that give five stars to a handful of low-quality,
little-known target items and rate some popular items plausibly as camouflage (the shape of the 537-account
case in the issue). Knobs vary the attack (a smear of good items, 4 stars instead of 5, popular targets,
each account on a subset of the targets, a campaign over weeks) and add genuine viral items, bursts a
detector must leave alone. The generator returns the ground truth with the data, so tests and benchmarks
can measure a detector's precision and recall, and the demo can show one.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["RatingsData", "generate_ratings"]


@dataclass(frozen=True)
class RatingsData:
    """A ratings stream and its ground truth."""

    user: np.ndarray
    """User id per rating (int)."""
    item: np.ndarray
    """Item id per rating (int)."""
    rating: np.ndarray
    """Stars, 1-5 (int)."""
    time: np.ndarray
    """Seconds since the start of the stream (int)."""
    fake_users: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    """Ids of the campaign's accounts (ground truth)."""
    target_items: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    """Items the campaign pushes (ground truth)."""

    def __len__(self) -> int:
        return int(self.user.shape[0])

    def write_csv(self, path: Path) -> None:
        """Write ``user,item,rating,time`` rows (header included)."""
        with path.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["user", "item", "rating", "time"])
            w.writerows(
                zip(
                    self.user.tolist(),
                    self.item.tolist(),
                    self.rating.tolist(),
                    self.time.tolist(),
                    strict=True,
                )
            )


def generate_ratings(
    *,
    n_users: int = 5_000,
    n_items: int = 2_000,
    mean_ratings: float = 20.0,
    zipf_exponent: float = 1.05,
    days: int = 120,
    n_fake: int = 537,
    n_targets: int = 5,
    campaign_days: float = 4.0,
    camouflage: int = 6,
    fake_rating: int = 5,
    smear: bool = False,
    popular_targets: bool = False,
    target_share: float = 0.8,
    viral_items: int = 0,
    seed: int = 0,
) -> RatingsData:
    """Generate a ratings stream, optionally with a coordinated campaign.

    Args:
        n_users: genuine accounts.
        n_items: catalogue size; item ``k`` has popularity proportional to ``1 / (k + 1) ** zipf_exponent``.
        mean_ratings: mean number of ratings per genuine user (log-normal spread).
        zipf_exponent: steepness of the popularity curve.
        days: length of the stream.
        n_fake: campaign accounts (0 for clean data).
        n_targets: low-quality items the campaign pushes.
        campaign_days: length of the window in which the campaign's accounts act.
        camouflage: popular items each fake account also rates, near their consensus.
        fake_rating: stars a fake account gives a pushed target (a smear gives ``6 - fake_rating``).
        smear: push good targets down instead of bad ones up.
        popular_targets: pick the targets among the 100 most popular items instead of the long tail.
        target_share: chance that a fake account rates a given target (each rates at least one).
        viral_items: little-known, well-liked items that go viral on top of the genuine stream: each gets
            300 genuine ratings (near its quality) within a few days, 100 of them from new accounts that rate
            nothing else.
        seed: random seed.
    """
    rng = np.random.default_rng(seed)
    quality = np.clip(rng.normal(3.6, 0.7, n_items), 1.0, 5.0)
    pop = 1.0 / np.arange(1, n_items + 1) ** zipf_exponent
    pop /= pop.sum()
    span = days * 86_400
    users, items, stars, times = [], [], [], []
    counts = np.clip(rng.lognormal(np.log(mean_ratings) - 0.3, 0.8, n_users).astype(int), 1, n_items // 2)
    bias = rng.normal(0.0, 0.4, n_users)
    for u in range(n_users):
        chosen = rng.choice(n_items, size=counts[u], replace=False, p=pop)
        start = rng.uniform(0, span)
        t = np.mod(start + rng.exponential(span / 6, chosen.size), span)
        r = np.clip(np.rint(quality[chosen] + bias[u] + rng.normal(0, 0.8, chosen.size)), 1, 5)
        users.append(np.full(chosen.size, u))
        items.append(chosen)
        stars.append(r)
        times.append(t)
    fake_ids = np.empty(0, dtype=np.int64)
    targets = np.empty(0, dtype=np.int64)
    if n_fake > 0:
        pool = np.arange(min(100, n_items)) if popular_targets else np.arange(n_items // 4, n_items)
        fit = pool[quality[pool] > 4.0] if smear else pool[quality[pool] < 3.0]
        targets = rng.choice(fit if fit.size >= n_targets else pool, size=n_targets, replace=False)
        if smear:
            quality[targets] = np.maximum(quality[targets], 4.3)
        else:
            quality[targets] = np.minimum(quality[targets], 2.2)
        star = float(6 - fake_rating if smear else fake_rating)
        fake_ids = np.arange(n_users, n_users + n_fake)
        t0 = rng.uniform(0.4, 0.8) * span
        head = np.arange(min(100, n_items))
        for fu in fake_ids:
            hit = targets[rng.random(n_targets) < target_share]
            if hit.size == 0:
                hit = targets[rng.integers(n_targets, size=1)]
            cover = rng.choice(
                head, size=min(camouflage, head.size), replace=False, p=pop[head] / pop[head].sum()
            )
            chosen = np.concatenate([hit, cover])
            r = np.concatenate(
                [
                    np.full(hit.size, star),
                    np.clip(np.rint(quality[cover] + rng.normal(0, 0.6, cover.size)), 1, 5),
                ]
            )
            users.append(np.full(chosen.size, fu))
            items.append(chosen)
            stars.append(r)
            times.append(t0 + rng.uniform(0, campaign_days * 86_400, chosen.size))
    n_new = 0
    for _ in range(viral_items):
        # A genuine hit: existing users and new accounts rate it within days, near its (high) quality.
        tail = np.arange(n_items // 4, n_items)
        liked = tail[quality[tail] > 4.0]
        it = int(rng.choice(liked if liked.size else tail))
        fans = rng.choice(n_users, size=200, replace=False)
        newcomers = np.arange(n_users + n_fake + n_new, n_users + n_fake + n_new + 100)
        n_new += newcomers.size
        who = np.concatenate([fans, newcomers])
        b = np.concatenate([bias[fans], rng.normal(0.0, 0.4, newcomers.size)])
        users.append(who)
        items.append(np.full(who.size, it))
        stars.append(np.clip(np.rint(quality[it] + b + rng.normal(0, 0.8, who.size)), 1, 5))
        times.append(np.minimum(rng.uniform(0.1, 0.9) * span + rng.exponential(86_400, who.size), span))
    # Shuffle account ids so fake accounts are not a contiguous block at the end.
    total = n_users + n_fake + n_new
    perm = rng.permutation(total)
    user = perm[np.concatenate(users)]
    time = np.concatenate(times).astype(np.int64)
    order = np.argsort(time, kind="stable")
    return RatingsData(
        user=user[order].astype(np.int64),
        item=np.concatenate(items)[order].astype(np.int64),
        rating=np.concatenate(stars)[order].astype(np.int64),
        time=time[order],
        fake_users=np.sort(perm[fake_ids]).astype(np.int64),
        target_items=np.sort(targets).astype(np.int64),
    )
