"""Seed corpora of the fuzz harnesses: small valid files of every parser family, built at run time.

Nothing here is stored: the pickles come from ``pickle.dumps`` (protocols 0-5), the archives from
``zipfile``/``tarfile``, the ONNX graph from the ``onnx`` package when it is installed (the wire encoder
otherwise), the HDF5 files are written by hand (superblocks 0 and 2, a version 1 object header with a
``model_config`` attribute, as Keras writes it) and the TensorFlow protobufs and TFLite flatbuffers by the
builders of ``tests._formats17``. A few seeds carry a planted payload so the fuzzer also explores the
paths that report one.
"""

from __future__ import annotations

import collections
import io
import json
import os
import pickle
import struct
import tarfile
import zipfile
from collections.abc import Callable

from tests import _formats17 as F

__all__ = ["FAMILIES", "seeds"]


class _Payload:
    """Pickles as a call of ``os.system`` (reduced, never called: the scanner must flag it)."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("true",))


def _objects() -> list[object]:
    return [
        {"weights": [0.5, -1.25, 3.0], "name": "m", "shape": (2, 3), "ok": True, "none": None},
        collections.OrderedDict(a=b"\x00\x01", b=bytearray(b"xy"), c={1, 2}, d=frozenset({3})),
        [list(range(300)), "x" * 300, 2**70, -(2**40), 1.5j],
    ]


def _pickle_seeds() -> dict[str, bytes]:
    out = {
        f"p{proto}_{i}.pkl": pickle.dumps(o, protocol=proto)
        for proto in range(6)
        for i, o in enumerate(_objects())
    }
    out["payload_p2.pkl"] = pickle.dumps(_Payload(), protocol=2)
    out["payload_p0.pkl"] = pickle.dumps(_Payload(), protocol=0)
    out["two_frames.pkl"] = pickle.dumps([1], protocol=4) + pickle.dumps({"b": 2}, protocol=4)
    return out


def _zip(members: dict[str, bytes], method: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _zip_seeds() -> dict[str, bytes]:
    pkl = pickle.dumps({"w": [1.0, 2.0]}, protocol=2)
    torch_like = {"archive/data.pkl": pkl, "archive/version": b"3\n", "archive/data/0": b"\x00" * 16}
    return {
        "torch_stored.zip": _zip(torch_like, zipfile.ZIP_STORED),
        "torch_deflated.zip": _zip(torch_like, zipfile.ZIP_DEFLATED),
        "nested.zip": _zip({"inner.zip": _zip({"a.pkl": pkl}, zipfile.ZIP_STORED)}, zipfile.ZIP_DEFLATED),
        "payload.zip": _zip({"archive/data.pkl": pickle.dumps(_Payload(), protocol=2)}, zipfile.ZIP_STORED),
        "keras3.keras": F.keras3({"class_name": "Sequential", "config": {"layers": []}}),
    }


def _tar(members: dict[str, bytes], mode: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as t:  # type: ignore[call-overload]
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _tar_seeds() -> dict[str, bytes]:
    members = {"model/data.pkl": pickle.dumps([1, 2, 3], protocol=2), "model/README": b"weights\n"}
    return {
        "plain.tar": _tar(members, "w"),
        "gz.tar.gz": _tar(members, "w:gz"),
        "bz2.tar.bz2": _tar(members, "w:bz2"),
        "xz.tar.xz": _tar(members, "w:xz"),
        "payload.tar": _tar({"p.pkl": pickle.dumps(_Payload(), protocol=0)}, "w"),
    }


def _safetensors(header: dict[str, object], data: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def _safetensors_seeds() -> dict[str, bytes]:
    t = {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}
    return {
        "one.safetensors": _safetensors({"w": t}, b"\x00" * 16),
        "meta.safetensors": _safetensors({"__metadata__": {"format": "pt"}, "w": t}, b"\x00" * 16),
        "two.safetensors": _safetensors(
            {"a": t, "b": {"dtype": "I64", "shape": [1], "data_offsets": [16, 24]}}, b"\x01" * 24
        ),
        "gguf.gguf": F.gguf({"general.name": "m", "tokenizer.chat_template": "{{ messages }}"}),
    }


def _onnx_seeds() -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    try:
        import onnx
        from onnx import TensorProto, helper
    except ImportError:  # the wire encoder writes the same ModelProto fields
        graph = F.field(1, F.field(1, "x") + F.field(2, "y") + F.field(4, "Relu")) + F.field(2, "g")
        out["relu.onnx"] = F.field(1, 8) + F.field(7, graph) + F.field(8, F.field(1, "") + F.field(2, 17))
        return out
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])
    w = helper.make_tensor("w", TensorProto.FLOAT, [1, 2], [0.5, 2.0])
    add = helper.make_node("Add", ["x", "w"], ["y"])
    model = helper.make_model(helper.make_graph([add], "g", [x], [y], [w]))
    out["add.onnx"] = model.SerializeToString()
    custom = helper.make_node("Exec", ["x"], ["y"], domain="com.example")
    model = helper.make_model(
        helper.make_graph([custom], "c", [x], [y]),
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)],
    )
    out["custom_domain.onnx"] = model.SerializeToString()
    ext = onnx.TensorProto(name="e", data_type=TensorProto.FLOAT, dims=[2])
    ext.data_location = TensorProto.EXTERNAL
    ext.external_data.add(key="location", value="weights.bin")
    model = helper.make_model(helper.make_graph([add], "e", [x], [y], [ext]))
    out["external.onnx"] = model.SerializeToString()
    return out


def _h5_attribute(name: str, value: bytes) -> bytes:
    """Attribute message version 1: name, datatype (fixed-length string) and scalar dataspace, 8-aligned."""
    nm = name.encode() + b"\x00"
    nm += b"\x00" * (-len(nm) % 8)
    dtype = bytes([0x13, 0, 0, 0]) + struct.pack("<I", len(value))
    space = bytes([1, 0, 0, 0, 0, 0, 0, 0])
    head = bytes([1, 0]) + struct.pack("<HHH", len(name) + 1, len(dtype), len(space))
    return head + nm + dtype + space + value


def _h5_object_header(messages: list[tuple[int, bytes]]) -> bytes:
    body = b""
    for mtype, mbody in messages:
        mbody += b"\x00" * (-len(mbody) % 8)
        body += struct.pack("<HHB3x", mtype, len(mbody), 0) + mbody
    return struct.pack("<BxHII4x", 1, len(messages), 1, len(body)) + body


def _hdf5(config: str, superblock: int) -> bytes:
    magic = b"\x89HDF\r\n\x1a\n"
    header = _h5_object_header(
        [
            (0x0C, _h5_attribute("model_config", config.encode())),
            (0x0C, _h5_attribute("backend", b"tensorflow")),
        ]
    )
    if superblock == 0:
        sb = magic + bytes([0, 0, 0, 0, 0, 8, 8, 0]) + struct.pack("<HHI", 4, 16, 0)
        root = 96
        sb += struct.pack("<QQQQ", 0, 2**64 - 1, root + len(header), 2**64 - 1)
        sb += struct.pack("<QQII16x", 0, root, 0, 0)  # root group symbol table entry
    else:
        root = 48
        sb = (
            magic
            + bytes([2, 8, 8, 0])
            + struct.pack("<QQQQ", 0, 2**64 - 1, root + len(header), root)
            + b"\x00" * 4
        )
    sb += b"\x00" * (root - len(sb))
    return sb + header


def _hdf5_seeds() -> dict[str, bytes]:
    clean = json.dumps(
        {"class_name": "Sequential", "config": {"layers": [{"class_name": "Dense", "config": {"units": 2}}]}}
    )
    lam = json.dumps(
        {
            "class_name": "Sequential",
            "config": {
                "layers": [{"class_name": "Lambda", "config": {"function": ["4wEAAAAA", None, None]}}]
            },
        }
    )
    return {"sb0.h5": _hdf5(clean, 0), "sb2.h5": _hdf5(clean, 2), "lambda_sb2.h5": _hdf5(lam, 2)}


def _protobuf_seeds() -> dict[str, bytes]:
    return {
        "saved_model.pb": F.saved_model(["Placeholder", "MatMul"]),
        "saved_model_writefile.pb": F.saved_model(["WriteFile"], keras_metadata=[F.KERAS2_LAMBDA]),
        "frozen.pb": F.frozen_graph(["Placeholder", "Identity"]),
        "graph.pbtxt": F.saved_model_text(["Placeholder", "ReadFile"]),
        "keras_metadata.pb": F.keras_metadata_pb([F.keras2_layer("Dense")]),
        "m.tflite": F.tflite([(3, ""), (F.BUILTIN_CUSTOM, "FlexWriteFile")]),
    }


FAMILIES: dict[str, Callable[[], dict[str, bytes]]] = {
    "pickle": _pickle_seeds,
    "zip": _zip_seeds,
    "tar": _tar_seeds,
    "safetensors": _safetensors_seeds,
    "onnx": _onnx_seeds,
    "hdf5": _hdf5_seeds,
    "protobuf": _protobuf_seeds,
}
"""Parser family -> builder of its seed files (name -> bytes)."""


def seeds(family: str) -> dict[str, bytes]:
    """The seed files of ``family``."""
    return FAMILIES[family]()
