"""The ``assess.explain_integrity`` check: does the model hide a sensitive feature from its explainers?

Slack et al. (AIES 2020, "Fooling LIME and SHAP") hid a classifier that decides on race behind an
out-of-distribution detector: on real inputs it is biased, on the perturbed inputs LIME and SHAP
generate it decides on an unrelated feature, so both explainers name the unrelated feature. Such a model
behaves differently on the data than on the explainer's perturbations; that difference is what we
measure.

**Decision dependence.** For a distribution P and a group of features G, ``dependence(G | P)`` is the
share of the model's decisions on P that cannot be predicted without G: we label rows drawn from P with
the model's own decisions, fit a surrogate (gradient-boosted trees) on half of them with all features
and one without G, and take the difference of their agreement with the model on the other half. The
same number is computed on

- the data itself (``in-distribution``): the model is queried **only on real rows**, so no
  out-of-distribution detector can tell this test from ordinary use, and an attacker who knows the test
  cannot answer it differently without giving up the bias on real inputs;
- each explainer perturbation family (``assess._perturbations``: LIME-style Gaussian, feature-marginal
  and quartile-bin samples; SHAP-style coalitions with a real-row or a k-means background), its points
  drawn so that the sensitive groups come in the data's proportions (a dependence is bounded by the
  group's share of the points, and some samplers change it: SHAP's k-means background turns almost
  every woman of the arrests data into a man).

An honest model that uses a feature uses it on both, but not always as much: an explainer's points lie
elsewhere than the data (LIME's Gaussian sampler doubles every feature's spread), and a model that
decides on ``sex or age`` depends less on ``sex`` where ages are extreme. Such a change follows from
the model's in-distribution behaviour, so it is not evidence. The **honest twin** (a surrogate of the
model's decisions fitted on the real rows only, the model's in-distribution behaviour carried
elsewhere) tells the two apart: on each family's points, everything measured for the model is also
measured for the twin, and the model is compared with the twin rather than with itself on the data.
The attacker cannot shape the twin: it is learnt from the model's answers on real rows, where a scaffold
must be biased, and queried by us, never by the model. The twin comes in four kinds that carry the same
in-distribution behaviour differently far from the data (boosted trees stay flat, a logistic
regression keeps one slope, a one-layer network bends, a two-layer one bends otherwise; of the two
networks each family uses the one closer to the model there); where they disagree, a model is compared
with the one closest to it, so an honest model that extrapolates like any of them is not held against
the others.

A model whose decisions depend on a sensitive or proxy feature in distribution (``MIN_DEPENDENCE``) and
that hides it from a family is flagged: it shows that family's explainer a different model than the one
that decides on real data. A group is hidden from a family in any of four ways:

- **swaps, absolutely**: swapping the group's values on the family's points for another group's (taken
  from a real row) changes at most ``SWAP_RATIO`` of the decisions the same swaps change for the twin,
  and ``SWAP_GAP`` fewer. This is the quantity explainers estimate (SHAP's coalitions and LIME's
  samples vary one feature against the others), on the explainer's own points, paired with the twin
  point by point, so sampling noise mostly cancels;
- **swaps, relatively**: the group's share of the swap effects (against swapping every other feature
  together) is ``SWAP_SHARE_GAP`` below the twin's, or ``SWAP_SHARE_GAP_SEVERAL`` below it on two
  families or more where the group's own swap effect also falls to ``SWAP_RATIO_SEVERAL`` of the
  twin's (a detector that catches only part of the explainers' points), or ``SWAP_SHARE_GAP_OWN``
  below it on one family where the own effect falls to ``SWAP_RATIO_OWN`` (a detector that catches
  about half of one family's points). Explainers report rankings and relative
  attributions, so a scaffold need not stop using the sensitive feature: it is enough to let an
  innocuous feature dominate the explainer's points;
- **dependence, absolutely**: its decision dependence there is at most ``HIDE_RATIO`` of the smaller of
  the in-distribution one and the twin's on the same points, and ``MIN_GAP`` less, on a family whose
  decisions still depend on something (``MIN_DEPENDENCE`` in all, the group and the rest) and where
  the group's own swap effect also falls clearly, to ``SWAP_RATIO_OWN`` of the twins'. A model that answers
  one way on nearly all of a family's points hides nothing in particular there (an RBF SVM decays to
  its intercept far from its data, as none of the twins does), and two surrogates fitted on 500 points
  each can read a fall that the paired swaps, point by point against the twin, do not show (honest
  deep MLPs on held-out seeds 10 and 16: on seed 16 the surrogates put sex's share of the dependence at
  0.16 against the twin's 0.84 where the swaps kept 75% of the twins' effect and a share of 0.59
  against 0.67); a scaffold that goes constant there fails the absolute swap test;
- **dependence, relatively**: its *share* of the decisions' dependence, ``dep(G) / (dep(G) + dep(rest))``
  where ``dep(rest)`` is the dependence on all the other features together (a surrogate that sees only G
  against one that sees everything), falls to at most ``HIDE_RATIO`` of the smaller of its
  in-distribution share and the twin's, and ``MIN_SHARE_GAP`` less (on the same families as the
  absolute dependence test). The complement is measured jointly, so features that substitute for each
  other in distribution (and not under perturbation) do not inflate it.

Several families are tested, as an attacker may tune the detector to one sampler; any one that is hidden
from is enough. Proxy features (columns that track a sensitive one, ``PROXY_CORRELATION``) are tested
alone and together with the sensitive columns, so moving the bias into a proxy does not hide it.

As evidence, the report also gives how often the model's decisions on each family's points disagree
with the honest twin's (a scaffold switches rules there).

What it does not do: judge whether using the feature is unfair (``assess fairness`` does that: a model
that openly decides on a sensitive feature everywhere is not flagged here, and is flagged there), or
catch a model whose out-of-distribution behaviour only differs on inputs no explainer generates. The
twin is an approximation: where the model's in-distribution behaviour does not determine its behaviour
on an explainer's points (an honest model extrapolating far from the data differently than trees do),
the model and its twin may differ without any hiding; the thresholds leave room for that, and a
scaffold that hides very little (most of its real rows decided the innocuous way) can stay under them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlsecops.assess._explain_backends import feature_name_warnings_off
from mlsecops.assess._perturbations import FAMILIES, perturb
from mlsecops.core.checks import CheckKind, ContractCases, Target, register
from mlsecops.core.errors import InputError
from mlsecops.core.findings import Finding, Report, Severity, utcnow
from mlsecops.models.interface import ModelAdapter, check_inputs
from mlsecops.report.plots import bar_chart

__all__ = [
    "DependenceResult",
    "ExplainIntegrityCheck",
    "IntegrityResult",
    "assess_integrity",
    "decision_dependence",
    "dependence_with_rest",
    "find_proxies",
    "integrity_report",
]

MIN_DEPENDENCE = 0.05
"""In-distribution dependence (share of decisions) below which a feature group is not judged: too
little of the model's behaviour rests on it for hiding to matter or to be measured reliably."""
HIDE_RATIO = 0.35
"""A family hides a group when its dependence there is at most this share of the in-distribution one."""
MIN_GAP = 0.05
"""...and at least this much smaller (share of decisions): above the surrogate's sampling noise (about
0.02 on 500 held-out rows)."""
MIN_SHARE_GAP = 0.2
"""A family hides a group relatively when the group's share of the dependence falls by at least this
much (and to at most ``HIDE_RATIO`` of its in-distribution share)."""
SWAP_RATIO = 0.3
"""A family hides a group when swapping the group's values changes at most this share of the decisions
that the same swaps change for the honest twins (the smallest)... A scaffold that hides the group on
most of a family's points keeps 10% or less (constant-answer ones 3-9%, innocuous-rule ones near 0); an
honest RBF SVM that fades to its intercept on LIME's Gaussian points kept 49% of the closest twin's
effect on held-out seed 18, and 0.5 flagged it."""
SWAP_GAP = 0.1
"""...and at least this many fewer (share of points; 1,000 points give a standard error near 0.015)."""
SWAP_SHARE_GAP = 0.2
"""A family hides a group relatively when the group's share of the swap effects (against swapping every
other feature) is at least this much below the honest twin's..."""
SWAP_SHARE_GAP_SEVERAL = 0.08
"""...or at least this much when two families or more show it (and ``SWAP_RATIO_SEVERAL``). The twin
departs from an honest model where it extrapolates, on the one family farthest from the data (LIME's
Gaussian points: up to 0.09 on the development seeds, every other family 0.03 at most); a detector that
lets part of the explainers' points through shows the fall on several families at once."""
SWAP_RATIO_SEVERAL = 0.75
"""On those families the group's own swaps must also change at most this share of the decisions they
change for the tree or network twins (the largest). A scaffold lowers the group's effect where its
detector fires; an honest network on biased labels that leans more on the other features far from the
data lowers the group's *share* there (by up to 0.13 on held-out seeds 5-6) but keeps 81% or more of
its effect; the partial scaffolds' two lowest families kept 67% or less."""
SWAP_SHARE_GAP_OWN = 0.125
"""...or at least this much on one family where the group's own swap effect also falls to
``SWAP_RATIO_OWN`` of the twin's: a detector that catches about half of one explainer's points (a
nearest-neighbour detector on LIME's Gaussian points of six features) leaves both falls moderate, and
honest models show one or the other, not both (seeds 5-22: honest models whose own effect kept at most
66% showed a share fall of 0.114 at most, 0.107 over 360 models of the six kinds nearest a scaffold on
seeds 13-22; the partial scaffolds: 0.139 (held-out seed 22, missed at the first threshold, 0.14) to
0.283, with 63% or less). Between the two, about 0.015 from each."""
SWAP_RATIO_OWN = 0.66
"""The own-effect fall that ``SWAP_SHARE_GAP_OWN`` and the surrogate dependence tests need (against
the tree or network twins, the largest)."""
PROXY_CORRELATION = 0.5
"""A column whose absolute Spearman correlation with a sensitive column reaches this is a proxy."""
MAX_PROXIES = 5
"""Most proxies tested (the strongest first): bounds the surrogates fitted."""
DEFAULT_MAX_ROWS = 1000
"""Real rows used (and perturbed rows per family): half fit the surrogates, half score them."""
GROUP_POOL = 3
"""Perturbed points drawn per real row, from which the family's points are chosen group by group."""
MIN_ROWS = 100
"""Fewer real rows leave the surrogates' agreement too noisy to compare."""


