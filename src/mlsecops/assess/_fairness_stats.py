"""Group fairness statistics from confusion counts, with a vectorised bootstrap.

Every rate fairlearn's metrics compute for a binary classifier (selection rate, true and false positive
rate, precision, accuracy) is a function of four counts per group: TP, FP, FN, TN. So the audit keeps
one count per (group, label, prediction) cell and computes every rate and every between-group
aggregate from arrays of shape ``(replicates, groups, 4)`` at once: the point estimate is one
replicate, the bootstrap is ``B`` of them.

Definitions follow fairlearn 0.15 on the same predictions (``MetricFrame`` by group,
``difference(method="between_groups")``, ``ratio(method="between_groups")``):

- a rate whose denominator is zero is 0 (sklearn's ``confusion_matrix(normalize="true")`` and
  ``precision_score(zero_division="warn")`` give 0 there);
- differences are ``max - min`` over the groups, ratios ``min / max`` (NaN when the max is 0);
- ``equalized_odds_difference`` is the larger of the TPR and FPR differences, the ratio the smaller
  of the two ratios (fairlearn's ``agg="worst_case"``).

The bootstrap draws the same rows fairlearn's ``MetricFrame(n_boot=B, random_state=seed)`` draws:
``B`` per-replicate seeds from ``numpy.random.default_rng(seed).integers(0, 2**32 - 1)``, each seeding a
``RandomState`` whose ``choice(n, n)`` picks the rows (what ``DataFrame.sample(frac=1, replace=True)``
does). A replicate then costs one gather and one ``bincount`` of the rows' cell ids instead of a pandas
group-by and one sklearn call per group and metric; a group absent from a replicate is left out of
that replicate's aggregates, as fairlearn's group-by leaves it out. Quantiles are ``numpy.quantile``
(linear interpolation) as in fairlearn, so intervals agree with MetricFrame's to rounding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "AGGREGATES",
    "CALIBRATION_BINS",
    "RATES",
    "aggregate",
    "bootstrap_seeds",
    "calibration_error",
    "cell_ids",
    "group_rates",
    "replicate_counts",
]

RATES = ("selection_rate", "true_positive_rate", "false_positive_rate", "precision", "accuracy")
"""Per-group rates, in the order ``group_rates`` returns them."""
AGGREGATES = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "equal_opportunity_difference",
    "equal_opportunity_ratio",
    "predictive_parity_difference",
    "predictive_parity_ratio",
    "accuracy_difference",
)
"""Between-group aggregates ``aggregate`` computes (plus ``accuracy``, the overall accuracy)."""
CALIBRATION_BINS = 10
"""Equal-width probability bins of the expected calibration error."""
_TP, _FP, _FN, _TN = 0, 1, 2, 3


def cell_ids(groups: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """One cell id per row: ``group * 4 + {TP, FP, FN, TN}`` (labels and predictions are 0/1)."""
    kind = np.where(y_pred == 1, np.where(y_true == 1, _TP, _FP), np.where(y_true == 1, _FN, _TN))
    return groups.astype(np.int64) * 4 + kind


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den``, 0 where ``den`` is 0 (fairlearn's and sklearn's convention)."""
    out = np.zeros(np.broadcast_shapes(num.shape, den.shape))
    np.divide(num, den, out=out, where=den > 0)
    return out


