"""Decision auditing at runtime: the fairness detector fires when a disparity opens on labelled live
decisions, stays quiet on fair ones, and skips feedback it cannot judge."""

from __future__ import annotations

import numpy as np
import pytest

from mlsecops.core.errors import ConfigError
from mlsecops.monitor.fairness import FairnessMonitor
from mlsecops.runtime.hook import DetectorHook, Feedback

WINDOW = 400


def _decisions(n: int, *, biased: bool, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows (column 2 is the group), true labels and the model's probabilities for them."""
    rng = np.random.default_rng(seed)
    rows = rng.normal(size=(n, 4))
    group = rng.integers(0, 2, size=n)
    rows[:, 2] = group
    y = rng.integers(0, 2, size=n)
    hit = rng.random(n) < 0.85  # an accurate model...
    if biased:  # ...that misses most of group 1's positives (the equal-opportunity gap of the seeds)
        hit = np.where((group == 1) & (y == 1), rng.random(n) < 0.35, hit)
    pred = np.where(hit, y, 1 - y)
    p1 = np.where(pred == 1, 0.8, 0.2)
    return rows, y, np.column_stack([1 - p1, p1])


def _monitor() -> FairnessMonitor:
    return FairnessMonitor(model_name="screening", sensitive_index=2, window=WINDOW, bootstrap=100)


def test_a_disparity_opening_in_live_decisions_raises_a_fairness_alert() -> None:
    det = _monitor()
    rows, y, proba = _decisions(WINDOW, biased=False, seed=1)
    assert det.record_feedback(labels=y, outputs=proba, time=1.0, inputs=rows) == []  # fair window
    rows, y, proba = _decisions(WINDOW, biased=True, seed=2)
    alerts = det.record_feedback(labels=y, outputs=proba, time=2.0, inputs=rows)
    assert len(alerts) == 1
    a = alerts[0]
    assert a.kind == "fairness" and a.model == "screening" and str(a.severity) == "high"
    assert a.evidence["metric"] == "equal_opportunity_difference"
    assert a.evidence["interval"][0] > 0.1 and set(a.evidence["groups"]) == {"0", "1"}
    assert det.audits == 2


@pytest.mark.parametrize("seed", range(5))
def test_fair_decisions_never_alert(seed: int) -> None:
    det = _monitor()
    rows, y, proba = _decisions(3 * WINDOW, biased=False, seed=10 + seed)
    for start in range(0, 3 * WINDOW, 50):  # feedback arrives in small batches
        part = slice(start, start + 50)
        assert det.record_feedback(labels=y[part], outputs=proba[part], time=0.0, inputs=rows[part]) == []
    assert det.audits == 3


def test_feedback_it_cannot_judge_is_skipped_not_raised() -> None:
    det = _monitor()
    rows, y, proba = _decisions(50, biased=True, seed=3)
    assert det.record_feedback(labels=y, outputs=proba, time=0.0) == []  # no rows: no groups
    assert det.record_feedback(labels=y, outputs=np.ones((50, 3)) / 3, time=0.0, inputs=rows) == []
    assert det.record_feedback(labels=y, outputs=proba, time=0.0, inputs=rows[:, :2]) == []  # no column 2
    assert det.skipped == 150 and det.state()["labels"] == []


def test_state_round_trips_the_open_window() -> None:
    det = _monitor()
    rows, y, proba = _decisions(120, biased=True, seed=4)
    det.record_feedback(labels=y, outputs=proba, time=0.0, inputs=rows)
    again = _monitor()
    again.restore(det.state())
    assert again.state() == det.state() and again._rows == 120


@pytest.mark.parametrize(
    "options",
    [{"metric": "accuracy"}, {"sensitive_index": -1}, {"window": 10}, {"max_difference": 1.5}],
)
def test_bad_options_are_config_errors(options: dict[str, object]) -> None:
    kwargs: dict[str, object] = {"sensitive_index": 2, **options}
    with pytest.raises(ConfigError):
        FairnessMonitor(**kwargs)  # type: ignore[arg-type]


def test_the_hook_hands_labels_and_rows_to_the_detector() -> None:
    """Through the guard's hook, as the feedback endpoint delivers them (rows included)."""
    raised: list[object] = []
    hook = DetectorHook([_monitor()], on_alerts=raised.extend).start()
    assert hook.takes_feedback
    rows, y, proba = _decisions(WINDOW, biased=True, seed=5)
    assert hook.feedback(Feedback(1.0, "labeller", "screening", "3", y, proba, rows))
    assert hook.stop(drain=True, timeout=60)
    assert len(raised) == 1 and getattr(raised[0], "kind", None) == "fairness"


def test_built_from_the_guard_policy() -> None:
    from mlsecops.monitor.detectors import build_detectors
    from mlsecops.runtime.policy import MonitorPolicy

    policy = MonitorPolicy(detectors={"fairness": {"sensitive_index": 2, "window": 500}})
    (det,) = build_detectors(policy, {"n_classes": 2, "input_shape": [4]}, model_name="screening")
    assert isinstance(det, FairnessMonitor) and det.window == 500 and det.model_name == "screening"
