"""Decision auditing: groups, predicted classes and explanations stored by the decision log's writer,
labels from feedback, and the fairness audit of the logged, labelled decisions (flchain: the
healthcare case's data, with a model trained on labels biased against women and a fair twin)."""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select, text

from mlsecops.core.errors import ConfigError, InputError
from mlsecops.models import SklearnModel
from mlsecops.monitor.fairness import fairness_of_logged
from mlsecops.runtime._decision_tables import DecisionRecord
from mlsecops.runtime.decision_audit import (
    DecisionAuditor,
    build_auditor,
    group_labels,
    labelled_decisions,
    recent_decisions,
)
from mlsecops.runtime.decisions import DecisionLog
from mlsecops.runtime.policy import LoggingPolicy
from mlsecops.store import Workspace


@pytest.fixture(scope="module")
def flchain() -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from mlsecops.pipeline.healthcare import flchain_frame

    frame = flchain_frame()
    y = frame.pop("death").to_numpy().astype(int)
    x = frame.to_numpy(np.float64)
    names = list(frame.columns)
    s = names.index("female")
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(y))
    train, test = idx[:-800], idx[-800:]
    biased_y = np.where((x[:, s] == 1) & (rng.random(len(y)) < 0.7), 0, y)  # women's deaths under-recorded
    blind = x.copy()
    blind[:, s] = 0.0  # the fair twin never sees the column
    return {
        "x": x[test],
        "y": y[test],
        "names": names,
        "s": s,
        "mean": x[train].mean(axis=0),
        "biased": LogisticRegression(max_iter=2000).fit(x[train], biased_y[train]),
        "fair": LogisticRegression(max_iter=2000).fit(blind[train], y[train]),
        "scaled": make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x[train], y[train]),
    }


def _policy(**kw: Any) -> LoggingPolicy:
    return LoggingPolicy.model_validate(
        {"group": {"columns": [6], "names": ["female"]}, "explain": {"sample_rate": 1.0, "top_k": 3}, **kw}
    )


def _log(ws: Workspace, fl: dict[str, Any], model: str, policy: LoggingPolicy, seed: int = 0) -> DecisionLog:
    adapter = SklearnModel(fl[model], input_shape=(7,), n_classes=2)
    auditor = DecisionAuditor(
        policy, adapter, mean=fl["mean"], feature_names=fl["names"], rng=random.Random(seed)
    )
    return DecisionLog(ws, policy, auditor=auditor, rng=random.Random(seed))


def _serve(log: DecisionLog, fl: dict[str, Any], model: str, rows: slice, **kw: Any) -> None:
    est = fl[model]
    for i in range(rows.start, rows.stop):
        x = fl["x"][i : i + 1]
        log.record(
            principal="alice",
            model="risk",
            version="1",
            decision="accepted",
            status=200,
            latency_ms=1.0,
            inputs=x,
            outputs=est.predict_proba(x),
            **kw,
        )


def _feedback(log: DecisionLog, fl: dict[str, Any], model: str, batch: int = 100) -> None:
    est = fl[model]
    for start in range(0, len(fl["y"]), batch):
        x = fl["x"][start : start + batch]
        assert log.record_feedback(
            principal="dora",
            model="risk",
            version="1",
            labels=fl["y"][start : start + batch],
            outputs=est.predict_proba(x),
            inputs=x,
        )


def test_group_labels_name_each_column_and_mark_missing_ones() -> None:
    rows = np.array([[0.0, 1.0, 2.5], [1.0, 0.0, 3.0]])
    assert group_labels(rows, [1, 2], ["sex", "band"]) == ["sex=1,band=2.5", "sex=0,band=3"]
    assert group_labels(rows, [5], ["x"]) == ["?", "?"]


