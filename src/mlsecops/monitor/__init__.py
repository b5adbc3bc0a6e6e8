"""Runtime detectors over a stream of requests, usable online (the guard's detector hook) and offline
(``mlsecops monitor replay`` over a decision log), plus the alert store.

Every detector implements ``interface.Detector``: ``observe(Observation) -> list[Alert]`` with bounded
memory per principal. ``build_detectors`` makes the set a guard policy's ``monitor`` section names.

>>> from mlsecops.monitor import Alert, Observation
>>> Alert.__name__, Observation.__name__
('Alert', 'Observation')
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlsecops.core._lazy import lazy_attributes as _lazy_attributes
from mlsecops.monitor.interface import Alert, Detector, Observation

if TYPE_CHECKING:
    from mlsecops.monitor.adversarial_screen import AdversarialInputScreen, ScreenDecisions, screen
    from mlsecops.monitor.alerts import AlertStatus, AlertStore, StoredAlert
    from mlsecops.monitor.detectors import build_detectors
    from mlsecops.monitor.drift import DriftDetector, WindowVerdict, record_feedback
    from mlsecops.monitor.drift_batch import drift_report
    from mlsecops.monitor.extraction import ExtractionDetector
    from mlsecops.monitor.query_attacks import QueryAttackDetector
    from mlsecops.monitor.replay import load_baseline, read_queries, replay

# Detectors load on first use (PEP 562): scipy and scikit-learn are start-up time the guard's workers
# and `mlsecops monitor --help` should not pay for detectors a policy does not name.
_LAZY = {
    "AdversarialInputScreen": "mlsecops.monitor.adversarial_screen",
    "ScreenDecisions": "mlsecops.monitor.adversarial_screen",
    "screen": "mlsecops.monitor.adversarial_screen",
    "AlertStatus": "mlsecops.monitor.alerts",
    "AlertStore": "mlsecops.monitor.alerts",
    "StoredAlert": "mlsecops.monitor.alerts",
    "build_detectors": "mlsecops.monitor.detectors",
    "DriftDetector": "mlsecops.monitor.drift",
    "WindowVerdict": "mlsecops.monitor.drift",
    "record_feedback": "mlsecops.monitor.drift",
    "drift_report": "mlsecops.monitor.drift_batch",
    "ExtractionDetector": "mlsecops.monitor.extraction",
    "QueryAttackDetector": "mlsecops.monitor.query_attacks",
    "load_baseline": "mlsecops.monitor.replay",
    "read_queries": "mlsecops.monitor.replay",
    "replay": "mlsecops.monitor.replay",
}

__all__ = [
    "AdversarialInputScreen",
    "Alert",
    "AlertStatus",
    "AlertStore",
    "Detector",
    "DriftDetector",
    "ExtractionDetector",
    "Observation",
    "QueryAttackDetector",
    "ScreenDecisions",
    "StoredAlert",
    "WindowVerdict",
    "build_detectors",
    "drift_report",
    "load_baseline",
    "read_queries",
    "record_feedback",
    "replay",
    "screen",
]

__getattr__, __dir__ = _lazy_attributes(__name__, _LAZY, __all__)
