"""Model-extraction detection per principal: several signals, one sequential decision.

Thieves come in kinds that a single statistic misses, so the detector watches four things in each
principal's stream of distinct rows, with thresholds learned from the model's own training profile
(the baseline) and its answers to it:

- **Distribution fit** (uniform random inputs, out-of-distribution natural data such as a Knockoff
  Nets public pool): the squared Mahalanobis distance of the row under a Gaussian fitted to the
  reference rows (the sample covariance, so correlation changes with right marginals show), or
  a feature outside the training range. A row is a *hit* above the 99th percentile of held-out
  reference rows read through a noisy sensor (``NOISE_TOLERANCE``: a client whose readings carry
  Gaussian noise of up to a tenth of each feature's spread is not out of distribution).
- **Boundary coverage** (boundary searches, thieves that pick rows the model is unsure about): the
  margin between the model's top two class probabilities. A row is a hit below the ``MARGIN_QUANTILE``
  quantile of benign margins (of the model's answers on held-out rows of the same predicted class when
  ``holdout_proba`` is given, else of the reference).
- **Margin ranks** (pool-based active-learning thieves: ActiveThief's uncertainty, entropy and k-center
  strategies; needs ``holdout_proba``): a two-sample sequential test of the principal's answers against
  the model's answers on held-out rows. Each answer's margin is ranked among the held-out margins of its
  predicted class (``u`` uniform on benign traffic, whatever the class mix); a CUSUM of the
  log-likelihood ratio of a Beta(``MARGIN_THIEF_SHAPE``, 1) rank density against
  Beta(``MARGIN_BENIGN_SHAPE``, 1) fires on streams whose answers pile towards low margins and hold few
  confident ones, the footprint of uncertainty and coverage sampling, spread over the whole distribution
  rather than a fixed low-margin share.
- **Shadow substitute** (pool-based active-learning thieves, whose picks are natural rows chosen by a
  substitute retrained on the labels they hold; needs the model's probabilities): the detector trains
  a substitute of its own on each principal's rows and answers (a softmax regression, a few gradient
  steps per query over the most recent 256 rows) and ranks each new row, before learning it, among
  natural comparison rows of the same predicted class: by its shadow margin (least-margin picks rank
  low), its distance in the shadow's output space to the nearest earlier row (k-center picks rank far)
  and its shadow entropy (entropy picks rank high). A benign client's next row is drawn independently
  of its history, so it is exchangeable with the comparison rows whatever the shadow learnt, for any
  class mix; one sequential test combines the three ranks by conformal e-values over the pooled set
  (exact under that null however the statistics depend on each other), mixed over Beta(a, 1)
  alternatives and restarted (:mod:`mlsecops.monitor._shadow`, ``SHADOW_THRESHOLD``).
- **Minimum-distance distribution** (PRADA: synthetic perturbations around seeds, T-RND, JBDA): the
  distance of each new row to the principal's earlier rows (standardised features), over a bounded
  memory (the most recent rows and a uniform reservoir of the older ones); natural traffic gives a
  bell-shaped set of minimum distances, augmentation gives a spike of small steps beside the seeds'
  large ones. Two tests: the *close-steps* CUSUM counts rows whose minimum distance is below the 1%
  quantile of benign ones, measured at the density of a memory full of one class (a one-class client's
  rows are closer to each other than a per-class reference sample: see
  :func:`~mlsecops.monitor._extraction_calib.dense_near_distances`; on by default), and PRADA's
  Shapiro-Wilk W over the latest
  ``PRADA_WINDOW`` minimum distances below a threshold calibrated on simulated benign streams
  (``prada=True``; off by default, see the parameter).
- **Exact repeats** are collapsed before anything else (a digest set and a distance tolerance), so a
  client that retries a request is neither counted twice nor read as a burst of tiny steps.

Each per-row hit feeds a Bernoulli CUSUM (the log-likelihood ratio of a thief's hit rate against the
calibrated benign rate, accumulated and reset at zero): it crosses ``CUSUM_THRESHOLD`` within a few
dozen rows for a thief and, by Lorden's bound, not before about ``exp(CUSUM_THRESHOLD)`` rows of
benign traffic (the margin-rank CUSUM has its own ``RANK_CUSUM_THRESHOLD``, set from simulated and
real benign streams). The first signal to fire raises one ``extraction`` alert for the principal, with
every statistic in its evidence. Memory is bounded per principal (``memory_rows`` rows of float32)
and in the number of principals (least recently seen evicted first, evictions counted).

What it does not catch (the attacker who read this):

- A thief whose queries are natural in-distribution rows sampled the way benign clients sample them
  is, query by query, a benign client; only the query budget bounds it. That includes an
  active-learning thief's random seed batch, and its first rounds: its substitute is then weak, and its
  picks differ little from natural rows (on the 20-feature tabular benchmark a least-margin or
  output-space k-center thief's first 200 answers rank among the model's held-out answers like natural
  ones). The shadow substitute reads them better (least-margin picks: mean log-rank about -1.3 under
  the shadow against -1.0 for natural rows, over the first 200 queries: a few hundredths of a nat of
  evidence per query and statistic; shadows of other kinds, an online MLP, more gradient steps, lagged
  snapshots, read them no better) but a hundred or more picks are still needed at a false-alarm rate
  near 1e-4: see ``benchmarks/results/monitor-extraction.md``
  for the queries at the alert and what the thief's substitute holds then, against a natural client's
  at the same count. A thief that mixes random natural rows into its rounds dilutes the shadow's
  evidence per query in proportion (the mean log-rank moves towards -1 by the natural share) and pays
  the same share of its queries for rows that teach it no more than a natural client's.
- A benign client whose traffic is the cases the model is least sure about (a review queue sending only
  the less confident half of natural rows) is flagged by the margin-rank signal, by design: its answers
  hold the boundary an uncertainty thief is after, and nothing in them tells the two apart (its answers
  cover every pair of classes, as a thief's do; exempting clients that send no confident rows would
  exempt the uncertainty thief that drops them). Allow-list such clients or serve them label-only.
- A client that re-reads the same item through a noisy sensor sends a perturbation around a seed,
  which is what T-RND does: its near-copies are close steps and it is flagged after a few dozen of
  them (distinct noisy items are not). Perturbations smaller than the tolerated noise do not leave
  the distribution fit, and on heavy-tailed, strongly correlated features (breast cancer) a step of a
  third of a standard deviation is as long as natural neighbours' steps: 7 of 10 T-RND and 4 of 10
  JBDA thieves were flagged within 200 queries there (all on the tabular and digits benchmarks).
- Dilution: each CUSUM drifts upwards only above a break-even hit rate (about one row in ten for the
  distribution fit and close steps, 28% low-margin answers for the boundary); a thief that
  mixes its synthetic rows into enough natural ones stays below it, at that multiple of query cost.
- Sybils: the state is per principal, so a thief that spreads its queries over many identities
  (each below the few rows a signal needs) is not flagged; key issuance and rate limits bound that.
  Flooding with new principals evicts old state (counted in ``evicted_``).
- The thresholds assume the baseline is representative of benign traffic; traffic that drifted from
  it raises distribution-fit hits for everyone (the drift detector's case, not this one's).
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections import OrderedDict
from typing import Any

import numpy as np

from mlsecops.core.errors import ConfigError, InputError, NotFittedError
from mlsecops.core.severity import Severity
from mlsecops.monitor._extraction_calib import dense_near_distances
from mlsecops.monitor._shadow import SHADOW_STATISTICS, SHADOW_THRESHOLD, ShadowCalibration, ShadowState
from mlsecops.monitor.interface import Alert, Observation

__all__ = [
    "CUSUM_THRESHOLD",
    "RANK_CUSUM_THRESHOLD",
    "SHADOW_THRESHOLD",
    "ExtractionDetector",
    "reference_bounds",
    "reference_rows",
]

MIN_REFERENCE_ROWS = 200
"""Fewest reference rows to fit and calibrate on (half fit the model of benign traffic, half measure
its false-alarm rates); fewer would make the 99th percentile a guess."""

FIT_QUANTILE = 0.99
"""A row is a distribution-fit hit above this quantile of the reference's Mahalanobis distances."""

