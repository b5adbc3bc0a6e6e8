"""Robustness assessment: evasion attacks, the ``assess.robustness`` check, and certification.

>>> from mlsecops.assess import make_attack, evaluate_robustness  # doctest: +SKIP
>>> res = make_attack("pgd", norm="linf", steps=50).generate(model, x, y, eps=0.1)  # doctest: +SKIP
>>> res.robust_accuracy  # doctest: +SKIP

White-box attacks (``fgsm``, ``pgd``, ``apgd``, and ``patch``: a sticker confined to a small square)
need a PyTorch adapter and run in torch; black-box ones (``square``, ``hopskipjump``) need only
``predict_proba``. Every attack stays inside the eps ball and the ``FeatureConstraints``. ``certify``
bounds L2 robustness by randomized smoothing. Each attack and the certification are registered checks
(``assess.<name>``, ``assess.robustness``, ``assess.certify``, ``assess.patch``).
"""

from __future__ import annotations

from mlsecops.assess.attack import ATTACKS, Attack, AttackResult, make_attack
from mlsecops.assess.certify import Certification, CertifyCheck, certification_report, certify
from mlsecops.assess.constraints import FeatureConstraints, parse_norm
from mlsecops.assess.patch import PatchAttack, evaluate_patches, patch_report
from mlsecops.assess.robustness import (
    Evaluation,
    RobustnessCheck,
    evaluate_robustness,
    metric_key,
    robustness_report,
)

__all__ = [
    "ATTACKS",
    "Attack",
    "AttackResult",
    "Certification",
    "CertifyCheck",
    "Evaluation",
    "FeatureConstraints",
    "PatchAttack",
    "RobustnessCheck",
    "certification_report",
    "certify",
    "evaluate_patches",
    "evaluate_robustness",
    "make_attack",
    "metric_key",
    "parse_norm",
    "patch_report",
    "robustness_report",
]
