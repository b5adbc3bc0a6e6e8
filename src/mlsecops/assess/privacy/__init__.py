"""Privacy audits: membership inference, output defences, attribute inference and reconstruction.

>>> from mlsecops.assess.privacy import audit_privacy, privacy_report  # doctest: +SKIP
>>> audit = audit_privacy(model, (x_train, y_train), (x_test, y_test), reference=(x_pool, y_pool))  # doctest: +SKIP
>>> max(a.tpr[0.01] for a in audit.attacks)  # doctest: +SKIP

The check ``assess.privacy`` (``mlsecops assess privacy``) runs all of it from files.
"""

from __future__ import annotations

from mlsecops.assess.privacy._attacks import ATTACK_NAMES, REFERENCE_ATTACKS
from mlsecops.assess.privacy._metrics import FPR_TARGETS, AttackMetrics, attack_metrics
from mlsecops.assess.privacy.audit import PrivacyAudit, audit_privacy, row_digests, strongest
from mlsecops.assess.privacy.check import PrivacyCheck
from mlsecops.assess.privacy.defences import DEFENCES, Defence, DefenceResult, evaluate_defences
from mlsecops.assess.privacy.inversion import attribute_inference, reconstruct_classes
from mlsecops.assess.privacy.report import privacy_report

__all__ = [
    "ATTACK_NAMES",
    "DEFENCES",
    "FPR_TARGETS",
    "REFERENCE_ATTACKS",
    "AttackMetrics",
    "Defence",
    "DefenceResult",
    "PrivacyAudit",
    "PrivacyCheck",
    "attack_metrics",
    "attribute_inference",
    "audit_privacy",
    "evaluate_defences",
    "privacy_report",
    "reconstruct_classes",
    "row_digests",
    "strongest",
]