MARGIN_QUANTILE = 0.1
"""A row is a boundary hit when the model's top-two margin is below this quantile of the reference's
margins (10% of benign rows are hits by construction)."""

COVARIANCE_RIDGES = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
"""Ridges tried on the diagonal of the standardised features' covariance; the one with the highest
likelihood of the held-out reference half is kept. A small ridge keeps the covariance invertible when
features are exact combinations of others yet leaves the directions off the data's thin manifold
visible (where perturbation thieves go); few rows per feature need a larger one."""

NOISE_TOLERANCE = 0.1
"""Measurement noise tolerated in benign rows, as a share of each feature's standard deviation (a
sensor's Gaussian noise). The distribution fit models the reference convolved with this noise (its
variance added to the covariance's diagonal) and calibrates its cut on noisy reference rows, so a
client reading natural items through a noisy sensor is not out of distribution; perturbations off the
data's thin manifold smaller than this noise are left to the close-step signal."""

RATE_SLACK = 1.5
"""The benign hit rate assumed is this multiple of the rate measured on the reference: the reference
is the training data, on which the model is more confident and which fits its own Gaussian better than
fresh benign traffic does."""

FIT_RATE_FLOOR = 0.02
"""Smallest benign distribution-fit hit rate assumed (one row in fifty)."""

FIT_THIEF_RATE = 0.25
"""Hit rate the distribution-fit CUSUM is tuned to detect; with the floor above, the statistic drifts
upwards only for streams where about one row in ten or more is a hit."""

MARGIN_THIEF_RATE = 0.45
"""Hit rate the boundary CUSUM is tuned to detect (low-margin answers in most queries)."""

MARGIN_BENIGN_SHAPE = 0.95
"""Benign model of the margin ranks: the rank ``u`` of an answer's top-two margin among the model's
margins on held-out rows is uniform on benign traffic (shape 1 of a Beta(a, 1) density
``a u^(a-1)``); the shape assumed is a little lower (mean log-rank -1.05 where -1 is exact) for
traffic a little less confident than the held-out rows."""

MARGIN_THIEF_SHAPE = 0.6
"""Shape of the Beta(a, 1) rank density the margin-rank CUSUM is tuned to detect: answers piled towards
low margins and few confident ones (mean log-rank -1.67; active-learning thieves that pick by
uncertainty or cover the substitute's output space get there). With the benign shape above the
statistic drifts upwards only when a stream's mean log-rank is below -1.31 (natural traffic: -1.0;
only the less confident half of natural rows: -1.69). A weaker alternative would wait for less, but
the first 200 answers of a least-margin or output-space k-center thief on the 20-feature benchmark
rank like natural ones (mean log-rank -1.15..-1.20 against natural -1.03..-1.25): the Kullback-Leibler
divergence of such a stream from uniform ranks is about 0.02 nats per answer, so no rank test tells
them apart from natural traffic in fewer than a few hundred answers. Tried: shape 0.7 with the
threshold at 9 (7e-4 false alarms on simulated uniform ranks) flagged 5 of 204 real benign
2,000-query clients on tabular (ranks against a finite held-out sample are not exactly uniform)."""

RANK_CUSUM_THRESHOLD = 11.0
"""Level at which the margin-rank CUSUM fires. Under an exact null (uniform ranks) no simulated benign
stream of 2,000 answers crosses it (the unit test simulates it with
:func:`~mlsecops.monitor._extraction_calib.rank_cusum_false_alarm`; the highest of 4,000 reached
7.6); real traffic ranked against a held-out sample of a few hundred rows per class is less uniform:
the highest of 200 benign tabular clients (natural, one- and two-class, noisy; 2,000 queries each)
reached 8.9, so 11 leaves about two nats of headroom over it."""