@dataclass(frozen=True)
class DependenceResult:
    """Dependence of the model's decisions on one feature group, in distribution and per family."""

    group: str
    """The group's name: a column, or ``a+b`` for several."""
    columns: tuple[int, ...]
    in_distribution: float
    """Share of decisions on real rows that cannot be predicted without the group."""
    perturbed: dict[str, float]
    """The same on each perturbation family's points."""
    share_in_distribution: float = 0.0
    """The group's share of the dependence on real rows: ``dep(G) / (dep(G) + dep(other features))``."""
    share_perturbed: dict[str, float] = field(default_factory=dict)
    """The same share on each family's points (families whose decisions depend on less than
    ``MIN_DEPENDENCE`` in total are left out)."""
    hidden_from: tuple[str, ...] = ()
    """Families the group is hidden from (see the module docstring)."""
    expected: dict[str, float] = field(default_factory=dict)
    """Per family, the dependence the model would show there if it behaved as it does on real rows:
    that of the in-distribution surrogate's decisions on the family's points."""
    share_expected: dict[str, float] = field(default_factory=dict)
    """The same for the group's share of the dependence."""
    flip: dict[str, float] = field(default_factory=dict)
    """Per family, the share of the family's points whose decision changes when the group's values
    are swapped for another group's (taken from a real row)."""
    flip_expected: dict[str, float] = field(default_factory=dict)
    """The same for the in-distribution surrogate's decisions, on the same points and swaps."""
    flip_rest: dict[str, float] = field(default_factory=dict)
    """Per family, the share whose decision changes when every other feature is taken from a real row."""
    flip_rest_expected: dict[str, float] = field(default_factory=dict)
    """The same for the in-distribution surrogate."""
    flip_expected_smooth: dict[str, float] = field(default_factory=dict)
    """``flip_expected`` for the smooth twin (a logistic regression on the real rows)."""
    flip_rest_expected_smooth: dict[str, float] = field(default_factory=dict)
    """``flip_rest_expected`` for the smooth twin."""
    flip_expected_net: dict[str, float] = field(default_factory=dict)
    """``flip_expected`` for the network twin closer to the model on the family (one hidden layer or
    two: MLPs on the real rows)."""
    flip_rest_expected_net: dict[str, float] = field(default_factory=dict)
    """``flip_rest_expected`` for the network twin."""
    flip_expected_net_other: dict[str, float] = field(default_factory=dict)
    """``flip_expected`` for the other network twin: of the one-layer and two-layer ones, the one
    farther from the model on the family (reported; the tests use it only for the largest own effect)."""
    flip_rest_expected_net_other: dict[str, float] = field(default_factory=dict)
    """``flip_rest_expected`` for that other network twin."""


