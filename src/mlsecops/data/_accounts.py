"""Coordinated fake-account detection in ``user, item, rating, time`` data.

Fake accounts in a campaign act together: they rate the same few items, in the same short window, with
ratings far from what everyone else thinks of those items. ``CoordinatedAccountDetector`` looks for the
items first, then for the accounts:

1. **Bursts.** For every item, the busiest window of ``window_days`` holds far more ratings than the
   item's own rate predicts (Poisson z-score above ``burst_z``).
2. **Lockstep.** Item pairs rated by far more common accounts than independent behaviour explains. The
   expected co-count of items ``i`` and ``j`` is ``n_i * n_j * sum(d_u^2) / M^2`` (``d_u`` the account's
   number of ratings, ``M`` all ratings), so heavy raters and popular items do not count as coordination.
3. **Consensus.** A rating on a candidate item is *suspicious* when it comes from an account that rates
   several candidate items or, on a bursty item, when it falls in the item's burst region; the others
   are *trusted*. A candidate item is a campaign item when its suspicious ratings sit ``min_deviation`` stars (on average)
   from the median trusted rating, or, when fewer than three trusted ratings exist, when the suspicious
   ratings are 90% or more at the top (or bottom) of the rating scale. A campaign that outnumbers the genuine raters
   of an item therefore cannot set its consensus, and camouflage ratings on popular items do not count.
4. **Accounts.** A suspicious rating on a campaign item in the campaign's direction (4-5 stars for a push,
   1-2 for a smear) is coordinated. An account is suspect with ``min_hits`` coordinated ratings (fewer if
   there are fewer campaign items); its score is the number of coordinated ratings divided by that.
"""

from __future__ import annotations

from typing import Self

import numpy as np

from mlsecops.core.errors import InputError, NotFittedError

__all__ = ["CoordinatedAccountDetector"]