MARGIN_RANK_FLOOR = 0.02
"""Smallest margin rank used. It bounds what one answer adds to the CUSUM: ranks below it are measured
against the few lowest of a few hundred held-out margins of the class, whose sampling error is the
largest part of the benign statistic's excess over a uniform null (floor 0.005: the highest of 200
benign tabular clients of 2,000 answers reached 12.4, above the threshold then in use; floor 0.02:
8.9)."""

MARGIN_REFERENCE = 1_000
"""Held-out margins kept, sorted, for the ranks (bounded memory, a binary search per answer), in all and
per predicted class."""

MARGIN_CLASS_MIN = 30
"""Fewest held-out answers of a class to rank that class's margins among their own (else among all)."""

CUSUM_THRESHOLD = 12.0
"""Log-likelihood ratio at which a CUSUM fires; by Lorden's bound a benign stream needs about
exp(12) = 160,000 rows on average before a false alarm."""

RANGE_SLACK = 0.1
"""A feature is out of range beyond the training [min, max] widened by this fraction of the range."""

NEAR_QUANTILE = 0.01
"""A row is a close step when its distance to the principal's nearest earlier row is below this
quantile of benign nearest-row distances (measured against a memory full of reference rows, the
densest a benign memory gets)."""

NEAR_THIEF_RATE = 0.25
"""Close-step rate the step CUSUM is tuned to detect (augmentation thieves: most rows)."""

PRADA_WINDOW = 200
"""Minimum distances that Shapiro-Wilk's W is computed over (the latest ones)."""

PRADA_MIN = 40
"""Distinct rows before the minimum-distance test runs (W on a handful of values is noise)."""

PRADA_EVERY = 5
"""Run the (most expensive) minimum-distance test every this many distinct rows."""

PRADA_CONFIRM = 3
"""Consecutive tests below the threshold before the minimum-distance signal fires (W over a few dozen
values is noisy; a thief's stays low)."""

PRADA_MARGIN = 0.03
"""The W threshold sits this far below the lowest W seen on the simulated benign streams."""

PRADA_SIMULATIONS = 20
"""Benign streams simulated from the reference to calibrate the W threshold."""

REPEAT_TOLERANCE = 1e-6
"""Standardised distance under which a row counts as a repeat of an earlier one (formatting noise)."""

DIGESTS = 2_048
"""Recent row digests kept per principal to collapse exact repeats."""

DEFAULT_MEMORY_ROWS = 256
"""Rows remembered per principal for the minimum distances: half the most recent, half a uniform
reservoir of the older ones."""

DEFAULT_MAX_PRINCIPALS = 4_096
"""Principals tracked at once; the least recently seen is evicted beyond (memory is about
memory_rows x features x 4 bytes + 20 KB of digests + the shadow's 256 rows of up to 33 float32
components: ~65 KB for 20 features)."""

_MAX_STATE_FEATURES = 100_000
"""Widest input the detector keeps state for (a row of a 300x300 image); wider rows are skipped."""


_LABEL_COLUMNS = ("label", "y", "Y", "labels", "target")
"""Columns taken for labels (as the data readers do) when a profile names no label and holds one more
column than the model takes."""


def _feature_columns(names: list[str], label: Any, features: int | None) -> list[str]:
    keep = [k for k in names if k != label]
    if features is not None and len(keep) != features:
        keep = [k for k in keep if k not in _LABEL_COLUMNS]
    return keep


def reference_rows(baseline: dict[str, Any], features: int | None = None) -> np.ndarray:
    """The reference rows a baseline holds, as float64 ``(n, features)``.

    A ``mlsecops data profile`` JSON keeps a joint row sample of its numeric columns (``sample``, the
    same rows in every column when no value is missing); a data file read by ``replay.load_baseline``
    arrives as ``{"X": rows}``. ``features``: the model's input width; a profile without a named label
    column that holds one more column drops the one named like a label (``y``, ``label``, ``target``).

    Raises:
        InputError: the baseline holds no usable joint sample (a profile with missing values in its
            sample, no numeric columns, fewer than ``MIN_REFERENCE_ROWS`` rows).
    """
    if "X" in baseline:
        x = np.asarray(baseline["X"], dtype=np.float64)
    else:
        sample = baseline.get("sample")
        label = baseline.get("label")
        if not isinstance(sample, dict) or not sample:
            raise InputError("baseline: the profile holds no row sample (re-run `mlsecops data profile`)")
        names = _feature_columns(list(sample), label, features)
        cols = [np.asarray(sample[k], dtype=np.float64) for k in names]
        if not cols or len({c.shape for c in cols}) != 1:
            raise InputError(
                "baseline: the profile's sample columns differ in length (missing values), so they are "
                "not one joint sample; pass a data file as --baseline instead"
            )
        x = np.column_stack(cols)
    if x.ndim != 2 or x.shape[0] < MIN_REFERENCE_ROWS:
        raise InputError(
            f"baseline: need at least {MIN_REFERENCE_ROWS} reference rows of features, got shape {x.shape}"
        )
    if not np.isfinite(x).all():
        raise InputError("baseline: the reference rows hold NaN or infinite values")
    return x


