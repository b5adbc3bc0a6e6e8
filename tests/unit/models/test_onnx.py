"""The ONNX adapter on a tiny linear graph built with onnx.helper (no exporter needed)."""

from __future__ import annotations

import numpy as np
import pytest
from tests._deps import require

from mlsecops.core.errors import InputError
from mlsecops.models import ModelError, OnnxModel, load_model

onnx = require("onnx", "test")
require("onnxruntime", "onnx")


def _linear_graph(path, w: np.ndarray, *, softmax: bool) -> None:
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("MatMul", ["x", "w"], ["z"])]
    out = "z"
    if softmax:
        nodes.append(helper.make_node("Softmax", ["z"], ["probabilities"], axis=1))
        out = "probabilities"
    graph = helper.make_graph(
        nodes,
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, w.shape[0]])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, [None, w.shape[1]])],
        initializer=[numpy_helper.from_array(w.astype(np.float32), name="w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


def test_onnx_probabilities_and_logits(tmp_path):
    w = np.random.default_rng(0).standard_normal((4, 3))
    x = np.random.default_rng(1).random((5, 4)).astype(np.float32)
    _linear_graph(tmp_path / "p.onnx", w, softmax=True)
    m = load_model(tmp_path / "p.onnx")
    assert isinstance(m, OnnxModel) and m.n_classes == 3 and m.input_shape == (4,)
    p = m.predict_proba(x)
    z = x @ w
    expected = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(p, expected, rtol=1e-4)
    _linear_graph(tmp_path / "z.onnx", w, softmax=False)
    with pytest.raises(ModelError, match=r"not probabilities|outside"):
        load_model(tmp_path / "z.onnx").predict_proba(x)
    np.testing.assert_allclose(
        load_model(tmp_path / "z.onnx", output="logits").predict_proba(x), expected, rtol=1e-4
    )
    with pytest.raises(InputError, match="expects"):
        m.predict_proba(np.zeros((2, 5), dtype=np.float32))


def test_corrupt_onnx_is_a_model_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage that is not a graph")
    # The scanner judges the file before onnxruntime sees it: garbage is refused with one clear line.
    with pytest.raises(
        (ModelError, InputError), match=r"not a loadable ONNX model|does not load unknown files"
    ):
        load_model(bad, input_shape=(4,))