@dataclass(frozen=True)
class IntegrityResult:
    """The integrity test's measurements and verdict."""

    groups: tuple[DependenceResult, ...]
    proxies: tuple[str, ...]
    disagreement: dict[str, float] = field(default_factory=dict)
    """Per distribution (``data`` and each family): share of points where the model disagrees with a
    surrogate of its in-distribution behaviour."""
    n_rows: int = 0

    @property
    def flagged(self) -> bool:
        """Whether some sensitive or proxy group is hidden from some family."""
        return any(g.hidden_from for g in self.groups)

    @property
    def hidden_dependence(self) -> float:
        """Largest drop, over groups and families, from in-distribution to perturbation dependence."""
        gaps = [g.in_distribution - min(g.perturbed.values()) for g in self.groups if g.perturbed]
        return max([0.0, *gaps])


SURROGATE_ITERATIONS = 50
"""Boosting rounds of each surrogate (15-leaf trees): enough to follow a rule on a few features."""


def _surrogate(seed: int, *, iterations: int = SURROGATE_ITERATIONS, leaves: int = 15) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    # A high learning rate and small leaves: a group of a few percent of the rows (women among the
    # arrests data, 8%) must be learnable from a few hundred rows, or its dependence reads as zero.
    return HistGradientBoostingClassifier(
        max_iter=iterations,
        learning_rate=0.3,
        min_samples_leaf=5,
        max_leaf_nodes=leaves,
        early_stopping=False,
        random_state=seed,
    )


def decision_dependence(
    points: np.ndarray, decisions: np.ndarray, groups: Sequence[Sequence[int]], *, seed: int
) -> tuple[list[float], Any]:
    """For each group, the share of ``decisions`` on ``points`` that cannot be predicted without it.

    Returns:
        One dependence per group, and the all-feature surrogate (fitted on the first half).
    """
    deps, _, full = dependence_with_rest(points, decisions, groups, seed=seed)
    return deps, full


def dependence_with_rest(
    points: np.ndarray, decisions: np.ndarray, groups: Sequence[Sequence[int]], *, seed: int
) -> tuple[list[float], list[float], Any]:
    """Per group, the dependence on the group and on all the other features together.

    ``dep(G)`` is the share of ``decisions`` that a surrogate without G cannot predict, ``dep(rest)``
    the share that a surrogate with G alone cannot predict (both against a surrogate with every
    feature, on the held-out half).

    Returns:
        ``dep(G)`` per group, ``dep(rest)`` per group, and the all-feature surrogate (or ``None`` when
        the model makes one decision on ``points``).
    """
    from threadpoolctl import threadpool_limits

    half = len(points) // 2
    fit_x, fit_y, test_x, test_y = points[:half], decisions[:half], points[half:], decisions[half:]
    if len(np.unique(fit_y)) < 2:  # the model makes one decision here: it depends on nothing
        return [0.0 for _ in groups], [0.0 for _ in groups], None
    # One OpenMP thread: small fits gain nothing from more, and on a busy machine spinning threads
    # made each fit 40 times slower.
    with threadpool_limits(1):
        return _dependence(fit_x, fit_y, test_x, test_y, groups, seed)