def reference_bounds(baseline: dict[str, Any], features: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-feature (min, max) of the whole training data, when the baseline records them.

    A profile records exact ranges of every numeric column (its sample only covers 2,000 rows); a data
    file read by ``replay.load_baseline`` carries ``lo``/``hi``. None when absent or of another width.
    """
    if "lo" in baseline and "hi" in baseline:
        lo, hi = np.asarray(baseline["lo"], dtype=np.float64), np.asarray(baseline["hi"], dtype=np.float64)
    else:
        columns = baseline.get("columns")
        if not isinstance(columns, dict):
            return None
        numeric = [k for k, c in columns.items() if isinstance(c, dict) and c.get("type") == "numeric"]
        names = _feature_columns(numeric, baseline.get("label"), features)
        pairs = [(columns[k].get("min"), columns[k].get("max")) for k in names]
        if any(not (_num(a) and _num(b)) for a, b in pairs):
            return None
        lo = np.asarray([a for a, _ in pairs], dtype=np.float64)
        hi = np.asarray([b for _, b in pairs], dtype=np.float64)
    if (
        lo.shape != (features,)
        or hi.shape != (features,)
        or not (np.isfinite(lo).all() and np.isfinite(hi).all())
    ):
        return None
    return lo, hi


def _covariance(fit: np.ndarray, held_out: np.ndarray) -> np.ndarray:
    """Sample covariance of ``fit`` plus the ridge under which ``held_out`` is most likely."""
    d = fit.shape[1]
    emp = np.cov(fit, rowvar=False).reshape(d, d)
    best, best_ll = emp + np.eye(d), -np.inf
    for ridge in COVARIANCE_RIDGES:
        # Never below the tolerated noise's variance: noisy natural rows are natural rows.
        cov = emp + max(ridge, NOISE_TOLERANCE**2) * np.eye(d)
        sign, logdet = np.linalg.slogdet(cov)
        if sign <= 0:
            continue
        m2 = np.einsum("ij,ij->i", held_out, np.linalg.solve(cov, held_out.T).T)
        ll = -0.5 * (logdet + float(m2.mean()))
        if ll > best_ll:
            best, best_ll = cov, ll
    return best


def _llr(p0: float, p1: float) -> tuple[float, float]:
    """Log-likelihood ratios of a hit and of a miss, thief rate ``p1`` against benign rate ``p0``."""
    return math.log(p1 / p0), math.log((1 - p1) / (1 - p0))


def _shapiro_w(values: np.ndarray) -> float:
    """Shapiro-Wilk's W; 0 for a degenerate set (every distance the same: a lattice, not traffic)."""
    from scipy.stats import shapiro

    if np.ptp(values) <= 1e-12 * max(float(np.abs(values).max()), 1e-12):
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(shapiro(values).statistic)


class _Principal:
    """What the detector remembers of one principal: bounded by construction."""

    __slots__ = (
        "classes",
        "cusum_fit",
        "cusum_margin",
        "cusum_near",
        "cusum_rank",
        "digests",
        "distinct",
        "fit_hits",
        "flagged",
        "log_rank",
        "margin_hits",
        "margins",
        "mind",
        "mind_count",
        "near_hits",
        "recent",
        "recent_count",
        "repeats",
        "reservoir",
        "reservoir_seen",
        "shadow",
        "w_last",
        "w_low",
    )

    def __init__(self, features: int, memory_rows: int, n_classes: int) -> None:
        half = max(memory_rows // 2, 1)
        self.recent = np.zeros((half, features), dtype=np.float32)
        self.recent_count = 0
        self.reservoir = np.zeros((half, features), dtype=np.float32)
        self.reservoir_seen = 0
        self.digests: OrderedDict[bytes, None] = OrderedDict()
        self.mind = np.zeros(PRADA_WINDOW, dtype=np.float64)
        self.mind_count = 0
        self.cusum_fit = 0.0
        self.cusum_margin = 0.0
        self.cusum_near = 0.0
        self.cusum_rank = 0.0
        self.log_rank = 0.0
        self.near_hits = 0
        self.fit_hits = 0
        self.margin_hits = 0
        self.margins = 0
        self.distinct = 0
        self.repeats = 0
        self.classes = np.zeros(max(n_classes, 1), dtype=np.int64)
        self.flagged = False
        self.w_last = 1.0
        self.w_low = 0
        self.shadow: ShadowState | None = None

    def stored(self) -> np.ndarray:
        half = self.recent.shape[0]
        return np.concatenate(
            [self.recent[: min(self.recent_count, half)], self.reservoir[: min(self.reservoir_seen, half)]]
        )

    def remember(self, z: np.ndarray, rng: np.random.Generator) -> None:
        half = self.recent.shape[0]
        slot = self.recent_count % half
        if self.recent_count >= half:
            # The row leaving the recent ring enters the reservoir (Algorithm R over the older rows).
            old = self.recent[slot].copy()
            if self.reservoir_seen < half:
                self.reservoir[self.reservoir_seen] = old
            else:
                j = int(rng.integers(0, self.reservoir_seen + 1))
                if j < half:
                    self.reservoir[j] = old
            self.reservoir_seen += 1
        self.recent[slot] = z
        self.recent_count += 1

    def to_json(self) -> dict[str, Any]:
        return {
            "recent": self.recent.tolist(),
            "recent_count": self.recent_count,
            "reservoir": self.reservoir.tolist(),
            "reservoir_seen": self.reservoir_seen,
            "digests": [d.hex() for d in self.digests],
            "mind": self.mind.tolist(),
            "mind_count": self.mind_count,
            "cusum_fit": self.cusum_fit,
            "cusum_margin": self.cusum_margin,
            "cusum_near": self.cusum_near,
            "cusum_rank": self.cusum_rank,
            "log_rank": self.log_rank,
            "near_hits": self.near_hits,
            "fit_hits": self.fit_hits,
            "margin_hits": self.margin_hits,
            "margins": self.margins,
            "distinct": self.distinct,
            "repeats": self.repeats,
            "classes": self.classes.tolist(),
            "flagged": self.flagged,
            "w_last": self.w_last,
            "w_low": self.w_low,
            "shadow": None if self.shadow is None else self.shadow.to_json(),
        }

    @classmethod
    def from_json(
        cls, data: dict[str, Any], features: int, memory_rows: int, n_classes: int, shadow_width: int = 0
    ) -> _Principal:
        p = cls(features, memory_rows, n_classes)
        p.recent[...] = np.asarray(data["recent"], dtype=np.float32).reshape(p.recent.shape)
        p.reservoir[...] = np.asarray(data["reservoir"], dtype=np.float32).reshape(p.reservoir.shape)
        p.mind[...] = np.asarray(data["mind"], dtype=np.float64).reshape(p.mind.shape)
        p.classes[...] = np.asarray(data["classes"], dtype=np.int64).reshape(p.classes.shape)
        p.digests = OrderedDict((bytes.fromhex(d), None) for d in data["digests"][-DIGESTS:])
        for key in (
            "recent_count",
            "reservoir_seen",
            "mind_count",
            "fit_hits",
            "margin_hits",
            "margins",
            "near_hits",
            "w_low",
        ):
            setattr(p, key, int(data[key]))
        for key in ("distinct", "repeats"):
            setattr(p, key, int(data[key]))
        p.cusum_fit, p.cusum_margin = float(data["cusum_fit"]), float(data["cusum_margin"])
        p.cusum_near = float(data["cusum_near"])
        p.cusum_rank, p.log_rank = float(data["cusum_rank"]), float(data["log_rank"])
        p.flagged, p.w_last = bool(data["flagged"]), float(data["w_last"])
        shadow = data.get("shadow")
        if shadow is not None and shadow_width:
            p.shadow = ShadowState.from_json(shadow, shadow_width, n_classes)
        return p


class ExtractionDetector:
    """Flags principals whose query stream looks like model extraction (implements ``Detector``).

    Args:
        memory_rows: rows remembered per principal for the minimum-distance test.
        max_principals: principals tracked at once (least recently seen evicted beyond).
        cusum_threshold: log-likelihood ratio at which a sequential test fires.
        rank_threshold: level at which the margin-rank CUSUM fires (its null is exact: see
            ``RANK_CUSUM_THRESHOLD``).
        fit_quantile: reference quantile of the Mahalanobis distance above which a row is a hit.
        margin_quantile: reference quantile of the top-two margin below which a row is a hit.
        shadow: run the shadow-substitute test (needs the model's probabilities): a softmax regression
            trained on each principal's own rows and answers ranks each new row's margin, output-space
            coverage and entropy among natural comparison rows of its class (see
            :mod:`mlsecops.monitor._shadow`).
        shadow_threshold: level (nats) at which the shadow-substitute test fires.
        prada: also run PRADA's minimum-distance (Shapiro-Wilk) test. Off by default: on heavy-tailed
            features (breast cancer) benign streams drawn from outside the reference give W below any
            threshold that still separates thieves, while the close-steps CUSUM flags the same
            perturbation thieves without those false alarms.
        severity: severity of the alert.
        seed: seed of the calibration's simulations and the reservoirs.

    Call :meth:`fit` with reference rows (the training profile's sample) and the model's probabilities
    on them before :meth:`observe`.
    """

    name = "extraction"

    def __init__(
        self,
        *,
        memory_rows: int = DEFAULT_MEMORY_ROWS,
        max_principals: int = DEFAULT_MAX_PRINCIPALS,
        cusum_threshold: float = CUSUM_THRESHOLD,
        rank_threshold: float = RANK_CUSUM_THRESHOLD,
        fit_quantile: float = FIT_QUANTILE,
        margin_quantile: float = MARGIN_QUANTILE,
        prada: bool = False,
        shadow: bool = True,
        shadow_threshold: float = SHADOW_THRESHOLD,
        severity: str = "high",
        seed: int = 0,
    ) -> None:
        self.memory_rows = memory_rows
        self.max_principals = max_principals
        self.cusum_threshold = cusum_threshold
        self.rank_threshold = rank_threshold
        self.fit_quantile = fit_quantile
        self.margin_quantile = margin_quantile
        self.prada = prada
        self.shadow = shadow
        self.shadow_threshold = shadow_threshold
        self.severity = severity
        self.seed = seed

    # ----------------------------------------------------------------------------------- calibration
    def _check_params(self) -> None:
        checks = [
            (
                _int(self.memory_rows) and 8 <= self.memory_rows <= 65_536,
                "memory_rows",
                "8..65536",
            ),
            (
                _int(self.max_principals) and 1 <= self.max_principals <= 10_000_000,
                "max_principals",
                "1..10000000",
            ),
            (
                _num(self.cusum_threshold) and 1.0 <= self.cusum_threshold <= 100.0,
                "cusum_threshold",
                "1..100",
            ),
            (
                _num(self.rank_threshold) and 1.0 <= self.rank_threshold <= 100.0,
                "rank_threshold",
                "1..100",
            ),
            (_num(self.fit_quantile) and 0.5 <= self.fit_quantile < 1.0, "fit_quantile", "[0.5, 1)"),
            (_num(self.margin_quantile) and 0.0 < self.margin_quantile <= 0.5, "margin_quantile", "(0, 0.5]"),
            (isinstance(self.prada, bool), "prada", "true or false"),
            (isinstance(self.shadow, bool), "shadow", "true or false"),
            (
                _num(self.shadow_threshold) and 1.0 <= self.shadow_threshold <= 100.0,
                "shadow_threshold",
                "1..100",
            ),
            (self.severity in ("info", "low", "medium", "high", "critical"), "severity", "info..critical"),
            (_int(self.seed), "seed", "an integer"),
        ]
        for ok, name, expected in checks:
            if not ok:
                raise ConfigError(
                    f"extraction detector: {name} must be {expected}, got {getattr(self, name)!r}"
                )

    def fit(
        self,
        reference: np.ndarray,
        proba: np.ndarray | None,
        *,
        lo: np.ndarray | None = None,
        hi: np.ndarray | None = None,
        holdout_proba: np.ndarray | None = None,
    ) -> ExtractionDetector:
        """Learn benign traffic from reference rows and the model's answers to them; calibrate thresholds.

        Half the rows (shuffled) fit the mean, scale and covariance; the other half measure the benign
        hit rates and quantiles, so the thresholds are not measured on the rows that fitted them.

        Args:
            reference: ``(n, features)`` rows of the training data (the baseline's sample).
            proba: the model's class probabilities on ``reference`` (None: no boundary signal).
            lo: per-feature minimum of the whole training data (default: of ``reference``).
            hi: per-feature maximum of the whole training data (default: of ``reference``).
            holdout_proba: the model's class probabilities on rows it was not trained on (a validation
                split, or a day of live traffic), at least ``MIN_REFERENCE_ROWS``: the benign margins
                the margin-rank signal compares each principal's answers with. None: that signal is off,
                because a model is more confident on its training rows than on fresh ones (an MLP on
                digits: natural traffic ranks as low against its training margins as a thief's would).

        Raises:
            ConfigError: a parameter is out of range.
            InputError: too few rows, non-finite values, or probabilities of the wrong shape.
        """
        self._check_params()
        x = np.asarray(reference, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] < MIN_REFERENCE_ROWS or not np.isfinite(x).all():
            raise InputError(
                f"extraction detector: need {MIN_REFERENCE_ROWS}+ finite reference rows, got {x.shape}"
            )
        if x.shape[1] > _MAX_STATE_FEATURES:
            raise InputError(
                f"extraction detector: rows of {x.shape[1]} features are wider than {_MAX_STATE_FEATURES}"
            )
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(x.shape[0])
        a, b = order[: x.shape[0] // 2], order[x.shape[0] // 2 :]
        self.features_ = x.shape[1]
        self.mean_ = x[a].mean(axis=0)
        std = x[a].std(axis=0)
        self.scale_ = np.where(std > 1e-12, std, 1.0)
        za = (x[a] - self.mean_) / self.scale_
        # The sample covariance with a small ridge, not a shrunk one: shrinkage towards the identity hides
        # exactly what perturbation thieves do (leave the thin manifold that correlated features span).
        zb = (x[b] - self.mean_) / self.scale_
        cov = _covariance(za, zb)
        # Whitening by the Cholesky factor of the precision: ||W z||^2 is the squared Mahalanobis distance.
        evals, evecs = np.linalg.eigh(cov)
        self.whiten_ = (evecs / np.sqrt(np.maximum(evals, 1e-9))).T
        lo_ = np.asarray(lo if lo is not None else x.min(axis=0), dtype=np.float64)
        hi_ = np.asarray(hi if hi is not None else x.max(axis=0), dtype=np.float64)
        span = hi_ - lo_
        self.lo_, self.hi_ = lo_ - RANGE_SLACK * span, hi_ + RANGE_SLACK * span
        # The cut on held-out rows read through the noisiest tolerated sensor (constant features stay).
        noisy = zb + rng.normal(size=zb.shape) * NOISE_TOLERANCE * (std > 1e-12)
        d2 = np.einsum("ij,ij->i", noisy @ self.whiten_.T, noisy @ self.whiten_.T)
        self.fit_cut_ = float(np.quantile(d2, self.fit_quantile))
        hits = (d2 > self.fit_cut_) | ((x[b] < self.lo_) | (x[b] > self.hi_)).any(axis=1)
        self.fit_rate_ = float(min(max(RATE_SLACK * hits.mean(), FIT_RATE_FLOOR), FIT_THIEF_RATE / 2))
        self.fit_llr_ = _llr(self.fit_rate_, FIT_THIEF_RATE)
        # Benign nearest-row distances at the densest memory a benign client fills: memory_rows rows of
        # one class when the model's answers are known (a client whose population is one class).
        labels = np.zeros(x.shape[0], dtype=np.int64)
        if proba is not None and np.shape(proba) == (x.shape[0], np.shape(proba)[-1]):
            labels = np.asarray(proba).argmax(axis=1)
        z_all = np.concatenate([za, zb])
        near = dense_near_distances(z_all, np.concatenate([labels[a], labels[b]]), self.memory_rows, rng)
        self.near_cut_ = float(np.quantile(near, NEAR_QUANTILE))
        self.near_rate_ = float(
            min(max(RATE_SLACK * float((near < self.near_cut_).mean()), FIT_RATE_FLOOR), NEAR_THIEF_RATE / 2)
        )
        self.near_llr_ = _llr(self.near_rate_, NEAR_THIEF_RATE)
        self.n_classes_ = 0
        self.margin_cut_ = None
        if proba is not None:
            p = np.asarray(proba, dtype=np.float64)
            if p.ndim != 2 or p.shape[0] != x.shape[0] or p.shape[1] < 2:
                raise InputError(
                    f"extraction detector: probabilities of shape {p.shape} for {x.shape[0]} rows"
                )
            self.n_classes_ = p.shape[1]
            margins = _margins(p[b])
            self.margin_cut_ = float(np.quantile(margins, self.margin_quantile))
            rate = float((margins < self.margin_cut_).mean())
            self.margin_rate_ = float(min(max(RATE_SLACK * rate, 0.05), MARGIN_THIEF_RATE / 2))
            self.margin_llr_ = _llr(self.margin_rate_, MARGIN_THIEF_RATE)
        self.margin_ref_: np.ndarray | None = None
        self.class_margin_ref_: list[np.ndarray] = []
        a0, a1 = MARGIN_BENIGN_SHAPE, MARGIN_THIEF_SHAPE
        self.rank_llr_ = (math.log(a1 / a0), a1 - a0)
        if holdout_proba is not None and self.n_classes_:
            h = np.asarray(holdout_proba, dtype=np.float64)
            if h.ndim != 2 or h.shape[0] < MIN_REFERENCE_ROWS or h.shape[1] != self.n_classes_:
                raise InputError(
                    f"extraction detector: held-out probabilities of shape {h.shape}; need "
                    f"{MIN_REFERENCE_ROWS}+ rows of {self.n_classes_} classes"
                )
            if not np.isfinite(h).all():
                raise InputError("extraction detector: held-out probabilities hold NaN or infinite values")
            # Ranks within the answer's predicted class: some classes are harder than others, and a
            # client whose population is one hard class is not a thief.
            held_m, held_c = _margins(h), h.argmax(axis=1)
            self.margin_ref_ = _sorted_sample(held_m)
            self.class_margin_ref_ = [
                _sorted_sample(held_m[held_c == c])
                if (held_c == c).sum() >= MARGIN_CLASS_MIN
                else self.margin_ref_
                for c in range(self.n_classes_)
            ]
        self.w_cut_ = self._calibrate_w(zb, rng) if self.prada else 0.0
        # The shadow substitute's comparison rows: the calibration half with the model's answers (its own
        # generator, so the other calibrations do not move with it).
        self.shadow_: ShadowCalibration | None = None
        if self.shadow and self.n_classes_:
            self.shadow_ = ShadowCalibration(
                za, zb, labels[b], self.n_classes_, np.random.default_rng(self.seed + 1)
            )
        self.reset()
        return self

    def _calibrate_w(self, zb: np.ndarray, rng: np.random.Generator) -> float:
        """Lowest W that stays for PRADA_CONFIRM tests on simulated benign streams, less a margin."""
        lowest = 1.0
        n = min(zb.shape[0], PRADA_WINDOW + PRADA_MIN)
        for _ in range(PRADA_SIMULATIONS):
            rows = zb[rng.permutation(zb.shape[0])[:n]]
            d = np.sqrt(((rows[:, None, :] - rows[None, :, :]) ** 2).sum(axis=2))
            mind = np.array([d[i, :i].min() for i in range(1, n)])
            ws = [
                _shapiro_w(mind[max(0, end - PRADA_WINDOW) : end])
                for end in range(PRADA_MIN, mind.size + 1, PRADA_EVERY)
            ]
            for i in range(len(ws) - PRADA_CONFIRM + 1):
                lowest = min(lowest, max(ws[i : i + PRADA_CONFIRM]))
        return max(lowest - PRADA_MARGIN, 0.5)

    def reset(self) -> None:
        """Forget every principal (the calibration stays)."""
        self._principals: OrderedDict[str, _Principal] = OrderedDict()
        self._rng = np.random.default_rng(self.seed)
        self.evicted_ = 0
        self.skipped_rows_ = 0
        self.alerts_ = 0

    # ------------------------------------------------------------------------------------- observing
    def _principal(self, key: str) -> _Principal:
        p = self._principals.get(key)
        if p is None:
            p = _Principal(self.features_, self.memory_rows, self.n_classes_)
            self._principals[key] = p
            while len(self._principals) > self.max_principals:
                self._principals.popitem(last=False)
                self.evicted_ += 1
        else:
            self._principals.move_to_end(key)
        return p

    def observe(self, observation: Observation) -> list[Alert]:
        """Feed one request; return an ``extraction`` alert the first time the principal's stream fires.

        Rows that are not finite or of the wrong width are skipped and counted (``skipped_rows_``).
        """
        if not hasattr(self, "features_"):
            raise NotFittedError("ExtractionDetector.fit must run before observe")
        x = np.asarray(observation.inputs)
        if x.dtype.kind not in "biuf" or x.size == 0:
            self.skipped_rows_ += int(x.shape[0]) if x.ndim else 1
            return []
        x = x.reshape(x.shape[0], -1).astype(np.float64, copy=False)
        if x.shape[1] != self.features_:
            self.skipped_rows_ += x.shape[0]
            return []
        outputs = _outputs(observation.outputs, x.shape[0], self.n_classes_)
        p = self._principal(f"{observation.model}\x00{observation.principal}")
        fired: list[str] = []
        for i in range(x.shape[0]):
            if not np.isfinite(x[i]).all():
                self.skipped_rows_ += 1
                continue
            fired += self._row(p, x[i], None if outputs is None else outputs[i])
        if not fired or p.flagged:
            return []
        p.flagged = True
        self.alerts_ += 1
        return [
            Alert(
                kind="extraction",
                principal=observation.principal,
                model=observation.model,
                severity=Severity[self.severity.upper()],
                query_index=observation.query_index,
                time=observation.time,
                evidence=self._evidence(p, sorted(set(fired))),
            )
        ]

    def _row(self, p: _Principal, row: np.ndarray, out: np.ndarray | None) -> list[str]:
        digest = hashlib.blake2b(row.tobytes(), digest_size=16).digest()
        if digest in p.digests:
            p.digests.move_to_end(digest)
            p.repeats += 1
            return []
        p.digests[digest] = None
        if len(p.digests) > DIGESTS:
            p.digests.popitem(last=False)
        z = (row - self.mean_) / self.scale_
        fired: list[str] = []
        stored = p.stored()
        if stored.shape[0]:
            diff = stored - z.astype(np.float32)
            dist = math.sqrt(float(np.einsum("ij,ij->i", diff, diff).min()))
            if dist <= REPEAT_TOLERANCE * math.sqrt(self.features_):
                p.repeats += 1
                return []
            p.mind[p.mind_count % PRADA_WINDOW] = dist
            p.mind_count += 1
            close = dist < self.near_cut_
            p.near_hits += close
            p.cusum_near = max(0.0, p.cusum_near + self.near_llr_[0 if close else 1])
            if p.cusum_near >= self.cusum_threshold:
                fired.append("close_steps")
        p.remember(z.astype(np.float32), self._rng)
        p.distinct += 1
        # distribution fit
        w = self.whiten_ @ z
        hit = float(w @ w) > self.fit_cut_ or bool(((row < self.lo_) | (row > self.hi_)).any())
        p.fit_hits += hit
        p.cusum_fit = max(0.0, p.cusum_fit + self.fit_llr_[0 if hit else 1])
        if p.cusum_fit >= self.cusum_threshold:
            fired.append("distribution_fit")
        # boundary coverage: with held-out answers, ranks within the predicted class
        if out is not None and self.margin_cut_ is not None:
            top2 = np.partition(out, -2)[-2:]
            margin = float(top2[1] - top2[0])
            cls = int(np.argmax(out))
            p.margins += 1
            p.classes[cls] += 1
            if self.margin_ref_ is not None:
                ref = self.class_margin_ref_[cls]
                # Mid-rank of the margin among the benign held-out margins (ties split evenly).
                rank = (
                    int(np.searchsorted(ref, margin, "left")) + int(np.searchsorted(ref, margin, "right"))
                ) / (2 * ref.size)
                low = rank < self.margin_quantile
                log_u = math.log(min(max(rank, MARGIN_RANK_FLOOR), 1.0))
                p.log_rank += log_u
                p.cusum_rank = max(0.0, p.cusum_rank + self.rank_llr_[0] + self.rank_llr_[1] * log_u)
                if p.cusum_rank >= self.rank_threshold:
                    fired.append("margin_rank")
            else:
                low = margin < self.margin_cut_
            if self.shadow_ is not None:
                if p.shadow is None:
                    p.shadow = ShadowState(self.shadow_.width, self.n_classes_)
                p.shadow.observe(self.shadow_, self.shadow_.project(z), cls)
                fired += p.shadow.fired(self.shadow_threshold)
            p.margin_hits += low
            p.cusum_margin = max(0.0, p.cusum_margin + self.margin_llr_[0 if low else 1])
            if p.cusum_margin >= self.cusum_threshold:
                fired.append("boundary")
        # minimum-distance distribution (PRADA)
        if self.prada and p.mind_count >= PRADA_MIN and p.distinct % PRADA_EVERY == 0:
            window = p.mind[: min(p.mind_count, PRADA_WINDOW)]
            p.w_last = _shapiro_w(window)
            p.w_low = p.w_low + 1 if p.w_last < self.w_cut_ else 0
            if p.w_low >= PRADA_CONFIRM:
                fired.append("min_distance")
        return fired

    def _evidence(self, p: _Principal, fired: list[str]) -> dict[str, Any]:
        counts = p.classes[p.classes > 0] / max(int(p.classes.sum()), 1)
        entropy = max(float(-(counts * np.log(counts)).sum()), 0.0) if counts.size else 0.0
        return {
            "signals": fired,
            "distinct_rows": p.distinct,
            "repeats": p.repeats,
            "distribution_fit": {
                "cusum": round(p.cusum_fit, 3),
                "hit_rate": round(p.fit_hits / max(p.distinct, 1), 4),
                "benign_rate": round(self.fit_rate_, 4),
                "mahalanobis2_cut": round(self.fit_cut_, 3),
            },
            "boundary": {
                "cusum": round(p.cusum_margin, 3),
                "low_margin_rate": round(p.margin_hits / max(p.margins, 1), 4),
                "benign_rate": round(getattr(self, "margin_rate_", 0.0), 4),
                "margin_cut": None if self.margin_cut_ is None else round(self.margin_cut_, 4),
                "class_entropy": round(entropy, 4),
            },
            "margin_rank": {
                "cusum": round(p.cusum_rank, 3),
                "mean_log_rank": round(p.log_rank / max(p.margins, 1), 4),
                "benign_mean_log_rank": round(-1 / MARGIN_BENIGN_SHAPE, 4),
            },
            "close_steps": {
                "cusum": round(p.cusum_near, 3),
                "close_rate": round(p.near_hits / max(p.mind_count, 1), 4),
                "benign_rate": round(self.near_rate_, 4),
                "distance_cut": round(self.near_cut_, 4),
            },
            "min_distance": {"shapiro_w": round(p.w_last, 4), "w_cut": round(self.w_cut_, 4)},
            "shadow": {
                "statistic": 0.0 if p.shadow is None else round(float(p.shadow.log_mix[0]), 3),
                "threshold": self.shadow_threshold,
                # Per statistic: the mean log-rank of the principal's rows (natural rows: -1).
                "mean_log_rank": {
                    name: 0.0
                    if p.shadow is None
                    else round(float(p.shadow.log_rank[t]) / max(p.shadow.ranked, 1), 4)
                    for t, name in enumerate(SHADOW_STATISTICS)
                },
                "benign_mean_log_rank": -1.0,
            },
            "cusum_threshold": self.cusum_threshold,
            "rank_threshold": self.rank_threshold,
        }

    # -------------------------------------------------------------------------------------- state
    def state(self) -> dict[str, Any]:
        """Per-principal state and counters, JSON-ready (the calibration is not part of it: refit)."""
        return {
            "principals": {k: v.to_json() for k, v in self._principals.items()},
            "evicted": self.evicted_,
            "skipped_rows": self.skipped_rows_,
            "alerts": self.alerts_,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Replace the per-principal state with one :meth:`state` returned (same calibration).

        Raises:
            InputError: the state does not fit this detector's shapes.
        """
        if not hasattr(self, "features_"):
            raise NotFittedError("ExtractionDetector.fit must run before restore")
        try:
            principals = OrderedDict(
                (
                    str(k),
                    _Principal.from_json(
                        v,
                        self.features_,
                        self.memory_rows,
                        self.n_classes_,
                        0 if self.shadow_ is None else self.shadow_.width,
                    ),
                )
                for k, v in state["principals"].items()
            )
            counters = int(state["evicted"]), int(state["skipped_rows"]), int(state["alerts"])
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(f"extraction detector: state does not fit this detector ({err})") from None
        self._principals = principals
        while len(self._principals) > self.max_principals:
            self._principals.popitem(last=False)
        self.evicted_, self.skipped_rows_, self.alerts_ = counters

    def metrics(self) -> dict[str, float]:
        """Counters for reports: principals tracked and flagged, evictions, skipped rows."""
        return {
            "principals": float(len(self._principals)),
            "flagged": float(sum(p.flagged for p in self._principals.values())),
            "evicted": float(self.evicted_),
            "skipped_rows": float(self.skipped_rows_),
            "alerts": float(self.alerts_),
        }


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _num(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _margins(p: np.ndarray) -> np.ndarray:
    top2 = np.sort(p, axis=1)[:, -2:]
    return np.asarray(top2[:, 1] - top2[:, 0])


def _sorted_sample(values: np.ndarray) -> np.ndarray:
    """At most ``MARGIN_REFERENCE`` evenly spaced order statistics of ``values``, sorted."""
    v = np.sort(values)
    keep = np.linspace(0, v.size - 1, min(MARGIN_REFERENCE, v.size)).round().astype(int)
    return np.asarray(v[keep])


def _outputs(outputs: np.ndarray | None, n: int, n_classes: int) -> np.ndarray | None:
    """The outputs as ``(n, n_classes)`` finite probabilities, or None when unusable (skip the signal)."""
    if outputs is None or n_classes < 2:
        return None
    out = np.asarray(outputs)
    if out.dtype.kind not in "biuf" or out.shape != (n, n_classes):
        return None
    out = out.astype(np.float64, copy=False)
    return out if np.isfinite(out).all() else None
