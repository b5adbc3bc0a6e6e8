"""Simulated model thieves and benign clients, for the extraction detector's tests and benchmark.

Library-internal: nothing here is part of the public API. A :class:`World` is a victim model with the
data around it: its training data (the baseline the guard profiles), a pool of natural in-distribution
rows the training never saw (what benign clients and in-distribution thieves draw from), and a public
pool from another distribution (what a Knockoff-Nets thief owns). Worlds: ``tabular`` (20 features, 5
classes, ``make_classification``), ``digits`` (8x8 images, 10 classes) and ``breast_cancer`` (30
features, 2 classes, very different feature scales).

Thief kinds, each with its parameters drawn from the seed (so a benchmark over held-out seeds meets
variants the thresholds were not tuned on):

- ``trnd``: PRADA's T-RND, random sign perturbations of a random subset of features around a few seeds;
- ``jbda``: Papernot's Jacobian-based augmentation, steps along the sign of a substitute's gradient;
- ``uniform``: rows uniform in (a part of) the box the features span;
- ``knockoff``: natural rows of another distribution, raw or moved to the training marginals;
- ``active_margin``, ``active_entropy``, ``active_kcenter``, ``active_coreset``: pool-based active
  learning as ActiveThief runs it (natural rows of the training distribution, a random seed batch, a
  neural substitute retrained after each round, picks by least margin, largest entropy, k-center in the
  substitute's output space, or k-center in the input space);
- ``active_small``: least-margin or entropy picks from a small seed batch (10-20 rows) in small rounds
  (10-15 rows), retraining more often;
- ``active_batch``: least-margin or output-space k-center picks in large fixed rounds (a seed batch of
  100-200 rows, then rounds of 100), retraining seldom;
- ``active_mixed``: least-margin or output-space k-center picks with a share (30-60%, per thief) of
  random natural rows mixed into every round, shuffled: an adaptive thief diluting its picks;
- ``bisect``: boundary search between pairs of natural rows the victim labels differently.

Benign kinds: ``natural`` (fresh in-distribution rows), ``retry`` (re-sends identical requests),
``burst`` (batches of rows and bursts in time), ``skewed`` (a population of one or two classes),
``one_class`` (a population of a single class) and ``noisy`` (natural rows read through a noisy sensor:
Gaussian noise of 1-10% of each feature's spread added to every row); apart from them ``hard``, a
review queue of the cases the model is least sure about.
A stream is a list of requests ``(time, rows)``; adaptive thieves query the victim while they build it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "BENIGN_KINDS",
    "HARD_KIND",
    "THIEF_KINDS",
    "Request",
    "World",
    "benign_stream",
    "make_world",
    "thief_picks",
    "thief_stream",
]

THIEF_KINDS = (
    "trnd",
    "jbda",
    "uniform",
    "knockoff",
    "active_margin",
    "active_entropy",
    "active_kcenter",
    "active_coreset",
    "active_small",
    "active_batch",
    "active_mixed",
    "bisect",
)
BENIGN_KINDS = ("natural", "retry", "burst", "skewed", "one_class", "noisy")
HARD_KIND = "hard"
"""A benign client of another sort, kept apart from :data:`BENIGN_KINDS`: a review queue that sends only
the cases the model is unsure about (natural rows from the less confident half of the victim's
answers). Its answers carry the boundary information an uncertainty-sampling thief is after, and the
margin-rank signal flags it by design (see ``extraction.MARGIN_THIEF_SHAPE``)."""

_SENSOR_NOISE = (0.01, 0.1)
"""Range of the ``noisy`` client's noise, as a share of each feature's standard deviation (drawn per
client)."""

Request = tuple[float, np.ndarray]
"""(unix seconds, rows of shape (n, d))."""


@dataclass(frozen=True)
class World:
    """A victim model and the data around it."""

    name: str
    x_train: np.ndarray
    """The model's training data (what ``mlsecops data profile`` profiles: the baseline)."""
    y_train: np.ndarray
    x_pool: np.ndarray
    """Natural in-distribution rows, disjoint from the training rows."""
    x_public: np.ndarray
    """Natural rows of another distribution (a thief's public pool)."""
    model: object
    """A fitted scikit-learn classifier."""

    def proba(self, x: np.ndarray) -> np.ndarray:
        """The victim's class probabilities."""
        out: np.ndarray = self.model.predict_proba(np.asarray(x, dtype=np.float64))  # type: ignore[attr-defined]
        return out

    @property
    def lo(self) -> np.ndarray:
        """Smallest value of each feature in the training data."""
        return np.asarray(self.x_train.min(axis=0))

    @property
    def hi(self) -> np.ndarray:
        """Largest value of each feature in the training data."""
        return np.asarray(self.x_train.max(axis=0))


