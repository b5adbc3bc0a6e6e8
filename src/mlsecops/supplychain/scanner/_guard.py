"""``safe_load``: scan first, load only what the scanner judged ``safe``.

The rest of the project loads user models only through this function (``mlsecops.models`` builds its
adapters on it). It opens the file once and copies its bytes into a private, unlinked snapshot; the
scanner judges the snapshot and the loader reads the same snapshot, so the bytes that are loaded are
exactly the bytes that were judged: swapping the file or rewriting it in place after the check changes
nothing. Anything the scanner does not call ``safe`` (``suspicious``, ``malicious``, ``error``) is
refused before a loader sees a byte.

Loaders, by the format the scanner detected (content, never the file name):

- plain pickles: an unpickler whose ``find_class`` admits only allow-listed globals (a second fence
  behind the scan); joblib: ``joblib.load``;
- PyTorch checkpoints (state dicts): ``torch.load(weights_only=True)``;
- TorchScript archives: ``torch.jit.load`` on the snapshot (TorchScript code is compiled and run by the
  model, so the scanner's verdict on the archive's ``code/`` entries is the fence);
- ``torch.export`` programs (``.pt2``): ``torch.export.load`` on the snapshot (it unpickles entries with
  ``weights_only=False`` and resolves graph targets by name, so here too the scan is the fence);
- safetensors and ``.npy``: our own reader, ``numpy.load(allow_pickle=False)``;
- ONNX: the model bytes, for a runtime to parse;
- skops archives (a zip with ``schema.json``): ``skops.io.loads`` with no extra trusted types, after
  skops itself confirms the file names none it does not trust.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import struct
import tempfile
import warnings
from pathlib import Path
from typing import IO, Any

from mlsecops.core.errors import InputError, MlsecopsError, VerificationError
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
        "torchscript",
        "torch-export",
        "safetensors",
        "onnx",
        "npy",
        "zip",
    }
)
"""Formats ``safe_load`` knows how to load (``zip``: skops archives only)."""

_INSTALL_HINT = {
    "torch": "pip install 'mlsecops[torch]'",
    "skops": "pip install skops",
    "joblib": "pip install joblib",
}
"""What to install when a loader's framework is missing."""

_COPY_CHUNK = 4 << 20
"""Bytes per read while copying a file into its snapshot (keeps the copy's memory flat)."""

_TORCHSCRIPT_DEPRECATION = r"`torch\.jit\.load` is deprecated"
"""torch >= 2.13 warns on every TorchScript load; for an existing model the user chose, we say it once
in the documentation (prefer ``.pt2``) instead of on every call. Only this one message, only here."""


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


def _load_safetensors(f: IO[bytes]) -> dict[str, Any]:
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


def safe_load(path: str | Path, *, limits: ScanLimits | None = None) -> Any:
    """Scan ``path`` and load it only when the verdict is ``safe``.

    Args:
        path: a pickle/joblib (scikit-learn) model, a PyTorch state dict, a TorchScript archive, a
            ``torch.export`` program (``.pt2``), safetensors, ``.npy`` or ONNX file.
        limits: scan limits.

    Returns:
        The loaded object: the estimator, the state dict, the ``torch.jit.ScriptModule``, the
        ``torch.export.ExportedProgram``, a ``dict`` of NumPy arrays (safetensors), an array (``.npy``),
        or the model bytes (ONNX).

    Raises:
        UnsafeArtifactError: the verdict is not ``safe`` (a ``VerificationError``); nothing was loaded.
        InputError: the file is missing or not a regular file, its format is not one ``safe_load``
            loads, or it was judged safe but its loader rejected it (a one-line reason).
    """
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        raise InputError(f"{p}: cannot open ({err.strerror})") from None
    try:
        snapshot = _snapshot(fd, p)
    finally:
        os.close(fd)
    with snapshot:
        result = scan_fd(snapshot.fileno(), str(p), limits=limits, sha256=False)
        _refuse_unless_safe(result, p)
        fmt = result.format
        if fmt not in LOADABLE_FORMATS:
            raise InputError(
                f"{p}: safe_load does not load {fmt} files; supported: {', '.join(sorted(LOADABLE_FORMATS))}"
            )
        snapshot.seek(0)
        try:
            return _load(snapshot, fmt)
        except InputError as err:
            raise InputError(f"{p}: {err}") from err
        except ImportError as err:
            hint = _INSTALL_HINT.get((err.name or "").split(".")[0], f"pip install {err.name}")
            raise InputError(f"{p}: loading {fmt} files needs {err.name}: {hint}") from None
        except MlsecopsError:
            raise
        except Exception as err:  # a loader's own error on a file the scan passed (truncated, version skew)
            raise InputError(
                f"{p}: judged safe as {fmt} but could not be loaded: {_first_line(err)}"
            ) from err


