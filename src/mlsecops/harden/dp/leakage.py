"""Measured membership leakage of a trained model, tested against the (epsilon, delta) it claims.

A model trained with (epsilon, delta)-DP bounds every membership test: TPR <= e^epsilon * FPR + delta,
and the same for the complementary test (Kairouz et al. 2015; the hypothesis-testing view of DP used by
Jagielski et al. 2020 and Nasr et al. 2021 to audit DP-SGD). ``leakage_check`` takes membership scores
(from ``membership_scores``, or any attack of the privacy audit), chooses a threshold on one random half
of the rows and tests it on the other half with exact Clopper-Pearson bounds, so the empirical epsilon
it reports is a valid lower bound on the true epsilon at ``LEAKAGE_CONFIDENCE``, not the maximum of noise.
Above the claimed epsilon means the claim is false (a bug in training, rows shared by members and
non-members, or a model that was not the one trained).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlsecops.core.errors import InputError
from mlsecops.models.interface import ModelAdapter

__all__ = ["LEAKAGE_CONFIDENCE", "LeakageCheck", "leakage_check", "membership_scores"]

LEAKAGE_CONFIDENCE = 0.95
"""Confidence of the bounds on TPR and FPR when testing measured leakage against epsilon."""
MIN_ROWS = 4
"""Fewest members and non-members the test runs on (each half needs some of both)."""


@dataclass(frozen=True)
class LeakageCheck:
    """Measured membership leakage of a model, tested against the (epsilon, delta) it claims."""

    epsilon: float
    delta: float
    attack: str
    """The attack whose held-out test gave the largest empirical epsilon."""
    auc: float
    advantage: float
    """max(TPR - FPR) of that attack, over all rows (biased upward on small sets; see ``test_*``)."""
    advantage_bound: float
    """The most membership advantage an (epsilon, delta)-DP model allows: (e^eps - 1 + 2 delta) / (e^eps + 1)."""
    empirical_epsilon: float
    """Lower bound on the true epsilon at ``LEAKAGE_CONFIDENCE`` from the held-out threshold test."""
    test_tpr: float
    test_fpr: float
    consistent: bool
    """False when the measured leakage proves the claimed epsilon false (empirical > claimed)."""
    n_members: int
    n_non_members: int

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def membership_scores(
    model: ModelAdapter,
    members: tuple[np.ndarray, np.ndarray],
    non_members: tuple[np.ndarray, np.ndarray],
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Membership scores (higher = more likely a member) of the loss and confidence attacks.

    Returns:
        ``({attack: scores}, member mask)`` over ``members`` then ``non_members``.
    """
    x = np.concatenate([members[0], non_members[0]]).astype(np.float32)
    y = np.concatenate([members[1], non_members[1]]).astype(np.int64)
    member = np.arange(len(x)) < len(members[0])
    proba = np.clip(model.predict_proba(x), 1e-12, 1.0)
    true = proba[np.arange(len(y)), y]
    other = np.clip(1.0 - true, 1e-12, 1.0)
    return {"loss": np.log(true), "logit_confidence": np.log(true) - np.log(other)}, member


def _empirical_epsilon(tpr_lo: float, fpr_hi: float, fnr_hi: float, tnr_lo: float, delta: float) -> float:
    """Largest epsilon the bounds prove: TPR <= e^eps FPR + delta and TNR <= e^eps FNR + delta."""
    best = 0.0
    for num, den in ((tpr_lo, fpr_hi), (tnr_lo, fnr_hi)):
        if num - delta > 0 and den > 0:
            best = max(best, math.log((num - delta) / den))
        elif num - delta > 0:
            best = math.inf
    return best


