"""The fairness audit: values equal fairlearn's (intervals included), small groups, bad input, the gate."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
from tests._deps import require

from mlsecops.assess.fairness import FairnessCheck, audit_fairness
from mlsecops.core.checks import Target
from mlsecops.core.errors import InputError


def _target(case, model: Path, **opts) -> Target:
    return Target(
        paths=(model, case.test_csv),
        options={"label": "released", "sensitive": "colour", "bootstrap": 100, **opts},
        seed=3,
    )


def test_values_and_intervals_equal_fairlearn(arrests) -> None:
    fl = require("fairlearn.metrics", "test")
    test = arrests.test
    import pickle

    model = pickle.loads(arrests.biased.read_bytes())
    y_pred = model.predict(test[["year", "age", "employed", "citizen", "checks", "black"]])
    y, sens = test.released.to_numpy(), test[["colour", "sex"]]
    audit = audit_fairness(
        y, y_pred, {"colour": test.colour, "sex": test.sex}, n_boot=20, seed=11, min_group_size=1
    )
    agg = audit.intersection.aggregates
    kw = {"sensitive_features": sens}
    assert agg["demographic_parity_difference"] == pytest.approx(
        fl.demographic_parity_difference(y, y_pred, **kw), abs=1e-12
    )
    assert agg["demographic_parity_ratio"] == pytest.approx(
        fl.demographic_parity_ratio(y, y_pred, **kw), abs=1e-12
    )
    assert agg["equalized_odds_difference"] == pytest.approx(
        fl.equalized_odds_difference(y, y_pred, **kw), abs=1e-12
    )
    assert agg["equalized_odds_ratio"] == pytest.approx(fl.equalized_odds_ratio(y, y_pred, **kw), abs=1e-12)
    assert agg["equal_opportunity_difference"] == pytest.approx(
        fl.equal_opportunity_difference(y, y_pred, **kw), abs=1e-12
    )
    metrics = {
        "selection_rate": fl.selection_rate,
        "true_positive_rate": fl.true_positive_rate,
        "false_positive_rate": fl.false_positive_rate,
        "accuracy": lambda a, b: float(np.mean(np.asarray(a) == np.asarray(b))),
    }
    mf = fl.MetricFrame(
        metrics=metrics,
        y_true=y,
        y_pred=y_pred,
        sensitive_features=sens,
        n_boot=20,
        ci_quantiles=[0.025, 0.975],
        random_state=11,
    )
    by_group = mf.by_group
    for g in audit.intersection.groups:
        key = tuple(g.name.split(", "))
        for rate in metrics:
            assert g.rates[rate] == pytest.approx(by_group.loc[key, rate], abs=1e-12)
    lo, hi = mf.difference_ci()
    dp_iv = audit.intersection.intervals["demographic_parity_difference"]
    eo_iv = audit.intersection.intervals["equal_opportunity_difference"]
    assert dp_iv == pytest.approx((lo["selection_rate"], hi["selection_rate"]), abs=1e-12)
    assert eo_iv == pytest.approx((lo["true_positive_rate"], hi["true_positive_rate"]), abs=1e-12)
    rlo, rhi = mf.ratio_ci()
    assert audit.intersection.intervals["demographic_parity_ratio"] == pytest.approx(
        (rlo["selection_rate"], rhi["selection_rate"]), abs=1e-12
    )
    glo, ghi = mf.by_group_ci
    for g in audit.intersection.groups:
        key = tuple(g.name.split(", "))
        assert g.intervals["true_positive_rate"] == pytest.approx(
            (glo.loc[key, "true_positive_rate"], ghi.loc[key, "true_positive_rate"]), abs=1e-12
        )
    assert audit.accuracy == pytest.approx(float(np.mean(y == y_pred)))


def test_biased_model_is_flagged_and_fair_model_is_not(arrests) -> None:
    biased = FairnessCheck().run(_target(arrests, arrests.biased))
    fair = FairnessCheck().run(_target(arrests, arrests.fair))
    assert biased.metrics["demographic_parity_difference_ci_low"] > 0.1
    assert any(f.location.get("metric") == "demographic_parity_difference" for f in biased.findings)
    assert biased.verdict == "biased"
    assert fair.metrics["demographic_parity_difference_ci_low"] < 0.1
    assert fair.verdict == "fair", [f.title for f in fair.findings]
    assert fair.data["fairness"]["features"] == ["year", "age", "employed", "citizen", "checks"]


def test_small_group_is_reported_not_judged(arrests) -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    pred = y.copy()
    group = np.array(["a"] * 200 + ["b"] * 190 + ["c"] * 10, dtype=object)
    pred[390:] = 1 - pred[390:]  # group c: every prediction wrong, a huge disparity on 10 rows
    audit = audit_fairness(y, pred, {"g": group}, n_boot=50, min_group_size=30)
    small = [g for g in audit.intersection.groups if not g.judged]
    assert [g.name for g in small] == ["c"]
    assert audit.intersection.aggregates["accuracy_difference"] == 0.0
    from mlsecops.assess.fairness import fairness_report

    report = fairness_report(audit, subject="m")
    assert report.metrics["groups_too_small"] == 1.0
    assert any("too small" in f.title and "c (10 rows)" in f.detail for f in report.findings)
    judged_all = audit_fairness(y, pred, {"g": group}, n_boot=0, min_group_size=5)
    assert judged_all.intersection.aggregates["accuracy_difference"] == 1.0


def test_one_judged_group_fails_closed() -> None:
    y = np.array([0, 1] * 30)
    group = np.array(["a"] * 55 + ["b"] * 5, dtype=object)
    audit = audit_fairness(y, y, {"g": group}, n_boot=10, min_group_size=30)
    assert np.isnan(audit.intersection.aggregates["demographic_parity_difference"])
    from mlsecops.assess.fairness import fairness_report

    report = fairness_report(audit, subject="m")
    assert any("could not be judged" in f.title for f in report.findings)


def test_bad_input_is_one_clear_error(arrests, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"sensitive column.*'race'.*not found"):
        FairnessCheck().run(_target(arrests, arrests.fair, sensitive="race"))
    one = arrests.test.assign(colour="White")
    one.to_csv(tmp_path / "one.csv", index=False)
    with pytest.raises(InputError, match="one group only"):
        FairnessCheck().run(
            Target(
                paths=(arrests.fair, tmp_path / "one.csv"),
                options={"label": "released", "sensitive": "colour"},
            )
        )
    multi = arrests.test.assign(released=arrests.test.checks)  # 0..6: not a binary label
    multi.to_csv(tmp_path / "multi.csv", index=False)
    with pytest.raises(InputError, match="binary label"):
        FairnessCheck().run(
            Target(
                paths=(arrests.fair, tmp_path / "multi.csv"),
                options={"label": "released", "sensitive": "colour"},
            )
        )
    with pytest.raises(InputError, match="must be binary"):
        audit_fairness(np.array([0, 1, 2, 1]), np.array([0, 1, 1, 1]), {"g": np.array(["a", "a", "b", "b"])})


def test_calibration_needs_probabilities(arrests, tmp_path: Path) -> None:
    import pickle

    from sklearn.svm import LinearSVC

    test = arrests.test
    svc = LinearSVC().fit(test[["year", "age", "employed", "citizen", "checks"]], test.released)
    (tmp_path / "svc.pkl").write_bytes(pickle.dumps(svc, protocol=4))
    target = _target(arrests, tmp_path / "svc.pkl", calibration="true")
    with pytest.raises(InputError, match="calibration needs predicted probabilities"):
        FairnessCheck().run(target)
    auto = FairnessCheck().run(_target(arrests, tmp_path / "svc.pkl"))
    assert "calibration_error_max" not in auto.metrics
    with_proba = FairnessCheck().run(_target(arrests, arrests.fair))
    assert 0.0 <= with_proba.metrics["calibration_error_max"] <= 1.0


def test_bootstrap_interval_coverage() -> None:
    """Our intervals are fairlearn's percentile bootstrap; check they cover the truth about as often as claimed."""
    rng = np.random.default_rng(5)
    true_dp = 0.1
    hits, trials = 0, 40
    for _ in range(trials):
        g = rng.integers(0, 2, 600)
        pred = (rng.random(600) < 0.3 + true_dp * g).astype(int)
        y = rng.integers(0, 2, 600)
        audit = audit_fairness(y, pred, {"g": g}, n_boot=100, seed=int(rng.integers(1 << 30)))
        lo, hi = audit.intersection.intervals["demographic_parity_difference"]
        hits += lo <= true_dp <= hi
    assert hits / trials >= 0.85  # nominal 95 %; 60 trials leave room for sampling error


