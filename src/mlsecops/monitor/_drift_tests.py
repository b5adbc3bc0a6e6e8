"""The statistics behind drift monitoring: one test per column type, a joint test, and the family control.

Every test compares a window with the baseline and accounts for the uncertainty of both sides, so its
p-value is uniform under "no drift" at any window size (the thresholds are calibrated to the window):

- ``mean_test``: z-test of a numeric column's mean against the baseline's exact mean and standard
  deviation (Welch: ``sqrt(s^2/n + sd^2/N)``). The most powerful test for the commonest drift, a
  location shift.
- ``binned_chi2``: Pearson chi-square of the window's counts in the baseline's 20 quantile bins, divided
  by ``1 + n/N`` because the bin edges are themselves estimates from ``N`` reference values (the
  two-sample correction). Catches changes of scale and shape (variance x1.2 moves ~3 % of the mass
  across the outer edges).
- ``categorical_chi2``: two-sample chi-square of category counts (baseline counts vs window counts),
  categories that expect fewer than ``MIN_EXPECTED`` window rows pooled, unseen values in their own
  cell, missing values a category of their own. Reports the total-variation distance as the effect.
- ``share_test``: Fisher's exact test of a share: missing values, or values off a constant column.
- ``correlation_test``: the joint test. For every pair of numeric columns, the window's Pearson
  correlation minus the baseline's, divided by its asymptotic standard error estimated from the window's
  fourth moments (valid for skewed and heavy-tailed data, where Fisher's ``1/(n-3)`` is not); the pairs
  are combined by Bonferroni into one p-value. Catches joint changes whose marginals are unchanged.
- ``bh_adjust``: Benjamini-Hochberg adjusted p-values over the family of all the window's tests.

Inputs are plain numbers and arrays, so the batch command and the online detector share every line.
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats

__all__ = [
    "MIN_EXPECTED",
    "bh_adjust",
    "binned_chi2",
    "categorical_chi2",
    "correlation_test",
    "mean_test",
    "share_test",
]

MIN_EXPECTED = 5.0
"""Smallest expected count of a chi-square cell; rarer cells are pooled (the chi-square approximation
needs it: with fewer, single rare values decide the p-value)."""


def mean_test(
    mean: float, n: int, ref_mean: float, ref_sd: float, ref_n: int, *, sd: float | None = None
) -> tuple[float, float]:
    """Two-sided z-test of a window mean against the baseline (Welch: each side with its own sd).

    Args:
        mean: the window's mean over ``n`` finite values.
        n: finite values in the window.
        ref_mean: the baseline's mean.
        ref_sd: the baseline's standard deviation.
        ref_n: finite values behind the baseline's moments.
        sd: the window's standard deviation (default: the baseline's).

    Returns:
        ``(z, p_value)``; a constant baseline column gives p 0 when the mean moved at all, else 1.
    """
    if n == 0:
        return 0.0, 1.0
    if ref_sd <= 0.0:
        moved = not np.isclose(mean, ref_mean, rtol=1e-9, atol=1e-12)
        return (np.inf if moved else 0.0), (0.0 if moved else 1.0)
    own = ref_sd if sd is None else sd
    se = np.sqrt(own * own / n + ref_sd * ref_sd / max(ref_n, 1))
    z = (mean - ref_mean) / se
    return float(z), float(2.0 * special.ndtr(-abs(z)))


def binned_chi2(counts: np.ndarray, expected_p: np.ndarray, ref_n: int) -> tuple[float, int, float]:
    """Chi-square of window counts against baseline bin probabilities estimated from ``ref_n`` values.

    Bins whose expected count is under ``MIN_EXPECTED`` are merged into their neighbour first.

    Returns:
        ``(statistic, degrees_of_freedom, p_value)`` (the statistic already divided by ``1 + n/N``).
    """
    n = float(counts.sum())
    if n == 0:
        return 0.0, 0, 1.0
    obs, exp = _merge_small(counts.astype(float), expected_p * n)
    if obs.size < 2:
        return 0.0, 0, 1.0
    raw = float(((obs - exp) ** 2 / exp).sum())
    stat = raw / (1.0 + n / max(ref_n, 1))
    df = obs.size - 1
    return stat, df, float(special.chdtrc(df, stat))


def _merge_small(obs: np.ndarray, exp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge adjacent bins left to right until each expects at least ``MIN_EXPECTED``."""
    out_o: list[float] = []
    out_e: list[float] = []
    acc_o = acc_e = 0.0
    for o, e in zip(obs.tolist(), exp.tolist(), strict=True):
        acc_o += o
        acc_e += e
        if acc_e >= MIN_EXPECTED:
            out_o.append(acc_o)
            out_e.append(acc_e)
            acc_o = acc_e = 0.0
    if acc_e > 0 or acc_o > 0:
        if out_e:
            out_o[-1] += acc_o
            out_e[-1] += acc_e
        else:
            out_o.append(acc_o)
            out_e.append(acc_e)
    return np.asarray(out_o), np.asarray(out_e)