class CoordinatedAccountDetector:
    """Finds accounts that act together against the consensus (see module doc).

    Args:
        window_days: width of the burst window.
        burst_z: Poisson z-score of an item's busiest window that makes it a burst.
        lift: co-rating lift above which an item pair is in lockstep.
        min_pair_count: smallest co-count considered for lockstep.
        min_deviation: stars from the consensus that make a rating extreme.
        min_hits: coordinated ratings that make an account suspect.
    """

    def __init__(
        self,
        *,
        window_days: float = 3.0,
        burst_z: float = 6.0,
        lift: float = 4.0,
        min_pair_count: int = 15,
        min_deviation: float = 1.5,
        min_hits: int = 2,
    ) -> None:
        self.window_days = window_days
        self.burst_z = burst_z
        self.lift = lift
        self.min_pair_count = min_pair_count
        self.min_deviation = min_deviation
        self.min_hits = min_hits

    def fit(self, user: np.ndarray, item: np.ndarray, rating: np.ndarray, time: np.ndarray) -> Self:
        """Score every account of the ratings stream.

        Learned attributes: ``users_`` (account ids), ``scores_``, ``suspect_`` (aligned with ``users_``),
        ``hits_`` (coordinated ratings per account), ``candidate_items_``, ``burst_items_`` and
        ``campaign_items_`` (item ids), ``consensus_shift_`` (per item index: +1 push, -1 smear, 0 none).

        Raises:
            InputError: arrays of different lengths, non-finite values, or no ratings.
        """
        u_raw, i_raw = np.asarray(user), np.asarray(item)
        r = np.asarray(rating, dtype=np.float64)
        t = np.asarray(time, dtype=np.float64)
        n = u_raw.shape[0]
        if n == 0 or not (i_raw.shape[0] == r.shape[0] == t.shape[0] == n):
            raise InputError("user, item, rating and time must be non-empty and of equal length")
        if not (np.all(np.isfinite(r)) and np.all(np.isfinite(t))):
            raise InputError("ratings and times must be finite numbers")
        users, u = np.unique(u_raw, return_inverse=True)
        items, i = np.unique(i_raw, return_inverse=True)
        n_users, n_items = users.size, items.size

        burst_start, burst_mask = self._bursts(i, t, n_items)
        # The burst region reaches one window either side of the busiest window: a campaign longer than one
        # window must not leak its own ratings into the item's consensus.
        w = self.window_days * 86_400
        in_burst = burst_mask[i] & (t >= burst_start[i] - w) & (t < burst_start[i] + 2 * w)
        lockstep = self._lockstep(u, i, n_users, n_items)
        base_candidate = burst_mask | lockstep
        flagged = np.zeros(n_users, dtype=bool)
        # Later passes use the accounts found so far: their ratings leave every consensus, and items they
        # concentrate on become candidates, so a campaign bigger than an item's genuine audience, or one
        # spread over weeks, is followed from the items it was first seen on to the rest.
        for _ in range(4):
            candidate = base_candidate.copy()
            if flagged.any():
                by_flagged = np.bincount(i, weights=flagged[u].astype(float), minlength=n_items)
                n_rated = np.bincount(i, minlength=n_items)
                candidate |= (by_flagged >= 10) & (by_flagged >= 0.3 * n_rated)
            direction, coordinated = self._campaign(
                u, i, r, in_burst, burst_mask, candidate, flagged, n_users
            )
            n_campaign = int(np.count_nonzero(direction))
            min_hits = min(self.min_hits, max(n_campaign, 1))
            hits = np.bincount(u, weights=coordinated.astype(float), minlength=n_users)
            now = hits >= min_hits
            if np.array_equal(now, flagged):
                break
            flagged = now
        self.consensus_shift_ = direction
        self.users_ = users
        self.hits_ = hits.astype(np.int64)
        self.scores_ = hits / min_hits
        self.suspect_ = hits >= min_hits
        self.campaign_items_ = items[direction != 0]
        self.candidate_items_ = items[candidate]
        self.burst_items_ = items[burst_mask]
        return self

    def _campaign(
        self,
        u: np.ndarray,
        i: np.ndarray,
        r: np.ndarray,
        in_burst: np.ndarray,
        burst_mask: np.ndarray,
        candidate: np.ndarray,
        flagged: np.ndarray,
        n_users: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        n_items = candidate.size
        cand_rating = candidate[i]
        per_user = np.bincount(u, weights=cand_rating.astype(float), minlength=n_users)
        group_rater = (per_user[u] >= 2) | flagged[u]
        # The core of a candidate item: its burst region if it has one, else the accounts that rate several
        # candidate items (and accounts already found). Trusted: ratings outside the core by accounts that
        # are neither group raters nor found.
        core = cand_rating & (np.where(burst_mask[i], in_burst, group_rater) | flagged[u])
        suspicious = cand_rating & (core | group_rater)
        trusted = cand_rating & ~suspicious
        direction = np.zeros(n_items)
        r_min, r_max = float(r.min()), float(r.max())
        order = np.argsort(i, kind="stable")
        bounds = np.searchsorted(i[order], np.arange(n_items + 1))
        for it in np.flatnonzero(candidate):
            rows = order[bounds[it] : bounds[it + 1]]
            sus = r[rows[core[rows]]]
            if sus.size < 5:
                continue
            ok = r[rows[trusted[rows]]]
            centre = float(np.mean(sus))
            if ok.size >= 3:
                shift = centre - float(np.median(ok))
                if abs(shift) >= self.min_deviation:
                    direction[it] = np.sign(shift)
            else:
                # Too few independent ratings for a consensus: only a block of (nearly) unanimous extreme
                # ratings decides; popular, well-liked items get many top ratings but not 90% of them.
                top, bottom = float(np.mean(sus >= r_max)), float(np.mean(sus <= r_min))
                if max(top, bottom) >= 0.9:
                    direction[it] = 1.0 if top >= bottom else -1.0
        push = direction[i]
        extreme = ((push > 0) & (r >= r_max - 1)) | ((push < 0) & (r <= r_min + 1))
        return direction, suspicious & extreme

    def _bursts(self, i: np.ndarray, t: np.ndarray, n_items: int) -> tuple[np.ndarray, np.ndarray]:
        w = self.window_days * 86_400
        span = max(float(t.max() - t.min()), w)
        start = np.zeros(n_items)
        bursty = np.zeros(n_items, dtype=bool)
        order = np.lexsort((t, i))
        i_s, t_s = i[order], t[order]
        bounds = np.searchsorted(i_s, np.arange(n_items + 1))
        for it in range(n_items):
            ts = t_s[bounds[it] : bounds[it + 1]]
            if ts.size < 10:
                continue
            ends = np.searchsorted(ts, ts + w)
            counts = ends - np.arange(ts.size)
            k = int(np.argmax(counts))
            expected = ts.size * w / span
            z = (counts[k] - expected) / np.sqrt(expected + 1.0)
            if z >= self.burst_z and counts[k] >= 10:
                bursty[it] = True
                start[it] = ts[k]
        return start, bursty

    def _lockstep(self, u: np.ndarray, i: np.ndarray, n_users: int, n_items: int) -> np.ndarray:
        from scipy import sparse

        m = sparse.csr_matrix((np.ones(u.size), (u, i)), shape=(n_users, n_items))
        m.data[:] = 1.0
        n_i = np.asarray(m.sum(axis=0)).ravel()
        keep = np.flatnonzero(n_i >= self.min_pair_count)
        out = np.zeros(n_items, dtype=bool)
        if keep.size < 2:
            return out
        d = np.asarray(m.sum(axis=1)).ravel()
        total = float(d.sum())
        sub = m[:, keep]
        co = (sub.T @ sub).toarray()
        np.fill_diagonal(co, 0.0)
        expected = np.outer(n_i[keep], n_i[keep]) * float((d**2).sum()) / total**2
        flagged = (co >= self.min_pair_count) & (co >= self.lift * np.maximum(expected, 1e-9))
        out[keep[flagged.any(axis=1)]] = True
        return out

    def detect(self) -> np.ndarray:
        """Ids of the suspect accounts.

        Raises:
            NotFittedError: ``fit`` was not called.
        """
        if not hasattr(self, "suspect_"):
            raise NotFittedError("CoordinatedAccountDetector is not fitted; call fit(...) first")
        return np.asarray(self.users_[self.suspect_])
