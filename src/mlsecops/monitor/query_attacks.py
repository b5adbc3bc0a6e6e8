"""Stateful detection of query-based evasion attacks (Blacklight-style), per principal.

Black-box evasion attacks such as HopSkipJump (decision-based) and Square (score-based) cannot see the
model's gradient, so they estimate it from the model's answers to long runs of near-duplicate queries:
probes around a boundary point, bisections between two points, a small window redrawn on an otherwise
unchanged input. Benign clients send natural inputs, which almost never agree with an earlier input on
nearly every feature. Following Blacklight (Li et al., USENIX Security 2022), the detector keeps, per
principal, a compact fingerprint of each recent query and counts how many queries nearly duplicate an
earlier one; a run of them within a window raises a ``query_attack`` alert.

How a query is fingerprinted and matched:

1. **Quantise** each feature on a grid of ``quant_step`` times the feature's range (the baseline
   profile's ``[min, max]``, a scale fitted with :meth:`QueryAttackDetector.fit`, or, lacking both,
   the range of the first ``WARMUP_ROWS`` rows of traffic). The grid is shifted by a random offset per
   feature, so data on a lattice (8-bit pixels, 17-level digits) does not sit on the cell borders.
2. **Sketch** the quantised row into ``n_hashes`` 32-bit keys, each a hash of the quantised values of
   ``hash_features`` randomly chosen features (bit-sampling locality-sensitive hashing for the share of
   agreeing features, Indyk and Motwani 1998). Two rows agreeing on a share ``f`` of the features share
   a key with probability about ``f ** hash_features``: the sketch separates a Square candidate (all but
   one window agree) or a HopSkipJump probe (every feature moved by far less than a cell) from two
   different natural inputs (most features in different cells). Features with zero range in the
   baseline (constant pixels) are never sampled: every input agrees on them.
3. **Match** the keys against the principal's ring buffer of the last ``history`` sketches, one
   vectorised comparison: a query is a *near-duplicate* when some earlier query shares at least
   ``match_keys`` of its keys.
4. **Decide**: alert when ``alert_count`` or more of the principal's last ``window`` distinct queries
   were near-duplicates. The alert fires once and re-arms when the count falls below half the threshold.

A second signal catches the attacks that sample with noise too large for near-duplicates:
gradient-estimation attacks (NES, Ilyas et al. 2018; bandits) send Gaussian probes ``x + sigma u``
around the input they attack, and average the noise away, so a sigma of 5-10% of each feature's range
costs them little success while no two probes agree on most features. Such a run is *concentrated*: its
queries spread around one point far less than natural rows of the classes the model gives them. The
detector projects each query on the main directions of the baseline's rows (``SPREAD_COMPONENTS``
principal components, in range-normalised units) and compares the spread of the principal's last
``SPREAD_WINDOW`` distinct queries along them with the spread of baseline rows of the same predicted
classes (the within-class variance, weighted by the classes' shares in the window): a ratio under
``spread_ratio`` raises a ``query_attack`` alert with ``signal: concentration``. The signal needs the
model (to predict the baseline rows' classes), baseline rows (a data file or a profile's joint row
sample) and the model's outputs in the observations; without them it is off (``metrics()`` says so).

The attacker who read this alternates its probes between two inputs (the window's spread then holds
both) or with natural rows. A third signal, *crowding*, looks at each probe's neighbourhood instead:
along the same components, the distance to a query's ``CROWD_NEIGHBOURS``-th nearest among the
principal's remembered queries against the distance to its ``CROWD_NEIGHBOURS``-th nearest baseline
row. Natural traffic, however narrow, is no denser than the natural data it comes from (a client
remembers fewer rows than the baseline holds, so its ratio sits near 1 or above); a cloud of probes is
far denser. ``crowd_count`` crowded queries among the last ``window`` distinct ones (the window the
near-duplicates are counted over) raise an alert with
``signal: crowding``. It needs baseline rows only.

Exact repeats are handled apart: a row identical (in float32) to one of the principal's recent rows is
a retry, which a benign client sends after a timeout and which teaches an attacker nothing; it is
counted, not matched, and does not enter the history or the window. Memory is bounded: per principal
at most ``history`` x ``n_hashes`` x 4 bytes of sketches, 8 bytes per remembered digest and the
window, and at most ``max_principals`` principals (least recently seen evicted first, evictions
counted).

What it does not catch: an attacker whose noise is both too large for near-duplicates and as wide as
natural data along its main directions (on the 20-feature tabular set, Gaussian probes of 10% of each
range: the extraction detector flags those within 10 queries, their noise leaves the data's
manifold), or spreads the queries over many principals (Sybil accounts) or interleaves each
near-duplicate with enough diverse queries to stay under the window's count; every such evasion costs
queries (see the benchmark in ``benchmarks/results/monitor-query-attacks.md``). It also cannot see
an adversarial input crafted elsewhere and sent once: that is :mod:`mlsecops.monitor.adversarial_screen`.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import math
from collections import OrderedDict, deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from mlsecops.core.errors import ConfigError, InputError
from mlsecops.core.severity import Severity
from mlsecops.monitor.interface import Alert, Observation

__all__ = [
    "ALERT_COUNT",
    "CROWD_COUNT",
    "CROWD_RATIO",
    "HASH_FEATURES",
    "HISTORY",
    "MATCH_KEYS",
    "N_HASHES",
    "QUANT_STEP",
    "SPREAD_COMPONENTS",
    "SPREAD_RATIO",
    "SPREAD_WINDOW",
    "WINDOW",
    "QueryAttackDetector",
    "feature_ranges",
    "reference_values",
]

_log = logging.getLogger(__name__)

QUANT_STEP = 0.1
"""Cell width as a share of the feature's range. A HopSkipJump probe moves each feature by well under
a tenth of its range (its probe radius shrinks with the distance to the boundary); two natural inputs
differ by more than a tenth on most features (measured on digits, breast cancer and 20-feature tabular:
the most similar pair of distinct natural rows agrees on at most 87% of the quantised features)."""

N_HASHES = 32
"""Keys per sketch. More keys estimate the agreement more finely and cost 4 bytes per key per
remembered query."""

HASH_FEATURES = 6
"""Features per key. Two rows agreeing on 95% of the features share a key with probability 0.74, on
85% with 0.38, on 70% with 0.12: the steeper this curve, the fewer natural pairs match by chance."""

MATCH_KEYS = 16
"""Keys an earlier query must share with a new one for the new one to be a near-duplicate (half of
``N_HASHES``): reached for about 99% of pairs agreeing on 95% of the features, and for under 1% of
pairs agreeing on 80% (binomial tails of the probabilities above)."""

HISTORY = 256
"""Sketches remembered per principal (a ring buffer of ``N_HASHES`` x 4 bytes each: 32 KB). An
attack's probes match queries sent moments before, so a short memory suffices."""

