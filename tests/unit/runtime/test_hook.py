"""The detector hook: never blocks the request path, counts drops, isolates a raising detector."""

from __future__ import annotations

import logging
import statistics
import threading
import time
from typing import Any

import numpy as np
import pytest

from mlsecops.core.severity import Severity
from mlsecops.monitor.interface import Alert, Detector, Observation
from mlsecops.runtime.hook import DetectorHook


def obs(principal: str = "alice", model: str = "fraud", **kw: Any) -> Observation:
    return Observation(time=time.time(), principal=principal, model=model, inputs=np.zeros((1, 3)), **kw)


class Recorder:
    """Remembers what it saw; raises an alert on every ``every``-th observation of a principal."""

    name = "recorder"

    def __init__(self, every: int = 0, delay: float = 0.0) -> None:
        self.seen: list[Observation] = []
        self.every = every
        self.delay = delay
        self.gate = threading.Event()
        self.gate.set()

    def observe(self, observation: Observation) -> list[Alert]:
        self.gate.wait()
        if self.delay:
            time.sleep(self.delay)
        self.seen.append(observation)
        if self.every and observation.query_index % self.every == 0:
            return [
                Alert(
                    kind="test",
                    principal=observation.principal,
                    model=observation.model,
                    severity=Severity.HIGH,
                    query_index=observation.query_index,
                    time=observation.time,
                )
            ]
        return []

    def state(self) -> dict[str, Any]:
        return {"seen": len(self.seen)}

    def restore(self, state: dict[str, Any]) -> None:
        self.seen = []


class Raiser:
    name = "raiser"

    def observe(self, observation: Observation) -> list[Alert]:
        raise RuntimeError("detector bug\nsecond line")

    def state(self) -> dict[str, Any]:
        return {}

    def restore(self, state: dict[str, Any]) -> None:
        return None


def test_test_detectors_satisfy_the_protocol() -> None:
    assert isinstance(Recorder(), Detector) and isinstance(Raiser(), Detector)


def test_observations_reach_every_detector_in_order_with_query_indexes() -> None:
    a, b = Recorder(every=2), Recorder()
    got: list[Alert] = []
    hook = DetectorHook([a, b], queue_size=100, on_alerts=got.extend).start()
    for p in ("alice", "bob", "alice", "alice", "bob"):
        assert hook.submit(obs(p))
    assert hook.submit(obs("alice", model="other"))
    assert hook.submit(obs("carol", query_index=41))  # set by the producer: kept
    assert hook.submit(obs("carol"))
    assert hook.stop(drain=True)
    assert [(o.principal, o.query_index) for o in a.seen] == [
        ("alice", 1),
        ("bob", 1),
        ("alice", 2),
        ("alice", 3),
        ("bob", 2),
        ("alice", 1),
        ("carol", 41),
        ("carol", 42),
    ]
    assert [o.query_index for o in b.seen] == [o.query_index for o in a.seen]
    assert [(x.principal, x.query_index) for x in got] == [("alice", 2), ("bob", 2), ("carol", 42)]
    assert hook.stats() == {
        "submitted": 8,
        "dropped": 0,
        "processed": 8,
        "errors": 0,
        "alerts": 3,
        "queued": 0,
    }


def test_submit_never_blocks_on_a_slow_detector() -> None:
    slow = Recorder(delay=0.05)
    hook = DetectorHook([slow], queue_size=1_000).start()
    took = []
    for _ in range(500):
        start = time.perf_counter()
        hook.submit(obs())
        took.append(time.perf_counter() - start)
    # 500 observations at 50 ms each would take 25 s if submit waited for the detector.
    assert sum(took) < 0.5
    assert statistics.median(took) < 100e-6 and max(took) < 0.05
    assert hook.stop(drain=False)
    assert hook.submitted == 500 and hook.processed + hook.dropped == 500 - hook.stats()["queued"]


def test_full_queue_drops_and_counts() -> None:
    stuck = Recorder()
    stuck.gate.clear()  # the detector hangs until released
    hook = DetectorHook([stuck], queue_size=10).start()
    results = [hook.submit(obs()) for _ in range(30)]
    # one observation may be in the detector's hands, the queue holds ten
    assert results.count(True) in (10, 11) and hook.dropped == 30 - results.count(True)
    stuck.gate.set()
    assert hook.stop(drain=True)
    assert len(stuck.seen) == results.count(True) and hook.processed == results.count(True)


def test_a_raising_detector_is_isolated_logged_once_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    good = Recorder(every=1)
    alerts: list[Alert] = []
    hook = DetectorHook([Raiser(), good], queue_size=100, on_alerts=alerts.extend).start()
    with caplog.at_level(logging.ERROR, logger="mlsecops.runtime.hook"):
        for _ in range(5):
            hook.submit(obs())
        assert hook.stop()
    assert len(good.seen) == 5 and len(alerts) == 5
    assert hook.errors == 5 and hook.detector_errors == {"raiser": 5, "recorder": 0}
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1
    assert "'raiser' raised RuntimeError: detector bug" in lines[0] and "second line" not in lines[0]


def test_a_raising_alert_handler_does_not_stop_the_detectors(caplog: pytest.LogCaptureFixture) -> None:
    det = Recorder(every=1)

    def broken(_alerts: list[Alert]) -> None:
        raise ValueError("store down")

    hook = DetectorHook([det], queue_size=10, on_alerts=broken).start()
    with caplog.at_level(logging.ERROR, logger="mlsecops.runtime.hook"):
        for _ in range(3):
            hook.submit(obs())
        assert hook.stop()
    assert len(det.seen) == 3 and hook.errors == 3 and hook.alerts == 3
    assert len(caplog.records) == 1


def test_stop_refuses_new_observations_and_can_discard_the_queue() -> None:
    stuck = Recorder()
    stuck.gate.clear()
    hook = DetectorHook([stuck], queue_size=100).start()
    for _ in range(20):
        hook.submit(obs())
    time.sleep(0.05)
    stopper = threading.Thread(target=hook.stop, kwargs={"drain": False, "timeout": 5})
    stopper.start()
    time.sleep(0.05)
    assert not hook.submit(obs())
    stuck.gate.set()
    stopper.join(5)
    assert len(stuck.seen) <= 1 and hook.dropped >= 19 + 1
    assert hook.stop()  # a second stop is harmless


def test_not_an_observation_is_counted_not_fatal() -> None:
    det = Recorder()
    hook = DetectorHook([det], queue_size=10).start()
    hook.submit("junk")  # type: ignore[arg-type]  # a producer bug must not kill the consumer
    hook.submit(obs())
    assert hook.stop()
    assert len(det.seen) == 1 and hook.errors == 1


def test_a_never_started_hook_drains_or_discards_at_stop() -> None:
    hook = DetectorHook([Recorder()], queue_size=2)
    assert hook.submit(obs()) and hook.submit(obs()) and not hook.submit(obs())
    assert hook.stop(drain=False) and hook.dropped == 3
    det = Recorder()
    hook = DetectorHook([det], queue_size=2)
    hook.submit(obs())
    hook.submit(obs())
    assert hook.stop(drain=True) and len(det.seen) == 2 and hook.processed == 2
