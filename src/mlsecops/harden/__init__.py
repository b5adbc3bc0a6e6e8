"""Hardening: adversarial training (PGD, TRADES) of PyTorch models, as a library call and a check.

>>> from mlsecops.harden import adversarial_train  # doctest: +SKIP
>>> adversarial_train(module, x, y, method="trades", eps=0.1, epochs=10)  # doctest: +SKIP
"""

from __future__ import annotations

from mlsecops.harden.adversarial_training import TrainingResult, adversarial_train
from mlsecops.harden.check import AdversarialTrainingCheck, record_lineage

__all__ = ["AdversarialTrainingCheck", "TrainingResult", "adversarial_train", "record_lineage"]
