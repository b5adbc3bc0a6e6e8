"""``data.poison`` with a supplied model: its penultimate activations find a planted 2x2 trigger backdoor,
its probabilities flag flipped labels, clean data stays clean, and a model that does not fit is a clear
one-line error."""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests._deps import require
from tests.unit.data.conftest import flip_labels, plant_trigger, rates

from mlsecops.core.checks import Target, get_check
from mlsecops.core.errors import InputError
from mlsecops.data._model_features import model_signals
from mlsecops.data._poison import scan_rows

torch = require("torch", "torch")

CLASSES = [str(c) for c in range(10)]
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")


class _Scaled(torch.nn.Module):  # type: ignore[misc, name-defined]
    """Pixels 0..16 scaled to 0..1 in front of a Sequential network (so the hook path is not trivial)."""

    def __init__(self, net: Any) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Any) -> Any:
        return self.net(x.reshape(x.shape[0], -1) / 16.0)


def _train(X: np.ndarray, y: np.ndarray, *, steps: int = 150, seed: int = 0) -> Any:
    """A tiny MLP (64-64-32-10) trained full-batch with Adam: about a second on two threads."""
    torch.set_num_threads(2)
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(64, 64),
        torch.nn.ReLU(),
        torch.nn.Linear(64, 32),
        torch.nn.ReLU(),
        torch.nn.Linear(32, 10),
    )
    xt = torch.tensor(X.reshape(len(X), -1) / 16.0, dtype=torch.float32)
    yt = torch.tensor(y, dtype=torch.long)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    return net.eval()


@pytest.fixture
def as_python(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Any], str]]:
    """Expose an object as ``python:_mf_models:mN`` for ``load_model``."""
    mod = types.ModuleType("_mf_models")
    monkeypatch.setitem(sys.modules, "_mf_models", mod)
    count = iter(range(100))

    def _expose(obj: Any) -> str:
        name = f"m{next(count)}"
        setattr(mod, name, obj)
        return f"python:_mf_models:{name}"

    yield _expose


@pytest.fixture(scope="module")
def poisoned(digits_module: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any]:
    """Digits with a 2x2 trigger on 5% of the images relabelled to 4, and a model trained on them."""
    X, y = digits_module
    Xp, yp, truth = plant_trigger(X, y, 0.05, 4, seed=3)
    return Xp, yp, truth, _train(Xp, yp)


@pytest.fixture(scope="module")
def digits_module() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X.astype(np.float64), y.astype(np.int64)


def test_backdoor_found_in_the_models_penultimate_features(
    poisoned: tuple[np.ndarray, np.ndarray, np.ndarray, Any], as_python: Callable[[Any], str], tmp_path: Path
) -> None:
    Xp, yp, truth, net = poisoned
    # The backdoor was learned: triggered images go to the target class.
    with torch.no_grad():
        pred = net(torch.tensor(Xp[truth] / 16.0, dtype=torch.float32)).argmax(1).numpy()
    assert np.mean(pred == 4) >= 0.9
    sig = model_signals(as_python(_Scaled(net)), Xp, CLASSES)
    assert sig.source == "penultimate" and sig.features.shape == (len(yp), 32)
    # A TorchScript file takes no hooks: the Sequential is run up to its last Linear layer instead.
    script = tmp_path / "m.pt"
    torch.jit.script(net).save(str(script))
    sig_ts = model_signals(str(script), Xp / 16.0, CLASSES)
    assert sig_ts.source == "penultimate"
    np.testing.assert_allclose(sig_ts.features, sig.features, atol=1e-4)

    res = scan_rows(Xp, yp, detectors=("backdoor",), model=sig)
    assert res.mask is not None
    recall, fpr = rates(res.mask, truth)
    assert recall >= 0.95 and fpr <= 0.02, (recall, fpr)
    assert all("penultimate" in str(s["reason"]) for s in res.suspects)


def test_clean_digits_with_a_clean_model_are_not_flagged(
    digits_module: tuple[np.ndarray, np.ndarray], as_python: Callable[[Any], str]
) -> None:
    X, y = digits_module
    sig = model_signals(as_python(_Scaled(_train(X, y))), X, CLASSES)
    res = scan_rows(X, y, detectors=("backdoor",), model=sig)
    assert res.metrics["backdoor_rows"] == 0
    # The model's own training labels are almost never given very low probability.
    own = sig.proba[np.arange(len(y)), y]
    assert np.mean(own < 0.01) <= 0.02


