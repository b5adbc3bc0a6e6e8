"""``safe_load``: scan first, load only what the scanner judged ``safe``.

The rest of the project loads user models only through this function. It opens the file once, scans
that open descriptor and loads from the same descriptor, so the file cannot be swapped between the
check and the use. Plain pickles are loaded with an unpickler whose ``find_class`` admits only
allow-listed globals (a second fence behind the scan); PyTorch checkpoints with
``torch.load(weights_only=True)``; safetensors and ``.npy`` with our own readers or ``allow_pickle=False``.
ONNX models are returned as bytes for a runtime to open.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
from pathlib import Path
from typing import Any

from mlsecops.core.errors import InputError, VerificationError
from mlsecops.supplychain.scanner._api import scan_fd
from mlsecops.supplychain.scanner._policy import Rule, judge
from mlsecops.supplychain.scanner._types import ArtifactScan, ScanLimits, Verdict

__all__ = ["LOADABLE_FORMATS", "UnsafeArtifactError", "safe_load"]

LOADABLE_FORMATS = frozenset(
    {
        "pickle",
        "joblib",
        "joblib-zlib",
        "joblib-gzip",
        "joblib-bz2",
        "joblib-xz",
        "joblib-lzma",
        "joblib-lz4",
        "pytorch-zip",
        "pytorch-legacy",
        "safetensors",
        "onnx",
        "npy",
    }
)
"""Formats ``safe_load`` knows how to load."""


class UnsafeArtifactError(VerificationError):
    """The scanner did not judge the artifact ``safe``; it was not loaded."""

    def __init__(self, message: str, result: ArtifactScan) -> None:
        super().__init__(message)
        self.result = result
        """The scan result that caused the refusal."""


class _AllowListUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        j = judge(module, name)
        if j.rule is not Rule.ALLOW:
            raise pickle.UnpicklingError(f"global {j.name} is not on the allow-list")
        return super().find_class(module, name)


_ST_NUMPY = {
    "BOOL": "?",
    "U8": "u1",
    "I8": "i1",
    "I16": "<i2",
    "U16": "<u2",
    "F16": "<f2",
    "I32": "<i4",
    "U32": "<u4",
    "F32": "<f4",
    "I64": "<i8",
    "U64": "<u8",
    "F64": "<f8",
    "BF16": "<u2",
}


def _load_safetensors(f: io.BufferedReader) -> dict[str, Any]:
    import numpy as np

    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
    base = 8 + n
    out: dict[str, Any] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _ST_NUMPY.get(info["dtype"])
        if dtype is None:
            raise InputError(f"safetensors dtype {info['dtype']} is not supported by safe_load")
        a, b = info["data_offsets"]
        f.seek(base + a)
        out[name] = np.frombuffer(f.read(b - a), dtype=dtype).reshape(info["shape"])
    return out


def safe_load(path: str | Path, *, limits: ScanLimits | None = None, allow_suspicious: bool = False) -> Any:
    """Scan ``path`` and load it only when the verdict is ``safe``.

    Args:
        path: a pickle/joblib (scikit-learn) model, a PyTorch state dict, safetensors, ``.npy`` or ONNX file.
        limits: scan limits.
        allow_suspicious: also load ``suspicious`` artifacts (never ``malicious`` or ``error`` ones).

    Returns:
        The loaded object: the estimator, the state dict, a ``dict`` of NumPy arrays (safetensors), an
        array (``.npy``), or the model bytes (ONNX).

    Raises:
        UnsafeArtifactError: the verdict is not ``safe`` (a ``VerificationError``).
        InputError: the file is missing, or its format is not one ``safe_load`` loads.
    """
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        raise InputError(f"{p}: cannot open ({err.strerror})") from None
    try:
        result = scan_fd(fd, str(p), limits=limits, sha256=False)
        verdict = result.verdict
        if not (verdict is Verdict.SAFE or (allow_suspicious and verdict is Verdict.SUSPICIOUS)):
            worst = max(result.hits, key=lambda h: h.severity, default=None)
            why = f": {worst.title}" if worst is not None else ""
            raise UnsafeArtifactError(f"{p} was judged {verdict}{why}; refusing to load it", result)
        fmt = result.format
        if fmt not in LOADABLE_FORMATS:
            raise InputError(
                f"{p}: safe_load does not load {fmt} files; supported: {sorted(LOADABLE_FORMATS)}"
            )
        with os.fdopen(os.dup(fd), "rb") as f:
            f.seek(0)
            return _load(f, fmt)
    finally:
        os.close(fd)


def _load(f: io.BufferedReader, fmt: str) -> Any:
    if fmt == "pickle":
        return _AllowListUnpickler(f).load()
    if fmt.startswith("joblib"):
        import joblib

        return joblib.load(f)
    if fmt.startswith("pytorch"):
        import torch

        return torch.load(f, weights_only=True, map_location="cpu")
    if fmt == "safetensors":
        return _load_safetensors(f)
    if fmt == "npy":
        import numpy as np

        return np.load(f, allow_pickle=False)
    return f.read()