def group_rates(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Rates per replicate and group from counts of shape ``(..., groups, 4)``.

    Returns:
        ``size`` and each of ``RATES``, arrays of shape ``counts.shape[:-1]``; groups of size 0 get NaN.
    """
    c = counts.astype(np.float64)
    tp, fp, fn, tn = c[..., _TP], c[..., _FP], c[..., _FN], c[..., _TN]
    n = tp + fp + fn + tn
    rates = {
        "size": n,
        "selection_rate": _div(tp + fp, n),
        "true_positive_rate": _div(tp, tp + fn),
        "false_positive_rate": _div(fp, fp + tn),
        "precision": _div(tp, tp + fp),
        "accuracy": _div(tp + tn, n),
    }
    absent = n == 0
    for name in RATES:
        rates[name] = np.where(absent, np.nan, rates[name])
    return rates


def _spread(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(max - min, min / max) over the last axis, ignoring NaN (absent groups)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        hi = np.nanmax(np.where(np.isnan(values), -np.inf, values), axis=-1)
        lo = np.nanmin(np.where(np.isnan(values), np.inf, values), axis=-1)
        diff = hi - lo
        ratio = np.where(hi > 0, lo / np.where(hi > 0, hi, 1.0), np.nan)
    return diff, ratio


def aggregate(counts: np.ndarray, judged: np.ndarray) -> dict[str, np.ndarray]:
    """Between-group aggregates per replicate over the ``judged`` groups, and overall accuracy.

    Args:
        counts: ``(replicates, groups, 4)`` confusion counts.
        judged: boolean mask of the groups that enter the aggregates (large enough to judge).

    Returns:
        Each of ``AGGREGATES`` and ``accuracy``: arrays of shape ``(replicates,)``.
    """
    rates = group_rates(counts[:, judged, :])
    sr_d, sr_r = _spread(rates["selection_rate"])
    tpr_d, tpr_r = _spread(rates["true_positive_rate"])
    fpr_d, fpr_r = _spread(rates["false_positive_rate"])
    pp_d, pp_r = _spread(rates["precision"])
    acc_d, _ = _spread(rates["accuracy"])
    total = counts.sum(axis=1).astype(np.float64)
    return {
        "demographic_parity_difference": sr_d,
        "demographic_parity_ratio": sr_r,
        "equalized_odds_difference": np.maximum(tpr_d, fpr_d),
        "equalized_odds_ratio": np.minimum(tpr_r, fpr_r),
        "equal_opportunity_difference": tpr_d,
        "equal_opportunity_ratio": tpr_r,
        "predictive_parity_difference": pp_d,
        "predictive_parity_ratio": pp_r,
        "accuracy_difference": acc_d,
        "accuracy": _div(total[:, _TP] + total[:, _TN], total.sum(axis=1)),
    }


def bootstrap_seeds(n_boot: int, seed: int) -> np.ndarray:
    """The per-replicate seeds fairlearn's ``generate_bootstrap_samples`` draws for an integer seed."""
    gen = np.random.default_rng(seed=int(seed))
    return gen.integers(low=0, high=np.iinfo(np.uint32).max, size=n_boot, dtype=np.uint32)


def replicate_counts(
    cells: np.ndarray,
    n_cells: int,
    *,
    n_boot: int,
    seed: int,
    extra: Callable[[np.ndarray], np.ndarray] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Cell counts of ``n_boot`` bootstrap resamples of the rows.

    Args:
        cells: cell id per row (``cell_ids``).
        n_cells: number of cells (groups x 4).
        n_boot: replicates.
        seed: the seed fairlearn's ``random_state`` would get.
        extra: optional per-replicate statistic of the drawn row indices (calibration), stacked.
        progress: called as ``(done, total)`` every few replicates.

    Returns:
        ``(counts, extras)``: counts of shape ``(n_boot, n_cells)``; extras stacked or ``None``.
    """
    n = len(cells)
    out = np.empty((n_boot, n_cells), dtype=np.int64)
    extras: list[np.ndarray] = []
    for b, s in enumerate(bootstrap_seeds(n_boot, seed)):
        idx = np.random.RandomState(int(s)).choice(n, size=n, replace=True)
        out[b] = np.bincount(cells[idx], minlength=n_cells)
        if extra is not None:
            extras.append(extra(idx))
        if progress is not None and (b + 1) % 50 == 0:
            progress(b + 1, n_boot)
    return out, (np.stack(extras) if extras else None)


def calibration_error(groups: np.ndarray, n_groups: int, y_true: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Expected calibration error per group (``CALIBRATION_BINS`` equal-width bins of P(positive)).

    ECE = sum over bins of (rows in bin / rows in group) * |mean predicted - observed positive rate|.
    Groups without rows get NaN.
    """
    bins = np.minimum((proba * CALIBRATION_BINS).astype(np.int64), CALIBRATION_BINS - 1)
    ids = groups.astype(np.int64) * CALIBRATION_BINS + bins
    size = n_groups * CALIBRATION_BINS
    count = np.bincount(ids, minlength=size).reshape(n_groups, CALIBRATION_BINS).astype(np.float64)
    p_sum = np.bincount(ids, weights=proba, minlength=size).reshape(n_groups, CALIBRATION_BINS)
    y_sum = np.bincount(ids, weights=y_true.astype(np.float64), minlength=size).reshape(
        n_groups, CALIBRATION_BINS
    )
    n = count.sum(axis=1)
    gap = np.abs(p_sum - y_sum)  # = count * |mean p - mean y| per bin
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, gap.sum(axis=1) / np.where(n > 0, n, 1.0), np.nan)


@dataclass(frozen=True)
class Interval:
    """A percentile bootstrap interval."""

    low: float
    high: float


def percentile_interval(samples: np.ndarray, level: float) -> Interval:
    """The central ``level`` interval of ``samples`` (``numpy.quantile``, linear), NaN-free samples."""
    q = [(1 - level) / 2, 1 - (1 - level) / 2]
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return Interval(float("nan"), float("nan"))
    lo, hi = np.quantile(finite, q)
    return Interval(float(lo), float(hi))


def group_names(columns: Sequence[np.ndarray]) -> tuple[np.ndarray, list[str]]:
    """Integer group codes per row and the group names (values joined by ``", "`` across columns)."""
    keys = (
        [", ".join(parts) for parts in zip(*columns, strict=True)] if len(columns) > 1 else list(columns[0])
    )
    names, codes = np.unique(np.asarray(keys, dtype=object).astype(str), return_inverse=True)
    return codes.astype(np.int64), [str(v) for v in names]