def make_world(name: str = "tabular", *, seed: int = 0, small: bool = False) -> World:
    """Build a victim world (deterministic for a seed).

    Args:
        name: ``tabular``, ``digits`` or ``breast_cancer``.
        seed: seed of the data split and the model.
        small: a quarter of the tabular rows (for fast tests).
    """
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    if name == "tabular":
        from sklearn.datasets import make_classification

        x, y = make_classification(
            n_samples=4_000 if small else 16_000, n_features=20, n_informative=10, n_redundant=4, n_classes=5,
            n_clusters_per_class=2, random_state=seed,
        )  # fmt: skip
        n_train = 1_500 if small else 6_000
        # Another generator with another structure, same scale: a public data set of the same kind.
        public, _ = make_classification(
            n_samples=6_000, n_features=20, n_informative=6, n_redundant=8, n_classes=3,
            random_state=seed + 10_000,
        )  # fmt: skip
    elif name == "digits":
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        n_train = 1_000
        # Natural images of another distribution: the digits mirrored and rotated, and inverted.
        imgs = x.reshape(-1, 8, 8)
        public = np.concatenate(
            [np.rot90(imgs, 1, axes=(1, 2)).reshape(-1, 64), (16.0 - x), imgs[:, :, ::-1].reshape(-1, 64)]
        )
    elif name == "breast_cancer":
        from sklearn.datasets import load_breast_cancer

        x, y = load_breast_cancer(return_X_y=True)
        n_train = 300
        # Rows whose features are drawn apart from each other: every marginal is right, the joint is not.
        public = np.column_stack([rng.permutation(np.tile(col, 4)) for col in x.T])
    else:
        raise ValueError(f"unknown world {name!r}")
    x = np.asarray(x, dtype=np.float64)
    order = rng.permutation(len(x))
    train, pool = order[:n_train], order[n_train:]
    model = make_pipeline(
        StandardScaler(), MLPClassifier(hidden_layer_sizes=(64,), max_iter=400, random_state=seed)
    )
    model.fit(x[train], y[train])
    return World(name, x[train], y[train], x[pool], np.asarray(public, dtype=np.float64), model)


def _times(rng: np.random.Generator, n: int, start: float, *, bursty: bool = False) -> np.ndarray:
    if not bursty:
        return start + np.cumsum(rng.exponential(2.0, n))
    gaps = np.where(rng.random(n) < 0.05, rng.exponential(60.0, n), rng.exponential(0.01, n))
    return start + np.cumsum(gaps)


def _as_requests(rows: np.ndarray, times: np.ndarray) -> list[Request]:
    return [(float(t), r[None, :]) for t, r in zip(times, rows, strict=True)]


def benign_stream(world: World, kind: str, n: int, *, seed: int, start: float = 1.7e9) -> list[Request]:
    """A benign client's requests: ``n`` natural in-distribution rows (more requests with retries).

    Args:
        world: the victim world.
        kind: one of :data:`BENIGN_KINDS` or :data:`HARD_KIND`.
        n: distinct rows the client sends.
        seed: seed of the client.
        start: time of the first request.
    """
    rng = np.random.default_rng(seed)
    pool = world.x_pool
    if kind == HARD_KIND:
        p = np.sort(world.proba(pool), axis=1)
        margin = p[:, -1] - p[:, -2]
        pool = pool[margin <= np.median(margin)]
    if kind in ("skewed", "one_class"):
        labels = world.proba(pool).argmax(axis=1)
        classes = np.unique(labels)
        favourite = rng.choice(classes, size=min(2 if kind == "skewed" else 1, len(classes)), replace=False)
        pool = pool[np.isin(labels, favourite)]
    rows = pool[rng.choice(len(pool), size=n, replace=n > len(pool))]
    if kind == "noisy":
        # Distinct items while the pool lasts (re-reading an item is the retry case, with fresh noise).
        rows = pool[np.resize(rng.permutation(len(pool)), n)]
        # A noisy sensor: every reading is off by Gaussian noise of a fixed share of each feature's spread.
        sigma = rng.uniform(*_SENSOR_NOISE)
        rows = rows + rng.normal(size=rows.shape) * sigma * world.x_train.std(axis=0)
    if kind in ("natural", "skewed", "one_class", "noisy", HARD_KIND):
        return _as_requests(rows, _times(rng, n, start))
    if kind == "retry":
        out: list[Request] = []
        t = start
        for row in rows:
            t += float(rng.exponential(2.0))
            out.append((t, row[None, :]))
            while rng.random() < 0.3:  # a timeout, a double click: the same request again
                t += float(rng.exponential(1.0))
                out.append((t, row[None, :].copy()))
        return out
    if kind == "burst":
        out = []
        times = _times(rng, n, start, bursty=True)
        i = 0
        while i < n:
            size = int(rng.choice([1, 1, 1, 4, 16]))  # mostly single rows, some batches
            out.append((float(times[i]), rows[i : i + size]))
            i += size
        return out
    raise ValueError(f"unknown benign kind {kind!r}")


