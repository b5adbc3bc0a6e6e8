"""Second red-team round, non-pickle formats: Keras, HDF5, ONNX, GGUF and zip directory tricks.

Each malicious case came out ``safe`` before its fix; each benign twin must stay ``safe``. HDF5 inputs
are real h5py files (``_h5_fixtures.py``, written by ``make_h5_fixtures.py``).
"""

from __future__ import annotations

import base64
import io
import json
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from tests._deps import require
from tests.regressions._h5_fixtures import FIXTURES

from mlsecops.supplychain.scanner import ArtifactScan, Verdict, scan_file

LAMBDA = {
    "module": "keras.layers",
    "class_name": "Lambda",
    "config": {"name": "l", "function": {"class_name": "__lambda__", "config": {"code": "4wEAAAAA"}}},
}
DENSE = {"module": "keras.layers", "class_name": "Dense", "config": {"name": "d", "units": 2}}


def _seq(*layers: dict[str, object]) -> dict[str, object]:
    return {"module": "keras", "class_name": "Sequential", "config": {"layers": list(layers)}}


def _zip(files: dict[str, bytes | str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def _keras(config: dict[str, object]) -> bytes:
    return _zip({"metadata.json": "{}", "config.json": json.dumps(config), "model.weights.h5": b"\x89HDF"})


def _scan(tmp_path: Path, data: bytes, name: str = "model.bin") -> ArtifactScan:
    path = tmp_path / name
    path.write_bytes(data)
    return scan_file(path)


def _gguf(template: str) -> bytes:
    k, v = b"tokenizer.chat_template", template.encode()
    return (
        b"GGUF"
        + struct.pack("<IQQ", 3, 0, 1)
        + struct.pack("<Q", len(k))
        + k
        + struct.pack("<IQ", 8, len(v))
        + v
    )


def _onnx(kind: str) -> bytes:
    onnx = require("onnx", "test")
    from onnx import TensorProto, helper

    def ext(name: str, location: str) -> object:
        t = helper.make_tensor(name, TensorProto.FLOAT, [1], [0.0])
        t.ClearField("float_data")
        t.data_location = TensorProto.EXTERNAL
        e = t.external_data.add()
        e.key, e.value = "location", location
        return t

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    node = helper.make_node("Relu", ["x"], ["y"])
    index = helper.make_tensor("i", TensorProto.INT64, [1], [0])
    if kind == "sparse":
        graph = helper.make_graph(
            [node],
            "g",
            [x],
            [y],
            sparse_initializer=[helper.make_sparse_tensor(ext("v", "../../etc/passwd"), index, [1])],
        )
    elif kind == "attr-tensors":
        node.attribute.append(helper.make_attribute("consts", [ext("c", "/etc/shadow")]))
        graph = helper.make_graph([node], "g", [x], [y])
    else:
        graph = helper.make_graph([node], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    if kind == "training-info":
        info = onnx.TrainingInfoProto()
        info.initialization.CopyFrom(
            helper.make_graph(
                [helper.make_node("PyOp", ["x"], ["y"], domain="ai.onnx.contrib")], "i", [x], [y]
            )
        )
        model.training_info.append(info)
    if kind == "reversed":
        model.graph.node.append(helper.make_node("PyOp", ["x"], ["z"], domain="ai.onnx.contrib"))
        return b"".join(reversed(_fields(model.SerializeToString())))
    if kind == "benign":
        info = onnx.TrainingInfoProto()
        info.algorithm.CopyFrom(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "a", [x], [y]))
        model.training_info.append(info)
        model.graph.sparse_initializer.append(
            helper.make_sparse_tensor(ext("v", "weights/v.bin"), index, [1])
        )
    data: bytes = model.SerializeToString()
    return data


def _fields(raw: bytes) -> list[bytes]:
    """The top-level fields of a protobuf message, as raw bytes."""

    def varint(i: int) -> tuple[int, int]:
        out = shift = 0
        while True:
            out |= (raw[i] & 0x7F) << shift
            shift += 7
            i += 1
            if not raw[i - 1] & 0x80:
                return out, i

    out, i = [], 0
    while i < len(raw):
        start = i
        key, i = varint(i)
        if key & 7 == 0:
            i = varint(i)[1]
        else:
            n, i = varint(i)
            i += n
        out.append(raw[start:i])
    return out


def _count_zero(files: dict[str, bytes | str]) -> bytes:
    raw = bytearray(_zip(files))
    eocd = raw.rfind(b"PK\x05\x06")
    raw[eocd + 8 : eocd + 12] = bytes(4)
    return bytes(raw)


MALICIOUS = {
    # A .keras zip needs neither metadata.json nor a .h5 for Keras to deserialise config.json.
    "keras-config-only": lambda: _zip({"config.json": json.dumps(_seq(LAMBDA)), "model.weights.npz": b""}),
    # keras.utils.get_file from a config downloads/overwrites files under safe_mode (CVE-2025-8747).
    "keras-get-file": lambda: _keras(
        _seq(
            {
                **DENSE,
                "config": {
                    "kernel_initializer": {
                        "module": "keras.utils",
                        "class_name": "function",
                        "config": "get_file",
                    }
                },
            }
        )
    ),
    # A TFOpLambda layer calls any tf.* symbol by name.
    "keras-tfoplambda-write-file": lambda: _keras(
        _seq({"class_name": "TFOpLambda", "config": {"name": "w", "function": "io.write_file"}})
    ),
    # "keras_evil" is not a Keras package, though it starts with "keras".
    "keras-module-prefix": lambda: _keras(
        _seq({"module": "keras_evil.os", "class_name": "system", "config": {}})
    ),
    # A bare model_from_json document, keys in another order.
    "bare-keras-json": lambda: json.dumps(
        {"config": {"layers": [LAMBDA]}, "class_name": "Sequential"}
    ).encode(),
    # The end record says 0 entries; Python's zipfile (Keras, numpy) walks the directory by size.
    "zip-count-zero": lambda: _count_zero({"metadata.json": "{}", "config.json": json.dumps(_seq(LAMBDA))}),
    "onnx-sparse-external": lambda: _onnx("sparse"),
    "onnx-attribute-tensors-external": lambda: _onnx("attr-tensors"),
    "onnx-training-info-pyop": lambda: _onnx("training-info"),
    # Protobuf fixes no field order: a ModelProto may start with its graph, not ir_version.
    "onnx-fields-reversed": lambda: _onnx("reversed"),
    # Jinja SSTI whose dunders are assembled at render time.
    "gguf-ssti-concat": lambda: _gguf("{% set u = '_' * 2 %}{{ ''[u ~ 'class' ~ u][u ~ 'mro' ~ u] }}"),
    # torch.package imports its own collections.py for the allow-listed "collections.OrderedDict".
    "torch-package-shadow": lambda: _zip(
        {
            "pkg/.data/version": "6\n",
            "pkg/.data/extern_modules": "os\n",
            "pkg/collections.py": "import os\nos.system('id')\nclass OrderedDict(dict): pass\n",
            "pkg/model/model.pkl": b"\x80\x04\x8c\x0bcollections\x8c\x0bOrderedDict\x93)R.",
        }
    ),
    "h5-reordered-keys": lambda: _h5("reordered_lambda"),
    "h5-userblock": lambda: _h5("userblock_lambda"),
    "h5-bytes-attribute": lambda: _h5("bytes_lambda"),
    "h5-dense-attributes": lambda: _h5("dense_attrs_lambda"),
}

BENIGN = {
    "keras-reordered": lambda: _keras(json.loads(json.dumps(_seq(DENSE)))),
    "keras-activation-function": lambda: _keras(
        _seq(
            {
                **DENSE,
                "config": {
                    "activation": {"module": "keras.activations", "class_name": "function", "config": "relu"}
                },
            }
        )
    ),
    "tfoplambda-math": lambda: _keras(_seq({"class_name": "TFOpLambda", "config": {"function": "math.add"}})),
    "bare-json": lambda: json.dumps({"vocab_size": 10, "layers": [1, 2]}).encode(),
    "onnx-relative-external-training": lambda: _onnx("benign"),
    "gguf-template": lambda: _gguf("{% for m in messages %}{{ '<|' ~ m['role'] ~ '|>' }}{% endfor %}"),
    "h5-reordered-dense": lambda: _h5("reordered_dense"),
    "h5-dense-attributes-dense": lambda: _h5("dense_attrs_dense"),
}


def _h5(name: str) -> bytes:
    return zlib.decompress(base64.b64decode("".join(FIXTURES[name])))


@pytest.mark.parametrize("name", sorted(MALICIOUS))
def test_unseen_format_bypass_is_detected(tmp_path: Path, name: str) -> None:
    result = _scan(tmp_path, MALICIOUS[name]())
    assert result.verdict in (Verdict.MALICIOUS, Verdict.SUSPICIOUS), [h.title for h in result.hits]


@pytest.mark.parametrize("name", sorted(BENIGN))
def test_unseen_format_benign_twin_is_safe(tmp_path: Path, name: str) -> None:
    result = _scan(tmp_path, BENIGN[name]())
    assert result.verdict is Verdict.SAFE, [(h.title, h.detail) for h in result.hits]


def test_h5_attributes_are_parsed_not_searched(tmp_path: Path) -> None:
    result = _scan(tmp_path, _h5("reordered_lambda"), "m.h5")
    lam = [h for h in result.hits if "Lambda" in h.title]
    assert lam and all(h.entry.endswith("@model_config") for h in lam)
    assert not any("searched as text" in h.title for h in result.hits)


def test_oversized_keras_config_is_not_clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlsecops.supplychain.scanner import _containers

    monkeypatch.setattr(_containers, "_MAX_JSON", 1024)
    padded = json.dumps(_seq(DENSE)) + " " * 4096
    result = _scan(tmp_path, _keras_raw(padded))
    assert result.verdict is Verdict.ERROR
    assert any("too large" in h.title for h in result.hits)


def _keras_raw(config_text: str) -> bytes:
    return _zip({"metadata.json": "{}", "config.json": config_text, "model.weights.h5": b"\x89HDF"})


def test_zip_directory_entry_with_data_is_scanned(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(zipfile.ZipInfo("weights/"), b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00id\x85R.")
    assert _scan(tmp_path, buf.getvalue()).verdict is Verdict.MALICIOUS
