"""``mlsecops monitor fairness``: windows of labelled decisions audited one by one; a window whose
disparity interval lies beyond the limit fails, a fair window does not, bad input is one line."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression


def _write(path: Path, x: np.ndarray, group: np.ndarray, y: np.ndarray) -> Path:
    lines = ["a,b,group,label"] + [
        f"{r[0]:.5f},{r[1]:.5f},{g},{t}" for r, g, t in zip(x, group, y, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_window_with_a_disparity_fails_and_a_fair_one_passes(
    cli: Callable[..., Any], tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    n = 1200
    x = rng.normal(size=(n, 2))
    y = (x[:, 0] > 0).astype(int)
    model = LogisticRegression().fit(x, y)
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(model, protocol=4))
    group = rng.integers(0, 2, n)
    _write(tmp_path / "fair.csv", x, group, y)
    # later traffic: group 1's positives are labelled so that the model now misses most of them
    y_shift = np.where((group == 1) & (y == 0) & (rng.random(n) < 0.8), 1, y)
    _write(tmp_path / "biased.csv", x, group, y_shift)
    args = ("--model", "m.pkl", "--label", "label", "--sensitive", "group", "--bootstrap", "100")
    ok = cli("monitor", "fairness", "fair.csv", *args, "-f", "json")
    assert ok.code == 0, ok.err
    assert json.loads(ok.out)["windows"][0]["beyond"] is False
    both = cli("monitor", "fairness", "fair.csv", "biased.csv", *args, "-f", "json")
    assert both.code == 1, both.err
    windows = json.loads(both.out)["windows"]
    assert [w["beyond"] for w in windows] == [False, True]
    assert windows[1]["interval"][0] > 0.1
    bad = cli(
        "monitor", "fairness", "fair.csv", "--model", "m.pkl", "--label", "nope", "--sensitive", "group"
    )
    assert bad.code == 2 and len(bad.err.strip().splitlines()) == 1 and "nope" in bad.err
    metric = cli("monitor", "fairness", "fair.csv", *args, "--metric", "accuracy")
    assert metric.code == 2 and "metric must be one of" in metric.err
