from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from tests._deps import require

from mlsecops.core.errors import InputError, VerificationError
from mlsecops.models import (
    GradientModel,
    ModelAdapter,
    ModelError,
    SklearnModel,
    TorchModel,
    TorchNative,
    load_estimator,
    load_model,
)

torch = require("torch", "torch")
sys.path.insert(0, str(Path(__file__).parent))
from adapter_helpers import ProbaNet, make_linear  # noqa: E402


def test_torch_adapter_probabilities_and_gradient(xy):
    x, y = xy
    m = TorchModel(make_linear(), input_shape=(4,))
    assert isinstance(m, TorchNative) and isinstance(m, GradientModel)
    assert m.n_classes == 3 and m.input_shape == (4,)
    p = m.predict_proba(x)
    assert p.shape == (30, 3)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    g = m.loss_gradient(x, y)
    assert g.shape == x.shape and np.abs(g).sum() > 0

    # the gradient points uphill: a small step along it raises the loss
    def loss(a):
        return -np.log(m.predict_proba(a)[np.arange(len(y)), y]).sum()

    assert loss(x + 1e-2 * g / np.abs(g).max()) > loss(x)


def test_wrong_shape_and_nan_inputs_are_input_errors(xy):
    x, _ = xy
    m = TorchModel(make_linear(), input_shape=(4,))
    with pytest.raises(InputError, match=r"expects \(n, 4\)"):
        m.predict_proba(np.zeros((3, 5), dtype=np.float32))
    bad = x.copy()
    bad[2, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        m.predict_proba(bad)
    with pytest.raises(InputError, match="labels"):
        m.loss_gradient(x, np.full(len(x), 7))


def test_model_returning_non_probabilities_is_a_model_error(xy):
    x, _ = xy
    ok = TorchModel(ProbaNet(), input_shape=(4,), output="proba")
    np.testing.assert_allclose(ok.predict_proba(x).sum(axis=1), 1.0, rtol=1e-5)
    broken = TorchModel(ProbaNet(broken=True), input_shape=(4,), output="proba")
    with pytest.raises(ModelError, match="not probabilities"):
        broken.predict_proba(x)


def test_torchscript_round_trip_and_corrupt_file(tmp_path, xy):
    x, _ = xy
    m = TorchModel(make_linear(), input_shape=(4,))
    path = m.save(tmp_path / "m.pt")
    loaded = load_model(path, input_shape=(4,))
    np.testing.assert_allclose(loaded.predict_proba(x), m.predict_proba(x), rtol=1e-5)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(VerificationError, match=r"judged error.*refusing to load"):  # the scan refuses it
        load_model(bad, input_shape=(4,))
    with pytest.raises(InputError, match="does not exist"):
        load_model(tmp_path / "missing.pt", input_shape=(4,))


def test_python_spec_loads_module_factory(xy):
    x, _ = xy
    m = load_model("python:adapter_helpers:make_linear", input_shape=(4,))
    assert isinstance(m, TorchModel) and m.predict_proba(x).shape == (30, 3)
    with pytest.raises(InputError, match="no attribute"):
        load_model("python:adapter_helpers:nothing_here", input_shape=(4,))
    with pytest.raises(InputError, match=r"python:package\.module:attr"):
        load_model("python:adapter_helpers", input_shape=(4,))


def test_sklearn_adapter(xy):
    x, y = xy
    est = LogisticRegression(max_iter=200).fit(x, y)
    m = SklearnModel(est)
    assert isinstance(m, ModelAdapter) and not isinstance(m, GradientModel)
    assert m.n_classes == 3 and m.input_shape == (4,)
    np.testing.assert_allclose(m.predict_proba(x), est.predict_proba(x), rtol=1e-6)
    with pytest.raises(InputError):
        m.predict_proba(np.zeros((2, 3)))


def test_pickles_load_through_the_scanner_and_hostile_ones_are_refused(tmp_path, xy):
    x, y = xy
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps(LogisticRegression(max_iter=200).fit(x, y)))
    est = load_estimator(path)
    assert SklearnModel(est).predict_proba(x).shape == (30, 3)
    marker = tmp_path / "pwned"
    hostile = tmp_path / "evil.pkl"
    hostile.write_bytes(pickle.dumps(_Evil(str(marker))))
    with pytest.raises(VerificationError):
        load_model(hostile)
    assert not marker.exists()  # never executed
    truncated = tmp_path / "trunc.pkl"
    truncated.write_bytes(path.read_bytes()[:100])
    with pytest.raises((InputError, VerificationError), match=r"truncated|not a loadable|runs past the end"):
        load_model(truncated)


class _Evil:
    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.target}",))


def test_unknown_model_kind_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot tell what kind of model"):
        load_model(tmp_path / "model.xyz")
    with pytest.raises(InputError, match="input shape"):
        load_model("http://127.0.0.1:9/predict")
