"""Coordinated fake-account detection in ``user, item, rating, time`` data.

Fake accounts in a campaign act together: they rate the same few items, in the same short window, with
ratings far from what everyone else thinks of those items. ``CoordinatedAccountDetector`` looks for the
items first, then for the accounts:

1. **Bursts.** For every item, the busiest window of ``window_days`` holds far more ratings than the
   item's own rate predicts (Poisson z-score above ``burst_z``). Its *burst region* is the run of windows
   around it that stay above the item's usual rate (the median window count, which a campaign over weeks
   does not inflate), widened by one window either side.
2. **Lockstep.** Item pairs rated by far more common accounts than independent behaviour explains. The
   expected co-count of items ``i`` and ``j`` is ``n_i * n_j * sum(d_u^2) / M^2`` (``d_u`` the account's
   number of ratings, ``M`` all ratings), so heavy raters and popular items do not count as coordination.
   A pair is in lockstep at ``lift`` times that and ``min_pair_count`` common accounts, or from 8 common
   accounts when the Poisson chance of that co-count, across all the pairs tested, is below 1%.
3. **Consensus.** Bursty and lockstep items are *candidates*. A *group rater* puts far more of its ratings
   on candidate items, or into their burst regions, than its activity explains (Poisson tail below 1%),
   so heavy raters and fans of popular items are not group raters. A candidate item's *core* is its burst
   region (else its group raters); its *trusted* ratings lie outside the core and come from other
   accounts. The core holds the genuine ratings expected at the trusted rate plus an excess; the item is
   a campaign item when the mean of that excess sits ``min_deviation`` stars from the trusted mean and
   3.5 standard errors away, or when the core is a block of one rating (90% or more, near an end of the
   scale) at half that distance (the full distance if too few trusted ratings make it significant, no
   distance if there are fewer than three), or when the block comes mostly from accounts already found
   on other items. A campaign that outnumbers the genuine raters of an item therefore cannot set its
   consensus, and plausible camouflage ratings on popular items do not count.
4. **Accounts.** A core or group-rater rating on a campaign item in the campaign's direction (4-5 stars
   for a push, 1-2 for a smear) is coordinated. Each carries the chance ``q`` that it is genuine: in a
   burst region, the genuine ratings of that side expected (at the trusted rate) in the window around it
   over the campaign's ratings in that window; elsewhere ``0.01 ** (1 / min_hits)``. An account is suspect when the product of its ``q`` is
   0.01 or less, so one rating in a burst that genuine raters cannot explain is enough, ``min_hits``
   lockstep ratings are, and two ratings among many genuine ones on a popular item are not. An account
   with coordinated ratings that also crowds the other candidate items gets that Poisson tail as extra
   evidence (at most half of what it takes). ``scores_`` is ``log(product) / log(0.01)`` (suspect at 1).
"""

from __future__ import annotations

from typing import Self

import numpy as np

from mlsecops.core.errors import InputError, NotFittedError

__all__ = ["CoordinatedAccountDetector"]

_ALPHA = 0.01
"""An account is suspect when the chance that all its coordinated ratings are genuine is at most this."""
_MIN_T = 3.5
"""Standard errors by which a campaign item's excess ratings must differ from its trusted ratings."""
_MAX_SPAN_S = 100 * 365.25 * 86_400
"""Longest plausible stream in seconds; longer spans are read as milli- or microseconds."""
_MIN_PAIR_SIGNIFICANT = 8
"""Smallest co-count of an item pair that counts as lockstep when chance cannot explain it."""
_GROUP_P = 1e-2
"""Poisson tail below which an account's share of ratings in the suspicious zone makes it a group rater."""


