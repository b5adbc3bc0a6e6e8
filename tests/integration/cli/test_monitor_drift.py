"""``mlsecops monitor drift``: verdicts per window in every format, exit codes, accuracy with a model."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest


def _write(path: Path, rng: np.random.Generator, n: int, *, shift: float = 0.0, flip: float = 0.0) -> Path:
    x = rng.standard_normal((n, 3))
    x[:, 1] += 0.5 * x[:, 0]
    y = (x[:, 0] + x[:, 2] > 0).astype(int)
    if flip:
        y = np.where(rng.random(n) < flip, 1 - y, y)  # concept drift: same inputs, other labels
    x[:, 0] += shift
    kind = rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2])
    rows = [f"{a:.5f},{b:.5f},{c:.5f},{k},{t}" for (a, b, c), k, t in zip(x, kind, y, strict=True)]
    path.write_text("x0,x1,x2,kind,y\n" + "\n".join(rows) + "\n")
    return path


def _numeric_only(src: Path, dst: Path) -> Path:
    """The file without its categorical column ``kind``."""
    lines = (line.split(",") for line in src.read_text().splitlines())
    dst.write_text("\n".join(",".join([*cells[:3], cells[4]]) for cells in lines) + "\n")
    return dst


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("drift")
    rng = np.random.default_rng(0)
    _write(folder / "ref.csv", rng, 20_000)
    _write(folder / "clean.csv", rng, 2_000)
    _write(folder / "shifted.csv", rng, 2_000, shift=0.3)
    _write(folder / "concept.csv", rng, 2_000, flip=0.3)
    return folder


def test_verdict_per_window_and_exit_codes(cli: Callable[..., Any], case: Path) -> None:
    assert cli("data", "profile", str(case / "ref.csv"), "-o", "base.json").code == 0
    res = cli("monitor", "drift", "-b", "base.json", str(case / "clean.csv"), "--format", "json")
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert doc["kind"] == "monitor.drift" and doc["findings"] == []
    (clean,) = doc["windows"]
    assert set(clean) >= {"window", "drift", "p_value", "columns", "evidence"} and clean["drift"] is False
    res = cli(
        "monitor",
        "drift",
        "-b",
        "base.json",
        str(case / "clean.csv"),
        str(case / "shifted.csv"),
        "-f",
        "json",
    )
    assert res.code == 1
    doc = json.loads(res.out)
    assert [w["drift"] for w in doc["windows"]] == [False, True]
    assert doc["windows"][1]["columns"][0] == "x0" and doc["windows"][1]["p_value"] < 1e-6
    assert doc["metrics"] == {"windows": 2.0, "drifted_windows": 1.0}
    assert (
        cli("monitor", "drift", "-b", "base.json", str(case / "shifted.csv"), "--fail-on", "never").code == 0
    )
    for fmt in ("text", "sarif", "html"):
        res = cli(
            "monitor", "drift", "-b", "base.json", str(case / "shifted.csv"), "-f", fmt, "-o", f"r.{fmt}"
        )
        assert res.code == 1 and Path(f"r.{fmt}").stat().st_size > 0
    sarif = json.loads(Path("r.sarif").read_text())
    assert sarif["runs"][0]["results"][0]["ruleId"] == "monitor.drift"
    # a reference data file is a baseline too
    res = cli("monitor", "drift", "-b", str(case / "ref.csv"), str(case / "shifted.csv"), "-f", "json")
    assert res.code == 1 and json.loads(res.out)["windows"][0]["columns"][0] == "x0"


def test_bad_windows_exit_2_with_one_line(cli: Callable[..., Any], case: Path, tmp_path: Path) -> None:
    assert cli("data", "profile", str(case / "ref.csv"), "-o", "base.json").code == 0
    (tmp_path / "cols.csv").write_text("p,q\n1,2\n")
    (tmp_path / "empty.csv").write_text("x0,x1,x2,kind,y\n")
    (tmp_path / "text.csv").write_text("x0,x1,x2,kind,y\n" + "abc,1,2,a,0\n" * 50)
    for name, message in (
        ("cols.csv", "missing column(s) 'x0', 'x1', 'x2'"),
        ("empty.csv", "no data rows"),
        ("text.csv", "column 'x0' should be numeric"),
        ("absent.csv", "absent.csv"),
    ):
        res = cli("monitor", "drift", "-b", "base.json", str(tmp_path / name))
        assert res.code == 2, (name, res.out)
        assert message in res.err and len(res.err.strip().splitlines()) == 1, res.err
    res = cli("monitor", "drift", "-b", "base.json", str(case / "clean.csv"), "--labels", "y")
    assert res.code == 2 and "--labels needs --model" in res.err
    (tmp_path / "bad.json").write_text("{}")
    res = cli("monitor", "drift", "-b", str(tmp_path / "bad.json"), str(case / "clean.csv"))
    assert res.code == 2 and "not a baseline profile" in res.err


def test_model_accuracy_estimate_and_labels(cli: Callable[..., Any], case: Path, tmp_path: Path) -> None:
    import joblib
    from sklearn.linear_model import LogisticRegression

    data = np.loadtxt(case / "ref.csv", delimiter=",", skiprows=1, usecols=(0, 1, 2, 4))
    joblib.dump(LogisticRegression().fit(data[:, :3], data[:, 3].astype(int)), tmp_path / "lr.joblib")
    ref = _numeric_only(case / "ref.csv", tmp_path / "ref.csv")  # the model takes x0, x1, x2
    windows = [str(_numeric_only(case / name, tmp_path / name)) for name in ("clean.csv", "concept.csv")]
    args = (
        "monitor",
        "drift",
        "-b",
        str(ref),
        *windows,
        "--model",
        str(tmp_path / "lr.joblib"),
        "--labels",
        "y",
    )
    res = cli(*args, "-f", "json")
    assert res.code == 1, res.err
    doc = json.loads(res.out)
    clean, concept = doc["windows"]
    assert doc["calibration"]["rows"] == 20_000
    for w in (clean, concept):  # inputs unchanged: the label-free estimate stays at the reference level
        est = w["evidence"]["performance"]["estimated_accuracy"]
        assert abs(est - doc["calibration"]["reference_accuracy"]) < 0.03
    assert clean["performance"]["degraded"] is False and clean["drift"] is False
    assert concept["performance"]["degraded"] is True and concept["performance"]["accuracy"] < 0.8
    # the flips keep every marginal (the labels stay ~50/50): only the labels show this concept drift
    assert concept["drift"] is False
    assert any(f["title"] == "model accuracy dropped" for f in doc["findings"])
