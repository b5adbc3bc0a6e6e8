"""Learning a data profile (the trusted baseline) in one streaming pass with constant memory.

A ``DataProfile`` records the schema (columns, types, nullability), per-column ranges, moments and
quantiles, category frequencies, missingness, the label distribution and an estimate of duplicate rows.
It is built chunk by chunk (``ProfileBuilder.update``), so a file larger than memory is profiled in one
pass: numeric moments are exact, quantiles come from a uniform row sample of fixed size (priority
sampling), categories are counted exactly up to a cap, and duplicates are estimated from a hash-sampled
set of row digests whose size is bounded. Given a ``reference`` profile the builder also counts values
outside the reference range and categories the reference never saw, which ``validate`` reports.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mlsecops.core.errors import InputError
from mlsecops.core.inputs import load_json
from mlsecops.data._bias import BiasBuilder, BiasProfile
from mlsecops.data._readers import Chunk

__all__ = [
    "PROFILE_SCHEMA",
    "ColumnProfile",
    "CorrelationProfile",
    "DataProfile",
    "ProfileBuilder",
    "profile_chunks",
]

PROFILE_SCHEMA = "mlsecops.data-profile/1"
_QUANTILES = tuple(round(q, 2) for q in np.linspace(0.0, 1.0, 21))
_MAX_CATEGORIES = 2_000
_SAMPLE_ROWS = 20_000
MAX_PROFILE_BYTES = 256 << 20
"""Largest baseline profile file read (256 MiB: 2,000 categories for each of a thousand columns)."""
_HASH_CAP = 500_000
"""Most distinct row digests kept for the duplicate estimate (4 MB of digests plus 4 MB of counts)."""
_HASH_BITS = 64
"""Digest width: halving the sampling limit this many times leaves only digest 0, a single entry."""
MAX_CORRELATION_COLUMNS = 256
"""Most numeric columns whose correlation matrix the profile keeps (256: 33k pairs, ~1 MB of JSON)."""


class ColumnProfile(BaseModel):
    """What the baseline knows about one column."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    """Column name."""
    type: str
    """``numeric`` or ``categorical``."""
    count: int
    """Rows seen."""
    nulls: int
    """Missing values (empty cells, NaN)."""
    min: float | None = None
    """Smallest finite value (numeric)."""
    max: float | None = None
    """Largest finite value (numeric)."""
    mean: float | None = None
    """Mean of finite values (numeric)."""
    std: float | None = None
    """Standard deviation of finite values (numeric)."""
    quantiles: list[float] = Field(default_factory=list)
    """Values at 0, 5, ..., 100 % (numeric; from the row sample)."""
    categories: dict[str, int] = Field(default_factory=dict)
    """Value -> count (categorical, up to a cap)."""
    categories_truncated: bool = False
    """True when the column had more distinct values than the cap."""
    out_of_range: int = 0
    """Values outside the reference range (only when built against a reference)."""
    unseen: dict[str, int] = Field(default_factory=dict)
    """Categories the reference never saw, with counts (only against a reference; capped)."""

    @property
    def null_rate(self) -> float:
        """Share of missing values."""
        return self.nulls / self.count if self.count else 0.0


class CorrelationProfile(BaseModel):
    """Pearson correlations of the numeric columns over every complete row (exact, one pass)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    columns: list[str]
    """Numeric feature columns (the label excluded), in file order, at most ``MAX_CORRELATION_COLUMNS``."""
    rows: int
    """Rows where all of them were finite (the rows the matrix is computed over)."""
    matrix: list[list[float]]
    """Correlation matrix; 0 where a column is constant."""