class CoordinatedAccountDetector:
    """Finds accounts that act together against the consensus (see module doc).

    Args:
        window_days: width of the burst window.
        burst_z: Poisson z-score of an item's busiest window that makes it a burst.
        lift: co-rating lift above which an item pair is in lockstep.
        min_pair_count: smallest co-count considered for lockstep.
        min_deviation: stars between a campaign item's excess ratings and its trusted consensus.
        min_hits: coordinated ratings on items without a burst that make an account suspect.
    """

    def __init__(
        self,
        *,
        window_days: float = 3.0,
        burst_z: float = 6.0,
        lift: float = 4.0,
        min_pair_count: int = 15,
        min_deviation: float = 1.0,
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

        ``time`` is in seconds; epoch milli- and microseconds are recognised and scaled.

        Learned attributes: ``users_`` (account ids), ``scores_`` (suspect at 1 or more), ``suspect_``
        (aligned with ``users_``), ``hits_`` (coordinated ratings per account), ``candidate_items_``,
        ``burst_items_`` and ``campaign_items_`` (item ids), ``consensus_shift_`` (per item index: +1 push,
        -1 smear, 0 none).

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
        # Times in milli- or microseconds (as many exporters write them): epoch seconds stay below 1e11
        # until the year 5138, and no ratings stream spans a century, so scale down until both hold.
        # Bounded by construction: finite doubles stay below 1.8e308, so 110 divisions by 1000 always
        # suffice; the loop never depends on the values to stop.
        for _ in range(110):
            if float(np.abs(t).max()) <= 1e11 and float(t.max() - t.min()) <= _MAX_SPAN_S:
                break
            t = t / 1000.0
        users, u = np.unique(u_raw, return_inverse=True)
        items, i = np.unique(i_raw, return_inverse=True)
        n_users, n_items = users.size, items.size

        lo, hi, burst_mask = self._bursts(i, t, n_items)
        in_burst = burst_mask[i] & (t >= lo[i]) & (t < hi[i])
        # Share of the stream's time that each item's burst region covers (genuine ratings land there by chance).
        span = max(float(t.max() - t.min()), self.window_days * 86_400)
        region_share = np.clip((hi - lo) / span, 0.0, 0.95)
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
            direction, coordinated, q, cand_rating = self._campaign(
                u, i, r, t, in_burst, burst_mask, region_share, candidate, flagged, n_users
            )
            hits = np.bincount(u, weights=coordinated.astype(float), minlength=n_users)
            # Evidence of a coordinated rating: log(chance it is genuine) / log(_ALPHA), so an account is
            # suspect when the product of those chances over its coordinated ratings is _ALPHA or less.
            evidence = np.where(coordinated, np.log(q) / np.log(_ALPHA), 0.0)
            scores = np.bincount(u, weights=evidence, minlength=n_users)
            # An account with coordinated ratings that also crowds the other candidate items (say with
            # camouflage ratings) gets that as extra evidence, at most half of what it takes.
            p_rest = self._excess_p(u, cand_rating & ~coordinated, n_users)
            extra = np.minimum(np.log(np.maximum(p_rest, 1e-300)) / np.log(_ALPHA), 0.5)
            scores += np.where(scores > 0, extra, 0.0)
            now = scores >= 1.0 - 1e-9
            if np.array_equal(now, flagged):
                break
            flagged = now
        self.consensus_shift_ = direction
        self.users_ = users
        self.hits_ = hits.astype(np.int64)
        self.scores_ = scores
        self.suspect_ = scores >= 1.0 - 1e-9
        self.campaign_items_ = items[direction != 0]
        self.candidate_items_ = items[candidate]
        self.burst_items_ = items[burst_mask]
        return self

    @staticmethod
    def _excess_p(u: np.ndarray, zone: np.ndarray, n_users: int) -> np.ndarray:
        """Per account: Poisson chance of at least its number of ratings in ``zone``, given its activity."""
        from scipy import stats

        d = np.bincount(u, minlength=n_users).astype(float)
        c = np.bincount(u, weights=zone.astype(float), minlength=n_users)
        return np.asarray(stats.poisson.sf(c - 1, d * float(zone.mean())), dtype=np.float64)

    def _campaign(
        self,
        u: np.ndarray,
        i: np.ndarray,
        r: np.ndarray,
        t: np.ndarray,
        in_burst: np.ndarray,
        burst_mask: np.ndarray,
        region_share: np.ndarray,
        candidate: np.ndarray,
        flagged: np.ndarray,
        n_users: int,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        n_items = candidate.size
        cand_rating = candidate[i]
        # Group raters concentrate on the candidate items, or on their burst regions (where a campaign
        # that hides among popular candidate items shows), far beyond what their activity explains.
        zone = cand_rating & np.where(burst_mask[i], in_burst, True)
        n_cand = np.bincount(u, weights=cand_rating.astype(float), minlength=n_users)
        p = np.minimum(self._excess_p(u, cand_rating, n_users), self._excess_p(u, zone, n_users))
        group_rater = ((n_cand >= 2) & (p <= _GROUP_P)) | flagged
        # The core of a candidate item: its burst region if it has one, else its group raters (and accounts
        # already found). Trusted: ratings outside the core by accounts that are neither.
        core = cand_rating & (np.where(burst_mask[i], in_burst, False) | group_rater[u])
        trusted = cand_rating & ~core & ~group_rater[u]
        direction = np.zeros(n_items)
        # Chance that a coordinated rating on the item is genuine; items without a burst get the prior that
        # makes ``min_hits`` such ratings enough.
        q = np.full(n_items, _ALPHA ** (1.0 / self.min_hits))
        q_row = np.full(r.size, np.nan)
        w = self.window_days * 86_400
        span = max(float(t.max() - t.min()), w)
        r_min, r_max = float(r.min()), float(r.max())
        var_all = float(r.var())
        order = np.argsort(i, kind="stable")
        bounds = np.searchsorted(i[order], np.arange(n_items + 1))
        for it in np.flatnonzero(candidate):
            rows = order[bounds[it] : bounds[it + 1]]
            sus = r[rows[core[rows]]]
            ok = r[rows[trusted[rows]]]
            # Genuine ratings expected inside the burst region, at the rate the trusted ratings arrive.
            ratio = region_share[it] / (1.0 - region_share[it]) if burst_mask[it] else 0.0
            g = ok.size * ratio
            if sus.size - g < 5:
                continue
            # A (nearly) unanimous block of one rating near an end of the scale: genuine raters of an item,
            # however well or badly liked, spread over the scale; a script gives everyone the same stars.
            values, counts = np.unique(sus, return_counts=True)
            mode = float(values[np.argmax(counts)])
            block = counts.max() >= 0.9 * sus.size and (mode >= r_max - 1 or mode <= r_min + 1)
            if ok.size >= 3:
                # Mean of the excess ratings: the core minus the genuine ratings expected in it.
                n_x = sus.size - g
                consensus = float(ok.mean())
                shift = (float(sus.sum()) - g * consensus) / n_x - consensus
                # The shift must also be far beyond its standard error (variances shrunk towards the whole
                # stream's, so a handful of trusted ratings cannot look unanimous) ...
                var_ok = (float(np.sum((ok - consensus) ** 2)) + 2 * var_all) / (ok.size + 1)
                var_x = (float(np.sum((sus - sus.mean()) ** 2)) + 2 * var_all) / (sus.size + 1)
                significant = abs(shift) >= _MIN_T * float(np.sqrt(var_ok / ok.size + var_x / n_x))
                # ... except for a block, which needs half the deviation when significant, and the full
                # deviation when the trusted ratings are too few to make it significant.
                gap = abs(mode - consensus)
                strong = abs(shift) >= self.min_deviation or (block and gap >= self.min_deviation / 2)
                unanimous = block and gap >= self.min_deviation and (mode - consensus) * shift > 0
                if (significant and strong) or unanimous:
                    direction[it] = np.sign(shift)
            elif block:
                # Too few independent ratings for a consensus: only a block decides.
                direction[it] = 1.0 if mode >= r_max - 1 else -1.0
            if direction[it] == 0 and block and burst_mask[it]:
                # A block made mostly by accounts already found elsewhere is their campaign, however close
                # to the consensus it sits: the others in the block act with them.
                found = float(np.mean(flagged[u[rows[core[rows]]]]))
                lean = mode - (float(ok.mean()) if ok.size else (r_min + r_max) / 2)
                if found >= 0.5 and lean != 0:
                    direction[it] = np.sign(lean)
            if direction[it] != 0 and burst_mask[it]:
                side = ok >= r_max - 1 if direction[it] > 0 else ok <= r_min + 1
                n_side = int(np.count_nonzero(side)) + 1
                hit = sus >= r_max - 1 if direction[it] > 0 else sus <= r_min + 1
                q[it] = min(1.0, max(n_side * ratio, 1e-12) / max(int(np.count_nonzero(hit)), 1))
                # Per rating in the core: genuine ratings of that side expected in one window around it, at
                # the trusted rate, over the campaign's ratings in that window (the edges of a burst are
                # thinner than its middle).
                hit_rows = rows[core[rows]][hit]
                ts = np.sort(t[hit_rows])
                local = np.searchsorted(ts, t[hit_rows] + w / 2, "right") - np.searchsorted(
                    ts, t[hit_rows] - w / 2
                )
                rate = n_side / max((1.0 - region_share[it]) * span, w)
                q_row[hit_rows] = np.minimum(1.0, rate * w / np.maximum(local, 1))
        push = direction[i]
        extreme = ((push > 0) & (r >= r_max - 1)) | ((push < 0) & (r <= r_min + 1))
        suspicious = cand_rating & (core | group_rater[u])
        q_row = np.where(np.isnan(q_row), q[i], q_row)
        return direction, suspicious & extreme, np.maximum(q_row, 1e-12), cand_rating

    def _bursts(
        self, i: np.ndarray, t: np.ndarray, n_items: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per item: start and end of its burst region, and whether it has one."""
        w = self.window_days * 86_400
        t0, span = float(t.min()), max(float(t.max() - t.min()), w)
        lo, hi = np.zeros(n_items), np.zeros(n_items)
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
            z = (counts - expected) / np.sqrt(expected + 1.0)
            if z[k] >= self.burst_z and counts[k] >= 10:
                bursty[it] = True
                # The region: the run of windows around the busiest one that stay well above the item's
                # usual rate, widened by one window either side, so a campaign longer than one window does
                # not leak its own ratings into the item's consensus. The usual rate is the median count of
                # the stream's windows: a campaign over weeks inflates the mean, not the median.
                grid = np.histogram(ts, bins=max(int(span // w), 1), range=(t0, t0 + span))[0]
                base = float(np.median(grid))
                high = (counts - base) / np.sqrt(base + 1.0) >= self.burst_z / 2
                a = k - int(np.argmin(high[k::-1])) if not high[: k + 1].all() else -1
                b = k + int(np.argmin(high[k:])) if not high[k:].all() else ts.size
                lo[it] = ts[a + 1] - w
                hi[it] = ts[b - 1] + 2 * w
        return lo, hi, bursty

    def _lockstep(self, u: np.ndarray, i: np.ndarray, n_users: int, n_items: int) -> np.ndarray:
        from scipy import sparse

        m = sparse.csr_matrix((np.ones(u.size), (u, i)), shape=(n_users, n_items))
        m.data[:] = 1.0
        n_i = np.asarray(m.sum(axis=0)).ravel()
        keep = np.flatnonzero(n_i >= min(self.min_pair_count, _MIN_PAIR_SIGNIFICANT))
        out = np.zeros(n_items, dtype=bool)
        if keep.size < 2:
            return out
        from scipy import stats

        d = np.asarray(m.sum(axis=1)).ravel()
        total = float(d.sum())
        sub = m[:, keep]
        # Co-counts stay sparse: only pairs some account rated together are tested.
        co = sparse.triu(sub.T @ sub, k=1).tocoo()
        a, b, c = co.row, co.col, co.data
        expected = n_i[keep][a] * n_i[keep][b] * float((d**2).sum()) / total**2
        lifted = c >= self.lift * np.maximum(expected, 1e-9)
        flagged = lifted & (c >= self.min_pair_count)
        # Smaller co-counts count when chance cannot explain them across all the pairs tested (Bonferroni):
        # a campaign of a hundred accounts spread over many targets and weeks shows only here.
        small = lifted & ~flagged & (c >= _MIN_PAIR_SIGNIFICANT)
        if small.any():
            n_pairs = keep.size * (keep.size - 1) / 2
            flagged[small] = stats.poisson.sf(c[small] - 1, expected[small]) <= 0.01 / n_pairs
        out[keep[a[flagged]]] = True
        out[keep[b[flagged]]] = True
        return out

    def detect(self) -> np.ndarray:
        """Ids of the suspect accounts.

        Raises:
            NotFittedError: ``fit`` was not called.
        """
        if not hasattr(self, "suspect_"):
            raise NotFittedError("CoordinatedAccountDetector is not fitted; call fit(...) first")
        return np.asarray(self.users_[self.suspect_])