def _refuse_unless_safe(result: ArtifactScan, path: str | Path) -> None:
    """Raise ``UnsafeArtifactError`` unless the scan's verdict is ``safe``."""
    verdict = result.verdict
    if verdict is Verdict.SAFE:
        return
    worst = max(result.hits, key=lambda h: h.severity, default=None)
    why = f": {worst.title}" if worst is not None else ""
    raise UnsafeArtifactError(f"{path} was judged {verdict}{why}; refusing to load it", result)


def _snapshot(fd: int, path: Path) -> IO[bytes]:
    """Copy the regular file open as ``fd`` into an unlinked temporary file no one else can open.

    Exactly the size seen at open time is copied, so a file that keeps growing cannot make this loop
    run forever.

    Raises:
        InputError: ``fd`` is not a regular file, or it cannot be read or copied (e.g. no space left in
            the temporary directory, which must hold a copy of the file).
    """
    import stat

    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{path}: not a regular file")
    out = tempfile.TemporaryFile(prefix="mlsecops-load-")  # noqa: SIM115  - closed by the caller
    try:
        pos = 0
        while pos < st.st_size:
            chunk = os.pread(fd, min(_COPY_CHUNK, st.st_size - pos), pos)
            if not chunk:
                break
            out.write(chunk)
            pos += len(chunk)
        out.flush()
        out.seek(0)
    except OSError as err:
        out.close()
        raise InputError(
            f"{path}: cannot copy it into a private snapshot to scan ({err.strerror or err})"
        ) from None
    except BaseException:
        out.close()
        raise
    return out


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|[\x00-\x1f\x7f]")
"""Terminal escapes and control characters, removed from loader messages before they reach a terminal."""


def _first_line(err: BaseException) -> str:
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    text = _ANSI.sub("", lines[0]) if lines else type(err).__name__
    return text[:300]


def _load(f: IO[bytes], fmt: str) -> Any:
    if fmt == "pickle":
        return _AllowListUnpickler(f).load()
    if fmt.startswith("joblib"):
        import joblib

        return joblib.load(f)
    if fmt.startswith("pytorch"):
        import torch

        try:
            return torch.load(f, weights_only=True, map_location="cpu")
        except pickle.UnpicklingError as err:
            raise InputError(
                "a PyTorch pickle holding objects beyond tensors (a whole module saved with "
                "torch.save(model)?); only weights load safely: save model.state_dict() and name the "
                "architecture as python:module:attr, or export the model with torch.export (.pt2)"
            ) from err
    if fmt == "torchscript":
        import torch

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_TORCHSCRIPT_DEPRECATION, category=DeprecationWarning)
            return torch.jit.load(f, map_location="cpu")  # type: ignore[no-untyped-call]  # torch stub gap
    if fmt == "torch-export":
        import torch

        return torch.export.load(f)
    if fmt == "safetensors":
        return _load_safetensors(f)
    if fmt == "npy":
        import numpy as np

        return np.load(f, allow_pickle=False)
    if fmt == "zip":
        return _load_skops(f.read())
    return f.read()


def _load_skops(data: bytes) -> Any:
    """A skops archive from its bytes; skops must report no type it does not trust."""
    import zipfile

    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except zipfile.BadZipFile as err:
        raise InputError(f"not a readable zip archive ({err})") from None
    if "schema.json" not in names:
        raise InputError("a zip archive that is not a model safe_load knows (no skops schema.json)")
    import skops.io as sio

    untrusted = sio.get_untrusted_types(data=data)
    if untrusted:
        raise InputError(
            f"a skops file naming types skops does not trust: {', '.join(sorted(untrusted)[:5])}; "
            "review them and load the file yourself if they are expected"
        )
    return sio.loads(data, trusted=[])