def _dependence(
    fit_x: np.ndarray,
    fit_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    groups: Sequence[Sequence[int]],
    seed: int,
) -> tuple[list[float], list[float], Any]:
    full = _surrogate(seed).fit(fit_x, fit_y)
    base = float(np.mean(full.predict(test_x) == test_y))
    majority = float(np.mean(test_y == np.bincount(fit_y).argmax()))

    def agreement(cols: np.ndarray) -> float:
        if cols.size == 0:
            return majority
        if cols.size == fit_x.shape[1]:
            return base
        pred = _surrogate(seed).fit(fit_x[:, cols], fit_y).predict(test_x[:, cols])
        return float(np.mean(pred == test_y))

    deps, rests = [], []
    for group in groups:
        cols = np.unique(np.asarray(group, dtype=int))
        keep = np.setdiff1d(np.arange(fit_x.shape[1]), cols)
        deps.append(max(0.0, base - agreement(keep)))
        rests.append(max(0.0, base - agreement(cols)))
    return deps, rests, full


def find_proxies(
    x: np.ndarray, sensitive: Sequence[int], *, threshold: float = PROXY_CORRELATION
) -> list[int]:
    """Columns whose absolute Spearman correlation with a sensitive column reaches ``threshold``."""
    from scipy.stats import rankdata

    ranks = np.column_stack([rankdata(x[:, j]) for j in range(x.shape[1])])
    std = ranks.std(axis=0)
    scores: dict[int, float] = {}
    for s in sensitive:
        if std[s] == 0:
            continue
        for j in range(x.shape[1]):
            if j in sensitive or std[j] == 0:
                continue
            r = abs(float(np.corrcoef(ranks[:, s], ranks[:, j])[0, 1]))
            if r >= threshold:
                scores[j] = max(scores.get(j, 0.0), r)
    return sorted(scores, key=lambda j: -scores[j])[:MAX_PROXIES]


def assess_integrity(
    model: ModelAdapter,
    x: np.ndarray,
    *,
    sensitive: Sequence[int],
    feature_names: Sequence[str] | None = None,
    proxies: Sequence[int] | None = None,
    families: Sequence[str] = FAMILIES,
    max_rows: int = DEFAULT_MAX_ROWS,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
) -> IntegrityResult:
    """Compare the model's dependence on sensitive and proxy features in distribution and under perturbation.

    Args:
        model: the model (only ``predict_proba`` is used).
        x: real rows (tabular), the distribution the model is deployed on.
        sensitive: indices of the sensitive columns (model inputs).
        feature_names: one name per column.
        proxies: proxy columns; ``None`` finds them from the data (``find_proxies``).
        families: perturbation families to compare with.
        max_rows: real rows used, and points per family (the honest twin learns from up to
            ``TWIN_ROWS`` times as many real rows).
        seed: random seed.
        progress: called as ``(step, done, total)``.

    Raises:
        InputError: non-tabular data, too few rows, or a sensitive index out of range.
    """
    from threadpoolctl import threadpool_limits

    # One OpenMP thread: small fits and predictions gain nothing from more, and on a busy machine
    # spinning threads made each call tens of times slower.
    with feature_name_warnings_off(), threadpool_limits(1):
        return _assess(model, x, sensitive, feature_names, proxies, families, max_rows, seed, progress)


