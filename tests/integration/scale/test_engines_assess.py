"""The same robustness, certification and poisoning reports on every engine: `--executor inline`,
`process` and `ray` (the session's two-node cluster) give identical metrics and findings for the same
seed. Real model and data: an MLP trained on scikit-learn's digits, wine with planted label flips."""

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

_TIMING = ("started", "finished", "duration", "seconds", "elapsed")


def _strip(doc: Any) -> Any:
    """The report without its timings (the only part allowed to differ between engines)."""
    if isinstance(doc, dict):
        return {k: _strip(v) for k, v in doc.items() if not any(t in k for t in _TIMING)}
    if isinstance(doc, list):
        return [_strip(v) for v in doc]
    return doc


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from sklearn.datasets import load_digits

    from mlsecops.models import TorchModel

    root = tmp_path_factory.mktemp("digits")
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(120):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(d.target)).backward()
        opt.step()
    model = TorchModel(net.eval(), input_shape=(64,)).save(root / "mlp.pt")
    data = root / "digits.npz"
    np.savez(data, X=x[1500:1590], y=d.target[1500:1590])  # rows the model did not train on last
    return model, data


def _on_every_engine(cli: Cli, args: list[str], address: str) -> list[dict[str, Any]]:
    reports = []
    for engine in (["inline"], ["process", "--workers", "2"], ["ray", "--address", address]):
        r = cli(*args, "--executor", *engine, "--format", "json", "--fail-on", "never")
        assert r.code == 0, (engine, r.err)
        reports.append(json.loads(r.out))
    return reports


def test_robustness_report_is_identical_on_every_engine(
    cli: Cli, digits: tuple[Path, Path], ray_cluster: str
) -> None:
    model, data = digits
    args = ["assess", "robustness", "-m", str(model), "-d", str(data), "--eps", "0.05,0.2", "--steps", "5"]
    reports = _on_every_engine(cli, [*args, "--shard-rows", "32", "--seed", "3"], ray_cluster)
    first = _strip(reports[0])
    assert first["metrics"]["clean_accuracy"] > 0.8
    # the attack works (findings, worst examples) and every engine reports exactly the same
    assert first["findings"] and first["worst_examples"] and first["n_examples"] == 90
    for other in reports[1:]:
        assert _strip(other) == first
    # a bad engine or an address without ray is one clear line, exit 2
    bad = cli(*args, "--executor", "spark")
    assert bad.code == 2 and "must be one of inline, process, ray" in bad.err
    assert cli(*args, "--executor", "process", "--address", ray_cluster).code == 2


def test_certify_report_is_identical_on_every_engine(
    cli: Cli, digits: tuple[Path, Path], ray_cluster: str
) -> None:
    model, data = digits
    args = ["certify", "-m", str(model), "-d", str(data), "--n", "200", "--n0", "20", "--sigma", "0.1"]
    reports = _on_every_engine(cli, [*args, "--shard-rows", "25", "--radii", "0.05,0.25"], ray_cluster)
    first = _strip(reports[0])
    m = first["metrics"]
    assert m["smoothed_accuracy"] > 0.5 and m["certified_accuracy@0.25"] < m["certified_accuracy@0.05"]
    for other in reports[1:]:
        assert _strip(other) == first


@pytest.fixture(scope="module")
def wine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, set[int]]:
    from sklearn.datasets import load_wine

    root = tmp_path_factory.mktemp("wine")
    X, y = load_wine(return_X_y=True)
    np.savez(root / "clean.npz", X=X, y=y)
    rng = np.random.default_rng(0)
    flipped = rng.choice(len(y), size=18, replace=False)
    bad = y.copy()
    bad[flipped] = (bad[flipped] + rng.integers(1, 3, size=flipped.size)) % 3
    np.savez(root / "flipped.npz", X=X, y=bad)
    return root / "clean.npz", root / "flipped.npz", {int(i) for i in flipped}


def test_poison_label_folds_are_identical_on_every_engine(
    cli: Cli, wine: tuple[Path, Path, set[int]], ray_cluster: str
) -> None:
    clean, poisoned, planted = wine
    args = ["data", "poison", str(poisoned), "--detectors", "labels", "--seed", "1"]
    reports = _on_every_engine(cli, args, ray_cluster)
    unsharded = cli(*args, "--format", "json", "--fail-on", "never")
    first = _strip(reports[0])
    found = {s["row"] for s in first["suspect_rows"]}
    assert len(found & planted) >= 14 and len(found - planted) <= 4  # the flips, few clean rows
    for other in [*reports[1:], json.loads(unsharded.out)]:
        assert _strip(other) == first
    on_clean = json.loads(
        cli(
            "data",
            "poison",
            str(clean),
            "--detectors",
            "labels",
            "--executor",
            "ray",
            "--address",
            ray_cluster,
            "--format",
            "json",
            "--fail-on",
            "never",
        ).out
    )
    assert len(on_clean["suspect_rows"]) <= 4  # clean wine: at most the 2% cap of rows
