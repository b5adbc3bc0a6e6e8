"""Each format: a planted payload is found, the clean file is not flagged, hostile structure is reported."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import pickle
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests._deps import require

from mlsecops.supplychain.scanner import ArtifactScan, Verdict, scan_file

Scan = Callable[..., ArtifactScan]


# -- PyTorch -------------------------------------------------------------------------------------------


def test_torch_zip_with_malicious_data_pkl(scan: Scan, pk: Any) -> None:
    r = scan(pk.torch_zip(pk.SYSTEM), name="model.pt")
    assert r.format == "pytorch-zip" and r.verdict is Verdict.MALICIOUS
    hit = next(h for h in r.hits if h.callable == "os.system")
    assert hit.entry == "archive/data.pkl"


def test_torch_zip_pickle_under_any_entry_name(scan: Scan, pk: Any) -> None:
    r = scan(pk.torch_zip(pk.SYSTEM, pkl_name="weights.bin"), name="model.safetensors")
    assert r.verdict is Verdict.MALICIOUS


def test_real_torch_checkpoints_are_safe(tmp_path: Path) -> None:
    torch = require("torch", "torch")
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3),
        torch.nn.BatchNorm2d(4),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 6 * 6, 10),
    )
    torch.save(net.state_dict(), tmp_path / "sd.pt")
    torch.save(
        {"model": net.state_dict(), "epoch": 3, "opt": torch.optim.SGD(net.parameters(), 0.1).state_dict()},
        tmp_path / "ckpt.bin",
    )
    torch.save(net.state_dict(), tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    torch.jit.save(torch.jit.script(net), tmp_path / "scripted.pt")
    formats = {}
    for f in sorted(tmp_path.iterdir()):
        r = scan_file(f)
        assert r.verdict is Verdict.SAFE, (f.name, r.hits)
        formats[f.name] = r.format
    assert formats == {
        "ckpt.bin": "pytorch-zip",
        "legacy.pt": "pytorch-legacy",
        "scripted.pt": "torchscript",
        "sd.pt": "pytorch-zip",
    }


def test_torch_legacy_format_with_payload(scan: Scan, pk: Any) -> None:
    head = (
        pickle.dumps(0x1950A86A20F9469CFC6C, 2)
        + pickle.dumps(1001, 2)
        + pickle.dumps({"little_endian": True}, 2)
    )
    r = scan(head + pk.SYSTEM + pickle.dumps(["0"], 2) + b"\x00" * 64)
    assert r.format == "pytorch-legacy" and r.verdict is Verdict.MALICIOUS


def test_torchscript_code_with_file_operation(scan: Scan, pk: Any) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("m/data.pkl", pk.BENIGN)
        z.writestr("m/constants.pkl", pk.BENIGN)
        z.writestr(
            "m/code/__torch__/m.py", "def forward(self):\n  return ops.aten.from_file('/etc/passwd')\n"
        )
    r = scan(buf.getvalue())
    assert r.format == "torchscript" and r.verdict is Verdict.MALICIOUS
    assert any(h.kind == "torchscript" and h.callable == "ops.aten.from_file" for h in r.hits)


# -- joblib and compression ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "codec,compress",
    [
        ("zlib", zlib.compress),
        ("gzip", gzip.compress),
        ("bz2", bz2.compress),
        ("xz", lzma.compress),
        ("lzma", lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE)),
    ],
)
def test_compressed_pickles(scan: Scan, pk: Any, codec: str, compress: Callable[[bytes], bytes]) -> None:
    r = scan(compress(pk.SYSTEM))
    assert r.verdict is Verdict.MALICIOUS and r.format == f"joblib-{codec}"
    assert scan(compress(pk.BENIGN)).verdict is Verdict.SAFE


@pytest.mark.parametrize("compress", [0, 3, ("gzip", 3), ("bz2", 3), ("xz", 3), ("lzma", 3)])
def test_real_joblib_models_are_safe(tmp_path: Path, compress: object) -> None:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_iris(return_X_y=True)
    model = make_pipeline(StandardScaler(), GradientBoostingClassifier(n_estimators=5)).fit(x, y)
    path = tmp_path / "model.joblib"
    joblib.dump(model, path, compress=compress)
    r = scan_file(path)
    assert r.verdict is Verdict.SAFE, r.hits
    assert r.format.startswith("joblib")


# -- NumPy ----------------------------------------------------------------------------------------------


def test_npy_object_array_with_payload(scan: Scan, pk: Any) -> None:
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }".ljust(117) + "\n"
    data = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + pk.SYSTEM
    r = scan(data, name="arr.npy")
    assert r.verdict is Verdict.MALICIOUS and r.format == "npy-object"


def test_npz_with_malicious_member(tmp_path: Path, pk: Any) -> None:
    good = io.BytesIO()
    np.save(good, np.arange(10))
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }".ljust(117) + "\n"
    bad = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + pk.SYSTEM
    path = tmp_path / "arrays.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.npy", good.getvalue())
        z.writestr("b.npy", bad)
    r = scan_file(path)
    assert r.format == "npz" and r.verdict is Verdict.MALICIOUS
    assert any(h.entry == "b.npy" for h in r.hits)


def test_plain_npy_and_npz_are_safe(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.random.default_rng(0).normal(size=(50, 4)))
    np.savez_compressed(tmp_path / "b.npz", w=np.ones((3, 3)), b=np.arange(3))
    assert scan_file(tmp_path / "a.npy").verdict is Verdict.SAFE
    assert scan_file(tmp_path / "b.npz").verdict is Verdict.SAFE


# -- Keras ------------------------------------------------------------------------------------------------


def _keras_zip(config: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("config.json", json.dumps(config))
        z.writestr("metadata.json", json.dumps({"keras_version": "3.4.1"}))
        z.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)
    return buf.getvalue()


def _dense(name: str) -> dict[str, Any]:
    return {
        "module": "keras.layers",
        "class_name": "Dense",
        "config": {"name": name, "units": 4},
        "registered_name": None,
    }


def _model(*layers: dict[str, Any]) -> dict[str, Any]:
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {"name": "seq", "layers": list(layers)},
        "registered_name": None,
    }


def test_keras_zip_lambda_and_imports(scan: Scan) -> None:
    lam = {
        "module": "keras.layers",
        "class_name": "Lambda",
        "config": {"name": "evil", "function": {"class_name": "__lambda__", "config": {"code": "4wAAAA=="}}},
    }
    r = scan(_keras_zip(_model(_dense("d"), lam)), name="m.keras")
    assert r.format == "keras" and r.verdict is Verdict.MALICIOUS
    imp = {"module": "os", "class_name": "system", "config": {"command": "id"}}
    assert scan(_keras_zip(_model(imp))).verdict is Verdict.MALICIOUS
    fn = {"module": "builtins", "class_name": "function", "config": "exec", "registered_name": "exec"}
    assert scan(_keras_zip(_model(_dense("d"), fn))).verdict is Verdict.MALICIOUS
    custom = {"module": "my_layers", "class_name": "Fancy", "config": {}, "registered_name": "Custom>Fancy"}
    assert scan(_keras_zip(_model(custom))).verdict is Verdict.SUSPICIOUS
    assert scan(_keras_zip(_model(_dense("a"), _dense("b")))).verdict is Verdict.SAFE


def test_h5_model_config_lambda(scan: Scan) -> None:
    cfg = {
        "class_name": "Sequential",
        "config": {
            "layers": [
                {
                    "class_name": "Lambda",
                    "config": {
                        "name": "l",
                        "function": ["4wEAAAAAAA==", None, None],
                        "function_type": "lambda",
                    },
                }
            ]
        },
    }
    body = b"\x89HDF\r\n\x1a\n" + b"\x00" * 200 + json.dumps(cfg).encode() + b"\x00" * 300
    r = scan(body, name="model.h5")
    assert r.format == "hdf5" and r.verdict is Verdict.MALICIOUS
    clean = {
        "class_name": "Sequential",
        "config": {"layers": [{"class_name": "Dense", "config": {"units": 3}}]},
    }
    body = b"\x89HDF\r\n\x1a\n" + b"\x00" * 200 + json.dumps(clean).encode() + b"\x00" * 300
    assert scan(body, name="model.h5").verdict is Verdict.SAFE


# -- ONNX ---------------------------------------------------------------------------------------------------


def test_onnx_clean_and_hostile(scan: Scan, pk: Any) -> None:
    clean = scan(pk.onnx_model([("Gemm", ""), ("Relu", "")], external="weights.bin"))
    assert clean.format == "onnx" and clean.verdict is Verdict.SAFE, clean.hits
    trav = scan(pk.onnx_model([("Relu", "")], external="../../../../etc/passwd"))
    assert trav.verdict is Verdict.MALICIOUS
    absolute = scan(pk.onnx_model([("Relu", "")], external="/root/.ssh/id_rsa"))
    assert absolute.verdict is Verdict.MALICIOUS
    custom = scan(pk.onnx_model([("Relu", ""), ("MyOp", "com.example.ops")]))
    assert custom.verdict is Verdict.SUSPICIOUS
    assert any(h.callable == "com.example.ops::MyOp" for h in custom.hits)
    pyop = scan(pk.onnx_model([("PyOp", "ai.onnx.contrib")]))
    assert pyop.verdict is Verdict.SUSPICIOUS
    broken = scan(pk.onnx_model([("Relu", "")])[:-5])
    assert broken.verdict is Verdict.ERROR


# -- safetensors and GGUF -------------------------------------------------------------------------------


def _safetensors(header: dict[str, Any], data: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def test_safetensors(scan: Scan) -> None:
    ok = {
        "w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
        "b": {"dtype": "F32", "shape": [2], "data_offsets": [16, 24]},
        "__metadata__": {"format": "pt"},
    }
    r = scan(_safetensors(ok, b"\x00" * 24))
    assert r.format == "safetensors" and r.verdict is Verdict.SAFE
    overlap = {
        "w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
        "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]},
    }
    assert scan(_safetensors(overlap, b"\x00" * 16)).verdict is Verdict.SUSPICIOUS
    outside = {"w": {"dtype": "F32", "shape": [400], "data_offsets": [0, 1600]}}
    assert scan(_safetensors(outside, b"\x00" * 16)).verdict is Verdict.SUSPICIOUS
    mismatch = {"w": {"dtype": "F64", "shape": [4], "data_offsets": [0, 16]}}
    assert scan(_safetensors(mismatch, b"\x00" * 16)).verdict is Verdict.SUSPICIOUS


def _gguf(kv: list[tuple[str, int, bytes]], tensors: int = 1) -> bytes:
    def s(text: str) -> bytes:
        return struct.pack("<Q", len(text.encode())) + text.encode()

    out = b"GGUF" + struct.pack("<IQQ", 3, tensors, len(kv))
    for key, vtype, raw in kv:
        out += s(key) + struct.pack("<I", vtype) + raw
    for i in range(tensors):
        out += s(f"t{i}") + struct.pack("<I", 1) + struct.pack("<Q", 4) + struct.pack("<IQ", 0, i * 32)
    out += b"\x00" * (-len(out) % 32)
    return out + b"\x00" * 32 * tensors


def test_gguf(scan: Scan) -> None:
    def s(text: str) -> bytes:
        return struct.pack("<Q", len(text.encode())) + text.encode()

    clean = _gguf(
        [
            ("general.name", 8, s("tiny")),
            ("general.alignment", 4, struct.pack("<I", 32)),
            ("tokenizer.chat_template", 8, s("{% for m in messages %}{{ m.content }}{% endfor %}")),
        ]
    )
    r = scan(clean)
    assert r.format == "gguf" and r.verdict is Verdict.SAFE, r.hits
    ssti = "{{ ''.__class__.__mro__[1].__subclasses__() }}{{ cycler.__init__.__globals__.os.popen('id') }}"
    r = scan(_gguf([("tokenizer.chat_template", 8, s(ssti))]))
    assert r.verdict is Verdict.MALICIOUS
    huge = b"GGUF" + struct.pack("<IQQ", 3, 1 << 40, 1 << 40)
    assert scan(huge).verdict is Verdict.SUSPICIOUS
    bad_len = b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1 << 50) + b"k"
    assert scan(bad_len).verdict is Verdict.SUSPICIOUS


def test_opaque_archives_are_not_safe(scan: Scan) -> None:
    r = scan(b"7z\xbc\xaf\x27\x1c\x00\x04" + b"\x00" * 100, name="pytorch_model.bin")
    assert r.format == "7z" and r.verdict is Verdict.SUSPICIOUS


def test_legacy_checkpoint_storages_skipped_and_tail_scanned(tmp_path: Path, pk: Any) -> None:
    torch = require("torch", "torch")
    path = tmp_path / "legacy.pt"
    torch.save(
        {"w": torch.ones(300), "b": torch.zeros(7, dtype=torch.int64)},
        path,
        _use_new_zipfile_serialization=False,
    )
    assert scan_file(path).verdict is Verdict.SAFE
    path.write_bytes(path.read_bytes() + pk.SYSTEM)
    r = scan_file(path)
    assert r.verdict is Verdict.MALICIOUS
    assert any(h.title == "data after the last tensor storage" for h in r.hits)


def test_sklearn_pipelines_with_function_references_are_safe(tmp_path: Path) -> None:
    import pickle

    from sklearn.datasets import load_iris
    from sklearn.feature_selection import SelectKBest, f_classif
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    x, y = load_iris(return_X_y=True)
    model = make_pipeline(
        FunctionTransformer(np.log1p, inverse_func=np.expm1), SelectKBest(f_classif, k=2)
    ).fit(x, y)
    path = tmp_path / "pipe.pkl"
    path.write_bytes(pickle.dumps(model))
    assert scan_file(path).verdict is Verdict.SAFE


def test_lz4_joblib(scan: Scan, pk: Any) -> None:
    lz4_frame = require("lz4.frame", "scan")
    r = scan(lz4_frame.compress(pk.SYSTEM))
    assert r.format == "joblib-lz4" and r.verdict is Verdict.MALICIOUS
    assert scan(lz4_frame.compress(pk.BENIGN)).verdict is Verdict.SAFE
