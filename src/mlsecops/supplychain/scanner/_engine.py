"""The dispatcher: detect each stream's format by content and hand it to the right scanner, recursively.

One ``ArtifactScanner`` scans one file. Containers (zip, tar, compressed streams) call back into
``scan`` for every member, one level deeper, so a pickle inside a zip inside a tar.gz is walked like a
top-level one and its hits name the whole path (``outer.tar.gz!model.zip!archive/data.pkl``). Tensor
payloads are never read: the storages of a PyTorch zip are skipped by name, safetensors/GGUF/ONNX/npy
payloads by their headers, joblib arrays by their wrappers. What we do not recognise is searched for
embedded pickles (bounded by ``ScanLimits.max_blob_search``).
"""

from __future__ import annotations

import json

from mlsecops.core.severity import Severity
from mlsecops.supplychain.scanner._containers import ContainerScanning
from mlsecops.supplychain.scanner._detect import COMPRESSED, OPAQUE_ARCHIVES, detect
from mlsecops.supplychain.scanner._formats import scan_gguf, scan_npy_header, scan_safetensors
from mlsecops.supplychain.scanner._io import Bomb, Stream, Truncated
from mlsecops.supplychain.scanner._keras import HDF5_MAGIC, scan_h5, scan_keras_config
from mlsecops.supplychain.scanner._onnx import is_onnx_model, scan_onnx
from mlsecops.supplychain.scanner._remote_code import scan_config_code, scan_text_code
from mlsecops.supplychain.scanner._sequences import PickleScanning
from mlsecops.supplychain.scanner._sevenzip import scan_sevenzip
from mlsecops.supplychain.scanner._targets import scan_targets
from mlsecops.supplychain.scanner._tf_savedmodel import (
    is_graph_def,
    is_keras_metadata,
    looks_like_graph_text,
    scan_graph_def,
    scan_graph_text,
    scan_keras_metadata,
    scan_protobuf_model,
)
from mlsecops.supplychain.scanner._tflite import scan_tflite
from mlsecops.supplychain.scanner._types import ATLAS_ARTIFACT, Hit

__all__ = ["ArtifactScanner"]