WINDOW = 50
"""Distinct queries (retries excluded) over which near-duplicates are counted."""

ALERT_COUNT = 10
"""Near-duplicates within ``WINDOW`` that raise the alert. Square makes nearly every query after its
second a near-duplicate and HopSkipJump most of its probes, so both cross 10 within a few dozen
queries. On benign natural streams (digits, breast cancer, 20-feature tabular, a mixed one-hot set;
2,000 queries per client with retries and bursts) no window held a single near-duplicate, so 10 leaves a wide margin
for natural traffic that is more repetitive than these sets (calibration in
``benchmarks/monitor/query_attacks``)."""

RETRY_DIGESTS = 1_024
"""Recent 64-bit row digests kept per principal to recognise exact retries (8 KB; at least twice
``history``, so a repeat of any remembered query is always recognised as a retry, never matched as a
near-duplicate)."""

MAX_PRINCIPALS = 4_096
"""Principals tracked at once; the least recently seen one is evicted beyond this. With the defaults a
principal holds at most about 47 KB (sketches 32 KB, digests 8 KB, the crowding signal's 256 x 5
float32 projections 5 KB, the spread window 2 KB), so 190 MB in all; principals with few queries hold
far less (the rings grow as they fill)."""

WARMUP_ROWS = 256
"""Rows of traffic (all principals) from which feature ranges are estimated when neither a baseline nor
a fitted scale is available; accepted observations arriving before are buffered (this many rows plus
the last request) and matched once the ranges are known."""

_INITIAL_ROWS = 16
"""Rows a principal's rings start with; they double up to their capacity, so one-off principals stay small."""

MAX_FEATURES = 1_000_000
"""Widest input (flattened) the detector fingerprints; wider rows are skipped and counted."""

MIN_REFERENCE_VALUES = 20
"""Fewest reference values of a feature from which its information (cell collision rate) is judged."""

_SAME_CELL = 0.99
"""A feature whose reference values share one cell this often (nearly constant) is never sampled."""

_RANGE_FLOOR = 1e-12
"""A feature whose range is below this (times the largest range) is constant: never sampled."""

SPREAD_WINDOW = 40
"""Distinct queries over which the concentration signal measures a principal's spread (0: off). A
gradient-estimation attack sends 20-100 probes around each iterate."""

SPREAD_COMPONENTS = 5
"""Principal components of the baseline along which the spread is measured. Natural rows vary most
along them; a noise cloud spreads evenly in every direction, so along these it is far narrower than
the data."""

SPREAD_RATIO = 0.1
"""A window whose spread along the components is under this share of natural within-class spread is
concentrated. Measured with windows of 40 (benchmarks/monitor/query_attacks): natural rows of one
class 0.62-0.85, the 160 natural rows nearest a random row of a class 0.39-0.56; NES probes with
sigma 5% of each range 0.004-0.12, 10% 0.02-0.4 (digits, breast cancer, 20-feature tabular, mixed
one-hot)."""

LOCAL_RATIO = 0.5
"""The concentration signal also needs the window narrower than half the spread of as many baseline rows
nearest its centre: a benign client of one tight natural segment (the 40 rows of the mixed one-hot set
sharing one categorical pattern) is as narrow as its segment, a probe cloud far narrower (NES at 5% of
the ranges: 0.03-0.17 on digits and breast cancer; benign clients 1.0 and up)."""

SPREAD_REFERENCE_ROWS = 2_000
"""Baseline rows (a seeded sample) from which the components and class spreads are computed."""

SPREAD_MAX_FEATURES = 8_192
"""Widest input for which the concentration signal is computed (the SVD of the reference rows)."""

CROWD_NEIGHBOURS = 10
"""The crowding signal compares the distance to a query's 10th nearest neighbour among the principal's
remembered queries with the same among the baseline rows."""

CROWD_RATIO = 0.2
"""A query whose 10th nearest remembered query is nearer (squared, along the components) than a fifth
of its 10th nearest baseline row is crowded: the principal sends more distinct queries around this
point than natural data holds (in 5 dimensions, about 50 times the baseline's local density).
Measured per query (benchmarks/monitor/query_attacks): natural, one-class and narrow benign clients
(the 40 or 80 natural rows of a class nearest one member) 0.49 and up at their 1% quantile, no benign
query under 0.3; NES probes at 5% of each range, one input or two interleaved, 0.01-0.3."""

CROWD_COUNT = 16
"""Crowded queries among the last ``WINDOW`` distinct ones (50) that raise the alert (about one in three:
probes interleaved one for one with natural rows still reach it)."""

MIN_CLASS_ROWS = 10
"""Fewest baseline rows of a predicted class from which its spread is judged; rarer classes take the
pooled within-class spread."""