class DataProfile(BaseModel):
    """A data set's profile; saved as the baseline JSON file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_id: str = PROFILE_SCHEMA
    """Profile file format."""
    rows: int
    """Rows in the data."""
    columns: dict[str, ColumnProfile]
    """Per-column profile, in file order."""
    label: str | None = None
    """Label column name, if one was named."""
    duplicate_rows: float = 0.0
    """Estimated number of rows that repeat an earlier row exactly."""
    sample: dict[str, list[float]] = Field(default_factory=dict)
    """Numeric columns: a uniform sample (at most 2,000 values) for distribution-shift tests."""
    correlation: CorrelationProfile | None = None
    """Correlations of the numeric columns (for joint-drift tests); absent in older profiles."""
    bias: BiasProfile | None = None
    """Groups, label rates, missingness and proxies by sensitive column (profiled with ``sensitive``)."""

    @property
    def fingerprint(self) -> str:
        """SHA-256 over column names and types: equal for files with the same schema."""
        text = json.dumps([[c.name, c.type] for c in self.columns.values()])
        return hashlib.sha256(text.encode()).hexdigest()

    def save(self, path: Path) -> None:
        """Write the profile as JSON (mode 0644)."""
        path.write_text(self.model_dump_json(indent=1))

    @classmethod
    def load(cls, path: Path) -> DataProfile:
        """Read a profile written by ``save``.

        Raises:
            InputError: the file is missing or not a profile.
        """
        # The bounded JSON reader: a regular file of at most MAX_PROFILE_BYTES, nesting limited.
        raw = load_json(path, what="baseline profile", max_bytes=MAX_PROFILE_BYTES)
        if not isinstance(raw, dict) or raw.get("schema_id") != PROFILE_SCHEMA:
            raise InputError(f"{path}: not a baseline profile (expected schema_id {PROFILE_SCHEMA!r})")
        try:
            return cls.model_validate(raw)
        except ValueError as err:
            raise InputError(f"{path}: malformed baseline profile: {str(err).splitlines()[0]}") from err


class _NumAcc:
    def __init__(self) -> None:
        self.count = 0
        self.nulls = 0
        self.n = 0
        self.sum = 0.0
        self.sumsq = 0.0
        self.min = np.inf
        self.max = -np.inf
        self.out_of_range = 0


class _CatAcc:
    def __init__(self) -> None:
        self.count = 0
        self.nulls = 0
        self.counts: dict[str, int] = {}
        self.truncated = False
        self.unseen: dict[str, int] = {}


class ProfileBuilder:
    """Accumulates a profile chunk by chunk in constant memory.

    Args:
        label: name of the label column, if any.
        reference: a baseline to count out-of-range values and unseen categories against.
        seed: seed of the row sample.
        sensitive: sensitive columns whose bias statistics to gather (``mlsecops.data._bias``).
    """

    def __init__(
        self,
        *,
        label: str | None = None,
        reference: DataProfile | None = None,
        seed: int = 0,
        sensitive: list[str] | None = None,
    ) -> None:
        self._bias = BiasBuilder(sensitive, label=label, seed=seed) if sensitive else None
        self.label = label
        self.reference = reference
        self._rng = np.random.default_rng(seed)
        self._cols: dict[str, _NumAcc | _CatAcc] = {}
        self._rows = 0
        self._keys = np.empty(0)
        self._sample: dict[str, np.ndarray] = {}
        self._hashes = np.empty(0, dtype=np.uint64)
        self._hash_counts = np.empty(0, dtype=np.int64)
        self._hash_limit = np.uint64(2**64 - 1)
        self._hashed_rows = 0
        self._corr_cols: list[str] = []
        self._corr_n = 0
        self._corr_mean = np.empty(0)
        self._corr_m2 = np.empty((0, 0))

    def update(self, chunk: Chunk) -> None:
        """Add one chunk of rows.

        Raises:
            InputError: the chunk's columns differ from the first chunk's.
        """
        n = len(next(iter(chunk.values()))) if chunk else 0
        if not self._cols:
            for name, arr in chunk.items():
                categorical = arr.dtype == object or name == self.label
                self._cols[name] = _CatAcc() if categorical else _NumAcc()
        elif list(chunk) != list(self._cols):
            raise InputError("columns changed between chunks of the same file")
        for name, arr in chunk.items():
            acc = self._cols[name]
            if isinstance(acc, _NumAcc) and arr.dtype == object:
                raise InputError(
                    f"column {name!r} mixes numbers and text (wrong dtype after ~{self._rows} rows)"
                )
            if isinstance(acc, _NumAcc):
                self._update_num(name, acc, arr)
            else:
                self._update_cat(name, acc, arr if arr.dtype == object else _num_to_text(arr))
        self._update_sample(chunk, n)
        self._update_hashes(chunk, n)
        self._update_correlation(chunk)
        if self._bias is not None:
            self._bias.update(chunk)
        self._rows += n

    def _update_num(self, name: str, acc: _NumAcc, arr: np.ndarray) -> None:
        finite = arr[np.isfinite(arr)]
        acc.count += arr.shape[0]
        acc.nulls += int(np.isnan(arr).sum())
        if finite.size:
            acc.n += finite.size
            acc.sum += float(finite.sum())
            acc.sumsq += float(np.dot(finite, finite))
            acc.min = min(acc.min, float(finite.min()))
            acc.max = max(acc.max, float(finite.max()))
            ref = self.reference.columns.get(name) if self.reference else None
            if ref is not None and ref.min is not None and ref.max is not None:
                acc.out_of_range += int(((finite < ref.min) | (finite > ref.max)).sum())

    def _update_cat(self, name: str, acc: _CatAcc, arr: np.ndarray) -> None:
        acc.count += arr.shape[0]
        mask = np.array([v is None for v in arr], dtype=bool) if arr.size else np.zeros(0, bool)
        acc.nulls += int(mask.sum())
        values, counts = np.unique(arr[~mask].astype(str), return_counts=True)
        ref = self.reference.columns.get(name) if self.reference else None
        for v, c in zip(values.tolist(), counts.tolist(), strict=True):
            if v in acc.counts:
                acc.counts[v] += c
            elif len(acc.counts) < _MAX_CATEGORIES:
                acc.counts[v] = c
            else:
                acc.truncated = True
            new = ref is not None and not ref.categories_truncated and v not in ref.categories
            if new and (v in acc.unseen or len(acc.unseen) < 100):
                acc.unseen[v] = acc.unseen.get(v, 0) + c

    def _update_sample(self, chunk: Chunk, n: int) -> None:
        # Priority sampling: every row draws a uniform key; the _SAMPLE_ROWS smallest keys form a uniform sample.
        keys = self._rng.random(n)
        allk = np.concatenate([self._keys, keys])
        if allk.size > _SAMPLE_ROWS:
            keep = np.argpartition(allk, _SAMPLE_ROWS)[:_SAMPLE_ROWS]
        else:
            keep = np.arange(allk.size)
        self._keys = allk[keep]
        for name, arr in chunk.items():
            if isinstance(self._cols[name], _NumAcc):
                old = self._sample.get(name, np.empty(0))
                self._sample[name] = np.concatenate([old, arr])[keep]

    def _update_correlation(self, chunk: Chunk) -> None:
        # Co-moments over complete rows, merged chunk by chunk (Chan et al.'s pairwise update: stable).
        if not self._corr_cols:
            numeric = [c for c, acc in self._cols.items() if isinstance(acc, _NumAcc)]
            self._corr_cols = numeric[:MAX_CORRELATION_COLUMNS]
            k = len(self._corr_cols)
            self._corr_mean, self._corr_m2 = np.zeros(k), np.zeros((k, k))
        if len(self._corr_cols) < 2:
            return
        x = np.column_stack([chunk[c] for c in self._corr_cols])
        x = x[np.isfinite(x).all(axis=1)]
        if not x.shape[0]:
            return
        nb, mean_b = x.shape[0], x.mean(axis=0)
        xc = x - mean_b
        na, n = self._corr_n, self._corr_n + nb
        delta = mean_b - self._corr_mean
        self._corr_m2 += xc.T @ xc + np.outer(delta, delta) * (na * nb / n)
        self._corr_mean = self._corr_mean + delta * (nb / n)
        self._corr_n = n

    def _correlation(self) -> CorrelationProfile | None:
        if len(self._corr_cols) < 2 or self._corr_n < 3:
            return None
        sd = np.sqrt(np.diag(self._corr_m2))
        with np.errstate(divide="ignore", invalid="ignore"):
            r = self._corr_m2 / np.outer(sd, sd)
        r = np.clip(np.nan_to_num(r, nan=0.0, posinf=0.0, neginf=0.0), -1.0, 1.0)
        np.fill_diagonal(r, 1.0)
        return CorrelationProfile(
            columns=list(self._corr_cols), rows=self._corr_n, matrix=[[float(v) for v in row] for row in r]
        )

    def _update_hashes(self, chunk: Chunk, n: int) -> None:
        # Row digests; we keep only digests below a moving limit (hash sampling), so memory stays bounded
        # and duplicates among kept digests estimate the duplicate rate of the whole file.
        h = np.full(n, np.uint64(1469598103934665603), dtype=np.uint64)
        mult = np.uint64(1099511628211)
        with np.errstate(over="ignore"):
            for arr in chunk.values():
                if arr.dtype == object:
                    col = np.fromiter((hash(v) & 0xFFFFFFFFFFFFFFFF for v in arr), dtype=np.uint64, count=n)
                else:
                    col = np.ascontiguousarray(arr, dtype=np.float64).view(np.uint64)
                h = (h ^ col) * mult
                h ^= h >> np.uint64(29)
        self._hashed_rows += n
        kept = h[h <= self._hash_limit]
        self._hashes = np.concatenate([self._hashes, kept])
        self._hash_counts = np.concatenate([self._hash_counts, np.ones(kept.size, dtype=np.int64)])
        if self._hashes.size <= _HASH_CAP:
            return
        # Keep each digest once with its row count, so repeats of one digest cost one entry: then halving
        # the limit _HASH_BITS times leaves at most one distinct digest (0), and the loop is bounded by
        # construction whatever the data (a file whose every row hashes to 0 used to loop forever).
        self._hashes, inverse = np.unique(self._hashes, return_inverse=True)
        self._hash_counts = np.bincount(inverse, weights=self._hash_counts).astype(np.int64)
        for _ in range(_HASH_BITS):
            if self._hashes.size <= _HASH_CAP:
                break
            self._hash_limit = np.uint64(int(self._hash_limit) // 2)
            keep = self._hashes <= self._hash_limit
            self._hashes, self._hash_counts = self._hashes[keep], self._hash_counts[keep]

    def result(self) -> DataProfile:
        """Return the profile of everything added so far.

        Raises:
            InputError: no rows were added, or the label column is missing.
        """
        if self._rows == 0:
            raise InputError("no data rows")
        if self.label is not None and self.label not in self._cols:
            raise InputError(f"label column {self.label!r} not found; columns are {sorted(self._cols)}")
        cols: dict[str, ColumnProfile] = {}
        sample: dict[str, list[float]] = {}
        for name, acc in self._cols.items():
            if isinstance(acc, _NumAcc):
                s = self._sample.get(name, np.empty(0))
                s = s[np.isfinite(s)]
                mean = acc.sum / acc.n if acc.n else None
                var = max(acc.sumsq / acc.n - (mean or 0.0) ** 2, 0.0) if acc.n else None
                cols[name] = ColumnProfile(
                    name=name,
                    type="numeric",
                    count=acc.count,
                    nulls=acc.nulls,
                    min=float(acc.min) if acc.n else None,
                    max=float(acc.max) if acc.n else None,
                    mean=mean,
                    std=float(np.sqrt(var)) if var is not None else None,
                    quantiles=[float(v) for v in np.quantile(s, _QUANTILES)] if s.size else [],
                    out_of_range=acc.out_of_range,
                )
                sample[name] = [float(v) for v in s[:2000]]
            else:
                cols[name] = ColumnProfile(
                    name=name,
                    type="categorical",
                    count=acc.count,
                    nulls=acc.nulls,
                    categories=dict(sorted(acc.counts.items(), key=lambda kv: -kv[1])),
                    categories_truncated=acc.truncated,
                    unseen=acc.unseen,
                )
        kept = int(self._hash_counts.sum())
        distinct = np.unique(self._hashes).size
        fraction = kept / self._hashed_rows if self._hashed_rows else 1.0
        dupes = (kept - distinct) / fraction if fraction > 0 and kept else 0.0
        return DataProfile(
            rows=self._rows,
            columns=cols,
            label=self.label,
            duplicate_rows=round(float(dupes), 1),
            sample=sample,
            correlation=self._correlation(),
            bias=self._bias.result() if self._bias is not None else None,
        )


def profile_chunks(
    chunks: Iterable[Chunk],
    *,
    label: str | None = None,
    reference: DataProfile | None = None,
    seed: int = 0,
    sensitive: list[str] | None = None,
) -> DataProfile:
    """Profile a stream of chunks (see ``ProfileBuilder``)."""
    builder = ProfileBuilder(label=label, reference=reference, seed=seed, sensitive=sensitive)
    for chunk in chunks:
        builder.update(chunk)
    return builder.result()


def _num_to_text(arr: np.ndarray) -> np.ndarray:
    """Numbers used as categories (a numeric label column): ``3.0`` -> ``"3"``, NaN -> missing."""
    out = np.empty(arr.shape[0], dtype=object)
    finite = np.isfinite(arr)
    ints = finite & (arr == np.round(arr))
    out[ints] = arr[ints].astype(np.int64).astype(str)
    rest = finite & ~ints
    out[rest] = arr[rest].astype(str)
    out[~finite] = None
    return out