def thief_stream(world: World, kind: str, n: int, *, seed: int, start: float = 1.7e9) -> list[Request]:
    """A thief's first ``n`` queries, one row per request (adaptive kinds query ``world`` as they go).

    Args:
        world: the victim world.
        kind: one of :data:`THIEF_KINDS`.
        n: queries to generate.
        seed: seed of the thief (and of its parameters).
        start: time of the first request.
    """
    return thief_picks(world, kind, n, seed=seed, start=start)[0]


def thief_picks(
    world: World, kind: str, n: int, *, seed: int, start: float = 1.7e9
) -> tuple[list[Request], np.ndarray]:
    """:func:`thief_stream`'s requests and, per request, whether its row was *selected*.

    An active-learning thief's seed batch and the random natural rows an ``active_mixed`` thief shuffles
    into its rounds are not selected: they are natural rows drawn as a benign client draws them. Every
    query of the other kinds is selected (crafted). The same seed gives the same requests as
    :func:`thief_stream`.
    """
    rng = np.random.default_rng(seed)
    make: dict[str, Callable[[World, int, np.random.Generator], tuple[np.ndarray, np.ndarray]]] = {
        "trnd": _crafted(_trnd),
        "jbda": _crafted(_jbda),
        "uniform": _crafted(_uniform),
        "knockoff": _crafted(_knockoff),
        "active_margin": lambda w, k, r: _active(w, k, r, "margin"),
        "active_entropy": lambda w, k, r: _active(w, k, r, "entropy"),
        "active_kcenter": lambda w, k, r: _active(w, k, r, "kcenter"),
        "active_coreset": lambda w, k, r: _active(w, k, r, "coreset"),
        "active_small": _active_small,
        "active_batch": _active_batch,
        "active_mixed": _active_mixed,
        "bisect": _crafted(_bisect),
    }
    if kind not in make:
        raise ValueError(f"unknown thief kind {kind!r}")
    rows, picked = make[kind](world, n, rng)
    rows, picked = rows[:n], picked[:n]
    return _as_requests(rows, _times(rng, len(rows), start, bursty=rng.random() < 0.5)), picked


def _crafted(
    make: Callable[[World, int, np.random.Generator], np.ndarray],
) -> Callable[[World, int, np.random.Generator], tuple[np.ndarray, np.ndarray]]:
    def run(world: World, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        rows = make(world, n, rng)
        return rows, np.ones(len(rows), dtype=bool)

    return run


def _seeds(world: World, rng: np.random.Generator, k: int) -> np.ndarray:
    return world.x_pool[rng.choice(len(world.x_pool), size=k, replace=False)]


def _trnd(world: World, n: int, rng: np.random.Generator) -> np.ndarray:
    # PRADA's T-RND: each round perturbs every known sample on a random subset of its features.
    scale = world.x_train.std(axis=0)
    lam = rng.uniform(0.05, 0.5)
    frac = rng.uniform(0.1, 0.5)
    known = _seeds(world, rng, int(rng.integers(5, 30)))
    out = [known]
    total = len(known)
    while total < n:
        mask = rng.random(known.shape) < frac
        step = lam * scale * rng.choice([-1.0, 1.0], size=known.shape) * mask
        new = np.clip(known + step, world.lo, world.hi)
        out.append(new)
        known = np.concatenate([known, new])
        total += len(new)
    return np.concatenate(out)


def _substitute(x: np.ndarray, y: np.ndarray) -> object:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=200)).fit(x, y)