_SEVERITIES = ("info", "low", "medium", "high", "critical")

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def feature_ranges(baseline: dict[str, Any] | None) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-feature ``(min, max)`` from a baseline, or None when it holds none.

    Accepts a ``mlsecops data profile`` JSON (numeric columns other than the label, in file order) or a
    data file read as ``{"X": rows}`` (with its exact ``lo`` and ``hi`` when given).

    Raises:
        InputError: the baseline's numeric columns lack a finite min or max.
    """
    if not baseline:
        return None
    if "X" in baseline:
        x = np.asarray(baseline["X"], dtype=np.float64)
        if x.ndim < 2 or len(x) == 0:
            return None
        x = x.reshape(len(x), -1)
        if not np.isfinite(x).all():
            raise InputError("baseline: the reference rows hold NaN or infinite values")
        if "lo" in baseline and "hi" in baseline:  # a data file's exact ranges (``replay.load_baseline``)
            exact = np.asarray(baseline["lo"], dtype=np.float64), np.asarray(baseline["hi"], dtype=np.float64)
            if all(e.shape == (x.shape[1],) and np.isfinite(e).all() for e in exact):
                return exact
        return x.min(axis=0), x.max(axis=0)
    columns = baseline.get("columns")
    if not isinstance(columns, dict) or not columns:
        return None
    label = baseline.get("label")
    lo: list[float] = []
    hi: list[float] = []
    for name, col in columns.items():
        if name == label or not isinstance(col, dict) or col.get("type") != "numeric":
            continue
        a, b = col.get("min"), col.get("max")
        if not (_num(a) and _num(b)):
            raise InputError(f"baseline: numeric column {name!r} has no finite min and max")
        lo.append(float(a))  # type: ignore[arg-type]  # checked by _num
        hi.append(float(b))  # type: ignore[arg-type]
    if not lo:
        return None
    return np.asarray(lo), np.asarray(hi)


def reference_values(baseline: dict[str, Any] | None) -> list[np.ndarray] | None:
    """Per feature, reference values that weigh its information, or None when the baseline has none.

    From ``{"X": rows}`` the columns; from a profile its per-column ``sample`` (numeric columns other than
    the label, in the order :func:`feature_ranges` uses; a column without a sample gets an empty array).
    """
    if not baseline:
        return None
    if "X" in baseline:
        x = np.asarray(baseline["X"], dtype=np.float64)
        return list(x.reshape(len(x), -1).T) if x.ndim >= 2 and len(x) else None
    columns, sample = baseline.get("columns"), baseline.get("sample")
    if not isinstance(columns, dict) or not isinstance(sample, dict) or not sample:
        return None
    label = baseline.get("label")
    out = []
    for name, col in columns.items():
        if name == label or not isinstance(col, dict) or col.get("type") != "numeric":
            continue
        try:
            out.append(np.asarray(sample.get(name, []), dtype=np.float64).reshape(-1))
        except (TypeError, ValueError):
            out.append(np.zeros(0))
    return out


class _Ring:
    """A ring buffer of fixed-width rows that grows (doubling) up to its capacity, then overwrites."""

    __slots__ = ("cap", "data", "filled", "head")

    def __init__(self, cap: int, width: int, dtype: type[np.generic]) -> None:
        self.cap = cap
        self.data = np.zeros((min(cap, _INITIAL_ROWS), width), dtype=dtype)
        self.filled = 0
        self.head = 0

    def add(self, row: np.ndarray | int | float) -> None:
        if self.filled == len(self.data) < self.cap:  # full below its capacity: grow, oldest row first
            grown = np.zeros((min(self.cap, 2 * len(self.data)), self.data.shape[1]), dtype=self.data.dtype)
            grown[: self.filled] = self.ordered()
            self.data = grown
            self.head = self.filled
        self.data[self.head] = row
        self.head = (self.head + 1) % len(self.data)
        self.filled = min(self.filled + 1, len(self.data))

    def rows(self) -> np.ndarray:
        """The remembered rows (any order)."""
        return self.data[: self.filled]

    def ordered(self) -> np.ndarray:
        """The remembered rows, oldest first."""
        if self.filled < len(self.data):
            return self.data[: self.filled]
        return np.concatenate([self.data[self.head :], self.data[: self.head]])

    def to_text(self) -> str:
        return base64.b64encode(np.ascontiguousarray(self.ordered()).tobytes()).decode()

    def load_text(self, text: str) -> None:
        rows = np.frombuffer(base64.b64decode(text, validate=True), dtype=self.data.dtype)
        if rows.size % self.data.shape[1]:
            raise ValueError("row width differs")
        for row in rows.reshape(-1, self.data.shape[1])[-self.cap :]:
            self.add(row)


class _Spread:
    """The reference of the concentration and crowding signals: the baseline's main components, its
    rows projected on them, and (with the model) the within-class spreads.
    """

    __slots__ = ("classes", "components", "lo", "mean", "reference", "scale", "spread")

    def __init__(
        self,
        lo: np.ndarray,
        scale: np.ndarray,
        mean: np.ndarray,
        components: np.ndarray,
        reference: np.ndarray,
        spread: np.ndarray | None,
    ) -> None:
        self.lo, self.scale, self.mean, self.components = lo, scale, mean, components
        self.reference = reference  # the baseline rows projected
        self.spread = spread  # per predicted class: variance along the components summed (None: no model)
        self.classes = 0 if spread is None else len(spread)

    def project(self, rows: np.ndarray) -> np.ndarray:
        out: np.ndarray = ((rows - self.lo) * self.scale - self.mean) @ self.components
        return out

    def ratio(self, window: np.ndarray, classes: np.ndarray) -> float:
        """Spread of the window's rows over the natural within-class spread of their classes."""
        assert self.spread is not None
        natural = float(self.spread[classes].mean())
        return float(window.var(axis=0).sum()) / natural if natural > 0 else math.inf

    def local_ratio(self, window: np.ndarray) -> float:
        """Spread of the window's rows over that of as many baseline rows nearest their centre."""
        d = ((self.reference - window.mean(axis=0)) ** 2).sum(axis=1)
        m = min(len(window), len(d))
        natural = float(self.reference[np.argpartition(d, m - 1)[:m]].var(axis=0).sum())
        return float(window.var(axis=0).sum()) / natural if natural > 0 else math.inf

    def neighbour_distance(self, point: np.ndarray, rows: np.ndarray) -> float:
        """Squared distance from ``point`` to its ``CROWD_NEIGHBOURS``-th nearest among ``rows``."""
        d = ((rows - point) ** 2).sum(axis=1)
        return float(np.partition(d, CROWD_NEIGHBOURS - 1)[CROWD_NEIGHBOURS - 1])


