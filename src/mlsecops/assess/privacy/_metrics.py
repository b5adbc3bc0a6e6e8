"""How well a membership score separates members from non-members: ROC AUC, advantage, TPR at low FPR.

Scores are "higher means member". TPR at a target FPR is the highest TPR of any threshold whose FPR on
these non-members does not exceed the target (so with fewer than ``1/fpr`` non-members it is the TPR at
zero false positives, and ``fpr_resolution`` says so). Its interval is Clopper-Pearson (exact binomial)
on the members at that threshold; it does not cover the optimism of choosing the threshold on the same
data, which is small next to the binomial width at these sample sizes. The AUC interval is a stratified
bootstrap (percentile).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["FPR_TARGETS", "AttackMetrics", "attack_metrics", "clopper_pearson", "tpr_key"]

FPR_TARGETS = (0.001, 0.01)
"""False-positive rates at which TPR is reported (the low-FPR regime that matters for privacy)."""
CONFIDENCE = 0.95
"""Coverage of every interval reported."""
BOOTSTRAP_ROUNDS = 200
"""Bootstrap resamples for the AUC interval: enough for a 95% percentile interval to +-0.005."""
ROC_POINTS = 200
"""Most points of a ROC curve kept for the plot and the JSON report (log-spaced in FPR)."""
N_EXPOSED = 10
"""Most exposed member indices reported per attack (indices only, never rows)."""


def tpr_key(fpr: float) -> str:
    """The metric suffix of a TPR at ``fpr``: ``tpr@0.01``."""
    return f"tpr@{fpr:g}"


def clopper_pearson(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Exact binomial interval for ``k`` successes in ``n`` trials."""
    from scipy.stats import beta

    if n == 0:
        return 0.0, 1.0
    a = 1.0 - confidence
    lo = 0.0 if k == 0 else float(beta.ppf(a / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a / 2, k + 1, n - k))
    return lo, hi


@dataclass(frozen=True)
class AttackMetrics:
    """One attack's separation of members from non-members."""

    attack: str
    auc: float
    auc_ci: tuple[float, float]
    advantage: float
    tpr: dict[float, float]
    tpr_ci: dict[float, tuple[float, float]]
    fpr_resolution: float
    roc: list[tuple[float, float]] = field(default_factory=list)
    exposed: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (ROC points as ``[fpr, tpr]`` pairs)."""
        return {
            "attack": self.attack,
            "auc": round(self.auc, 6),
            "auc_ci": [round(v, 6) for v in self.auc_ci],
            "advantage": round(self.advantage, 6),
            **{tpr_key(f): round(v, 6) for f, v in self.tpr.items()},
            **{f"{tpr_key(f)}_ci": [round(a, 6), round(b, 6)] for f, (a, b) in self.tpr_ci.items()},
            "fpr_resolution": self.fpr_resolution,
            "most_exposed_members": self.exposed,
            "roc": [[round(a, 6), round(b, 6)] for a, b in self.roc],
        }


def _roc(scores: np.ndarray, member: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(member, scores, drop_intermediate=False)
    return fpr, tpr


def _auc(scores: np.ndarray, member: np.ndarray) -> float:
    """Mann-Whitney AUC from ranks (ties count half): one sort, no per-call overhead."""
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    n1 = int(member.sum())
    n0 = len(member) - n1
    return float((ranks[member].sum() - n1 * (n1 + 1) / 2) / max(n1 * n0, 1))


def attack_metrics(
    attack: str,
    scores: np.ndarray,
    member: np.ndarray,
    *,
    seed: int = 0,
    n_exposed: int = N_EXPOSED,
    bootstrap: bool = True,
) -> AttackMetrics:
    """Metrics of one attack's scores (higher = member) against the truth ``member`` (bool).

    ``bootstrap=False`` skips the AUC interval (reported as the point value twice). ``exposed`` lists the member positions (indices into the members, in their file's order) with the
    highest scores.
    """
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf, posinf=1e300, neginf=-1e300)
    m = np.asarray(member, dtype=bool)
    n_in, n_out = int(m.sum()), int((~m).sum())
    fpr, tpr = _roc(s, m)
    auc = _auc(s, m)
    boots = _bootstrap_auc(s, m, seed) if bootstrap else np.array([auc])
    a = (1 - CONFIDENCE) / 2
    auc_ci = (float(np.quantile(boots, a)), float(np.quantile(boots, 1 - a)))
    tprs: dict[float, float] = {}
    cis: dict[float, tuple[float, float]] = {}
    for target in FPR_TARGETS:
        ok = fpr <= target + 1e-12
        best = float(tpr[ok].max()) if ok.any() else 0.0
        tprs[target] = best
        cis[target] = clopper_pearson(round(best * n_in), n_in)
    member_scores = s[m]
    order = np.argsort(-member_scores, kind="stable")[:n_exposed]
    return AttackMetrics(
        attack=attack,
        auc=auc,
        auc_ci=auc_ci,
        advantage=float(np.max(tpr - fpr)),
        tpr=tprs,
        tpr_ci=cis,
        fpr_resolution=1.0 / max(n_out, 1),
        roc=_thin(fpr, tpr, 1.0 / max(n_out, 1)),
        exposed=[int(i) for i in order],
    )


def _bootstrap_auc(s: np.ndarray, m: np.ndarray, seed: int) -> np.ndarray:
    """AUCs of ``BOOTSTRAP_ROUNDS`` stratified resamples, all at once: per round, the resampled counts
    of members and non-members per distinct score; a member beats the non-members below it (ties half).
    """
    rng = np.random.default_rng(seed)
    uniq, inv = np.unique(s, return_inverse=True)
    g, r = len(uniq), BOOTSTRAP_ROUNDS
    pos_g, neg_g = inv[m], inv[~m]
    n1, n0 = len(pos_g), len(neg_g)
    rows = np.arange(r)[:, None] * g
    pick_p = pos_g[rng.integers(0, n1, (r, n1))]
    pick_n = neg_g[rng.integers(0, n0, (r, n0))]
    p = np.bincount((rows + pick_p).ravel(), minlength=r * g).reshape(r, g)
    n = np.bincount((rows + pick_n).ravel(), minlength=r * g).reshape(r, g)
    below = np.cumsum(n, axis=1) - n
    return np.asarray((p * (below + 0.5 * n)).sum(axis=1) / max(n1 * n0, 1))


def _thin(fpr: np.ndarray, tpr: np.ndarray, floor: float) -> list[tuple[float, float]]:
    """At most ``ROC_POINTS`` points of the curve, log-spaced in FPR from ``floor`` (for log axes)."""
    grid = np.unique(np.concatenate([np.geomspace(floor, 1.0, ROC_POINTS - 1), [1.0]]))
    out = []
    for g in grid:
        ok = fpr <= g + 1e-12
        out.append((float(g), float(tpr[ok].max()) if ok.any() else 0.0))
    return out
