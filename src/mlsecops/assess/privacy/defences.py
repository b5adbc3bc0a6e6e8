"""Output defences, evaluated against the audit: what each one costs and what it stops.

Each defence is the guard's own output hardening (``mlsecops.models.outputs``: the same functions the
guard serves with), applied to the target's answers on the audited records; the attacks are then run
again on what a caller would see. Reference models are the attacker's own, so their answers are
transformed the same way (the attacker compares like with like). The label-only attack needs only the
predicted label, which every defence here keeps (noise may flip a close call), so its result stands
for every defence: a defence is reported as not reducing leakage when the strongest attack on the
defended answers still reaches ``NOT_REDUCED_RATIO`` of the undefended TPR at 1% FPR.

Utility cost, measured on the non-members (held-out rows): accuracy and log-loss of the best
distribution a caller can rebuild from the defended answer (``rebuild``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mlsecops.assess.privacy._attacks import reference_scores, threshold_scores
from mlsecops.assess.privacy._metrics import AttackMetrics, attack_metrics
from mlsecops.assess.privacy.audit import PrivacyAudit, strongest
from mlsecops.models.outputs import PROB_FLOOR, harden_proba, perturb, rebuild

__all__ = ["DEFENCES", "NOT_REDUCED_RATIO", "Defence", "DefenceResult", "evaluate_defences"]

NOT_REDUCED_RATIO = 0.9
"""A defence whose strongest attack keeps at least this share of the undefended TPR at 1% FPR is
reported as not reducing leakage."""


@dataclass(frozen=True)
class Defence:
    """One output defence: an output mode of the guard, rounding, and noise on the confidences."""

    name: str
    mode: str = "probabilities"
    top_k: int = 1
    decimals: int | None = None
    noise: float = 0.0

    def apply(self, proba: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """What a caller can rebuild from the defended answers to ``proba`` ``(..., n, C)``."""
        flat = proba.reshape(-1, proba.shape[-1])
        if self.noise > 0:
            flat = perturb(flat, self.noise, rng)
        out = harden_proba(flat, mode=self.mode, top_k=self.top_k, decimals=self.decimals)  # type: ignore[arg-type]
        return rebuild(out, proba.shape[-1]).reshape(proba.shape)


DEFENCES = (
    Defence("round2", decimals=2),
    Defence("round1", decimals=1),
    Defence("top1", mode="top_k", top_k=1, decimals=2),
    Defence("label", mode="label"),
    Defence("noise0.05", noise=0.05),
    Defence("noise0.2", noise=0.2),
)
"""The defences evaluated by default (names as in the report and its metrics)."""


@dataclass(frozen=True)
class DefenceResult:
    """The audit re-run on one defence's answers."""

    defence: Defence
    attacks: tuple[AttackMetrics, ...]
    accuracy_before: float
    accuracy_after: float
    log_loss_before: float
    log_loss_after: float
    reduces_leakage: bool

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary (per attack: AUC and TPRs, without ROC points)."""
        best = strongest(self.attacks)
        return {
            "defence": self.defence.name,
            "strongest_attack": best.attack,
            "auc": round(max(a.auc for a in self.attacks), 6),
            "tpr@0.01": round(max(a.tpr[0.01] for a in self.attacks), 6),
            "tpr@0.001": round(max(a.tpr[0.001] for a in self.attacks), 6),
            "accuracy_before": round(self.accuracy_before, 6),
            "accuracy_after": round(self.accuracy_after, 6),
            "log_loss_before": round(self.log_loss_before, 6),
            "log_loss_after": round(self.log_loss_after, 6),
            "reduces_leakage": self.reduces_leakage,
            "attacks": {
                a.attack: {
                    "auc": round(a.auc, 6),
                    "tpr@0.01": round(a.tpr[0.01], 6),
                    "tpr@0.001": round(a.tpr[0.001], 6),
                }
                for a in self.attacks
            },
        }


def _log_loss(p: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], PROB_FLOOR, 1.0))))


def evaluate_defences(
    audit: PrivacyAudit, defences: tuple[Defence, ...] = DEFENCES, *, seed: int = 0
) -> tuple[DefenceResult, ...]:
    """Re-run the audit's attacks on each defence's answers (needs the model's probabilities).

    Returns an empty tuple for a label-only model (there is nothing left to defend in the answers).
    """
    if audit.probabilities is None:
        return ()
    p, y, member = audit.probabilities, audit.y, audit.member
    before = max(a.tpr[0.01] for a in audit.attacks)
    held = ~member
    results = []
    for i, d in enumerate(defences):
        rng = np.random.default_rng([seed, i])
        q = d.apply(p, rng)
        scores = {k: v for k, v in threshold_scores(q, y).items() if k in audit.scores}
        if audit.references is not None:
            ref, inside = audit.references
            rq = d.apply(ref, rng)
            scores.update({k: v for k, v in reference_scores(q, rq, inside, y).items() if k in audit.scores})
        if "label_only" in audit.scores:
            scores["label_only"] = audit.scores["label_only"]
        metrics = tuple(attack_metrics(k, v, member, seed=seed, bootstrap=False) for k, v in scores.items())
        after = max(a.tpr[0.01] for a in metrics)
        results.append(
            DefenceResult(
                defence=d,
                attacks=metrics,
                accuracy_before=float(np.mean(p[held].argmax(axis=1) == y[held])),
                accuracy_after=float(np.mean(q[held].argmax(axis=1) == y[held])),
                log_loss_before=_log_loss(p[held], y[held]),
                log_loss_after=_log_loss(q[held], y[held]),
                reduces_leakage=after < NOT_REDUCED_RATIO * before,
            )
        )
    return tuple(results)