def _jbda(world: World, n: int, rng: np.random.Generator) -> np.ndarray:
    # Jacobian-based augmentation: x + lam * sign(d p_y / dx) of a logistic substitute, y the victim's label.
    scale = world.x_train.std(axis=0)
    lam = rng.uniform(0.05, 0.3)
    known = _seeds(world, rng, int(rng.integers(10, 40)))
    labels = world.proba(known).argmax(axis=1)
    out = [known]
    total = len(known)
    while total < n:
        if len(np.unique(labels)) < 2:
            new = np.clip(known + lam * scale * rng.choice([-1.0, 1.0], size=known.shape), world.lo, world.hi)
        else:
            sub = _substitute(known, labels)
            scaler, lr = sub.steps[0][1], sub.steps[1][1]  # type: ignore[attr-defined]
            w = lr.coef_ / scaler.scale_  # gradient in input units
            if w.shape[0] == 1:  # binary: one weight row for class 1
                w = np.vstack([-w, w])
            p = sub.predict_proba(known)  # type: ignore[attr-defined]
            cls = np.searchsorted(lr.classes_, labels)
            grad = p[np.arange(len(known)), cls, None] * (w[cls] - p @ w)
            new = np.clip(known + lam * scale * np.sign(grad), world.lo, world.hi)
        out.append(new)
        known = np.concatenate([known, new])
        labels = np.concatenate([labels, world.proba(new).argmax(axis=1)])
        total += len(new)
    return np.concatenate(out)


def _uniform(world: World, n: int, rng: np.random.Generator) -> np.ndarray:
    centre, half = (world.lo + world.hi) / 2, (world.hi - world.lo) / 2
    shrink = rng.uniform(0.4, 1.0)
    return np.asarray(centre + shrink * half * rng.uniform(-1.0, 1.0, size=(n, world.x_train.shape[1])))


def _knockoff(world: World, n: int, rng: np.random.Generator) -> np.ndarray:
    rows = world.x_public[rng.choice(len(world.x_public), size=n, replace=n > len(world.x_public))]
    if rng.random() < 0.5:
        # A careful thief moves its public data to the training marginals (mean and spread per feature).
        mu, sd = world.x_public.mean(axis=0), world.x_public.std(axis=0) + 1e-9
        rows = (rows - mu) / sd * world.x_train.std(axis=0) + world.x_train.mean(axis=0)
    return np.clip(rows, world.lo, world.hi) if rng.random() < 0.5 else rows


_ACTIVE_SEED = (20, 60)
"""Random natural rows an active thief labels first (its seed batch), drawn from this range."""

_ACTIVE_ROUND = (20, 40)
"""Queries per round (the substitute is retrained after each), drawn from this range; rounds grow to
an eighth of the labels held, so a 2,000-query thief retrains about twenty times."""


def _active_substitute(seed: int) -> object:
    from sklearn.neural_network import MLPClassifier

    return MLPClassifier(hidden_layer_sizes=(64,), max_iter=200, random_state=seed)


