"""Generate the HDF5 fixtures of ``test_scanner_unseen_formats.py`` (needs h5py, which our venv lacks).

    benchmarks/.venv-scanner/bin/python tests/regressions/make_h5_fixtures.py > tests/regressions/_h5_fixtures.py

Each fixture is a real h5py file, zlib-compressed and base64-encoded into a Python module.
"""

from __future__ import annotations

import base64
import io
import json
import zlib

import h5py
import numpy as np


def _reordered(obj: object) -> object:
    if isinstance(obj, dict):
        return {k: _reordered(obj[k]) for k in reversed(list(obj))}
    if isinstance(obj, list):
        return [_reordered(v) for v in obj]
    return obj


LAMBDA = {
    "class_name": "Sequential",
    "config": {
        "name": "s",
        "layers": [
            {
                "class_name": "Lambda",
                "config": {"name": "l", "function": ["4wEAAAAA", None, None], "function_type": "lambda"},
            }
        ],
    },
}
DENSE = {
    "class_name": "Sequential",
    "config": {"name": "s", "layers": [{"class_name": "Dense", "config": {"units": 3}}]},
}


def make(
    config: dict, *, userblock: int = 0, libver: str = "earliest", dense: bool = False, as_bytes: bool = False
) -> bytes:
    buf = io.BytesIO()
    text = json.dumps(_reordered(config), indent=1)
    with h5py.File(buf, "w", userblock_size=userblock, libver=libver) as f:
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["model_config"] = text.encode() if as_bytes else text
        if dense:
            for i in range(12):
                f.attrs[f"extra{i}"] = np.arange(4)
        f.create_dataset("model_weights/dense/kernel:0", data=np.ones((2, 2), "float32"))
    raw = bytearray(buf.getvalue())
    raw[:userblock] = bytes(range(256)) * (userblock // 256)
    return bytes(raw)


FIXTURES = {
    "reordered_lambda": make(LAMBDA),
    "userblock_lambda": make(LAMBDA, userblock=512),
    "bytes_lambda": make(LAMBDA, as_bytes=True),
    "dense_attrs_lambda": make(LAMBDA, libver="latest", dense=True),
    "reordered_dense": make(DENSE),
    "dense_attrs_dense": make(DENSE, libver="latest", dense=True),
}

if __name__ == "__main__":
    print('"""HDF5 fixtures written by make_h5_fixtures.py (real h5py files, zlib + base64). Do not edit."""')
    print()
    print("FIXTURES = {")
    for name, data in FIXTURES.items():
        enc = base64.b64encode(zlib.compress(data, 9)).decode()
        print(f"    {name!r}: (")
        for i in range(0, len(enc), 96):
            print(f"        {enc[i : i + 96]!r}")
        print("    ),")
    print("}")