PIPELINE = """
name: fairness-gate
stages:
  - name: fairness
    check: assess.fairness
    paths: [{model}, {data}]
    options: {{label: released, sensitive: colour, bootstrap: 100}}
policy:
  - metric: "demographic_parity_difference <= 0.1"
  - metric: "accuracy >= 0.7"
"""


@pytest.mark.parametrize(("model", "passes"), [("biased", False), ("fair", True)])
def test_pipeline_gate(arrests, tmp_path: Path, model: str, passes: bool) -> None:
    from mlsecops.pipeline import load_pipeline, run_pipeline

    path = tmp_path / "pipeline.yaml"
    path.write_text(textwrap.dedent(PIPELINE.format(model=getattr(arrests, model), data=arrests.test_csv)))
    result = run_pipeline(load_pipeline(path))
    assert result.passed is passes, result.gate.to_json()
    observed = result.gate.results[0].observed
    assert "[" in observed  # the rule was judged on the interval


def test_cli_assess_fairness(arrests, cli) -> None:
    res = cli(
        "assess",
        "fairness",
        "-m",
        str(arrests.biased),
        "-d",
        str(arrests.test_csv),
        "--label",
        "released",
        "--sensitive",
        "colour,sex",
        "--bootstrap",
        "50",
        "-q",
        "-f",
        "json",
    )
    assert res.code == 1, res.err
    import json

    doc = json.loads(res.out)
    assert doc["kind"] == "assess.fairness"
    assert "demographic_parity_difference@colour" in doc["metrics"]
    assert {g["group"] for g in doc["fairness"]["intersection"]["groups"]} >= {"Black, Male", "White, Female"}
    missing = cli(
        "assess",
        "fairness",
        "-m",
        str(arrests.fair),
        "-d",
        str(arrests.test_csv),
        "--label",
        "released",
        "--sensitive",
        "race",
        "-q",
    )
    assert missing.code == 2 and "race" in missing.err and "Traceback" not in missing.err