def _active_small(world: World, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    strategy = "margin" if rng.random() < 0.5 else "entropy"
    return _active(world, n, rng, strategy, seed_batch=(10, 21), rounds=(10, 16))


def _active_batch(world: World, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    strategy = "margin" if rng.random() < 0.5 else "kcenter"
    return _active(world, n, rng, strategy, seed_batch=(100, 201), rounds=(100, 101), grow=False)


def _active_mixed(world: World, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    strategy = "margin" if rng.random() < 0.5 else "kcenter"
    return _active(world, n, rng, strategy, natural=float(rng.uniform(0.3, 0.6)))


def _active(
    world: World,
    n: int,
    rng: np.random.Generator,
    strategy: str,
    *,
    seed_batch: tuple[int, int] = _ACTIVE_SEED,
    rounds: tuple[int, int] = _ACTIVE_ROUND,
    grow: bool = True,
    natural: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Pool-based active learning as ActiveThief (Pal et al., 2020) runs it.

    The thief owns a pool of unlabeled natural rows from the training distribution (``world.x_pool``),
    labels a random seed batch with the victim, then in rounds retrains a neural substitute from scratch
    on every label so far and picks the next round's rows from the whole unlabeled pool:

    - ``margin``: the smallest top-two margin of the substitute (least-confidence sampling);
    - ``entropy``: the largest entropy of the substitute's probabilities;
    - ``kcenter``: greedy k-center in the substitute's probability space (each pick the pool row
      farthest from every row labeled so far, ActiveThief's coverage strategy);
    - ``coreset``: greedy k-center in the (standardised) input space (Sener and Savarese's core set).

    ``seed_batch`` and ``rounds`` bound the seed batch's and the first round's sizes (rounds grow to an
    eighth of the labels held unless ``grow`` is off); ``natural``: the share of each round that is
    random natural rows, shuffled in among the picks. Returns the rows and, per row, whether it was
    picked by the strategy (False for the seed batch and the mixed-in natural rows).
    """
    from sklearn.preprocessing import StandardScaler

    pool = world.x_pool
    scaler = StandardScaler().fit(pool)
    zpool = scaler.transform(pool)
    n = min(n, len(pool))
    taken = list(rng.choice(len(pool), size=min(int(rng.integers(*seed_batch)), n), replace=False))
    labels = list(world.proba(pool[taken]).argmax(axis=1))
    free = np.ones(len(pool), dtype=bool)
    free[taken] = False
    chosen_by: list[bool] = [False] * len(taken)
    first = int(rng.integers(*rounds))
    while len(taken) < n:
        size = min(max(first, len(taken) // 8) if grow else first, n - len(taken))
        mixed = np.zeros(0, dtype=np.int64)
        if natural > 0:
            mixed = rng.choice(np.flatnonzero(free), size=round(natural * size), replace=False)
            free[mixed] = False
        k = size - len(mixed)
        idx = np.flatnonzero(free)
        if strategy == "coreset":
            space = zpool
        elif len(set(labels)) < 2:
            pick = rng.choice(idx, size=k, replace=False)
            space = None
        else:
            sub = _active_substitute(int(rng.integers(1 << 30)))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sub.fit(zpool[taken], np.array(labels))  # type: ignore[attr-defined]
            space = sub.predict_proba(zpool)  # type: ignore[attr-defined]
        if space is not None and strategy in ("margin", "entropy"):
            p = space[idx]
            if strategy == "margin":
                top2 = np.sort(p, axis=1)[:, -2:]
                score = top2[:, 1] - top2[:, 0]
            else:
                score = (p * np.log(np.clip(p, 1e-12, 1.0))).sum(axis=1)  # minus the entropy
            pick = idx[np.argsort(score, kind="stable")[:k]]
        elif space is not None:
            # Greedy k-center: distance of every pool row to its nearest labeled row, farthest first.
            labeled = space[np.array(taken)]
            near = np.full(len(pool), np.inf)
            for lo in range(0, len(labeled), 512):
                chunk = labeled[lo : lo + 512]
                d = (space**2).sum(1)[:, None] - 2 * space @ chunk.T + (chunk**2).sum(1)[None, :]
                near = np.minimum(near, d.min(axis=1))
            near[~free] = -np.inf
            chosen = []
            for _ in range(k):
                j = int(np.argmax(near))
                chosen.append(j)
                near = np.minimum(near, ((space - space[j]) ** 2).sum(axis=1))
                near[j] = -np.inf
            pick = np.asarray(chosen)
        if k == 0:
            pick = np.zeros(0, dtype=np.int64)
        free[pick] = False
        # A pick made without a substitute (one class seen so far) is a random natural row.
        selected = set(np.asarray(pick).tolist()) if space is not None else set()
        pick = rng.permutation(np.concatenate([pick, mixed]).astype(np.int64)) if len(mixed) else pick
        taken.extend(int(j) for j in pick)
        chosen_by.extend(int(j) in selected for j in pick)
        labels.extend(world.proba(pool[pick]).argmax(axis=1).tolist())
    return np.asarray(pool[np.array(taken)]), np.asarray(chosen_by, dtype=bool)


def _bisect(world: World, n: int, rng: np.random.Generator) -> np.ndarray:
    # Boundary search: pairs of natural rows with different labels, bisected a few steps towards the
    # point where the victim's label changes; every midpoint is a query.
    pool = world.x_pool
    steps = int(rng.integers(3, 8))
    out: list[np.ndarray] = []
    while len(out) < n:
        a, b = pool[rng.choice(len(pool), size=2, replace=False)]
        ya, yb = world.proba(np.stack([a, b])).argmax(axis=1)
        out.extend([a, b])
        if ya == yb:
            continue
        for _ in range(steps):
            mid = (a + b) / 2
            out.append(mid)
            if world.proba(mid[None, :]).argmax() == ya:
                a = mid
            else:
                b = mid
    return np.stack(out)
