"""harden fairness: the mitigated model is fairer, loads only through the scanner, and decides the same twice."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from tests._deps import require

from mlsecops.assess.fairness import FairnessCheck
from mlsecops.core.checks import Target
from mlsecops.core.errors import InputError
from mlsecops.harden.fairness import FairnessMitigationCheck
from mlsecops.models.fair import FairModel
from mlsecops.models.interface import ModelError
from mlsecops.models.loading import load_model


def _mitigate(case, tmp_path: Path, method: str, constraint: str = "demographic_parity", **extra) -> tuple:
    require("fairlearn", "fairness")
    out = tmp_path / f"{method}.fair.json"
    opts = {
        "label": "released",
        "sensitive": "colour",
        "method": method,
        "constraint": constraint,
        "output": str(out),
        "test_data": str(case.test_csv),
        "bootstrap": 0,
        **extra,
    }
    report = FairnessMitigationCheck().run(Target(paths=(case.biased, case.train_csv), options=opts, seed=0))
    return report, out


@pytest.fixture(scope="module")
def threshold_model(arrests, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    return _mitigate(arrests, tmp_path_factory.mktemp("threshold"), "threshold")


def test_threshold_mitigation_reduces_disparity(threshold_model) -> None:
    report, out = threshold_model
    m = report.metrics
    assert m["demographic_parity_difference_before"] > 0.2
    assert m["demographic_parity_difference_after"] < 0.05
    assert m["accuracy_cost"] == pytest.approx(m["accuracy_before"] - m["accuracy_after"], abs=2e-6)
    assert report.data["sensitive_input"].startswith("group code")
    assert report.data["evaluation"]["on"] == "test_data"
    manifest = json.loads(out.read_text())
    assert manifest["method"] == "threshold" and manifest["groups"] == ["Black", "White"]


def test_mitigated_model_loads_through_the_scanner_and_is_deterministic(arrests, threshold_model) -> None:
    _, out = threshold_model
    model = load_model(out)
    assert isinstance(model, FairModel) and model.probabilities is False
    test = arrests.test
    base = test[model.base_features].to_numpy(np.float32)
    x = model.encode_inputs(base, {c: test[c].to_numpy(object) for c in model.sensitive})
    first, second = model.predict_proba(x), model.predict_proba(x)
    assert np.array_equal(first, second)
    assert set(np.unique(first)) <= {0.0, 1.0}
    pmf = model.positive_probability(x)
    # rows the rule decides for sure get that decision; the hash coin only splits the mixed band
    sure = (pmf == 0) | (pmf == 1)
    assert np.array_equal(first[sure, 1], pmf[sure])
    with pytest.raises(InputError, match="group code"):
        model.predict_proba(np.column_stack([base[:3], np.full(3, 7.0)]))
    with pytest.raises(InputError, match="not seen"):
        model.group_code(["Purple"])


def test_audit_of_the_mitigated_model_passes_the_gate(arrests, threshold_model, tmp_path: Path) -> None:
    from mlsecops.pipeline import load_pipeline, run_pipeline

    _, out = threshold_model
    pipeline = textwrap.dedent(f"""
        name: mitigated
        stages:
          - {{name: before, check: assess.fairness, paths: [{arrests.biased}, {arrests.test_csv}],
              options: {{label: released, sensitive: colour, bootstrap: 100}}}}
          - {{name: after, check: assess.fairness, paths: [{out}, {arrests.test_csv}],
              options: {{label: released, sensitive: colour, bootstrap: 100}}}}
        policy:
          - {{stage: before, metric: "demographic_parity_difference <= 0.1"}}
          - {{stage: after, metric: "demographic_parity_difference <= 0.1"}}
    """)
    path = tmp_path / "p.yaml"
    path.write_text(pipeline)
    result = run_pipeline(load_pipeline(path))
    assert [r.passed for r in result.gate.results] == [False, True], result.gate.to_json()


def test_tampered_or_hostile_manifest_is_refused(threshold_model, tmp_path: Path) -> None:
    _, out = threshold_model
    manifest = json.loads(out.read_text())
    copy_dir = tmp_path / "m"
    copy_dir.mkdir()
    member = out.parent / manifest["members"][0]["file"]
    (copy_dir / member.name).write_bytes(member.read_bytes() + b"\x00")
    (copy_dir / "t.fair.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match=r"SHA-256"):
        load_model(copy_dir / "t.fair.json")
    manifest["members"][0]["file"] = "../../etc/passwd"
    (copy_dir / "u.fair.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="plain file name"):
        load_model(copy_dir / "u.fair.json")
    (copy_dir / "v.fair.json").write_text("[1, 2")
    with pytest.raises(InputError):
        load_model(copy_dir / "v.fair.json")
    (copy_dir / "w.fair.json").write_text("[" * 100_000 + "]" * 100_000)  # nesting bomb: refused unparsed
    with pytest.raises(InputError):
        load_model(copy_dir / "w.fair.json")


def test_a_member_the_scanner_refuses_is_not_loaded(threshold_model, tmp_path: Path) -> None:
    import hashlib
    import pickle

    from mlsecops.core.errors import VerificationError

    _, out = threshold_model
    manifest = json.loads(out.read_text())

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("echo pwned",))

    bad = tmp_path / "evil.pkl"
    bad.write_bytes(pickle.dumps(Evil(), protocol=4))
    manifest["members"][0].update(file="evil.pkl", sha256=hashlib.sha256(bad.read_bytes()).hexdigest())
    (tmp_path / "e.fair.json").write_text(json.dumps(manifest))
    with pytest.raises(VerificationError):
        load_model(tmp_path / "e.fair.json")


@pytest.mark.timeout(180)
def test_reductions_mitigation_reduces_disparity(arrests, tmp_path: Path) -> None:
    report, out = _mitigate(arrests, tmp_path, "reductions", max_iter=8)
    m = report.metrics
    assert m["demographic_parity_difference_after"] < m["demographic_parity_difference_before"] / 2
    model = load_model(out)
    assert isinstance(model, FairModel) and model.groups is None  # no group needed at prediction time
    audit = FairnessCheck().run(
        Target(
            paths=(out, arrests.test_csv),
            options={"label": "released", "sensitive": "colour", "bootstrap": 0},
        )
    )
    assert audit.metrics["demographic_parity_difference"] == pytest.approx(
        m["demographic_parity_difference_after"]
    )


def test_bad_mitigation_input(arrests, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="constraint must be one of"):
        _mitigate(arrests, tmp_path, "threshold", constraint="error_rate_parity")
    with pytest.raises(InputError, match=r"\.fair\.json"):
        FairnessMitigationCheck().run(
            Target(
                paths=(arrests.biased, arrests.train_csv),
                options={"label": "released", "sensitive": "colour", "output": str(tmp_path / "x.pkl")},
            )
        )


def test_cli_harden_fairness(arrests, cli, tmp_path: Path) -> None:
    require("fairlearn", "fairness")
    out = tmp_path / "cli.fair.json"
    res = cli(
        "harden",
        "fairness",
        "-m",
        str(arrests.biased),
        "-d",
        str(arrests.train_csv),
        "--label",
        "released",
        "--sensitive",
        "colour",
        "--out-model",
        str(out),
        "--bootstrap",
        "0",
        "-q",
        "-f",
        "json",
    )
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert doc["kind"] == "harden.fairness" and out.is_file()
    assert doc["evaluation"]["on"].startswith("held-out")


def test_sample_weights_reach_a_pipelines_last_step() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from mlsecops.harden.fairness import sample_weight_name

    assert sample_weight_name(make_pipeline(StandardScaler(), LogisticRegression())) == (
        "logisticregression__sample_weight"
    )
    assert sample_weight_name(LogisticRegression()) == "sample_weight"
