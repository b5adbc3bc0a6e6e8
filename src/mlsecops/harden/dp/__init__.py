"""Differential privacy for training: DP-SGD through Opacus, and a measured-leakage check of the result.

>>> from mlsecops.harden.dp import dp_train, leakage_check, membership_scores  # doctest: +SKIP
>>> result = dp_train(module, x, y, epsilon=3.0, input_range=(0, 16))  # doctest: +SKIP
>>> result.epsilon, result.facts()["noise_multiplier"]  # doctest: +SKIP

``training`` trains (``dp_train``, ``prepare_module``), ``leakage`` tests the trained model's membership
leakage against its epsilon, ``check`` is the registered ``harden.dp_training`` check behind
``mlsecops harden dp-train``. Opacus and torch are imported only when training starts.
"""

from __future__ import annotations

from mlsecops.harden.dp.leakage import LeakageCheck, leakage_check, membership_scores
from mlsecops.harden.dp.training import (
    DpTrainingResult,
    PrivacyUnsupportedError,
    PublicData,
    dp_train,
    prepare_module,
)

__all__ = [
    "DpTrainingResult",
    "LeakageCheck",
    "PrivacyUnsupportedError",
    "PublicData",
    "dp_train",
    "leakage_check",
    "membership_scores",
    "prepare_module",
]