class _Principal:
    """One principal's bounded state: sketch ring, retry digests, near-duplicate window, spread window."""

    __slots__ = (
        "alerted",
        "crowd_alerted",
        "crowd_count",
        "crowd_flags",
        "crowd_rows",
        "digests",
        "near",
        "near_count",
        "queries",
        "retries",
        "rows",
        "sketches",
        "spread_alerted",
        "spread_classes",
        "spread_rows",
        "spread_window",
    )

    def __init__(self, history: int, n_hashes: int, window: int, spread_window: int) -> None:
        self.sketches = _Ring(history, n_hashes, np.uint32)
        # at least twice the history, so a repeat of any remembered query is always known as a retry
        self.digests = _Ring(max(RETRY_DIGESTS, 2 * history), 1, np.uint64)
        self.near: deque[bool] = deque(maxlen=window)
        self.near_count = 0
        self.rows = 0
        self.retries = 0
        self.queries = 0
        self.alerted = False
        self.spread_window = spread_window
        self.spread_rows: _Ring | None = None  # projections of the last ``spread_window`` distinct queries
        self.spread_classes: _Ring | None = None  # and the model's class for each
        self.spread_alerted = False
        self.crowd_rows: _Ring | None = None  # projections of the last ``history`` distinct queries
        self.crowd_flags: deque[bool] = deque(maxlen=window)
        self.crowd_count = 0
        self.crowd_alerted = False

    def push_crowded(self, crowded: bool) -> None:
        """Slide the crowding window by one distinct query."""
        if len(self.crowd_flags) == self.crowd_flags.maxlen and self.crowd_flags[0]:
            self.crowd_count -= 1
        self.crowd_flags.append(crowded)
        self.crowd_count += int(crowded)

    def push_spread(self, projected: np.ndarray, cls: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Slide the spread window by one distinct query; once it is full, its rows and their classes."""
        if self.spread_rows is None or self.spread_classes is None:
            self.spread_rows = _Ring(self.spread_window, len(projected), np.float64)
            self.spread_classes = _Ring(self.spread_window, 1, np.int64)
        self.spread_rows.add(projected)
        self.spread_classes.add(cls)
        if self.spread_rows.filled < self.spread_window:
            return None
        return self.spread_rows.rows(), self.spread_classes.rows()[:, 0]

    def is_retry(self, digest: int) -> bool:
        """True when ``digest`` is among the recent ones; remembers it otherwise."""
        if self.digests.filled and bool((self.digests.rows() == np.uint64(digest)).any()):
            return True
        self.digests.add(digest)
        return False

    def best_match(self, keys: np.ndarray) -> int:
        """Most keys any remembered sketch shares with ``keys``."""
        if self.sketches.filled == 0:
            return 0
        return int(np.count_nonzero(self.sketches.rows() == keys, axis=1).max())

    def push_near(self, near: bool) -> None:
        """Slide the window by one distinct query."""
        if len(self.near) == self.near.maxlen and self.near[0]:
            self.near_count -= 1
        self.near.append(near)
        self.near_count += int(near)

    def nbytes(self) -> int:
        """Bytes held by the rings (the window and counters add under a kilobyte)."""
        rings = (self.sketches, self.digests, self.spread_rows, self.spread_classes, self.crowd_rows)
        return int(sum(r.data.nbytes for r in rings if r is not None))

    def to_json(self) -> dict[str, Any]:
        return {
            "ring": self.sketches.to_text(),
            "digests": self.digests.to_text(),
            "near": "".join("1" if b else "0" for b in self.near),
            "rows": self.rows,
            "retries": self.retries,
            "queries": self.queries,
            "alerted": self.alerted,
            "spread": None
            if self.spread_rows is None or self.spread_classes is None
            else {
                "rows": self.spread_rows.to_text(),
                "width": int(self.spread_rows.data.shape[1]),
                "classes": self.spread_classes.to_text(),
                "alerted": self.spread_alerted,
            },
            "crowd": None
            if self.crowd_rows is None
            else {
                "rows": self.crowd_rows.to_text(),
                "width": int(self.crowd_rows.data.shape[1]),
                "flags": "".join("1" if b else "0" for b in self.crowd_flags),
                "alerted": self.crowd_alerted,
            },
        }

    @classmethod
    def from_json(
        cls, data: dict[str, Any], history: int, n_hashes: int, window: int, spread_window: int
    ) -> _Principal:
        p = cls(history, n_hashes, window, spread_window)
        p.sketches.load_text(str(data["ring"]))
        p.digests.load_text(str(data["digests"]))
        for ch in str(data["near"])[-window:]:
            p.push_near(ch == "1")
        p.rows, p.retries, p.queries = int(data["rows"]), int(data["retries"]), int(data["queries"])
        p.alerted = bool(data["alerted"])
        spread = data.get("spread")
        if spread is not None:
            p.spread_rows = _Ring(spread_window, int(spread["width"]), np.float64)
            p.spread_classes = _Ring(spread_window, 1, np.int64)
            p.spread_rows.load_text(str(spread["rows"]))
            p.spread_classes.load_text(str(spread["classes"]))
            if p.spread_rows.filled != p.spread_classes.filled:
                raise ValueError("spread window does not fit")
            p.spread_alerted = bool(spread["alerted"])
        crowd = data.get("crowd")
        if crowd is not None:
            p.crowd_rows = _Ring(history, int(crowd["width"]), np.float32)
            p.crowd_rows.load_text(str(crowd["rows"]))
            for ch in str(crowd["flags"])[-window:]:
                p.push_crowded(ch == "1")
            p.crowd_alerted = bool(crowd["alerted"])
        return p


class QueryAttackDetector:
    """Per-principal near-duplicate counting over recent queries (``query_attack`` alerts).

    Args:
        model_name: The served model whose traffic this detector watches (alerts name it).
        baseline: The model's training-data profile (``mlsecops data profile`` JSON as a dict) or
            ``{"X": rows}``; its numeric feature ranges scale the quantisation grid.
        quant_step: Cell width as a share of each feature's range (``QUANT_STEP``).
        n_hashes: Keys per sketch (``N_HASHES``).
        hash_features: Features hashed into each key (``HASH_FEATURES``).
        match_keys: Shared keys that make a query a near-duplicate (``MATCH_KEYS``).
        history: Sketches remembered per principal (``HISTORY``).
        window: Distinct queries over which near-duplicates are counted (``WINDOW``).
        alert_count: Near-duplicates within the window that raise an alert (``ALERT_COUNT``).
        max_principals: Principals tracked at once (``MAX_PRINCIPALS``).
        severity: Severity of the alert (``high``).
        seed: Seed of the sketch's feature choice, hash multipliers and grid offsets.
        model: The served model (an adapter with ``predict_proba``); with baseline rows it turns on the
            concentration signal (the baseline rows' predicted classes weigh natural spread).
        spread_window: Distinct queries in the concentration signal's window (``SPREAD_WINDOW``; 0: off).
        spread_ratio: Spread ratio under which a window is concentrated (``SPREAD_RATIO``).
        spread_components: Principal components the spread is measured along (``SPREAD_COMPONENTS``).
        crowd_ratio: A query is crowded when its ``CROWD_NEIGHBOURS``-th nearest among the principal's
            remembered queries is nearer than this share of its nearest among the baseline rows
            (squared distances along the components; ``CROWD_RATIO``).
        crowd_count: Crowded queries among the last ``window`` distinct ones that raise the alert
            (``CROWD_COUNT``).

    Raises:
        ConfigError: an option out of its range (named, with the range).
        InputError: a baseline whose numeric columns lack finite ranges.
    """

    name = "query_attack"

    def __init__(
        self,
        *,
        model_name: str,
        baseline: dict[str, Any] | None = None,
        quant_step: float = QUANT_STEP,
        n_hashes: int = N_HASHES,
        hash_features: int = HASH_FEATURES,
        match_keys: int = MATCH_KEYS,
        history: int = HISTORY,
        window: int = WINDOW,
        alert_count: int = ALERT_COUNT,
        max_principals: int = MAX_PRINCIPALS,
        severity: str = "high",
        seed: int = 0,
        model: Any = None,
        spread_window: int = SPREAD_WINDOW,
        spread_ratio: float = SPREAD_RATIO,
        spread_components: int = SPREAD_COMPONENTS,
        crowd_ratio: float = CROWD_RATIO,
        crowd_count: int = CROWD_COUNT,
    ) -> None:
        self.model_name = model_name
        self.quant_step = quant_step
        self.n_hashes = n_hashes
        self.hash_features = hash_features
        self.match_keys = match_keys
        self.history = history
        self.window = window
        self.alert_count = alert_count
        self.max_principals = max_principals
        self.severity = severity
        self.seed = seed
        self.spread_window = spread_window
        self.spread_ratio = spread_ratio
        self.spread_components = spread_components
        self.crowd_ratio = crowd_ratio
        self.crowd_count = crowd_count
        self._check_params()
        self._model = model if callable(getattr(model, "predict_proba", None)) else None
        self.spread_: _Spread | None = None
        self.spread_off_ = "no model" if self._model is None else "no baseline rows"
        self._principals: OrderedDict[str, _Principal] = OrderedDict()
        self._pending: list[tuple[Observation, np.ndarray]] = []
        self._pending_rows = 0
        self.evicted_ = 0
        self.skipped_rows_ = 0
        self.alerts_ = 0
        self.lo_: np.ndarray | None = None
        self.scale_source_ = "warmup"
        ranges = feature_ranges(baseline)
        if ranges is not None:
            self._set_ranges(*ranges, source="baseline", reference=reference_values(baseline))
            self._fit_spread_from(baseline or {})

    def _check_params(self) -> None:
        checks = [
            (_num(self.quant_step) and 0.0 < self.quant_step <= 1.0, "quant_step", "in (0, 1]"),
            (_int(self.n_hashes) and 1 <= self.n_hashes <= 256, "n_hashes", "1..256"),
            (_int(self.hash_features) and 1 <= self.hash_features <= 64, "hash_features", "1..64"),
            (_int(self.match_keys) and 1 <= self.match_keys <= self.n_hashes, "match_keys", "1..n_hashes"),
            (_int(self.history) and 1 <= self.history <= 65_536, "history", "1..65536"),
            (_int(self.window) and 1 <= self.window <= 100_000, "window", "1..100000"),
            (_int(self.alert_count) and 1 <= self.alert_count <= self.window, "alert_count", "1..window"),
            (
                _int(self.max_principals) and 1 <= self.max_principals <= 10_000_000,
                "max_principals",
                "1..10000000",
            ),
            (self.severity in _SEVERITIES, "severity", "one of " + ", ".join(_SEVERITIES)),
            (_int(self.seed), "seed", "an integer"),
            (_int(self.spread_window) and 0 <= self.spread_window <= 10_000, "spread_window", "0..10000"),
            (_num(self.spread_ratio) and 0.0 < self.spread_ratio < 1.0, "spread_ratio", "in (0, 1)"),
            (
                _int(self.spread_components) and 1 <= self.spread_components <= 64,
                "spread_components",
                "1..64",
            ),
            (_num(self.crowd_ratio) and 0.0 < self.crowd_ratio < 1.0, "crowd_ratio", "in (0, 1)"),
            (
                _int(self.crowd_count) and _int(self.window) and 1 <= self.crowd_count <= self.window,
                "crowd_count",
                "1..window",
            ),
            (isinstance(self.model_name, str), "model_name", "a string"),
        ]
        for ok, name, expected in checks:
            if not ok:
                raise ConfigError(
                    f"query_attack detector: {name} must be {expected}, got {getattr(self, name)!r}"
                )

    # ------------------------------------------------------------------------------------ scaling
    def fit(self, x: np.ndarray) -> QueryAttackDetector:
        """Take the feature ranges from benign rows ``x`` (instead of a baseline); returns ``self``.

        Raises:
            InputError: ``x`` is empty or holds NaN or infinity.
        """
        arr = np.asarray(x, dtype=np.float64)
        if arr.ndim < 2 or len(arr) == 0 or not np.isfinite(arr).all():
            raise InputError("query_attack detector: fit needs a non-empty batch of finite rows")
        arr = arr.reshape(len(arr), -1)
        self._set_ranges(arr.min(axis=0), arr.max(axis=0), source="fitted", reference=list(arr.T))
        self._fit_spread(arr)
        return self

    def _fit_spread_from(self, baseline: dict[str, Any]) -> None:
        if self.spread_window == 0:
            return
        from mlsecops.monitor.extraction import reference_rows

        try:
            x = reference_rows(baseline, self.features_)
        except InputError as err:
            self.spread_off_ = str(err).splitlines()[0]
            return
        if x.shape[1] != self.features_:
            self.spread_off_ = "the baseline rows' width differs from the feature ranges'"
            return
        self._fit_spread(x)

    def _fit_spread(self, x: np.ndarray) -> None:
        """Components and within-class spreads of trusted rows ``x`` (the concentration signal)."""
        self.spread_ = None
        if self.spread_window == 0:
            self.spread_off_ = "spread_window is 0"
            return
        if x.shape[1] > SPREAD_MAX_FEATURES:
            self.spread_off_ = f"inputs wider than {SPREAD_MAX_FEATURES} features"
            return
        if len(x) <= CROWD_NEIGHBOURS:
            self.spread_off_ = f"the baseline holds {len(x)} rows; more than {CROWD_NEIGHBOURS} are needed"
            return
        assert self.lo_ is not None and self.hi_ is not None
        if len(x) > SPREAD_REFERENCE_ROWS:
            x = x[np.random.default_rng(self.seed).choice(len(x), SPREAD_REFERENCE_ROWS, replace=False)]
        span = self.hi_ - self.lo_
        varying = span > _RANGE_FLOOR * max(float(span.max()), _RANGE_FLOOR)
        scale = np.where(varying, 1.0 / np.where(varying, span, 1.0), 0.0)
        z = (x - self.lo_) * scale
        mean = z.mean(axis=0)
        _, sv, vt = np.linalg.svd(z - mean, full_matrices=False)
        k = min(self.spread_components, int(np.count_nonzero(sv > 1e-9 * max(float(sv[0]), 1e-300))))
        if k == 0:
            self.spread_off_ = "the baseline rows do not vary"
            return
        components = vt[:k].T
        projected = (z - mean) @ components
        spread = self._class_spreads(x, projected)
        self.spread_ = _Spread(self.lo_, scale, mean, components, projected, spread)
        if spread is not None:
            self.spread_off_ = ""

    def _class_spreads(self, x: np.ndarray, projected: np.ndarray) -> np.ndarray | None:
        """Per class the model predicts for the reference rows: their variance along the components
        summed (rare classes get the pooled within-class variance); None without a model that answers.
        """
        if self._model is None:
            self.spread_off_ = "no model"
            return None
        try:
            proba = np.asarray(self._model.predict_proba(x), dtype=np.float64)
        except Exception as err:  # any failure of the model only turns the signal off
            self.spread_off_ = f"the model could not answer on the baseline rows ({type(err).__name__})"
            _log.warning("query_attack detector for %r: concentration signal off: %s", self.model_name, err)
            return None
        if proba.ndim != 2 or len(proba) != len(x) or not np.isfinite(proba).all():
            self.spread_off_ = "the model's answers on the baseline rows are not class scores"
            return None
        classes = proba.argmax(axis=1)
        spread = np.zeros(proba.shape[1])
        known = np.zeros(proba.shape[1], dtype=bool)
        for c in range(proba.shape[1]):
            mine = projected[classes == c]
            if len(mine) >= MIN_CLASS_ROWS:
                spread[c], known[c] = float(mine.var(axis=0).sum()), True
        if not known.any():
            spread[:], known[:] = float(projected.var(axis=0).sum()), True
        weights = np.bincount(classes, minlength=len(spread))[known].astype(np.float64)
        pooled = (
            float(np.average(spread[known], weights=weights))
            if weights.sum()
            else float(spread[known].mean())
        )
        spread[~known] = pooled
        if pooled <= 0:
            self.spread_off_ = "the baseline rows do not vary within classes"
            return None
        return spread

    def _set_ranges(
        self,
        lo: np.ndarray,
        hi: np.ndarray,
        *,
        source: str,
        reference: Sequence[np.ndarray] | None = None,
        weights: np.ndarray | None = None,
    ) -> None:
        """Set the grid from per-feature ranges and choose the features of each key.

        Features are drawn into keys with probability proportional to their information: minus the log
        of the chance that two reference rows share the feature's cell (a one-hot or mostly-zero
        column, shared by most natural rows, says little; a continuous one says a lot). Without
        reference values every varying feature weighs the same.
        """
        d = len(lo)
        if d == 0 or d > MAX_FEATURES:
            raise InputError(f"query_attack detector: need 1..{MAX_FEATURES} features, got {d}")
        lo = np.asarray(lo, dtype=np.float64)
        hi = np.asarray(hi, dtype=np.float64)
        span = hi - lo
        varying = span > _RANGE_FLOOR * max(float(span.max()), _RANGE_FLOOR)
        if not varying.any():  # every feature constant in the reference: sample them all
            varying[:] = True
        # constant features still get a cell width (the median varying range) so that moving one far
        # shows; they are just never sampled into a key
        width = np.where(varying, span, float(np.median(span[varying])) or 1.0) * self.quant_step
        rng = np.random.default_rng(self.seed)
        self.offset_ = rng.random(d)
        self.lo_, self.hi_, self.inv_width_ = lo, hi, 1.0 / width
        if weights is None:
            weights = np.where(varying, 1.0, 0.0)
            if reference is not None:
                weights *= self._information(reference)
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != (d,) or not np.isfinite(weights).all() or (weights < 0).any():
            raise ValueError("feature weights do not fit the features")
        if np.count_nonzero(weights) < min(self.hash_features, int(varying.sum())):
            weights = np.where(varying, 1.0, 0.0)  # too few informative features: weigh all alike
        k = min(self.hash_features, int(np.count_nonzero(weights)))
        prob = weights / weights.sum()
        self.weights_ = weights
        self.coords_ = np.stack([rng.choice(d, size=k, replace=False, p=prob) for _ in range(self.n_hashes)])
        self.multipliers_ = rng.integers(1, 2**63 - 1, size=(self.n_hashes, k), dtype=np.uint64) | np.uint64(
            1
        )
        self.features_ = d
        self.scale_source_ = source

    def _information(self, reference: Sequence[np.ndarray]) -> np.ndarray:
        """Per feature, ``-log`` of the chance that two reference values fall in the same cell."""
        assert self.lo_ is not None  # called by _set_ranges after the grid is set
        info = np.ones(len(self.offset_))
        for j, values in enumerate(reference[: len(info)]):
            v = np.asarray(values, dtype=np.float64)
            v = v[np.isfinite(v)]
            if len(v) < MIN_REFERENCE_VALUES:
                continue  # too few values to judge: the feature keeps the default weight
            cells = np.floor((v - self.lo_[j]) * self.inv_width_[j] + self.offset_[j])
            _, counts = np.unique(cells, return_counts=True)
            collide = float(((counts / len(v)) ** 2).sum())
            info[j] = -math.log(min(collide, 1.0)) if collide < _SAME_CELL else 0.0
        return info

    def _sketch(self, rows: np.ndarray) -> np.ndarray:
        """32-bit keys ``(n, n_hashes)`` of the rows' quantised values."""
        assert self.lo_ is not None
        q = np.floor((rows - self.lo_) * self.inv_width_ + self.offset_)
        # cells beyond +-2^62 (absurd values) are clipped so the cast is defined; they still differ
        cells = np.clip(q, -(2.0**62), 2.0**62).astype(np.int64).view(np.uint64)
        picked = cells[:, self.coords_]  # (n, n_hashes, k)
        with np.errstate(over="ignore"):
            mixed = (picked * self.multipliers_).sum(axis=2, dtype=np.uint64)
        out: np.ndarray = (mixed >> np.uint64(32)).astype(np.uint32)
        return out

    # ------------------------------------------------------------------------------------ observe
    def observe(self, observation: Observation) -> list[Alert]:
        """Fingerprint the observation's rows and return an alert when the principal crosses the threshold."""
        if self.lo_ is None:
            return self._warm_up(observation)
        return self._observe(observation)

    def _warm_up(self, observation: Observation) -> list[Alert]:
        rows = _rows(observation.inputs)
        if rows is None or not observation.accepted:  # rejected requests may have any width
            self.skipped_rows_ += _count(observation.inputs) if rows is None else len(rows)
            return []
        finite = rows[np.isfinite(rows).all(axis=1)]
        if len(finite) == 0 or (self._pending and self._pending[0][1].shape[1] != rows.shape[1]):
            self.skipped_rows_ += len(rows)
            return []
        self._pending.append((observation, finite))
        self._pending_rows += len(finite)
        if self._pending_rows < WARMUP_ROWS:
            return []
        stacked = np.concatenate([r for _, r in self._pending])
        _log.warning(
            "query_attack detector for %r: no baseline; feature ranges taken from the first %d rows of traffic",
            self.model_name,
            len(stacked),
        )
        self._set_ranges(stacked.min(axis=0), stacked.max(axis=0), source="warmup", reference=list(stacked.T))
        pending, self._pending, self._pending_rows = self._pending, [], 0
        alerts: list[Alert] = []
        for obs, _ in pending:
            alerts += self._observe(obs)
        return alerts

    def _observe(self, observation: Observation) -> list[Alert]:
        rows = _rows(observation.inputs)
        if rows is None:
            self.skipped_rows_ += _count(observation.inputs)
            return []
        if rows.shape[1] != self.features_:
            if self.scale_source_ == "baseline" and not self._principals and observation.accepted:
                # the baseline describes other columns than the model accepted (a profile with extra
                # columns): learn the ranges from traffic. Only an accepted request proves the model's
                # width; a rejected one of another width must not switch the grid.
                _log.warning(
                    "query_attack detector for %r: the baseline has %d features, requests have %d; "
                    "feature ranges will come from the first %d rows of traffic",
                    self.model_name,
                    self.features_,
                    rows.shape[1],
                    WARMUP_ROWS,
                )
                self.lo_ = None
                self.scale_source_ = "warmup"
                self.spread_, self.spread_off_ = None, "the baseline's width differs from the requests'"
                return self._warm_up(observation)
            self.skipped_rows_ += len(rows)
            return []
        classes = self._classes(observation, len(rows))
        finite = np.isfinite(rows).all(axis=1)
        if not finite.all():
            self.skipped_rows_ += int((~finite).sum())
            rows = rows[finite]
            classes = None if classes is None else classes[finite]
        if len(rows) == 0:
            return []
        p = self._principal(str(observation.principal))
        keys = self._sketch(rows)
        projected = None if self.spread_ is None else self.spread_.project(rows)
        with np.errstate(over="ignore"):  # beyond float32's range a value digests as infinity
            narrow = rows.astype(np.float32)
        # float32: a retry that went through a JSON or float64 round trip is still the same request
        digests = [
            int.from_bytes(hashlib.blake2b(r.tobytes(), digest_size=8).digest(), "little") for r in narrow
        ]
        alerts: list[Alert] = []
        for i in range(len(rows)):
            p.rows += 1
            if p.is_retry(digests[i]):
                p.retries += 1
                continue
            p.queries += 1
            best = p.best_match(keys[i])
            p.push_near(best >= self.match_keys)
            p.sketches.add(keys[i])
            if not p.alerted and p.near_count >= self.alert_count:
                p.alerted = True
                self.alerts_ += 1
                alerts.append(self._alert(observation, p))
            elif p.alerted and p.near_count < self.alert_count / 2:
                p.alerted = False
            if projected is not None:
                alerts += self._check_crowding(observation, p, projected[i])
                if classes is not None and classes[i] >= 0:
                    alerts += self._check_spread(observation, p, projected[i], int(classes[i]))
        return alerts

    def _check_crowding(self, observation: Observation, p: _Principal, projected: np.ndarray) -> list[Alert]:
        assert self.spread_ is not None
        if p.crowd_rows is None:
            p.crowd_rows = _Ring(self.history, len(projected), np.float32)
        crowded = False
        if p.crowd_rows.filled >= CROWD_NEIGHBOURS:
            near = self.spread_.neighbour_distance(projected, p.crowd_rows.rows())
            crowded = near < self.crowd_ratio * self.spread_.neighbour_distance(
                projected, self.spread_.reference
            )
        p.crowd_rows.add(np.clip(projected, -_FLOAT32_MAX, _FLOAT32_MAX))  # absurd rows stay finite
        p.push_crowded(crowded)
        if not p.crowd_alerted and p.crowd_count >= self.crowd_count:
            p.crowd_alerted = True
            self.alerts_ += 1
            return [self._alert(observation, p, crowding=True)]
        if p.crowd_alerted and p.crowd_count < self.crowd_count / 2:
            p.crowd_alerted = False
        return []

    def _classes(self, observation: Observation, n: int) -> np.ndarray | None:
        """The model's class per row from the observation's outputs (-1: unknown), or None."""
        if self.spread_ is None or self.spread_.spread is None or observation.outputs is None:
            return None
        try:
            out = np.asarray(observation.outputs, dtype=np.float64)
        except (TypeError, ValueError):
            return None
        if out.ndim != 2 or len(out) != n or out.shape[1] != self.spread_.classes:
            return None
        classes: np.ndarray = out.argmax(axis=1)
        classes[~np.isfinite(out).all(axis=1)] = -1
        return classes

    def _check_spread(
        self, observation: Observation, p: _Principal, projected: np.ndarray, cls: int
    ) -> list[Alert]:
        assert self.spread_ is not None
        window = p.push_spread(projected, cls)
        if window is None:
            return []
        rows, classes = window
        ratio = self.spread_.ratio(rows, classes)
        if not p.spread_alerted and ratio < self.spread_ratio:
            # natural rows of a tight natural cluster (one segment of customers) are as narrow as the
            # cluster: only a window narrower than the natural rows around it too is concentrated
            local = self.spread_.local_ratio(rows)
            if local >= LOCAL_RATIO:
                return []
            p.spread_alerted = True
            self.alerts_ += 1
            return [self._alert(observation, p, spread_ratio=ratio, local_ratio=local)]
        if p.spread_alerted and ratio >= 2 * self.spread_ratio:
            p.spread_alerted = False
        return []

    def _principal(self, key: str) -> _Principal:
        p = self._principals.get(key)
        if p is None:
            p = _Principal(self.history, self.n_hashes, self.window, self.spread_window)
            self._principals[key] = p
            if len(self._principals) > self.max_principals:
                self._principals.popitem(last=False)
                self.evicted_ += 1
        else:
            self._principals.move_to_end(key)
        return p

    def _alert(
        self,
        observation: Observation,
        p: _Principal,
        *,
        spread_ratio: float | None = None,
        local_ratio: float | None = None,
        crowding: bool = False,
    ) -> Alert:
        if crowding:
            assert self.spread_ is not None
            signal: dict[str, Any] = {
                "signal": "crowding",
                "crowded": p.crowd_count,
                "window": len(p.crowd_flags),
                "crowd_count": self.crowd_count,
                "crowd_ratio": self.crowd_ratio,
                "neighbours": CROWD_NEIGHBOURS,
                "components": int(self.spread_.components.shape[1]),
            }
        elif spread_ratio is None:
            signal = {
                "signal": "near_duplicates",
                "near_duplicates": p.near_count,
                "window": len(p.near),
                "alert_count": self.alert_count,
                "match_keys": self.match_keys,
                "n_hashes": self.n_hashes,
                "quant_step": self.quant_step,
            }
        else:
            assert self.spread_ is not None
            signal = {
                "signal": "concentration",
                "spread_ratio": round(spread_ratio, 4),
                "spread_threshold": self.spread_ratio,
                "local_ratio": None if local_ratio is None else round(local_ratio, 4),
                "local_threshold": LOCAL_RATIO,
                "window": self.spread_window,
                "components": int(self.spread_.components.shape[1]),
            }
        return Alert(
            kind=self.name,
            principal=str(observation.principal),
            model=self.model_name,
            severity=Severity.parse(self.severity),
            query_index=int(observation.query_index),
            time=float(observation.time),
            evidence={
                **signal,
                "rows": p.rows,
                "distinct_rows": p.queries,
                "retries": p.retries,
                "scale": self.scale_source_,
                "atlas": "AML.T0043.001",  # craft adversarial data: black-box optimization
            },
        )

    # -------------------------------------------------------------------------------------- state
    def state(self) -> dict[str, Any]:
        """Per-principal sketches and counters, JSON-ready.

        The grid comes from the baseline and the seed; ranges fitted or warmed up are saved with the
        state. Observations still buffered during the warm-up are not part of it.
        """
        out: dict[str, Any] = {
            "principals": {k: v.to_json() for k, v in self._principals.items()},
            "evicted": self.evicted_,
            "skipped_rows": self.skipped_rows_,
            "alerts": self.alerts_,
        }
        if self.lo_ is not None and self.scale_source_ != "baseline":
            span = 1.0 / (self.inv_width_ * self.quant_step)
            out["ranges"] = {
                "lo": self.lo_.tolist(),
                "hi": (self.lo_ + span).tolist(),
                "source": self.scale_source_,
            }
        return out

    def restore(self, state: dict[str, Any]) -> None:
        """Replace the state with one :meth:`state` returned.

        Raises:
            InputError: the state does not fit this detector (another sketch width, corrupt fields).
        """
        try:
            ranges = state.get("ranges")
            if ranges is not None:
                self._set_ranges(
                    np.asarray(ranges["lo"], dtype=np.float64),
                    np.asarray(ranges["hi"], dtype=np.float64),
                    source=str(ranges["source"]),
                    weights=np.asarray(ranges["weights"], dtype=np.float64),
                )
            principals = OrderedDict(
                (
                    str(k),
                    _Principal.from_json(v, self.history, self.n_hashes, self.window, self.spread_window),
                )
                for k, v in state["principals"].items()
            )
            counters = int(state["evicted"]), int(state["skipped_rows"]), int(state["alerts"])
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise InputError(f"query_attack detector: state does not fit this detector ({err})") from None
        width = None if self.spread_ is None else (self.spread_window, self.spread_.components.shape[1])
        for p in principals.values():  # windows saved under other settings start afresh
            if p.spread_rows is not None and (width is None or p.spread_rows.data.shape[1] != width[1]):
                p.spread_rows = p.spread_classes = None
                p.spread_alerted = False
            if p.crowd_rows is not None and (width is None or p.crowd_rows.data.shape[1] != width[1]):
                p.crowd_rows = None
                p.crowd_flags.clear()
                p.crowd_count, p.crowd_alerted = 0, False
        while len(principals) > self.max_principals:
            principals.popitem(last=False)
        self._principals = principals
        self.evicted_, self.skipped_rows_, self.alerts_ = counters

    def metrics(self) -> dict[str, float]:
        """Counters for reports: principals tracked and flagged, evictions, skipped rows, alerts."""
        return {
            "principals": float(len(self._principals)),
            "flagged": float(
                sum(p.alerted or p.spread_alerted or p.crowd_alerted for p in self._principals.values())
            ),
            "concentration_signal": float(self.spread_ is not None and self.spread_.spread is not None),
            "crowding_signal": float(self.spread_ is not None),
            "evicted": float(self.evicted_),
            "skipped_rows": float(self.skipped_rows_),
            "alerts": float(self.alerts_),
        }


def _rows(inputs: Any) -> np.ndarray | None:
    """The observation's inputs as float64 ``(n, features)``, or None when not numeric."""
    try:
        arr = np.asarray(inputs, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if arr.ndim == 0:
        return None
    if arr.ndim == 1:
        arr = arr[None, :]
    arr = arr.reshape(len(arr), -1)
    if arr.shape[1] == 0 or arr.shape[1] > MAX_FEATURES:
        return None
    return arr


def _count(inputs: Any) -> int:
    try:
        return max(1, len(inputs))
    except TypeError:
        return 1


def _num(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