def categorical_chi2(ref_counts: np.ndarray, counts: np.ndarray) -> tuple[float, int, float, float]:
    """Two-sample chi-square of category counts, rare categories pooled.

    Args:
        ref_counts: baseline counts per category (the last cells may be "other", "missing", "new").
        counts: window counts for the same categories.

    Returns:
        ``(statistic, degrees_of_freedom, p_value, total_variation)``.
    """
    n, big_n = float(counts.sum()), float(ref_counts.sum())
    if n == 0 or big_n == 0:
        return 0.0, 0, 1.0, 0.0
    tv = 0.5 * float(np.abs(counts / n - ref_counts / big_n).sum())
    total = ref_counts + counts
    # Expected window count of each cell under "same distribution" (pooled proportions).
    expected = total * (n / (n + big_n))
    big = expected >= MIN_EXPECTED
    ref = ref_counts[big].astype(float)
    cur = counts[big].astype(float)
    pool_r, pool_c = float(ref_counts[~big].sum()), float(counts[~big].sum())
    if pool_r + pool_c > 0:
        ref = np.append(ref, pool_r)
        cur = np.append(cur, pool_c)
        if (pool_r + pool_c) * (n / (n + big_n)) < MIN_EXPECTED and ref.size > 1:
            # the pooled cell is still too small: merge it into the smallest regular cell
            j = int(np.argmin(ref[:-1] + cur[:-1]))
            ref[j] += ref[-1]
            cur[j] += cur[-1]
            ref, cur = ref[:-1], cur[:-1]
    if ref.size < 2:
        return 0.0, 0, 1.0, tv
    table = np.vstack([ref, cur])
    col = table.sum(axis=0)
    row = table.sum(axis=1, keepdims=True)
    exp = row * col / table.sum()
    stat = float(((table - exp) ** 2 / exp).sum())
    df = ref.size - 1
    return stat, df, float(special.chdtrc(df, stat)), tv


def share_test(ref_missing: int, ref_n: int, missing: int, n: int) -> float:
    """Fisher's exact p-value that a share (of missing values, of values off a constant) is the baseline's.

    A constant baseline column is tested this way, not by its mean: a reference of ``N`` equal values
    says a different value has a rate of at most a few over ``N``, not zero.
    """
    if n == 0 or ref_n == 0 or (ref_missing == 0 and missing == 0):
        return 1.0
    table = [[ref_missing, ref_n - ref_missing], [missing, n - missing]]
    return float(stats.fisher_exact(table).pvalue)


def correlation_test(
    r_window: np.ndarray,
    r_ref: np.ndarray,
    variance: np.ndarray,
    n: int,
    ref_n: int,
    valid: np.ndarray,
) -> tuple[float, np.ndarray]:
    """Pairwise test of correlation changes, combined by Bonferroni.

    Args:
        r_window: the window's correlation matrix (``k x k``).
        r_ref: the baseline's correlation matrix.
        variance: asymptotic variance of ``sqrt(n) * r`` per pair (``(1 - rho^2)^2`` for normal data).
        n: complete rows in the window.
        ref_n: complete rows behind the baseline matrix.
        valid: pairs that can be tested (both columns non-constant on both sides).

    Returns:
        ``(p_value, z)``: the combined p-value and the ``k x k`` matrix of pair z-scores (0 off ``valid``).
    """
    iu = np.triu_indices(r_ref.shape[0], k=1)
    ok = valid[iu]
    pairs = int(ok.sum())
    z = np.zeros_like(r_ref)
    if pairs == 0 or n < 4:
        return 1.0, z
    se = np.sqrt(np.maximum(variance[iu], 1e-12) * (1.0 / n + 1.0 / max(ref_n, 1)))
    zs = np.where(ok, (r_window[iu] - r_ref[iu]) / se, 0.0)
    z[iu] = zs
    z = z + z.T
    p_min = float(2.0 * special.ndtr(-np.abs(zs).max()))
    return min(1.0, p_min * pairs), z


def bh_adjust(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (a test is rejected at FDR ``q`` when its value <= ``q``).

    The smallest adjusted value is Simes' p-value of the global null: with no drift anywhere, the chance
    that any test is rejected at ``q`` is at most ``q`` (tests independent or positively dependent).
    """
    m = p.size
    if m == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    adj = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out