def leakage_check(
    scores: dict[str, np.ndarray],
    member: np.ndarray,
    *,
    epsilon: float,
    delta: float,
    seed: int = 0,
) -> LeakageCheck:
    """Test measured membership leakage against (epsilon, delta)-DP.

    For each attack, the rows are split in two halves at random; the threshold with the largest
    empirical epsilon on the first half is applied to the second, whose TPR and FPR get exact
    Clopper-Pearson bounds at ``LEAKAGE_CONFIDENCE`` (Bonferroni over the attacks). The result is a
    valid lower bound on the model's true epsilon; above the claimed epsilon means a violation.

    Args:
        scores: per attack, a score per row (higher = member), e.g. ``membership_scores`` or the
            ``scores`` of ``mlsecops.assess.privacy`` audits.
        member: which rows are members.
        epsilon: claimed epsilon.
        delta: claimed delta.
        seed: seeds the split.

    Raises:
        InputError: no attack, fewer than 4 members or non-members, or mismatched lengths.
    """
    from scipy.stats import beta

    member = np.asarray(member, dtype=bool)
    n_m, n_n = int(member.sum()), int((~member).sum())
    if not scores or n_m < MIN_ROWS or n_n < MIN_ROWS:
        raise InputError("the leakage check needs scores and at least 4 members and 4 non-members")
    alpha = (1 - LEAKAGE_CONFIDENCE) / len(scores)

    def bounds(k: int, n: int) -> tuple[float, float]:
        lo = float(beta.ppf(alpha / 2, k, n - k + 1)) if k > 0 else 0.0
        hi = float(beta.ppf(1 - alpha / 2, k + 1, n - k)) if k < n else 1.0
        return lo, hi

    rng = np.random.default_rng(seed)
    half = rng.random(len(member)) < 0.5
    best: tuple[float, str, float, float, float, float] | None = None
    for name, s in scores.items():
        s = np.asarray(s, dtype=np.float64)
        if s.shape != member.shape:
            raise InputError(f"scores of {name} have {s.shape[0]} rows; expected {member.shape[0]}")
        auc, adv = _auc_adv(s, member)
        thr = _best_threshold(s[half], member[half], delta)
        pred = s[~half] >= thr
        m2, n2 = member[~half], ~member[~half]
        tp, fp = int((pred & m2).sum()), int((pred & n2).sum())
        tpr_lo, _ = bounds(tp, int(m2.sum()))
        _, fpr_hi = bounds(fp, int(n2.sum()))
        # both tests a threshold gives: TPR <= e^eps FPR + delta, and TNR <= e^eps FNR + delta
        emp = _empirical_epsilon(tpr_lo, fpr_hi, 1.0 - tpr_lo, 1.0 - fpr_hi, delta)
        n2_m = max(1, int(m2.sum()))
        n2_n = max(1, int(n2.sum()))
        row = (emp, name, auc, adv, tp / n2_m, fp / n2_n)
        if best is None or row[0] > best[0] or (row[0] == best[0] and adv > best[3]):
            best = row
    assert best is not None
    emp, name, auc, adv, ttpr, tfpr = best
    bound = min(1.0, math.tanh(epsilon / 2) + 2 * delta / (math.exp(min(epsilon, 700.0)) + 1))  # no overflow
    return LeakageCheck(
        epsilon=float(epsilon),
        delta=float(delta),
        attack=name,
        auc=float(auc),
        advantage=float(adv),
        advantage_bound=bound,
        empirical_epsilon=float(emp),
        test_tpr=float(ttpr),
        test_fpr=float(tfpr),
        consistent=bool(emp <= epsilon),
        n_members=n_m,
        n_non_members=n_n,
    )


def _auc_adv(s: np.ndarray, member: np.ndarray) -> tuple[float, float]:
    """ROC AUC (ties counted half) and max(TPR - FPR) of scores ``s``."""
    from scipy.stats import rankdata

    ranks = rankdata(s)
    n_m, n_n = int(member.sum()), int((~member).sum())
    auc = (ranks[member].sum() - n_m * (n_m + 1) / 2) / (n_m * n_n)
    order = np.argsort(-s, kind="stable")
    m_sorted = member[order]
    tpr = np.cumsum(m_sorted) / n_m
    fpr = np.cumsum(~m_sorted) / n_n
    distinct = np.r_[s[order][1:] != s[order][:-1], True]  # only cut between distinct scores
    adv = float(np.max((tpr - fpr)[distinct], initial=0.0))
    return float(auc), max(0.0, adv)


def _best_threshold(s: np.ndarray, member: np.ndarray, delta: float) -> float:
    """The threshold (predict member when score >= it) with the largest plug-in empirical epsilon."""
    n_m, n_n = max(1, int(member.sum())), max(1, int((~member).sum()))
    order = np.argsort(-s, kind="stable")
    ss, ms = s[order], member[order]
    tpr = np.cumsum(ms) / n_m
    fpr = np.cumsum(~ms) / n_n
    # +1 smoothing keeps a threshold with a handful of rows from looking infinitely good
    ratio = np.maximum(tpr - delta, 1e-12) / ((np.cumsum(~ms) + 1) / (n_n + 1))
    ratio_c = np.maximum(1 - fpr - delta, 1e-12) / ((n_m - np.cumsum(ms) + 1) / (n_m + 1))
    score = np.maximum(np.log(ratio), np.log(ratio_c))
    distinct = np.r_[ss[1:] != ss[:-1], True]
    score = np.where(distinct, score, -np.inf)
    i = int(np.argmax(score)) if len(score) else 0
    return float(ss[i]) if len(ss) else 0.0
