"""``mlsecops assess robustness``, ``harden adversarial-training`` and ``certify`` end to end (in-process)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests._deps import require

Cli = Callable[..., Any]
torch = require("torch", "torch")
torch.set_num_threads(2)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    from sklearn.datasets import load_digits

    from mlsecops.models import TorchModel

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(120):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(d.target)).backward()
        opt.step()
    model = TorchModel(net.eval(), input_shape=(64,)).save(tmp_path / "mlp.pt")
    data = tmp_path / "digits.npz"
    np.savez(data, X=x[:200], y=d.target[:200])
    return model, data


def test_assess_robustness_json_metrics_and_exit_codes(cli: Cli, files: tuple[Path, Path]) -> None:
    model, data = files
    r = cli(
        "assess",
        "robustness",
        "--model",
        str(model),
        "--data",
        str(data),
        "--eps",
        "0.05,0.2",
        "--steps",
        "10",
        "--restarts",
        "1",
        "--format",
        "json",
        "--fail-on",
        "never",
    )
    assert r.code == 0, r.err
    rep = json.loads(r.out)
    m = rep["metrics"]
    assert m["clean_accuracy"] > 0.9
    assert m["robust_accuracy@pgd_linf_0.2"] < m["robust_accuracy@pgd_linf_0.05"] <= m["clean_accuracy"]
    assert "attack_success@pgd_linf_0.2" in m and rep["worst_examples"]
    # a strong attack at a large budget breaks it: a high finding, exit 1 with the default --fail-on
    assert (
        cli("assess", "robustness", "-m", str(model), "-d", str(data), "--eps", "0.2", "--steps", "10").code
        == 1
    )


def test_html_report_has_the_curve(cli: Cli, files: tuple[Path, Path], tmp_path: Path) -> None:
    model, data = files
    out = tmp_path / "r.html"
    r = cli(
        "assess",
        "robustness",
        "-m",
        str(model),
        "-d",
        str(data),
        "--attack",
        "fgsm",
        "--eps",
        "0.1",
        "-f",
        "html",
        "-o",
        str(out),
        "--fail-on",
        "never",
    )
    assert r.code == 0
    html = out.read_text()
    assert "Robustness curve" in html and "data:image/svg+xml;base64," in html


def test_certify_and_harden(cli: Cli, files: tuple[Path, Path], tmp_path: Path) -> None:
    model, data = files
    r = cli(
        "certify",
        "-m",
        str(model),
        "-d",
        str(data),
        "--n",
        "200",
        "--n0",
        "20",
        "--radii",
        "0.1,0.25",
        "-f",
        "json",
        "--fail-on",
        "never",
    )
    assert r.code == 0, r.err
    assert {"certified_accuracy@0.1", "certified_accuracy@0.25", "abstain_rate"} <= set(
        json.loads(r.out)["metrics"]
    )
    hard = tmp_path / "hard.pt"
    r = cli(
        "harden",
        "adversarial-training",
        "-m",
        str(model),
        "-d",
        str(data),
        "--epochs",
        "2",
        "--steps",
        "2",
        "--out-model",
        str(hard),
        "-f",
        "json",
        "--fail-on",
        "never",
    )
    assert r.code == 0, r.err
    assert hard.is_file() and json.loads(r.out)["output"] == str(hard)


def test_bad_inputs_are_one_line_exit_2(cli: Cli, files: tuple[Path, Path], tmp_path: Path) -> None:
    model, data = files
    missing = cli("assess", "robustness", "-m", str(tmp_path / "nope.pt"), "-d", str(data))
    assert missing.code == 2 and "does not exist" in missing.err and "Traceback" not in missing.err
    nan = tmp_path / "nan.npz"
    x = np.load(data)["X"].copy()
    x[0, 0] = np.nan
    np.savez(nan, X=x, y=np.load(data)["y"])
    r = cli("assess", "robustness", "-m", str(model), "-d", str(nan))
    assert r.code == 2 and "NaN" in r.err
    r = cli("assess", "robustness", "-m", str(model), "-d", str(data), "--eps", "abc")
    assert r.code == 2 and "0.1,0.2" in r.err
    r = cli("certify", "-m", "http://127.0.0.1:9/predict", "-d", str(data))
    assert r.code == 2 and "cannot reach" in r.err
    r = cli("assess", "robustness", "-m", str(model), "-d", str(data), "--attack", "magic")
    assert r.code == 2 and "unknown attack" in r.err