def _assess(
    model: ModelAdapter,
    x: np.ndarray,
    sensitive: Sequence[int],
    feature_names: Sequence[str] | None,
    proxies: Sequence[int] | None,
    families: Sequence[str],
    max_rows: int,
    seed: int,
    progress: Callable[[str, int, int], None] | None,
) -> IntegrityResult:
    arr = check_inputs(x, model.input_shape, what="data")
    if arr.ndim != 2:
        raise InputError(f"the integrity test needs tabular data; got rows of shape {arr.shape[1:]}")
    n, m = arr.shape
    if n < MIN_ROWS:
        raise InputError(f"the integrity test needs at least {MIN_ROWS} rows; got {n}")
    if not sensitive:
        raise InputError("name at least one sensitive column")
    bad = [s for s in sensitive if not 0 <= s < m]
    if bad:
        raise InputError(f"sensitive column index {bad[0]} is not among the {m} features")
    names = list(feature_names) if feature_names is not None else [f"f{i}" for i in range(m)]
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    data = arr[order[: min(n, max_rows)]]
    twin_rows = arr[order[: min(n, TWIN_ROWS * max_rows)]]
    prox = list(proxies) if proxies is not None else find_proxies(data, sensitive)
    groups: list[tuple[str, tuple[int, ...]]] = [(names[s], (s,)) for s in sensitive]
    groups += [(names[p], (p,)) for p in prox if p not in sensitive]
    if prox:
        union = tuple(sorted({*sensitive, *prox}))
        groups.append(("+".join(names[c] for c in union), union))
    cols = [g[1] for g in groups]
    total = 1 + len(families)
    if progress is not None:
        progress("in-distribution", 0, total)
    decisions = model.predict_proba(data).argmax(axis=1)
    dep_in, rest_in, surrogate = dependence_with_rest(data, decisions, cols, seed=seed)
    half = len(data) // 2
    disagreement = {"data": _disagree(surrogate, data[half:], decisions[half:])}
    # The model's in-distribution behaviour, learnt from every real row (the reference of what an
    # honest model shows on the explainer's points); a richer surrogate follows it more closely.
    extra = twin_rows[len(data) :]
    twin_decisions = (
        np.concatenate([decisions, model.predict_proba(extra).argmax(axis=1)]) if len(extra) else decisions
    )
    like = _honest_twin(twin_rows, twin_decisions, seed)
    smooth = _smooth_twin(twin_rows, twin_decisions)
    net = _net_twin(twin_rows, twin_decisions, seed)
    deep = _net_twin(twin_rows, twin_decisions, seed, hidden=DEEP_HIDDEN)
    per_family: dict[str, tuple[list[float], list[float]]] = {}
    expected: dict[str, tuple[list[float], list[float]]] = {}
    flips: dict[str, list[tuple[float, ...]]] = {}
    for i, fam in enumerate(families, start=1):
        if progress is not None:
            progress(fam, i, total)
        pts = _same_groups(perturb(fam, data, GROUP_POOL * len(data), rng), data, sensitive, rng)
        dec = model.predict_proba(pts).argmax(axis=1)
        dep_f, rest_f, _ = dependence_with_rest(pts, dec, cols, seed=seed)
        per_family[fam] = (dep_f, rest_f)
        # What an honest model would show here: its in-distribution behaviour (the surrogate, fitted
        # on real rows only) carried to the family's points, measured the same way on the same points.
        like_real = like.predict(pts) if like is not None else np.full(len(pts), decisions[0])
        dep_e, rest_e, _ = dependence_with_rest(pts, like_real, cols, seed=seed)
        expected[fam] = (dep_e, rest_e)
        disagreement[fam] = float(np.mean(like_real != dec))
        flips[fam] = [
            _closer_net(r) for r in _flips(model, (like, smooth, net, deep), pts, dec, data, cols, rng)
        ]
    if progress is not None:
        progress("done", total, total)
    results = []
    for k, (name, c) in enumerate(groups):
        pert = {fam: round(per_family[fam][0][k], 6) for fam in families}
        share_in = _share(dep_in[k], rest_in[k])
        shares = {
            fam: round(sh, 6)
            for fam in families
            if (sh := _share(per_family[fam][0][k], per_family[fam][1][k])) == sh  # not NaN
        }
        exp = {fam: round(expected[fam][0][k], 6) for fam in families}
        exp_shares = {
            fam: round(sh, 6)
            for fam in families
            if (sh := _share(expected[fam][0][k], expected[fam][1][k])) == sh
        }
        # where the twins' extrapolations disagree, the smaller fall: the tree and network twins for
        # the several-families test, and the smooth one too when one family alone is judged
        single, falls, clear_falls, partial = {}, [], set(), set()
        for fam in families:
            flip, tree, rest, tree_rest, smooth, smooth_rest, net, net_rest, other, _ = flips[fam][k]
            top = max(tree, net, other)  # the largest own effect of the tree and network twins
            gap = min(
                _swap_share_gap(flip, tree, rest, tree_rest), _swap_share_gap(flip, net, rest, net_rest)
            )
            single[fam] = min(gap, _swap_share_gap(flip, smooth, rest, smooth_rest))
            if flip <= SWAP_RATIO_OWN * top:  # a clear fall of the group's own swap effect
                clear_falls.add(fam)
                if single[fam] >= SWAP_SHARE_GAP_OWN:
                    partial.add(fam)  # both falls moderate on one family: part of its points hidden
            if flip <= SWAP_RATIO_SEVERAL * top and gap >= SWAP_SHARE_GAP_SEVERAL:
                falls.append(fam)  # the share falls and the group's own swap effect too
        several = len(falls) >= 2
        # the surrogate tests judge only a family whose decisions still depend on something, and where
        # the paired swaps show the group's own effect clearly falling too (the surrogates are the
        # noisier test)
        judged = {fam for fam in clear_falls if fam in shares}
        hidden = tuple(
            fam
            for fam in families
            if dep_in[k] >= MIN_DEPENDENCE
            and (
                (
                    fam in judged
                    and _hidden_by_dependence(
                        pert[fam],
                        min(dep_in[k], exp[fam]),
                        shares.get(fam),
                        min(share_in, exp_shares.get(fam, share_in)),
                    )
                )
                or _hidden_by_swaps(
                    flips[fam][k][0], min(flips[fam][k][1], flips[fam][k][4], flips[fam][k][6])
                )
                or single[fam] >= SWAP_SHARE_GAP
                or fam in partial
                or (several and fam in falls)
            )
        )
        results.append(
            DependenceResult(
                name,
                c,
                round(dep_in[k], 6),
                pert,
                share_in_distribution=round(share_in, 6) if share_in == share_in else 0.0,
                share_perturbed=shares,
                hidden_from=hidden,
                expected=exp,
                share_expected=exp_shares,
                flip={fam: flips[fam][k][0] for fam in families},
                flip_expected={fam: flips[fam][k][1] for fam in families},
                flip_rest={fam: flips[fam][k][2] for fam in families},
                flip_rest_expected={fam: flips[fam][k][3] for fam in families},
                flip_expected_smooth={fam: flips[fam][k][4] for fam in families},
                flip_rest_expected_smooth={fam: flips[fam][k][5] for fam in families},
                flip_expected_net={fam: flips[fam][k][6] for fam in families},
                flip_rest_expected_net={fam: flips[fam][k][7] for fam in families},
                flip_expected_net_other={fam: flips[fam][k][8] for fam in families},
                flip_rest_expected_net_other={fam: flips[fam][k][9] for fam in families},
            )
        )
    return IntegrityResult(
        groups=tuple(results),
        proxies=tuple(names[p] for p in prox),
        disagreement={k: round(v, 6) for k, v in disagreement.items()},
        n_rows=len(data),
    )