def test_model_probabilities_flag_flipped_labels(
    digits_module: tuple[np.ndarray, np.ndarray],
    as_python: Callable[[Any], str],
) -> None:
    """A model trained on trusted data gives flipped labels of a new batch very low probability."""
    X, y = digits_module
    X_tr, y_tr, X_b, y_b = X[:1200], y[:1200], X[1200:], y[1200:]
    noisy, flipped = flip_labels(y_b, 0.05, seed=4)
    sig = model_signals(as_python(_Scaled(_train(X_tr, y_tr))), X_b, CLASSES)
    own = sig.proba[np.arange(len(noisy)), noisy]
    assert rates(own < 0.01, flipped)[0] >= 0.9
    res = scan_rows(X_b, noisy, detectors=("labels",), model=sig)
    assert res.mask is not None
    recall, fpr = rates(res.mask, flipped)
    assert recall >= 0.95 and fpr <= 0.03, (recall, fpr)
    # Rows only the model flagged cost at most one point of false positives.
    model_only = np.zeros(len(noisy), dtype=bool)
    for s in res.suspects:
        if str(s["reason"]).startswith("label") and "out-of-sample" not in str(s["reason"]):
            model_only[int(str(s["row"]))] = True
    assert rates(model_only, flipped)[1] <= 0.01
    assert res.metrics["model_label_issues"] >= 0.9 * flipped.sum()
    assert any("supplied model" in str(s["reason"]) for s in res.suspects)


def test_a_model_that_does_not_fit_the_data_is_a_one_line_error(
    digits_module: tuple[np.ndarray, np.ndarray], as_python: Callable[[Any], str], tmp_path: Path
) -> None:
    X, y = digits_module
    net = torch.nn.Sequential(torch.nn.Linear(30, 8), torch.nn.ReLU(), torch.nn.Linear(8, 10))
    with pytest.raises(InputError) as err:
        model_signals(as_python(net), X, CLASSES)
    assert "\n" not in str(err.value) and "shape" in str(err.value)
    script = tmp_path / "bad.pt"
    torch.jit.script(net).save(str(script))
    with pytest.raises(InputError) as err:
        model_signals(str(script), X, CLASSES)
    assert "\n" not in str(err.value) and "shapes cannot be multiplied" in str(err.value)

    class Logits:
        """Claims probabilities, returns raw scores."""

        classes_ = np.arange(10)
        n_features_in_ = 64

        def predict_proba(self, x: np.ndarray) -> np.ndarray:
            return np.asarray(x[:, :10] - 8.0)

    with pytest.raises(InputError, match="not probabilities") as err:
        model_signals(as_python(Logits()), X, CLASSES)
    assert "\n" not in str(err.value)

    class Binary(Logits):
        classes_ = np.arange(2)

        def predict_proba(self, x: np.ndarray) -> np.ndarray:
            return np.full((len(x), 2), 0.5)

    with pytest.raises(InputError, match="does not know the data's classes"):
        model_signals(as_python(Binary()), X, CLASSES)
    # Through the check, too.
    np.savez(tmp_path / "d.npz", X=X[:50], y=y[:50])
    with pytest.raises(InputError, match="model"):
        get_check("data.poison").create().run(
            Target(paths=(tmp_path / "d.npz",), options={"model": str(script), "detectors": ["backdoor"]})
        )


def test_cli_poison_with_a_torchscript_model(
    poisoned: tuple[np.ndarray, np.ndarray, np.ndarray, Any], cli: Callable[..., Any], tmp_path: Path
) -> None:
    Xp, yp, truth, net = poisoned
    np.savez(tmp_path / "imgs.npz", X=(Xp / 16.0).reshape(-1, 1, 8, 8), y=yp)
    torch.jit.script(torch.nn.Sequential(torch.nn.Flatten(), net)).save(str(tmp_path / "model.pt"))
    out = tmp_path / "r.json"
    res = cli(
        "data",
        "poison",
        "imgs.npz",
        "--model",
        "model.pt",
        "--detectors",
        "backdoor",
        "-f",
        "json",
        "-o",
        str(out),
    )
    assert res.code == 1, res.err
    report = json.loads(out.read_text())
    assert report["model"]["features"] == "penultimate"
    rows = {r["row"] for r in report["suspect_rows"]}
    recall, fpr = rates(np.isin(np.arange(len(yp)), list(rows)), truth)
    assert recall >= 0.95 and fpr <= 0.02, (recall, fpr)
    np.savez(tmp_path / "flat.npz", X=Xp[:, :30], y=yp)
    bad = cli("data", "poison", "flat.npz", "--model", "model.pt", "--detectors", "backdoor")
    assert bad.code == 2
    assert "model" in bad.err and "shape" in bad.err and len(bad.err.strip().splitlines()) == 1, bad.err


def test_backdoor_found_with_a_pickled_sklearn_models_probabilities(
    digits_module: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    """No internals: the model's centred log-probabilities are the features; the pickle goes through
    the scanner's ``safe_load``."""
    import pickle
    import warnings

    from sklearn.neural_network import MLPClassifier

    X, y = digits_module
    Xp, yp, truth = plant_trigger(X, y, 0.05, 0, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier((64,), max_iter=300, random_state=0).fit(Xp / 16, yp)
    path = tmp_path / "mlp.pkl"
    path.write_bytes(pickle.dumps(clf))
    sig = model_signals(str(path), Xp / 16, CLASSES)
    assert sig.source == "proba" and sig.features.shape == (len(yp), 10)
    res = scan_rows(Xp, yp, detectors=("backdoor",), model=sig)
    assert res.mask is not None
    recall, fpr = rates(res.mask, truth)
    assert recall >= 0.95 and fpr <= 0.02, (recall, fpr)