class ArtifactScanner(ContainerScanning, PickleScanning):
    """Scan one artifact; collects ``hits`` and the format of every entry in ``formats``."""

    base_dir: str | None = None
    """Directory of the scanned file on disk (for ONNX external data behind symbolic links)."""

    # -- dispatch ----------------------------------------------------------------------------------------

    def scan(self, s: Stream, entry: str, depth: int, *, hint: str = "") -> str:
        """Scan the stream ``s`` (the content of ``entry``) and return the format name."""
        if depth > self.limits.max_depth:
            self.add(
                Hit(
                    Severity.HIGH,
                    "containers nested too deep",
                    f"nesting deeper than {self.limits.max_depth} levels was not opened",
                    kind="container",
                    entry=entry,
                    atlas=ATLAS_ARTIFACT,
                )
            )
            return "nested"
        self.entries += 1
        fmt = "compressed"  # named in the hit when even the first bytes cannot be decompressed
        try:
            # Inside the try: a corrupt compressed entry can fail at its very head (found by fuzzing).
            fmt = detect(s.peek(1024))
            if hint == "pickle" and fmt in ("pickle-text", "pickle-maybe", "text", "unknown"):
                fmt = "pickle"
            out = self._dispatch(s, fmt, entry, depth)
        except Truncated as err:
            self.add(
                Hit(
                    Severity.LOW,
                    f"truncated {fmt} data",
                    str(err),
                    kind="container",
                    entry=entry,
                    error=True,
                    atlas=None,
                )
            )
            out = fmt
        except Bomb as err:
            self.add(
                Hit(
                    Severity.HIGH,
                    "decompression bomb",
                    str(err),
                    kind="container",
                    entry=entry,
                    atlas=ATLAS_ARTIFACT,
                )
            )
            out = fmt
        region = s.region
        if (
            fmt not in ("zip", "empty")
            and region is not None
            and region.length >= 22
            and depth < self.limits.max_depth
        ):
            self._polyglot(region, entry, depth, expected=out == "tflite")
        self.formats[entry] = out
        return out

    def _dispatch(self, s: Stream, fmt: str, entry: str, depth: int) -> str:
        if fmt == "zip":
            if s.region is None:
                return self._spooled_zip(s, entry, depth)
            return self._zip(s.region, entry, depth)
        if fmt == "tar":
            return self._tar(s, entry, depth)
        if fmt in COMPRESSED:
            return self._compressed(s, fmt, entry, depth)
        if fmt == "7z":
            return scan_sevenzip(self, s, entry, depth)
        if fmt == "tflite":
            scan_tflite(s, entry=entry, report=self.add)
            return fmt
        if fmt in OPAQUE_ARCHIVES:
            self.add(
                Hit(
                    Severity.MEDIUM,
                    f"{OPAQUE_ARCHIVES[fmt]} archive cannot be inspected",
                    f"{OPAQUE_ARCHIVES[fmt]} archives are not opened by this scanner; their content is "
                    "unknown",
                    kind="container",
                    entry=entry,
                    atlas=ATLAS_ARTIFACT,
                    remediation="Unpack the archive and scan its files.",
                )
            )
            return fmt
        if fmt == "npy":
            obj, _nbytes = scan_npy_header(s, entry=entry, report=self.add)
            if obj:
                self._pickles(s, entry, depth, forced=True)
                return "npy-object"
            return "npy"
        if fmt == "hdf5":
            scan_h5(s, entry=entry, report=self.add, max_search=self.limits.max_blob_search // 4)
            return "hdf5"
        if fmt == "safetensors":
            scan_safetensors(s, entry=entry, report=self.add)
            return "safetensors"
        if fmt == "gguf":
            scan_gguf(s, entry=entry, report=self.add)
            return "gguf"
        if fmt in ("onnx", "tf-savedmodel"):  # the same first bytes: told apart by their fields
            home = None if entry else self.base_dir
            return scan_protobuf_model(
                s, entry=entry, report=self.add, base_dir=home, max_spool=self.limits.max_spool
            )
        code_read = fmt == "pickle-text"
        if code_read:
            s = scan_text_code(s, entry=entry, report=self.add)  # "class X:" / "import y" read as opcodes too
        if fmt in ("pickle", "pickle-text", "pickle-maybe"):
            start = s.tell()
            pickled = self._pickles(s, entry, depth, forced=fmt == "pickle")
            if pickled is not None:
                return pickled
            if s.seekable:
                s.seek(start)
            fmt = "text" if fmt == "pickle-text" else "unknown"
        if fmt == "empty":
            return "empty"
        if fmt == "unknown" and is_onnx_model(s):
            scan_onnx(s, entry=entry, report=self.add, base_dir=None if entry else self.base_dir)
            return "onnx"
        if fmt in ("text", "unknown") and s.region is not None:
            base = _hdf5_userblock(s)
            if base:
                # HDF5 allows a user block of 512 * 2^k bytes before the superblock; h5py finds it.
                scan_h5(
                    Stream(s.region.sub(base, s.region.length - base), self.budget),
                    entry=entry,
                    report=self.add,
                    max_search=self.limits.max_blob_search // 4,
                )
                return "hdf5"
        if fmt in ("text", "unknown") and is_keras_metadata(s):
            scan_keras_metadata(s, entry=entry, report=self.add)
            return "keras-metadata"
        if fmt in ("text", "unknown") and is_graph_def(s):
            scan_graph_def(s, entry=entry, report=self.add)
            return "tf-graphdef"
        if fmt == "text" and looks_like_graph_text(s.peek(64 << 10)):
            scan_graph_text(s, entry=entry, report=self.add)
            return "tf-graph-text"
        if fmt == "text" and head_is_json(s.peek(64)) and self._json_text(s, entry):
            return "json"
        if fmt in ("text", "unknown") and not code_read:  # Python modules, Jinja templates
            s = scan_text_code(s, entry=entry, report=self.add, printable=fmt == "text")
        self._blob(s, entry)
        return fmt

    def _json_text(self, s: Stream, entry: str) -> bool:
        """A JSON document (a bare Keras model config for ``model_from_json``): judge it as one."""
        start = s.tell()
        raw = s.read(_MAX_JSON + 1)
        if len(raw) <= _MAX_JSON:
            try:
                cfg = json.loads(raw)
            except (ValueError, RecursionError):
                cfg = None
            if isinstance(cfg, (dict, list)):
                scan_keras_config(cfg, entry=entry, report=self.add)
                scan_targets(raw, base=start, entry=entry, report=self.add)
                scan_config_code(cfg, entry=entry, report=self.add, has_file=None if entry else self._beside)
                return True
        if s.seekable:
            s.seek(start)
            return False
        self.add(
            Hit(
                Severity.MEDIUM,
                "JSON document not inspected",
                "the text is not JSON we could parse within the size limit, and the stream cannot be re-read",
                kind="keras",
                entry=entry,
                error=True,
            )
        )
        return True

    def _beside(self, name: str) -> bool | None:
        """Whether ``name`` exists beside the top-level file (``None`` when not on disk)."""
        if self.base_dir is None:
            return None
        import os

        root = os.path.realpath(self.base_dir)
        path = os.path.realpath(os.path.join(root, name))
        return os.path.commonpath([root, path]) == root and os.path.isfile(path)


_MAX_JSON = 64 << 20


def head_is_json(head: bytes) -> bool:
    """Whether text starts like a JSON object or array."""
    return head.lstrip()[:1] in (b"{", b"[")


def _hdf5_userblock(s: Stream) -> int:
    """The offset of an HDF5 superblock after a user block (512, 1024, 2048... bytes), or 0."""
    region = s.region
    if region is None:
        return 0
    off = 512
    while off + 8 <= region.length:
        if region.pread(8, off) == HDF5_MAGIC:
            return off
        off *= 2
    return 0
