"""Severity of poisoning findings follows the evidence: clean data passes a default gate.

Label issues take their severity from the estimated share of wrong labels, not from how many rows
were flagged: clean data (a few genuinely ambiguous rows) gives at most a low finding, planted flips a
medium or high one. The rows are listed either way.
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_breast_cancer, load_wine

from mlsecops.core.findings import Severity
from mlsecops.data._poison import scan_rows


def _flip(y: np.ndarray, rate: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = y.copy()
    idx = rng.choice(y.size, round(rate * y.size), replace=False)
    k = int(y.max()) + 1
    out[idx] = (out[idx] + rng.integers(1, k, idx.size)) % k
    return out


def _labels_finding(X: np.ndarray, y: np.ndarray):  # type: ignore[no-untyped-def]
    res = scan_rows(X, y, detectors=("labels",), seed=0)
    return next((f for f in res.findings if f.check.endswith("labels")), None), res


def test_clean_data_gives_at_most_a_low_label_finding() -> None:
    for load in (load_breast_cancer, load_wine):
        d = load()
        finding, res = _labels_finding(d.data, d.target)
        assert finding is None or finding.severity <= Severity.LOW, (load.__name__, finding)
        assert max((f.severity for f in res.findings), default=Severity.INFO) < Severity.MEDIUM


def test_planted_flips_give_a_high_label_finding_with_the_rows() -> None:
    d = load_breast_cancer()
    y = _flip(d.target, 0.05, seed=1)
    finding, res = _labels_finding(d.data, y)
    assert finding is not None and finding.severity == Severity.HIGH
    flipped = np.flatnonzero(y != d.target)
    assert np.isin(flipped, np.flatnonzero(res.mask)).mean() >= 0.7
    assert finding.evidence["estimated_noise_rate"] >= 0.02


def test_small_data_needs_more_evidence_for_the_same_estimate() -> None:
    from mlsecops.data._poison import _label_severity

    assert _label_severity(0.03, 300) == Severity.MEDIUM  # 300 rows: 3% is within two errors of 1%
    assert _label_severity(0.03, 5000) == Severity.HIGH
    assert _label_severity(0.0025, 1797) == Severity.LOW  # clean digits
    assert _label_severity(0.05, 569) == Severity.HIGH  # 5% flips on breast-cancer
    assert _label_severity(0.0, 10) == Severity.LOW