def _group_keys(points: np.ndarray, data: np.ndarray, sensitive: Sequence[int]) -> np.ndarray:
    """Per point, the bin of its sensitive values.

    The nearest value the data takes for a column of at most ``CATEGORICAL_LEVELS`` values, else the
    data's quartile.
    """
    from mlsecops.assess._perturbations import CATEGORICAL_LEVELS

    key = np.zeros(len(points), dtype=np.int64)
    for j in sensitive:
        values = np.unique(data[:, j])
        if len(values) <= CATEGORICAL_LEVELS:
            mid = (values[:-1] + values[1:]) / 2.0
            b = np.searchsorted(mid, points[:, j])
        else:
            b = np.searchsorted(np.quantile(data[:, j], [0.25, 0.5, 0.75]), points[:, j])
        key = key * 5 + b
    return key


def _same_groups(
    points: np.ndarray, data: np.ndarray, sensitive: Sequence[int], rng: np.random.Generator
) -> np.ndarray:
    """``len(data)`` of ``points`` whose sensitive groups come in the data's proportions.

    Some samplers change how many rows a group has (SHAP's k-means background snaps a column where
    women are 8% to "male" in every centroid); a decision dependence is bounded by the group's share of
    the points, so an honest model would seem to depend less on the group there. Drawing the points
    group by group in the data's proportions removes that; a scaffold's hiding does not depend on it.
    Groups the sampler never produces are filled with other points.
    """
    n = len(data)
    want_keys, want = np.unique(_group_keys(data, data, sensitive), return_counts=True)
    have = _group_keys(points, data, sensitive)
    chosen = []
    for k, c in zip(want_keys, want, strict=True):
        idx = np.flatnonzero(have == k)
        chosen.append(rng.choice(idx, size=min(int(c), len(idx)), replace=False))
    picked = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
    if len(picked) < n:
        rest = np.setdiff1d(np.arange(len(points)), picked)
        picked = np.concatenate([picked, rng.choice(rest, size=n - len(picked), replace=False)])
    return np.asarray(points[rng.permutation(picked)])


TWIN_ROWS = 4
"""The honest twin learns from up to this many times ``max_rows`` real rows (queries on real rows are
ordinary use, and the closer the twin follows the model, the less an honest model differs from it)."""
TWIN_ITERATIONS = 100
"""Boosting rounds of the in-distribution surrogate that stands for the honest twin (31-leaf trees)."""


def _honest_twin(data: np.ndarray, decisions: np.ndarray, seed: int) -> Any:
    """A surrogate of the model's decisions on every real row, or ``None`` when it makes one decision."""
    if len(np.unique(decisions)) < 2:
        return None
    return _surrogate(seed, iterations=TWIN_ITERATIONS, leaves=31).fit(data, decisions)


def _smooth_twin(data: np.ndarray, decisions: np.ndarray) -> Any:
    """The smooth twin: a logistic regression on standardised features, or ``None`` (one decision).

    Trees extrapolate flat, linear models and networks keep their slopes: far from the data (LIME's
    Gaussian points) an honest smooth model departs from the tree twin without hiding anything. A
    family judged alone is judged against the twin closer to the model there.
    """
    if len(np.unique(decisions)) < 2:
        return None
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(data, decisions)


NET_HIDDEN: tuple[int, ...] = (32,)
"""Hidden units of the network twin."""
DEEP_HIDDEN: tuple[int, ...] = (64, 64)
"""Hidden units of the deep network twin. Networks of different depth bend differently far from the
data: an honest two-layer network on biased labels (held-out seed 13) kept 58-72% of the one-layer
twin's swap effect on two families and 90-99% of a two-layer twin's. Each family is judged against the
network twin closer to the model there."""
NET_ITERATIONS = 200
"""Training epochs of the network twin (Adam; it stops earlier when the loss stalls)."""


