from __future__ import annotations

import numpy as np
import pytest

from mlsecops.assess.robustness import evaluate_robustness, robustness_report
from mlsecops.core.checks import Target, get_check
from mlsecops.core.errors import InputError
from mlsecops.core.findings import Severity


def test_report_metrics_curve_and_worst_examples(cnn, digits):
    x, y = digits.x_test.reshape(-1, 1, 8, 8), digits.y_test
    ev = evaluate_robustness(
        cnn, x, y, attacks=[("fgsm", {}), ("pgd", {"steps": 10, "restarts": 1})], eps=[0.05, 0.2], seed=0
    )
    rep = robustness_report(ev, subject="cnn.pt")
    m = rep.metrics
    assert m["clean_accuracy"] > 0.9
    for key in ("fgsm_linf_0.05", "fgsm_linf_0.2", "pgd_linf_0.05", "pgd_linf_0.2"):
        assert 0 <= m[f"robust_accuracy@{key}"] <= m["clean_accuracy"]
        assert 0 <= m[f"attack_success@{key}"] <= 1
    assert m["robust_accuracy@pgd_linf_0.2"] < m["robust_accuracy@pgd_linf_0.05"]
    assert rep.verdict == "vulnerable"
    assert max(f.severity for f in rep.findings) >= Severity.MEDIUM
    assert all(f.atlas == "AML.T0015" and f.check == "assess.robustness" for f in rep.findings)
    titles = [f.title for f in rep.figures]
    assert any("Robustness curve" in t for t in titles) and any("Worst examples" in t for t in titles)
    assert all(f.content.startswith("<svg") for f in rep.figures)
    worst = rep.data["worst_examples"]
    assert worst and all(w["distance"] <= 0.05 + 1e-6 for w in worst)  # from the smallest budget


def test_robust_verdict_when_no_input_is_broken(cnn, digits):
    # A budget far below any input's margin breaks nothing: verdict robust, no finding, and the
    # accuracy under attack equals the clean accuracy. The same model at 0.2 is vulnerable (above).
    x, y = digits.x_test.reshape(-1, 1, 8, 8)[:64], digits.y_test[:64]
    ev = evaluate_robustness(cnn, x, y, attacks=[("pgd", {"steps": 5, "restarts": 1})], eps=[1e-5], seed=0)
    rep = robustness_report(ev, subject="cnn.pt")
    assert rep.verdict == "robust"
    assert not rep.findings
    assert rep.metrics["robust_accuracy@pgd_linf_1e-05"] == rep.metrics["clean_accuracy"] > 0.9
    assert rep.metrics["attack_success@pgd_linf_1e-05"] == 0


def _save(tmp_path, mlp, digits):
    model_path = mlp.save(tmp_path / "mlp.pt")
    data_path = tmp_path / "test.npz"
    np.savez(data_path, X=digits.x_test, y=digits.y_test)
    return model_path, data_path


def test_registered_checks_run_from_files(tmp_path, mlp, digits):
    model_path, data_path = _save(tmp_path, mlp, digits)
    target = Target(paths=(model_path, data_path), options={"eps": "0.1", "steps": 10, "restarts": 1}, seed=0)
    rep = get_check("assess.pgd").create().run(target)
    assert set(rep.metrics) == {
        "clean_accuracy",
        "robust_accuracy@pgd_linf_0.1",
        "attack_success@pgd_linf_0.1",
    }
    assert rep.kind == "assess.pgd"
    again = get_check("assess.pgd").create().run(target)
    assert again.metrics == rep.metrics  # same seed, same numbers
    multi = (
        get_check("assess.robustness")
        .create()
        .run(
            Target(paths=(model_path, data_path), options={"attack": "fgsm,apgd", "eps": [0.1], "steps": 10})
        )
    )
    assert {"robust_accuracy@fgsm_linf_0.1", "robust_accuracy@apgd_linf_0.1"} <= set(multi.metrics)


def test_csv_data_with_label_column(tmp_path, mlp, digits):
    model_path = mlp.save(tmp_path / "mlp.pt")
    csv_path = tmp_path / "d.csv"
    header = ",".join([f"f{i}" for i in range(64)] + ["digit"])
    rows = [
        ",".join([*(f"{v:.6f}" for v in r), str(t)])
        for r, t in zip(digits.x_test[:40], digits.y_test[:40], strict=True)
    ]
    csv_path.write_text(header + "\n" + "\n".join(rows) + "\n")
    rep = (
        get_check("assess.fgsm")
        .create()
        .run(Target(paths=(model_path, csv_path), options={"label": "digit", "eps": 0.1}))
    )
    assert "robust_accuracy@fgsm_linf_0.1" in rep.metrics
    with pytest.raises(InputError, match="label column"):
        get_check("assess.fgsm").create().run(Target(paths=(model_path, csv_path), options={"label": "nope"}))


def test_bad_data_files_are_input_errors(tmp_path, mlp, digits):
    model_path, _ = _save(tmp_path, mlp, digits)
    nan = tmp_path / "nan.npz"
    x = digits.x_test.copy()
    x[3, 3] = np.nan
    np.savez(nan, X=x, y=digits.y_test)
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, X=digits.x_test[:, :10], y=digits.y_test)
    truncated = tmp_path / "trunc.npz"
    np.savez(truncated, X=digits.x_test, y=digits.y_test)
    truncated.write_bytes(truncated.read_bytes()[:200])
    check = get_check("assess.fgsm").create()
    with pytest.raises(InputError, match="NaN"):
        check.run(Target(paths=(model_path, nan)))
    with pytest.raises(InputError):
        check.run(Target(paths=(model_path, wrong)))
    with pytest.raises(InputError, match="not a readable"):
        check.run(Target(paths=(model_path, truncated)))
    with pytest.raises(InputError, match="need a model and a data set"):
        check.run(Target(paths=(model_path,)))
