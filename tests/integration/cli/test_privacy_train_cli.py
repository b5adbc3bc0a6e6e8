"""``mlsecops harden dp-train`` end to end (in-process): report, model file, lineage and registration."""

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
require("opacus", "privacy")
torch.set_num_threads(1)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    from mlsecops.models import TorchModel

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 8)).astype(np.float32)
    y = (x[:, 0] - x[:, 2] > 0).astype(np.int64)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    model = TorchModel(net, input_shape=(8,)).save(tmp_path / "net.pt2")
    data = tmp_path / "train.npz"
    np.savez(data, X=x, y=y)
    return model, data


@pytest.mark.timeout(300)
def test_dp_train_writes_model_records_lineage_and_registers(
    cli: Cli, files: tuple[Path, Path], tmp_path: Path
) -> None:
    from mlsecops.registry import Registry, Role, authenticate, create_api_key, create_user
    from mlsecops.store import Workspace

    ws = Workspace.init(tmp_path / ".mlsecops", actor="test")
    create_user(ws, "root", Role.ADMIN, actor=None)
    key = create_api_key(ws, "root", actor=None)
    model, data = files
    out = tmp_path / "private.pt2"
    rng = np.random.default_rng(7)  # public rows: another sample of the same task, none in DATA
    px = rng.normal(size=(400, 8)).astype(np.float32)
    public = tmp_path / "public.npz"
    np.savez(public, X=px, y=(px[:, 0] - px[:, 2] > 0).astype(np.int64))
    r = cli(
        "harden",
        "dp-train",
        "-m",
        str(model),
        "-d",
        str(data),
        "--epsilon",
        "2",
        "--delta",
        "1e-4",
        "--epochs",
        "3",
        "--batch-size",
        "60",
        "--accountant",
        "rdp",
        "--out-model",
        str(out),
        "--public-data",
        str(public),
        "--public-epochs",
        "2",
        "--dp-layers",
        "1",
        "--register",
        "net-dp",
        "-f",
        "json",
        "-q",
        env={"MLSECOPS_API_KEY": key},
    )
    assert r.code == 0, r.err
    doc = json.loads(r.out[: r.out.rindex("}") + 1])
    assert doc["kind"] == "harden.dp_training" and doc["verdict"] == "private"
    assert 0 < doc["metrics"]["dp_epsilon"] <= 2.0 and doc["privacy"]["sampling"] == "poisson"
    assert "leakage_empirical_epsilon" in doc["metrics"]
    assert doc["privacy"]["initialisation"] == "public pre-training"
    assert doc["privacy"]["public_pretraining"]["rows"] == 400
    assert doc["privacy"]["pretrained_on"].startswith("public.npz (sha256 ")
    assert doc["privacy"]["private_layers"] == ["program_module.2"]  # the .pt2 graph's layer names
    assert out.is_file() and doc["lineage"].startswith("model_file:private.pt2@")
    assert "registered" in r.out and "net-dp@1" in r.out
    reg = Registry(ws, authenticate(ws, key))
    graph = reg.lineage("net-dp@1")
    assert any(n["kind"] == "model_file" and n["name"] == "private.pt2" for n in graph["nodes"].values())
    assert any(n["kind"] == "dataset" and n["name"] == "public.npz" for n in graph["nodes"].values())
    context = reg.bom_context("net-dp@1")
    (facts,) = context["privacy"]
    assert facts["epsilon"] == pytest.approx(doc["metrics"]["dp_epsilon"], rel=1e-4)
    assert facts["accountant"] == "rdp" and facts["delta"] == 1e-4
    from mlsecops.supplychain.bom import build_bom

    bom = build_bom(out, context=context)
    props = {p["name"]: p["value"] for p in bom["metadata"]["component"]["properties"]}
    assert float(props["mlsecops:privacy:epsilon"]) == pytest.approx(facts["epsilon"])
    assert props["mlsecops:privacy:accountant"] == "rdp"
    assert props["mlsecops:privacy:initialisation"] == "public pre-training"
    assert props["mlsecops:privacy:pretrained_on"] == doc["privacy"]["pretrained_on"]
    ws.close()


def test_dp_train_bad_inputs_are_one_line_exit_2(cli: Cli, files: tuple[Path, Path], tmp_path: Path) -> None:
    model, data = files
    r = cli("harden", "dp-train", "-m", str(model), "-d", str(data), "--epsilon", "1", "--delta", "0.5")
    assert r.code == 2 and "not below 1/n" in r.err and "Traceback" not in r.err
    r = cli("harden", "dp-train", "-m", str(tmp_path / "nope.pt2"), "-d", str(data), "--epsilon", "1")
    assert r.code == 2 and "does not exist" in r.err
    r = cli("harden", "dp-train", "-m", str(model), "-d", str(data))
    assert r.code == 2 and "--epsilon" in r.err
    r = cli(
        "harden", "dp-train", "-m", str(model), "-d", str(data), "--epsilon", "1", "--public-data", str(data)
    )
    assert r.code == 2 and "also occur in the private training data" in r.err and "Traceback" not in r.err
