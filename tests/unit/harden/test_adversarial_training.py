"""Hardening on a tiny model and a small, easy problem, so it trains in seconds."""

from __future__ import annotations

import numpy as np
import pytest
from tests._deps import require

from mlsecops.assess.attack import make_attack
from mlsecops.core.checks import Target, get_check
from mlsecops.core.errors import InputError

torch = require("torch", "torch")
torch.set_num_threads(2)


def _blobs(n: int = 1500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits scaled to [0, 1]: training rows (seed 0) or 300 held-out rows (seed 1)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], d.target[order]
    return (x[:n], y[:n]) if seed == 0 else (x[-min(n, 297) :], y[-min(n, 297) :])


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))


def _clean_train(net: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> torch.nn.Module:
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(150):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    return net.eval()


def _robust(model, x, y, eps=0.1) -> float:
    return make_attack("pgd", steps=20, restarts=1).generate(model, x, y, eps=eps).robust_accuracy


@pytest.mark.parametrize("method", ["pgd", "trades"])
def test_adversarial_training_raises_robust_accuracy(method):
    from mlsecops.harden import adversarial_train
    from mlsecops.models import TorchModel

    x, y = _blobs()
    xv, yv = _blobs(300, seed=1)
    base = TorchModel(_clean_train(_net(), x, y), input_shape=(64,))
    before = _robust(base, xv, yv)
    net = _net()
    result = adversarial_train(net, x, y, method=method, eps=0.1, epochs=8, steps=5, lr=1e-2, batch_size=128)
    hard = TorchModel(net, input_shape=(64,))
    after = _robust(hard, xv, yv)
    clean = float((hard.predict_proba(xv).argmax(axis=1) == yv).mean())
    assert result.epochs == 8 and len(result.history) == 8
    assert clean > 0.9
    assert after > before + 0.2, (before, after)


def test_check_writes_new_model_and_records_lineage(tmp_path):
    from mlsecops.models import TorchModel
    from mlsecops.store import Workspace, lineage

    x, y = _blobs()
    x, y = x[:1000], y[:1000]
    model_path = TorchModel(_clean_train(_net(), x, y), input_shape=(64,)).save(tmp_path / "m.pt")
    original = model_path.read_bytes()
    data = tmp_path / "train.npz"
    np.savez(data, X=x, y=y)
    home = tmp_path / ".mlsecops"
    Workspace.init(home).close()
    out = tmp_path / "m-hard.pt"
    rep = (
        get_check("harden.adversarial_training")
        .create()
        .run(
            Target(
                paths=(model_path, data),
                options={
                    "eps": 0.1,
                    "epochs": 8,
                    "steps": 5,
                    "lr": 1e-2,
                    "batch_size": 128,
                    "output": str(out),
                    "eval_steps": 20,
                },
                home=home,
                seed=0,
            )
        )
    )
    m = rep.metrics
    assert out.is_file() and model_path.read_bytes() == original  # the original is untouched
    assert m["robust_accuracy_after@pgd_linf_0.1"] > m["robust_accuracy_before@pgd_linf_0.1"] + 0.2
    assert m["clean_accuracy_after"] > 0.9
    assert rep.data["lineage_recorded"] is True
    ws = Workspace.open(home)
    try:
        with ws.session(readonly=True) as s:
            import hashlib

            digest = hashlib.sha256(out.read_bytes()).hexdigest()
            child = lineage.find_node(s, "model_file", out.name, digest[:16])
            assert child is not None
            graph = lineage.ancestors(s, child)
            assert any(rel == "adversarially_trained" for _, _, rel in graph.edges)
    finally:
        ws.close()


def test_bad_inputs(tmp_path):
    from mlsecops.harden import adversarial_train

    x, y = _blobs(50)
    with pytest.raises(InputError, match="method"):
        adversarial_train(_net(), x, y, method="magic")  # type: ignore[arg-type]
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        adversarial_train(_net(), bad, y, epochs=1)
    with pytest.raises(InputError, match="needs a model and a training set"):
        get_check("harden.adversarial_training").create().run(Target(paths=(tmp_path / "m.pt",)))


def test_check_reports_accuracy_on_data_it_did_not_train_on(tmp_path):
    """Before/after accuracy comes from rows the training never saw: the held-out split by default,
    or a separate ``test_data`` set (then all training rows train), and the report says which."""
    from mlsecops.models import TorchModel

    x, y = _blobs()
    model_path = TorchModel(_clean_train(_net(), x[:600], y[:600]), input_shape=(64,)).save(
        tmp_path / "m.pt2"
    )
    train, test = tmp_path / "train.npz", tmp_path / "test.npz"
    np.savez(train, X=x[:600], y=y[:600])
    np.savez(test, X=x[600:850], y=y[600:850])
    opts = {"epochs": 1, "steps": 2, "eval_steps": 3, "output": str(tmp_path / "h.pt2")}
    check = get_check("harden.adversarial_training").create()
    held = check.run(Target(paths=(model_path, train), options=opts, seed=0))
    assert held.data["evaluation"] == {"on": "held-out validation split", "source": str(train), "rows": 120}
    separate = check.run(Target(paths=(model_path, train), options={**opts, "test_data": str(test)}, seed=0))
    assert separate.data["evaluation"] == {"on": "test_data", "source": str(test), "rows": 250}
    with pytest.raises(InputError, match="training rows"):
        check.run(Target(paths=(model_path, train), options={**opts, "val_fraction": 1.0}, seed=0))