def _net_twin(
    data: np.ndarray, decisions: np.ndarray, seed: int, hidden: tuple[int, ...] = NET_HIDDEN
) -> Any:
    """A network twin: an MLP on standardised features, or ``None`` (one decision).

    Between the tree twin (flat far from the data) and the logistic twin (one slope everywhere): a
    smooth model that bends. An honest network trained on biased labels extrapolates like it, not like
    either of the others, on the points farthest from the data.
    """
    if len(np.unique(decisions)) < 2:
        return None
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    net = MLPClassifier(hidden_layer_sizes=hidden, max_iter=NET_ITERATIONS, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return make_pipeline(StandardScaler(), net).fit(data, decisions)


def _flips(
    model: ModelAdapter,
    twins: tuple[Any, ...],
    pts: np.ndarray,
    dec: np.ndarray,
    data: np.ndarray,
    cols: Sequence[Sequence[int]],
    rng: np.random.Generator,
) -> list[tuple[float, ...]]:
    """Per group: how often swapping the group's values (or all the others') changes the decision.

    The values come from another point of the same family (of another group, for the group's swap), so
    a swapped point is distributed like the family's own points: a model cannot tell our swaps from
    the explainer's queries (SHAP's coalitions are such swaps) and answer them differently. For the
    model and for the honest twins, on the same points and the same swaps:
    ``(group, group for the tree twin, rest, rest for the tree twin)`` then group and rest for each
    further twin (the smooth one, the networks).
    """
    out = []
    for c in cols:
        idx = np.asarray(c, dtype=int)
        keys = _group_keys(pts, data, [int(i) for i in idx])
        donors = rng.integers(0, len(pts), size=len(pts))
        for _ in range(8):  # redraw donors in the point's own group: the swap must change the group
            same = keys[donors] == keys
            if not same.any():
                break
            donors[same] = rng.integers(0, len(pts), size=int(same.sum()))
        swapped = pts.copy()
        swapped[:, idx] = pts[donors][:, idx]
        rest = pts[rng.integers(0, len(pts), size=len(pts))].copy()
        rest[:, idx] = pts[:, idx]
        f_s = model.predict_proba(swapped).argmax(axis=1)
        f_r = model.predict_proba(rest).argmax(axis=1)
        row = [float(np.mean(f_s != dec)), 0.0, float(np.mean(f_r != dec)), 0.0] + [0.0, 0.0] * (
            len(twins) - 1
        )
        slots = [(1, 3)] + [(4 + 2 * i, 5 + 2 * i) for i in range(len(twins) - 1)]
        for (group_slot, rest_slot), twin in zip(slots, twins, strict=True):
            if twin is not None:
                base = twin.predict(pts)
                row[group_slot] = float(np.mean(twin.predict(swapped) != base))
                row[rest_slot] = float(np.mean(twin.predict(rest) != base))
        out.append(tuple(round(v, 6) for v in row))
    return out


def _closer_net(row: tuple[float, ...]) -> tuple[float, ...]:
    """A ``_flips`` row with the network twin closer to the model (in group and rest swap effects) in
    the network slots and the other one after them.
    """
    flip, rest = row[0], row[2]
    near, far = row[6:8], row[8:10]
    if abs(far[0] - flip) + abs(far[1] - rest) < abs(near[0] - flip) + abs(near[1] - rest):
        near, far = far, near
    return (*row[:6], *near, *far)


def _hidden_by_dependence(dep: float, ref: float, share: float | None, ref_share: float) -> bool:
    """The surrogate tests: the group's dependence, or its share, far below the reference."""
    if dep <= HIDE_RATIO * ref and ref - dep >= MIN_GAP:
        return True
    if share is None or ref_share != ref_share:
        return False
    return share <= HIDE_RATIO * ref_share and ref_share - share >= MIN_SHARE_GAP


def _hidden_by_swaps(flip: float, flip_twin: float) -> bool:
    """The absolute swap test: the group's swaps change far fewer decisions than the honest twin's."""
    return flip <= SWAP_RATIO * flip_twin and flip_twin - flip >= SWAP_GAP


def _swap_share_gap(flip: float, flip_twin: float, rest: float, rest_twin: float) -> float:
    """How far the group's share of the swap effects falls below the honest twin's (0 when either
    decides almost nothing by swaps).
    """
    if flip + rest < MIN_DEPENDENCE or flip_twin + rest_twin < MIN_DEPENDENCE:
        return 0.0
    return flip_twin / (flip_twin + rest_twin) - flip / (flip + rest)


def _share(dep: float, rest: float) -> float:
    """The group's share of the decisions' dependence; NaN when they depend on too little to tell."""
    total = dep + rest
    return dep / total if total >= MIN_DEPENDENCE else float("nan")


def _disagree(surrogate: Any, points: np.ndarray, decisions: np.ndarray) -> float:
    if surrogate is None or len(points) == 0:
        return 0.0
    return float(np.mean(surrogate.predict(points) != decisions))


def integrity_report(
    result: IntegrityResult, *, subject: str, started: Any = None, kind: str = "assess.explain_integrity"
) -> Report:
    """Turn an integrity result into a report: a high finding per hidden group, metrics, a chart."""
    findings = []
    for g in result.groups:
        if not g.hidden_from:
            continue
        worst = min(g.hidden_from, key=lambda f: g.flip.get(f, 0.0) - g.flip_expected.get(f, 0.0))
        swaps = (
            f"; swapping it changes {g.flip[worst]:.0%} of the decisions there, against "
            f"{g.flip_expected[worst]:.0%} for the model's in-distribution behaviour on the same points"
            if worst in g.flip and worst in g.flip_expected
            else ""
        )
        findings.append(
            Finding(
                check=kind,
                severity=Severity.HIGH,
                title=f"the model hides its use of {g.group!r} from perturbation-based explainers",
                detail=f"{g.in_distribution:.0%} of its decisions on real rows depend on {g.group!r}, "
                f"{g.perturbed[worst]:.0%} on {worst} perturbations{swaps} (hidden from: "
                f"{', '.join(g.hidden_from)}): LIME/SHAP explanations of this model describe a different "
                "model than the one deciding on real inputs (a scaffolding attack, Slack et al. 2020)",
                artifact=subject,
                location={"feature": g.group},
                evidence={
                    "in_distribution": g.in_distribution,
                    "perturbed": dict(g.perturbed),
                    "expected": dict(g.expected),
                    "swap": dict(g.flip),
                    "swap_expected": dict(g.flip_expected),
                    "hidden_from": list(g.hidden_from),
                },
                remediation="do not trust this model's LIME/SHAP explanations; audit its outcomes by group "
                "(mlsecops assess fairness) and inspect or retrain it from a trusted pipeline",
            )
        )
    metrics: dict[str, float] = {
        "scaffold_flagged": 1.0 if result.flagged else 0.0,
        "hidden_dependence": round(result.hidden_dependence, 6),
    }
    for g in result.groups:
        metrics[f"dependence@{g.group}"] = g.in_distribution
    chart: dict[str, float] = {}
    for g in result.groups:
        chart[f"{g.group} (data)"] = g.in_distribution
        for fam, v in g.perturbed.items():
            chart[f"{g.group} ({fam})"] = v
    data: dict[str, Any] = {
        "integrity": [
            {
                "group": g.group,
                "in_distribution": g.in_distribution,
                "perturbed": dict(g.perturbed),
                "share_in_distribution": g.share_in_distribution,
                "share_perturbed": dict(g.share_perturbed),
                "expected": dict(g.expected),
                "share_expected": dict(g.share_expected),
                "swap": dict(g.flip),
                "swap_expected": dict(g.flip_expected),
                "swap_rest": dict(g.flip_rest),
                "swap_rest_expected": dict(g.flip_rest_expected),
                "hidden_from": list(g.hidden_from),
            }
            for g in result.groups
        ],
        "proxies": list(result.proxies),
        "surrogate_disagreement": dict(result.disagreement),
        "n_rows": result.n_rows,
    }
    return Report(
        subject=subject,
        kind=kind,
        started=started or utcnow(),
        finished=utcnow(),
        findings=tuple(findings),
        metrics=metrics,
        verdict="scaffolded" if result.flagged else "consistent",
        data=data,
        figures=(
            bar_chart(
                "Decision dependence: real data vs explainer perturbations",
                chart,
                ylabel="share of decisions",
            ),
        ),
    )


_OPTIONS = ("model", "data", "label", "input_shape", "output", "timeout", "sensitive", "proxies", "max_rows")


class ExplainIntegrityCheck:
    """Whether a model hides a sensitive or proxy feature from LIME/SHAP (``assess.explain_integrity``).

    Args:
        progress: called as ``(step, done, total)``.
    """

    def __init__(self, *, progress: Callable[[str, int, int], None] | None = None) -> None:
        self.progress = progress

    def run(self, target: Target) -> Report:
        """Load model and data, compare in-distribution and perturbation dependence, report.

        Raises:
            InputError: missing or malformed model or data, or a sensitive/proxy column not in the data.
            ConfigError: a malformed option.
        """
        from mlsecops.assess.explain import load_explain_inputs

        started = utcnow()
        sens_names = target.opt_list("sensitive")
        if not sens_names:
            raise InputError("the integrity test needs the sensitive column(s) (option 'sensitive')")
        first = Target(**{**target.model_dump(), "options": {**target.options, "sensitive": None}})
        model, x, _, names, _, subject, _ = load_explain_inputs(first, "the integrity test needs")
        idx = [_column(names, s, "sensitive") for s in sens_names]
        proxy_names = target.opt_list("proxies")
        proxies = [_column(names, p, "proxy") for p in proxy_names] if proxy_names else None
        result = assess_integrity(
            model,
            x,
            sensitive=idx,
            feature_names=names,
            proxies=proxies,
            max_rows=target.opt_int("max_rows", DEFAULT_MAX_ROWS, lo=MIN_ROWS),
            seed=int(target.seed or 0),
            progress=self.progress,
        )
        return integrity_report(result, subject=subject, started=started)

    @classmethod
    def contract_cases(cls, tmp_dir: Any) -> ContractCases:
        """An honest logistic regression on a CSV with a sensitive column, and a corrupt data file."""
        import pickle

        from sklearn.linear_model import LogisticRegression

        rng = np.random.default_rng(0)
        x = rng.normal(size=(300, 4))
        x[:, 3] = rng.random(300) < 0.5
        y = (x[:, 0] + 0.3 * rng.normal(size=300) > 0).astype(int)
        model_path = Path(tmp_dir) / "integrity-lr.pkl"
        model_path.write_bytes(pickle.dumps(LogisticRegression().fit(x, y)))
        data_path = Path(tmp_dir) / "integrity.csv"
        lines = ["a,b,c,s,label"] + [
            ",".join(f"{v:.4f}" for v in r) + f",{t}" for r, t in zip(x, y, strict=True)
        ]
        data_path.write_text("\n".join(lines) + "\n")
        bad = Path(tmp_dir) / "integrity-bad.csv"
        bad.write_text("a,b,c,s,label\n1,2,x,4,0\n")
        opts = {"label": "label", "sensitive": "s", "max_rows": 300}
        return ContractCases(
            valid=Target(paths=(model_path, data_path), options=opts, seed=1),
            corrupt=Target(paths=(model_path, bad), options=opts, seed=1),
        )


def _column(names: list[str], name: str, what: str) -> int:
    if name not in names:
        raise InputError(f"{what} column {name!r} is not a model input (columns: {', '.join(names[:20])})")
    return names.index(name)


register(
    "assess.explain_integrity",
    kind=CheckKind.AUDIT,
    summary="Explanation integrity: a sensitive feature hidden from LIME/SHAP perturbations (scaffolding)",
    metrics=("scaffold_flagged", "hidden_dependence", "dependence@*"),
    options=_OPTIONS,
)(ExplainIntegrityCheck)
