"""The baseline as arrays and a window's sufficient statistics (additive, constant memory).

``DriftBaseline.from_profile`` turns a ``DataProfile`` into what every window is compared with;
``WindowStats`` accumulates sums, quantile-bin counts, category counts and co-moments of a window, so a
window of any length costs constant memory and a sliding window is the sum of its steps. The tests
themselves are in ``_drift_tests``; ``drift.evaluate`` runs them.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlsecops.core.errors import InputError
from mlsecops.data._profile import DataProfile
from mlsecops.data._readers import Chunk

__all__ = ["MAX_EXAMPLES", "DriftBaseline", "WindowStats", "window_stats"]

MAX_EXAMPLES = 10
"""Unseen category values kept per column as evidence."""
ROWS_PER_KURTOSIS = 10.0
"""Rows needed per unit of a column's kurtosis before its mean and correlations are tested by their
normal approximation (3 for normal data: 30 rows; a pixel that is non-zero once in a hundred rows has
kurtosis ~100: 1,000 rows). Sparser columns keep their quantile-bin and missing-share tests."""
MAX_EXAMPLE_CHARS = 100
"""Characters of an unseen category value kept as evidence (a value may be as long as a CSV line)."""


@dataclass(frozen=True)
class _NumRef:
    name: str
    mean: float
    sd: float
    n: int
    count: int
    nulls: int
    edges: np.ndarray
    probs: np.ndarray
    bins_n: int
    kurtosis: float
    """Of the profile's sample (NaN when it has none): how far from normal the column's tails are."""

    def normal_ok(self, n: int) -> bool:
        """Whether a mean or correlation over ``n`` rows (and the baseline's) is near enough normal."""
        if not np.isfinite(self.kurtosis):
            return True
        return min(n, self.n) >= ROWS_PER_KURTOSIS * self.kurtosis


@dataclass(frozen=True)
class _CatRef:
    name: str
    keys: tuple[str, ...]
    index: dict[str, int]
    counts: np.ndarray
    """Baseline counts per key, then ``<other>``, ``<missing>``, ``<new>`` (always 0)."""


@dataclass(frozen=True)
class DriftBaseline:
    """A baseline profile turned into the arrays every window is compared with.

    Attributes:
        numeric: numeric columns (the label excluded).
        categorical: categorical columns, the label last if it is one.
        label: the label column, if the profile names one.
        features: the model's input columns in order (every column but the label), for online inputs.
        corr_columns: indices into ``numeric`` of the columns with a baseline correlation.
        corr: baseline correlation matrix of those columns.
        corr_n: rows behind ``corr``.
        corr_source: ``profile`` (exact, over every complete row), ``sample`` (the profile's row sample,
            for profiles without a matrix) or ``none``.
    """

    numeric: tuple[_NumRef, ...]
    categorical: tuple[_CatRef, ...]
    label: str | None
    features: tuple[str, ...]
    corr_columns: np.ndarray
    corr: np.ndarray
    corr_n: int
    corr_source: str

    @classmethod
    def from_profile(cls, profile: DataProfile) -> DriftBaseline:
        """Prepare a profile for drift tests.

        Raises:
            InputError: the profile has no column usable for drift tests.
        """
        numeric: list[_NumRef] = []
        categorical: list[_CatRef] = []
        for name, col in profile.columns.items():
            if col.type == "numeric":
                numeric.append(_numeric_ref(name, col.count, col.nulls, col, profile.sample.get(name, [])))
            else:
                categorical.append(_categorical_ref(name, col.count, col.nulls, col.categories))
        if not numeric and not categorical:
            raise InputError("the baseline profile has no columns to test for drift")
        categorical.sort(key=lambda c: c.name == profile.label)
        features = tuple(c for c in profile.columns if c != profile.label)
        idx, corr, corr_n, source = _baseline_correlation(profile, [c.name for c in numeric])
        return cls(
            numeric=tuple(numeric),
            categorical=tuple(categorical),
            label=profile.label,
            features=features,
            corr_columns=idx,
            corr=corr,
            corr_n=corr_n,
            corr_source=source,
        )

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column tested (numeric first)."""
        return tuple(c.name for c in self.numeric) + tuple(c.name for c in self.categorical)


def _numeric_ref(name: str, count: int, nulls: int, col: Any, sample: Sequence[float]) -> _NumRef:
    n = max(count - nulls, 0)
    q = np.asarray(col.quantiles, dtype=float)
    s = np.asarray(sample, dtype=float)
    s = s[np.isfinite(s)]
    edges = np.unique(q[1:-1]) if q.size >= 3 else np.empty(0)
    continuous = (
        q.size == 21 and edges.size == q.size - 2 and (s.size == 0 or float(np.isin(s, edges).mean()) < 0.01)
    )
    if continuous:
        probs = np.full(edges.size + 1, 1.0 / (edges.size + 1))
        bins_n = min(n, 20_000)  # the profile's quantiles come from a row sample of at most 20,000
    elif s.size >= 20 and edges.size:
        # Ties (an integer or coded column): the bins' masses are estimated from the profile's sample.
        probs = np.bincount(np.searchsorted(edges, s, side="left"), minlength=edges.size + 1) / s.size
        bins_n = int(s.size)
    else:
        edges, probs, bins_n = np.empty(0), np.ones(1), 0
    return _NumRef(
        name=name,
        mean=float(col.mean) if col.mean is not None else 0.0,
        sd=float(col.std) if col.std is not None else 0.0,
        n=n,
        count=count,
        nulls=nulls,
        edges=edges,
        probs=probs,
        bins_n=bins_n,
        kurtosis=_kurtosis(s),
    )


def _kurtosis(sample: np.ndarray) -> float:
    if sample.size < 20:
        return float("nan")
    d = sample - sample.mean()
    var = float(np.mean(d * d))
    return float(np.mean(d**4) / var**2) if var > 0 else float("nan")


def _categorical_ref(name: str, count: int, nulls: int, categories: dict[str, int]) -> _CatRef:
    keys = tuple(categories)
    counted = sum(categories.values())
    counts = np.array([*categories.values(), max(count - nulls - counted, 0), nulls, 0], dtype=float)
    return _CatRef(name=name, keys=keys, index={k: i for i, k in enumerate(keys)}, counts=counts)


def _baseline_correlation(
    profile: DataProfile, numeric: list[str]
) -> tuple[np.ndarray, np.ndarray, int, str]:
    pos = {c: i for i, c in enumerate(numeric)}
    if profile.correlation is not None:
        cols = [c for c in profile.correlation.columns if c in pos]
        if len(cols) >= 2:
            sel = [profile.correlation.columns.index(c) for c in cols]
            r = np.asarray(profile.correlation.matrix, dtype=float)[np.ix_(sel, sel)]
            return np.array([pos[c] for c in cols]), r, profile.correlation.rows, "profile"
    # Older profiles: the row sample is aligned across columns when no numeric column had missing values.
    aligned = all(profile.columns[c].nulls == 0 for c in numeric)
    lengths = {len(profile.sample.get(c, [])) for c in numeric}
    if aligned and len(numeric) >= 2 and len(lengths) == 1 and min(lengths) >= 100:
        x = np.column_stack([np.asarray(profile.sample[c], dtype=float) for c in numeric])
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.nan_to_num(np.corrcoef(x, rowvar=False))
        return np.arange(len(numeric)), r, x.shape[0], "sample"
    return np.empty(0, dtype=int), np.empty((0, 0)), 0, "none"


class WindowStats:
    """Sufficient statistics of one window (or one step of a sliding window); additive with ``+=``.

    Args:
        baseline: the prepared baseline.
    """

    def __init__(self, baseline: DriftBaseline) -> None:
        self.baseline = baseline
        k_num, k = len(baseline.numeric), baseline.corr_columns.size
        self.rows = 0
        self.num_count = np.zeros(k_num)
        self.num_nulls = np.zeros(k_num)
        self.num_n = np.zeros(k_num)
        self.num_sum = np.zeros(k_num)  # of (x - baseline mean): no cancellation
        self.num_sumsq = np.zeros(k_num)
        self.num_off = np.zeros(k_num)  # values off a constant baseline column (its only test)
        self.num_bins = [np.zeros(r.probs.size) for r in baseline.numeric]
        self.cat_counts = [np.zeros(c.counts.size) for c in baseline.categorical]
        self.cat_seen = [False] * len(baseline.categorical)
        self.cat_new: list[dict[str, int]] = [{} for _ in baseline.categorical]
        self.corr_n = 0.0
        self.z1 = np.zeros(k)
        self.z2 = np.zeros((k, k))
        self.z22 = np.zeros((k, k))
        self.z31 = np.zeros((k, k))
        self.z4 = np.zeros(k)

    def __iadd__(self, other: WindowStats) -> WindowStats:
        for name in ("rows", "corr_n"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in (
            "num_count",
            "num_nulls",
            "num_n",
            "num_sum",
            "num_sumsq",
            "num_off",
            "z1",
            "z2",
            "z22",
            "z31",
            "z4",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.num_bins = [a + b for a, b in zip(self.num_bins, other.num_bins, strict=True)]
        self.cat_counts = [a + b for a, b in zip(self.cat_counts, other.cat_counts, strict=True)]
        self.cat_seen = [a or b for a, b in zip(self.cat_seen, other.cat_seen, strict=True)]
        for mine, theirs in zip(self.cat_new, other.cat_new, strict=True):
            for k, v in theirs.items():
                if k in mine or len(mine) < MAX_EXAMPLES:
                    mine[k] = mine.get(k, 0) + v
        return self

    def update(self, chunk: Chunk, *, where: str = "window") -> None:
        """Add a chunk of named columns (a batch file's rows).

        Raises:
            InputError: a baseline column is missing, or a numeric column holds text.
        """
        if not chunk:
            return
        missing = [c for c in self.baseline.columns if c not in chunk and c != self.baseline.label]
        if missing:
            raise InputError(
                f"{where}: missing column(s) {', '.join(map(repr, missing[:5]))}"
                f"{' and more' if len(missing) > 5 else ''} that the baseline has"
            )
        numeric: list[np.ndarray] = []
        for ref in self.baseline.numeric:
            arr = chunk[ref.name]
            if arr.dtype == object:
                bad = next((v for v in arr if v is not None), None)
                raise InputError(
                    f"{where}: column {ref.name!r} should be numeric (as in the baseline) but holds text"
                    f" such as {str(bad)[:40]!r}"
                )
            numeric.append(np.asarray(arr, dtype=np.float64))
        cats = [chunk.get(c.name) for c in self.baseline.categorical]
        n = len(next(iter(chunk.values())))
        self._add(numeric, cats, n)

    def update_matrix(self, x: np.ndarray) -> None:
        """Add rows of a model's input (``(n, features)``, in the baseline's feature order)."""
        by_name = {name: x[:, j] for j, name in enumerate(self.baseline.features)}
        numeric = [np.asarray(by_name[r.name], dtype=np.float64) for r in self.baseline.numeric]
        cats: list[np.ndarray | None] = [by_name.get(c.name) for c in self.baseline.categorical]
        self._add(numeric, cats, x.shape[0])

    def _add(self, numeric: list[np.ndarray], cats: Sequence[np.ndarray | None], n: int) -> None:
        # One BLAS thread: the products here are small, and threads contending on a busy host cost 50x.
        with _blas().limit(limits=1, user_api="blas"):
            self._add_rows(numeric, cats, n)

    def _add_rows(self, numeric: list[np.ndarray], cats: Sequence[np.ndarray | None], n: int) -> None:
        self.rows += n
        for i, (ref, arr) in enumerate(zip(self.baseline.numeric, numeric, strict=True)):
            finite = np.isfinite(arr)
            vals = arr[finite] - ref.mean
            self.num_count[i] += arr.size
            self.num_nulls[i] += float(np.isnan(arr).sum())
            self.num_n[i] += vals.size
            self.num_sum[i] += float(vals.sum())
            self.num_sumsq[i] += float(vals @ vals)
            if ref.sd == 0.0:  # the profile's mean of a constant may differ from it by rounding
                self.num_off[i] += float(np.count_nonzero(np.abs(vals) > 1e-9 * max(1.0, abs(ref.mean))))
            if ref.edges.size:
                present = arr[~np.isnan(arr)]
                self.num_bins[i] += np.bincount(
                    np.searchsorted(ref.edges, present, side="left"), minlength=ref.probs.size
                )
        for i, (ref_c, values) in enumerate(zip(self.baseline.categorical, cats, strict=True)):
            if values is not None:
                self.cat_seen[i] = True
                self._add_categories(i, ref_c, values)
        self._add_correlation(numeric)

    def _add_categories(self, i: int, ref: _CatRef, values: np.ndarray) -> None:
        counts = self.cat_counts[i]
        k = len(ref.keys)
        for value, c in Counter(_as_text(values).tolist()).items():
            if value is None:
                counts[-2] += c
                continue
            v = value if isinstance(value, str) else str(value)
            j = ref.index.get(v)
            if j is not None:
                counts[j] += c
            elif ref.counts[k] > 0:  # the baseline's own category list was truncated: "other"
                counts[k] += c
            else:
                counts[-1] += c
                new, key = self.cat_new[i], v[:MAX_EXAMPLE_CHARS]
                if key in new or len(new) < MAX_EXAMPLES:
                    new[key] = new.get(key, 0) + c

    def _add_correlation(self, numeric: list[np.ndarray]) -> None:
        idx = self.baseline.corr_columns
        if idx.size < 2:
            return
        refs = [self.baseline.numeric[j] for j in idx]
        z = np.column_stack([numeric[j] for j in idx])
        z = z[np.isfinite(z).all(axis=1)]
        if not z.shape[0]:
            return
        mean = np.array([r.mean for r in refs])
        sd = np.array([r.sd if r.sd > 0 else 1.0 for r in refs])
        z = (z - mean) / sd
        z2 = z * z
        self.corr_n += z.shape[0]
        self.z1 += z.sum(axis=0)
        self.z2 += z.T @ z
        self.z22 += z2.T @ z2
        self.z31 += (z2 * z).T @ z
        self.z4 += (z2 * z2).sum(axis=0)

    def state(self) -> dict[str, Any]:
        """JSON-ready copy of the statistics (for the detector's saved state)."""
        return {
            "rows": self.rows,
            "corr_n": self.corr_n,
            **{
                k: getattr(self, k).tolist()
                for k in (
                    "num_count",
                    "num_nulls",
                    "num_n",
                    "num_sum",
                    "num_sumsq",
                    "num_off",
                    "num_off",
                    "num_off",
                    "z1",
                    "z2",
                    "z22",
                    "z31",
                    "z4",
                )
            },
            "num_bins": [b.tolist() for b in self.num_bins],
            "cat_counts": [c.tolist() for c in self.cat_counts],
            "cat_seen": list(self.cat_seen),
            "cat_new": [dict(d) for d in self.cat_new],
        }

    @classmethod
    def from_state(cls, baseline: DriftBaseline, state: dict[str, Any]) -> WindowStats:
        """Rebuild statistics that ``state`` returned (for the same baseline).

        Raises:
            InputError: the state does not fit this baseline.
        """
        out = cls(baseline)
        try:
            out.rows = int(state["rows"])
            out.corr_n = float(state["corr_n"])
            for k in (
                "num_count",
                "num_nulls",
                "num_n",
                "num_sum",
                "num_sumsq",
                "num_off",
                "num_off",
                "z1",
                "z2",
                "z22",
                "z31",
                "z4",
            ):
                arr = np.asarray(state[k], dtype=float)
                if arr.shape != getattr(out, k).shape:
                    raise ValueError(k)
                setattr(out, k, arr)
            out.num_bins = [np.asarray(b, dtype=float) for b in state["num_bins"]]
            out.cat_counts = [np.asarray(c, dtype=float) for c in state["cat_counts"]]
            out.cat_seen = [bool(v) for v in state["cat_seen"]]
            out.cat_new = [{str(k): int(v) for k, v in d.items()} for d in state["cat_new"]]
            shapes_ok = [b.shape for b in out.num_bins] == [r.probs.shape for r in baseline.numeric] and [
                c.shape for c in out.cat_counts
            ] == [c.counts.shape for c in baseline.categorical]
            if not shapes_ok or len(out.cat_seen) != len(baseline.categorical):
                raise ValueError("shapes")
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(f"drift state does not match the baseline ({err})") from None
        return out


@functools.cache
def _blas() -> Any:
    """The process's BLAS thread-pool controller (finding the libraries costs ~20 ms: once)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _as_text(values: np.ndarray) -> np.ndarray:
    """Category values as text (None for missing); numbers as the profile writes them (3.0 -> "3")."""
    if values.dtype == object:
        return values
    arr = np.asarray(values, dtype=np.float64)
    out = np.empty(arr.shape[0], dtype=object)
    finite = np.isfinite(arr)
    ints = finite & (arr == np.round(arr))
    out[ints] = arr[ints].astype(np.int64).astype(str)
    rest = finite & ~ints
    out[rest] = arr[rest].astype(str)
    out[~finite] = None
    return out


def window_stats(baseline: DriftBaseline, chunks: Iterable[Chunk], *, where: str) -> WindowStats:
    """Statistics of a window read chunk by chunk (constant memory)."""
    stats = WindowStats(baseline)
    for chunk in chunks:
        stats.update(chunk, where=where)
    return stats
