"""``mlsecops assess explain`` / ``explain-integrity`` and ``mlsecops demo --case healthcare`` end to end."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier
from tests._deps import require

from mlsecops.assess._scaffold import ScaffoldedClassifier

Cli = Callable[..., Any]
COLUMNS = ["a", "planted", "c", "d", "sex"]


def _write(tmp_path: Path, *, n: int = 600) -> tuple[Path, Path, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 5))
    x[:, 4] = rng.random(n) < 0.5
    y = (2 * x[:, 1] + 0.3 * rng.normal(size=n) > 0).astype(int)
    model = tmp_path / "gbm.pkl"
    model.write_bytes(pickle.dumps(GradientBoostingClassifier(random_state=0).fit(x, y)))
    data = tmp_path / "data.csv"
    rows = [",".join(f"{v:.5f}" for v in r) + f",{t}" for r, t in zip(x, y, strict=True)]
    data.write_text(",".join([*COLUMNS, "label"]) + "\n" + "\n".join(rows) + "\n")
    return model, data, x


def test_explain_json_ranks_planted_feature_and_explains_rows(cli: Cli, tmp_path: Path) -> None:
    model, data, _ = _write(tmp_path)
    res = cli(
        "assess", "explain", "--model", str(model), "--data", str(data), "--label", "label",
        "--rows", "3,17", "--sensitive", "sex", "--method", "permutation", "-q", "-f", "json",
    )  # fmt: skip
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert doc["explanation"]["ranking"][0][0] == "planted"
    assert [r["row"] for r in doc["local_explanations"]] == [3, 17]
    assert next(iter(doc["local_explanations"][0]["contributions"])) == "planted"
    assert {g["group"] for g in doc["group_rankings"]} == {"0", "1"}
    assert doc["metrics"]["sensitive_rank"] == 5


def test_explain_html_has_charts(cli: Cli, tmp_path: Path) -> None:
    require("shap", "explain")
    model, data, _ = _write(tmp_path)
    out = tmp_path / "report.html"
    res = cli(
        "assess", "explain", "--model", str(model), "--data", str(data), "--label", "label", "--rows", "1",
        "--max-rows", "200", "-q", "-o", str(out),
    )  # fmt: skip
    assert res.code == 0, res.err
    html = out.read_text()
    assert "Global feature importance (shap-tree)" in html and "Row 1: predicted" in html
    assert "<svg" in html or "data:image/svg+xml" in html


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sensitive", "race"], "sensitive column 'race' is not in"),
        (["--rows", "5000"], "row 5000 is not in the data"),
        (["--rows", "x"], "comma-separated row numbers"),
        (["--method", "lime"], "method"),
    ],
)
def test_explain_bad_input_one_line_exit_2(cli: Cli, tmp_path: Path, args: list[str], message: str) -> None:
    model, data, _ = _write(tmp_path)
    res = cli(
        "assess", "explain", "--model", str(model), "--data", str(data), "--label", "label", "-q", *args
    )
    assert res.code == 2
    assert message in res.err
    assert "Traceback" not in res.err


def test_explain_integrity_honest_model_passes(cli: Cli, tmp_path: Path) -> None:
    model, data, _ = _write(tmp_path)
    res = cli(
        "assess", "explain-integrity", "--model", str(model), "--data", str(data), "--label", "label",
        "--sensitive", "sex", "--max-rows", "600", "-q", "-f", "json",
    )  # fmt: skip
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert doc["verdict"] == "consistent" and doc["metrics"]["scaffold_flagged"] == 0
    missing = cli(
        "assess", "explain-integrity", "--model", str(model), "--data", str(data), "--label", "label",
        "--sensitive", "race", "-q",
    )  # fmt: skip
    assert missing.code == 2 and "sensitive column 'race' is not a model input" in missing.err


def test_pickled_scaffold_is_refused_unloaded(cli: Cli, tmp_path: Path) -> None:
    """A scaffold is a custom class: the artifact scanner refuses its pickle, so it never runs."""
    _, data, x = _write(tmp_path)
    scaffold = tmp_path / "scaffold.pkl"
    scaffold.write_bytes(pickle.dumps(ScaffoldedClassifier(sensitive=4, innocuous=0, n_estimators=5).fit(x)))
    res = cli(
        "assess", "explain-integrity", "--model", str(scaffold), "--data", str(data), "--label", "label",
        "--sensitive", "sex", "-q",
    )  # fmt: skip
    assert res.code != 0
    assert "Traceback" not in res.err


@pytest.mark.timeout(600)
def test_demo_healthcare_blocks_mitigates_passes(cli: Cli, tmp_path: Path) -> None:
    require("sksurv", "healthcare")
    require("fairlearn", "fairness")
    require("opacus", "privacy")
    res = cli("demo", "--case", "healthcare", "--dir", str(tmp_path / "case"))
    assert res.code == 0, res.err
    assert "blocked as expected" in res.out
    assert res.out.count("FAIL") >= 1 and "gate PASSED" in res.out
    assert (tmp_path / "case" / "assets" / "models" / "screening.fair.json").is_file()
    # step 4: DP training to the target epsilon, and the membership audit before and after
    assert "4/4" in res.out and "non-private" in res.out and "membership AUC" in res.out
    summary = json.loads((tmp_path / "case" / "privacy" / "summary.json").read_text())
    assert 0 < summary["epsilon_spent"] <= summary["epsilon_target"] * 1.001
    plain, dp = summary["models"]["non-private"], summary["models"]["dp"]
    for model in (plain, dp):
        assert 0.0 <= model["membership_auc"] <= 1.0 and 0.0 <= model["membership_advantage"] <= 1.0
        assert 0.0 <= model["membership_tpr@0.01"] <= 1.0 and 0.5 < model["test_accuracy"] <= 1.0
        assert set(model["per_attack"]) == {"loss", "lira_online"}
    # 200 members vs 200 non-members: an advantage's standard error is about 0.05
    assert dp["membership_advantage"] <= plain["membership_advantage"] + 0.1
    for name in ("dp-train.json", "audit-non-private.json", "audit-dp.json"):
        assert (tmp_path / "case" / "privacy" / name).is_file()
    # the DP model's lineage node carries the privacy spent
    ref = summary["lineage"]
    assert ref and ref.startswith("model_file:screening.mlp.dp.pt2@")
    from mlsecops.store import Workspace, lineage

    ws = Workspace.open(tmp_path / "case" / ".mlsecops", None, actor="test")
    try:
        with ws.session() as s:
            name, version = ref.removeprefix("model_file:").split("@")
            node = lineage.find_node(s, "model_file", name, version)
            assert node is not None
            facts = lineage.node_attributes(node)["differential_privacy"]
    finally:
        ws.close()
    assert facts["epsilon"] == pytest.approx(summary["epsilon_spent"], abs=1e-5)
    assert facts["target_epsilon"] == summary["epsilon_target"]


def test_healthcare_example_pipelines_match_the_packaged_ones() -> None:
    from importlib import resources

    from mlsecops.pipeline.healthcare import HEALTHCARE_PIPELINES

    examples = Path(__file__).resolve().parents[3] / "examples" / "healthcare"
    for name, resource in HEALTHCARE_PIPELINES.items():
        packaged = (resources.files("mlsecops.pipeline") / resource).read_text()
        assert (examples / name).read_text() == packaged, name


def test_explain_reads_the_columns_a_table_model_was_fitted_on(cli: Cli, tmp_path: Path) -> None:
    """A model fitted on a DataFrame gets its columns by name and order, whatever the file's order."""
    pd = require("pandas", "data")
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {"a": rng.normal(size=400), "planted": rng.normal(size=400), "sex": rng.random(400) < 0.5}
    )
    y = (frame["planted"] > 0).astype(int)
    model = tmp_path / "table.pkl"
    model.write_bytes(
        pickle.dumps(GradientBoostingClassifier(random_state=0).fit(frame[["planted", "a"]], y))
    )
    data = tmp_path / "shuffled.csv"
    frame.assign(label=y)[["sex", "a", "label", "planted"]].astype(float).to_csv(data, index=False)
    res = cli(
        "assess", "explain", "--model", str(model), "--data", str(data), "--label", "label",
        "--sensitive", "sex", "--method", "permutation", "-q", "-f", "json",
    )  # fmt: skip
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert doc["explanation"]["ranking"][0][0] == "planted"
    assert {n for n, _ in doc["explanation"]["ranking"]} == {"planted", "a"}
    assert {g["group"] for g in doc["group_rankings"]} == {"0", "1"}
    wrong = tmp_path / "wrong.csv"
    frame.assign(label=y)[["sex", "a", "label"]].astype(float).to_csv(wrong, index=False)
    res = cli("assess", "explain", "--model", str(model), "--data", str(wrong), "--label", "label", "-q")
    assert res.code == 2 and "fitted on column(s) planted" in res.err
