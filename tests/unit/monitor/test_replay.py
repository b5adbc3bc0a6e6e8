"""Replaying QUERIES.jsonl: hostile or malformed lines get one clear error naming the line; times are
re-ordered within a bounded window; outputs are recomputed from the model; alerts carry the
principal's request count."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mlsecops.core.errors import InputError
from mlsecops.monitor.replay import MAX_LINE_BYTES, REORDER_ROWS, Query, load_baseline, read_queries, replay

GOOD = {"time": 1.0, "principal": "alice", "inputs": [[0.0, 1.0, 2.0]]}


def _write(tmp_path: Path, lines: list[str | bytes]) -> Path:
    path = tmp_path / "q.jsonl"
    path.write_bytes(b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines))
    return path


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"time": 1, "principal": "a", "inputs": [[NaN, 1, 2]]}', "not valid JSON"),
        ('{"time": 1, "principal": "a", "inputs": [[Infinity, 1, 2]]}', "not valid JSON"),
        ('{"time": 1, "principal": "a", "inputs": [[1e999, 1, 2]]}', "overflows to infinity"),
        ('{"time": 1, "principal": "a", "inputs": [[1, 2]]}', "have 2 values, the model takes 3"),
        ('{"time": 1, "principal": "a", "inputs": [[1, 2, 3], [1, 2]]}', "differ in width"),
        ('{"time": 1, "principal": "a", "inputs": [[1, "2", 3]]}', "rows of numbers"),
        ('{"time": 1, "principal": "a", "inputs": [[1, true, 3]]}', "rows of numbers"),
        ('{"time": 1, "principal": "a", "inputs": []}', "non-empty list"),
        ('{"principal": "a", "inputs": [[1, 2, 3]]}', "missing field 'time'"),
        ('{"time": 1, "inputs": [[1, 2, 3]]}', "missing field 'principal'"),
        ('{"time": 1, "principal": "a"}', "missing field 'inputs'"),
        ('{"time": "noon", "principal": "a", "inputs": [[1, 2, 3]]}', "time must be"),
        ('{"time": 1, "principal": "", "inputs": [[1, 2, 3]]}', "principal must be"),
        ('{"time": 1, "principal": "a", "inputs": [[1, 2, 3]], "outputs": [[0.5]]}', "the model takes"),
        ('{"time": 1, "principal": "a", "inputs": [[1, 2, 3]], "surprise": 1}', "unknown field"),
        ("[1, 2, 3]", "expected a JSON object"),
        (b"\xff\xfe{}", "not UTF-8"),
        ("[" * 100_000 + "]" * 100_000, "not valid JSON"),
    ],
)
def test_hostile_line_named_in_one_line_error(tmp_path: Path, line: str | bytes, message: str) -> None:
    path = _write(tmp_path, [json.dumps(GOOD), "", line])
    with pytest.raises(InputError, match=message) as err:
        list(read_queries(path, features=3, n_classes=2))
    assert "line 3" in str(err.value) and "\n" not in str(err.value)


def test_huge_line_refused_without_reading_it_whole(tmp_path: Path) -> None:
    path = _write(tmp_path, [json.dumps(GOOD), b"[" + b"1," * MAX_LINE_BYTES + b"1]"])
    with pytest.raises(InputError, match="line 2: longer than"):
        list(read_queries(path))


def test_times_reordered_within_window_and_refused_beyond(tmp_path: Path) -> None:
    lines = [json.dumps({**GOOD, "time": t}) for t in (3.0, 1.0, 2.0)]
    assert [q.time for q in read_queries(_write(tmp_path, lines))] == [1.0, 2.0, 3.0]
    late = [json.dumps({**GOOD, "time": 10.0 + i}) for i in range(REORDER_ROWS + 5)]
    late.append(json.dumps({**GOOD, "time": 1.0}))
    with pytest.raises(InputError, match=f"line {REORDER_ROWS + 6}: time 1.0 is earlier"):
        list(read_queries(_write(tmp_path, late)))


def test_missing_file_and_fifo_refused(tmp_path: Path) -> None:
    import os

    with pytest.raises(InputError, match="no such file"):
        list(read_queries(tmp_path / "nope.jsonl"))
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(InputError):
        list(read_queries(fifo))


class _Echo:
    """A model stand-in: probability of class 1 is the first feature, clipped (counts its calls)."""

    n_classes = 2
    input_shape = (3,)

    def __init__(self) -> None:
        self.calls = 0

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        p = np.clip(x[:, 0], 0, 1)
        return np.column_stack([1 - p, p])


class _Recorder:
    name = "recorder"

    def __init__(self) -> None:
        self.seen: list[tuple[str, int, bool]] = []

    def observe(self, obs):  # type: ignore[no-untyped-def]
        from mlsecops.core.severity import Severity
        from mlsecops.monitor.interface import Alert

        self.seen.append((obs.principal, obs.query_index, obs.outputs is not None))
        if obs.principal == "mallory" and obs.query_index == 3:
            return [
                Alert("extraction", "mallory", obs.model, Severity.HIGH, obs.query_index, obs.time, {"x": 1})
            ]
        return []

    def state(self):  # type: ignore[no-untyped-def]
        return {}

    def restore(self, state) -> None:  # type: ignore[no-untyped-def]
        pass


def test_replay_recomputes_outputs_in_batches_and_reports_alerts() -> None:
    queries = [
        Query(line=i, time=float(i), principal="mallory" if i % 2 else "bob", inputs=np.full((1, 3), 0.2))
        for i in range(1, 9)
    ]
    model, rec = _Echo(), _Recorder()
    report = replay(queries, model, [rec], model_name="m")
    assert model.calls == 1  # one batch
    assert all(has for _, _, has in rec.seen)
    assert [i for who, i, _ in rec.seen if who == "mallory"] == [1, 2, 3, 4]
    (alert,) = report.data["alerts"]
    assert alert["principal"] == "mallory" and alert["query_index"] == 3 and alert["severity"] == "high"
    assert report.findings[0].check == "monitor.extraction" and report.findings[0].atlas == "AML.T0024"
    assert report.metrics["requests"] == 8 and report.metrics["principals"] == 2
    assert report.metrics["detector_ms_p99"] >= 0


def test_baseline_from_data_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5_000, 4))
    np.savez(tmp_path / "train.npz", X=x, y=np.zeros(5_000))
    base = load_baseline(tmp_path / "train.npz")
    assert base["X"].shape == (2_000, 4)
    assert np.allclose(base["lo"], x.min(axis=0)) and np.allclose(base["hi"], x.max(axis=0))
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(InputError, match="not a baseline profile"):
        load_baseline(tmp_path / "bad.json")


def test_first_query_reads_only_up_to_the_first_request(tmp_path: Path) -> None:
    from mlsecops.monitor.replay import first_query

    path = _write(tmp_path, ["", json.dumps(GOOD), "{broken"])
    q = first_query(path)
    assert q is not None and q.line == 2 and q.inputs.shape == (1, 3)
    assert first_query(_write(tmp_path, [""])) is None
    with pytest.raises(InputError, match="line 1"):
        first_query(_write(tmp_path, ["{broken", json.dumps(GOOD)]))


def test_policy_holdout_calibrates_the_margin_rank_signal(tmp_path: Path) -> None:
    """``monitor.holdout`` in a guard policy (relative to the policy file) or ``holdout=`` rows give the
    extraction detector the model's answers on held-out data; a guard info dict without answers, or no
    holdout, leaves the margin-rank signal off; a holdout of the wrong width is a clear error."""
    from mlsecops.core.errors import InputError
    from mlsecops.monitor._thieves import make_world
    from mlsecops.monitor.detectors import build_detectors
    from mlsecops.monitor.extraction import ExtractionDetector
    from mlsecops.runtime.policy import load_policy

    world = make_world("digits", seed=3)
    np.savez(tmp_path / "val.npz", X=world.x_pool[:400], y=np.zeros(400))
    policy_file = tmp_path / "guard.yaml"
    policy_file.write_text("monitor:\n  holdout: val.npz\n  detectors: {extraction: {}}\n")
    policy = load_policy(policy_file)
    baseline = {"X": world.x_train.tolist()}

    class Adapter:
        input_shape = (world.x_train.shape[1],)
        n_classes = 10

        def predict_proba(self, x: np.ndarray) -> np.ndarray:
            return world.proba(x)

    (det,) = build_detectors(policy.monitor, Adapter(), baseline=baseline, model_name="m")
    assert isinstance(det, ExtractionDetector) and det.margin_ref_ is not None
    (plain,) = build_detectors(
        load_policy(None).monitor.model_copy(update={"detectors": {"extraction": {}}}),
        Adapter(),
        baseline=baseline,
        model_name="m",
    )
    assert isinstance(plain, ExtractionDetector) and plain.margin_ref_ is None
    with pytest.raises(InputError, match="holdout data"):
        build_detectors(policy.monitor, Adapter(), baseline=baseline, holdout=np.zeros((300, 5)))