def test_linear_explanations_are_exact_contributions_and_no_raw_input_is_stored(
    workspace: Workspace, flchain: dict[str, Any]
) -> None:
    log = _log(workspace, flchain, "biased", _policy(explain={"sample_rate": 0.5, "top_k": 3}))
    _serve(log, flchain, "biased", slice(0, 40))
    log.close()
    with workspace.session(readonly=True) as s:
        logged = list(s.execute(select(DecisionRecord).order_by(DecisionRecord.id)).scalars())
    assert len(logged) == 40
    explained = [r for r in logged if r.explanation is not None]
    assert 5 < len(explained) < 35  # sampled: some decisions explained, not all
    coef = flchain["biased"].coef_[0]
    for r in logged:
        i = logged.index(r)
        x = flchain["x"][i]
        assert json.loads(r.groups or "") == [f"female={x[flchain['s']]:g}"]
        assert json.loads(r.predictions or "") == [int(flchain["biased"].predict(x[None])[0])]
        assert r.inputs is None and r.outputs is None and r.labels is None
        if r.explanation is None:
            continue
        doc = json.loads(r.explanation)
        assert doc["method"] == "linear" and len(doc["rows"]) == 1 and doc["rows"][0]["class"] == 1
        want = coef * (x - flchain["mean"])
        top = np.argsort(-np.abs(want))[:3]
        assert [f for f, _ in doc["rows"][0]["top"]] == [flchain["names"][j] for j in top]
        assert [v for _, v in doc["rows"][0]["top"]] == pytest.approx(want[top], abs=1e-5)
    with workspace.session(readonly=True) as s:  # no raw input or output anywhere in the table
        raw = s.execute(text("SELECT inputs, outputs FROM runtime_decisions")).all()
    assert {tuple(r) for r in raw} == {(None, None)}


def test_occlusion_explains_a_pipeline_and_raw_inputs_are_kept_only_when_asked(
    workspace: Workspace, flchain: dict[str, Any]
) -> None:
    policy = _policy(raw_inputs=True)
    log = _log(workspace, flchain, "scaled", policy)
    assert log.auditor is not None and log.auditor.method == "occlusion"
    _serve(log, flchain, "scaled", slice(0, 3))
    log.close()
    r = recent_decisions(workspace, "risk", limit=1, explained_only=True)[0]
    x = flchain["x"][2:3]
    est = flchain["scaled"]
    want = []
    for j in range(7):
        z = x.copy()
        z[0, j] = flchain["mean"][j]
        want.append(est.predict_proba(x)[0, 1] - est.predict_proba(z)[0, 1])
    got = dict(r["explanation"]["rows"][0]["top"])
    for f, v in got.items():
        assert v == pytest.approx(want[flchain["names"].index(f)], abs=1e-6)
    with workspace.session(readonly=True) as s:
        raw = s.execute(select(DecisionRecord.inputs).order_by(DecisionRecord.id.desc())).scalars().first()
    assert json.loads(raw or "")[0] == pytest.approx(x[0].tolist())


def test_linear_method_refused_for_a_model_that_is_not_linear(flchain: dict[str, Any]) -> None:
    adapter = SklearnModel(flchain["scaled"], input_shape=(7,), n_classes=2)
    with pytest.raises(ConfigError, match="linear"):
        build_auditor(_policy(explain={"method": "linear"}), adapter, None)
    with pytest.raises(ConfigError, match="upstream"):
        build_auditor(_policy(), None, None)
    assert build_auditor(LoggingPolicy(), adapter, None) is None


@pytest.mark.parametrize(("model", "disparity"), [("biased", True), ("fair", False)])
def test_logged_feedback_reveals_a_disparity_of_the_biased_model_only(
    workspace: Workspace, flchain: dict[str, Any], model: str, disparity: bool
) -> None:
    log = _log(workspace, flchain, model, _policy())
    _serve(log, flchain, model, slice(0, 60))
    _feedback(log, flchain, model)
    log.close()
    logged = labelled_decisions(workspace, "risk")
    assert len(logged.labels) == 800 and set(logged.groups) == {"female=0", "female=1"}
    assert len(logged.explained) == 60
    report = fairness_of_logged(
        "risk",
        labels=logged.labels,
        predictions=logged.predictions,
        groups=logged.groups,
        times=logged.times,
        explained_groups=logged.explained_groups,
        explained=logged.explained,
        window=800,
        max_difference=0.2,
    )
    high = [f for f in report.findings if f.severity.name == "HIGH"]
    assert bool(high) is disparity
    assert report.verdict == ("disparity" if disparity else "no disparity")
    trend = report.data["attributions"]
    assert set(trend) == {"female=0", "female=1"}
    if disparity:  # what drives the biased model's decisions for women: being a woman
        assert trend["female=1"][0]["top"][0][0] == "female"


def test_fairness_of_an_empty_log_is_a_clear_error() -> None:
    empty = np.zeros(0)
    with pytest.raises(InputError, match="no labelled or explained"):
        fairness_of_logged("risk", labels=empty, predictions=empty, groups=empty, times=empty)
