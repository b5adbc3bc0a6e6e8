"""The sidecar: decision-log rows and observations cross to a process of its own; drops are counted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from mlsecops.monitor.interface import Observation
from mlsecops.runtime._decision_tables import DecisionRecord
from mlsecops.runtime.decisions import input_digest
from mlsecops.runtime.policy import GuardPolicy
from mlsecops.runtime.sidecar import RemoteDecisionLog, RemoteHook, Sidecar, SidecarError, SidecarSpec
from mlsecops.store import Workspace

pytestmark = pytest.mark.timeout(120)


def _spec(**kw: object) -> SidecarSpec:
    args: dict[str, object] = {
        "policy": GuardPolicy.model_validate({"logging": {"raw_inputs": True}}),
        "model_spec": None,
        "model_name": "fraud",
        "model_digest": "0" * 64,
        "model_info": None,
        "profile": None,
        "detect": False,
    }
    args.update(kw)
    return SidecarSpec(**args)  # type: ignore[arg-type]


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    home = tmp_path / ".mlsecops"
    ws = Workspace.init(home, actor="test")
    monkeypatch.setenv("MLSECOPS_HOME", str(home))
    monkeypatch.delenv("MLSECOPS_DATABASE_URL", raising=False)
    try:
        yield ws
    finally:
        ws.close()


def test_rows_and_observations_reach_the_sidecar_and_drops_are_counted(ws: Workspace) -> None:
    car = Sidecar(_spec())
    log = RemoteDecisionLog(car, _spec().policy.logging)
    hook = RemoteHook(car)
    try:
        rows = [np.array([[float(i), 2.0, -0.0]]) for i in range(50)]
        for i, x in enumerate(rows):
            assert log.record(
                principal="alice",
                model="fraud",
                version="3",
                decision="accepted",
                status=200,
                latency_ms=1.0,
                inputs=x,
                outputs=np.array([[0.25, 0.75]]),
                time_s=1_700_000_000.0 + i,
            )
        assert hook.submit(Observation(time=1.0, principal="alice", model="fraud", inputs=rows[0]))
        assert log.flush(60)
        with ws.session(readonly=True) as s:
            stored = list(s.execute(select(DecisionRecord).order_by(DecisionRecord.ts_us)).scalars())
        assert [r.input_digest for r in stored] == [input_digest(x) for x in rows]
        assert stored[7].inputs == "[[7.0,2.0,-0.0]]" and stored[7].outputs == "[[0.25,0.75]]"
        assert log.stats()["written"] == 50 and log.stats()["dropped"] == 0
        # no detectors here: the observation still crossed and was processed by the (empty) hook
        assert hook.stats()["submitted"] == 1 and hook.stats()["processed"] == 1
        assert hook.dropped == 0
    finally:
        log.close()
    # closed: nothing more is accepted, and each refusal is counted on both proxies
    assert not log.record(
        principal="a", model="m", version="1", decision="accepted", status=200, latency_ms=1
    )
    assert not hook.submit(Observation(time=1.0, principal="alice", model="fraud", inputs=rows[0]))
    assert log.stats()["dropped"] == 1
    assert hook.dropped == 1
    hook.stop()
    assert not hook.submit(Observation(time=1.0, principal="alice", model="fraud", inputs=rows[0]))
    assert hook.dropped == 2


def test_a_full_buffer_drops_and_counts(ws: Workspace) -> None:
    car = Sidecar(_spec(), buffer_max=3)
    log = RemoteDecisionLog(car, _spec().policy.logging)
    try:
        with car._send_lock:  # the flusher cannot send meanwhile: the buffer fills
            results = [
                log.record(
                    principal="a", model="m", version="1", decision="accepted", status=200, latency_ms=1
                )
                for _ in range(10)
            ]
        assert results == [True] * 3 + [False] * 7
        assert log.flush(60)
        assert log.stats()["written"] == 3 and log.stats()["dropped"] == 7
    finally:
        log.close()


def test_a_sidecar_that_cannot_build_refuses_to_start(ws: Workspace, tmp_path: Path) -> None:
    with pytest.raises(SidecarError, match=r"missing\.joblib"):
        Sidecar(_spec(detect=True, model_spec=str(tmp_path / "missing.joblib")))
