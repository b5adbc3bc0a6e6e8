"""ONNX models read with a minimal protobuf wire reader (no ``onnx`` package, nothing executed).

We descend only into the messages that matter (model -> graph -> node/attribute subgraphs, tensors ->
external data, functions) and skip every other length-delimited field with a seek, so initializer
payloads are never read. Reported: external-data locations that leave the model directory (absolute
paths, ``..``; the path traversal behind CVE-2024-27318 / CVE-2024-5187), operators from custom domains
(they need a native library or, for ``ai.onnx.contrib`` ``PyOp``, run Python), and a structure that is
not a valid model.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

from mlsecops.core.severity import Severity
from mlsecops.supplychain.scanner._io import Stream, Truncated
from mlsecops.supplychain.scanner._remote_code import scan_metadata_text
from mlsecops.supplychain.scanner._types import ATLAS_ARTIFACT, Hit

__all__ = ["KNOWN_DOMAINS", "is_onnx_model", "looks_like_onnx", "scan_onnx"]

KNOWN_DOMAINS = frozenset(
    {
        "",
        "ai.onnx",
        "ai.onnx.ml",
        "ai.onnx.training",
        "ai.onnx.preview.training",
        "com.microsoft",
        "com.microsoft.nchwc",
        "com.microsoft.experimental",
        "com.microsoft.mlfeaturizers",
        "com.ms.internal.nhwc",
        "org.pytorch.aten",
        "pkg.onnxscript.torch_lib",
        "pkg.onnxscript.torch_lib.common",
    }
)
"""Operator domains served by the standard runtimes themselves."""

_MAX_DEPTH = 32


class _Bad(Exception):
    pass


def _varint(s: Stream) -> int:
    shift = 0
    out = 0
    while True:
        b = s.read(1)
        if not b:
            raise Truncated("varint cut short")
        out |= (b[0] & 0x7F) << shift
        if not b[0] & 0x80:
            return out
        shift += 7
        if shift > 63:
            raise _Bad("varint too long")


def _fields(s: Stream, end: int) -> Iterator[tuple[int, int, int]]:
    """Yield (field number, wire type, value-or-length) until ``end``; length-delimited fields are
    left for the caller to read or skip.
    """
    while s.tell() < end:
        key = _varint(s)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise _Bad("field number 0")
        if wt == 0:
            yield num, wt, _varint(s)
        elif wt == 1:
            s.skip(8)
            yield num, wt, 0
        elif wt == 5:
            s.skip(4)
            yield num, wt, 0
        elif wt == 2:
            n = _varint(s)
            if s.tell() + n > end:
                raise _Bad(f"field {num} runs past its message")
            yield num, wt, n
        else:
            raise _Bad(f"unsupported wire type {wt}")


def looks_like_onnx(head: bytes) -> bool:
    """Cheap content test: a ModelProto starts with ir_version (field 1, varint) then a known field."""
    if len(head) < 4 or head[0] != 0x08 or not 1 <= head[1] <= 20:
        return False
    return head[2] in (0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x72, 0xA2, 0xCA)


# ModelProto field -> wire type. Protobuf fixes no field order: onnx.load accepts a graph first.
_MODEL_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2}


def is_onnx_model(s: Stream) -> bool:
    """Whether the whole (seekable) stream is ModelProto fields in any order, with a graph.

    Fields are skipped with seeks; the stream is left where it was.
    """
    if s.size is None or not s.seekable:
        return False
    start = s.tell()
    graph = False
    try:
        while s.tell() < s.size:
            key = _varint(s)
            num, wt = key >> 3, key & 7
            if _MODEL_FIELDS.get(num) != wt:
                return False
            if wt == 0:
                _varint(s)
            else:
                n = _varint(s)
                if s.tell() + n > s.size:
                    return False
                s.skip(n)
            graph = graph or num == 7
        return graph and s.tell() == s.size
    except (_Bad, Truncated):
        return False
    finally:
        s.seek(start)


class _Walker:
    def __init__(self, s: Stream, entry: str, report: Callable[[Hit], None], base_dir: str | None) -> None:
        self.s = s
        self.entry = entry
        self.report = report
        self.base_dir = base_dir
        self.domains: set[str] = set()
        self.nodes = 0
        self.graph_seen = False

    def text(self, n: int) -> str:
        if n > 1 << 16:
            self.s.skip(n)
            return ""
        return self.s.read_exact(n).decode("utf-8", "replace")

    def model(self, end: int) -> None:
        for num, wt, v in _fields(self.s, end):
            if wt != 2:
                continue
            stop = self.s.tell() + v
            if num == 7:
                self.graph_seen = True
                self.graph(stop, 0)
            elif num == 8:
                self.opset(stop)
            elif num == 20:
                self.training(stop)
            elif num == 25:
                self.function(stop, 0)
            elif num in (6, 14):  # doc_string, metadata_props: text no runtime runs, judged as a signal
                self.metadata(num, v, stop)
            else:
                self.s.skip(v)

    def metadata(self, num: int, length: int, stop: int) -> None:
        pairs = [("doc_string", self.text(length))] if num == 6 else []
        if num == 14:
            key = val = ""
            for n2, w2, v2 in _fields(self.s, stop):
                if w2 == 2 and n2 in (1, 2):
                    key, val = (self.text(v2), val) if n2 == 1 else (key, self.text(v2))
                elif w2 == 2:
                    self.s.skip(v2)
            pairs.append((key, val))
        for key, val in pairs:
            scan_metadata_text(key, val, entry=self.entry, report=self.report, kind="onnx")

    def training(self, end: int) -> None:
        """TrainingInfoProto: the initialization (1) and algorithm (2) graphs run in training runtimes."""
        for num, wt, v in _fields(self.s, end):
            if wt != 2:
                continue
            stop = self.s.tell() + v
            if num in (1, 2):
                self.graph(stop, 1)
            else:
                self.s.skip(v)

    def opset(self, end: int) -> None:
        for num, wt, v in _fields(self.s, end):
            if wt == 2:
                if num == 1:
                    self.domain(self.text(v), "opset import")
                else:
                    self.s.skip(v)

    def function(self, end: int, depth: int) -> None:
        for num, wt, v in _fields(self.s, end):
            if wt != 2:
                continue
            stop = self.s.tell() + v
            if num == 7:
                self.node(stop, depth + 1)
            elif num == 11:
                self.attribute(stop, depth + 1)  # attribute_proto: defaults, which may hold tensors
            elif num == 9:
                self.opset(stop)
            else:
                self.s.skip(v)

    def graph(self, end: int, depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise _Bad("subgraphs nested too deep")
        for num, wt, v in _fields(self.s, end):
            if wt != 2:
                continue
            stop = self.s.tell() + v
            if num == 1:
                self.node(stop, depth)
            elif num == 5:
                self.tensor(stop, depth)
            elif num == 15:
                self.sparse(stop, depth)
            else:
                self.s.skip(v)

    def sparse(self, end: int, depth: int) -> None:
        """SparseTensorProto: values (1) and indices (2) are tensors, each may be external data."""
        for num, wt, v in _fields(self.s, end):
            if wt != 2:
                continue
            stop = self.s.tell() + v
            if num in (1, 2):
                self.tensor(stop, depth)
            else:
                self.s.skip(v)

    def node(self, end: int, depth: int) -> None:
        self.nodes += 1
        op_type = ""
        domain = ""
        for num, wt, v in _fields(self.s, end):
            if wt != 2:
                continue
            stop = self.s.tell() + v
            if num == 4:
                op_type = self.text(v)
            elif num == 7:
                domain = self.text(v)
            elif num == 5:
                self.attribute(stop, depth)
            else:
                self.s.skip(v)
        self.domain(domain, op_type)

    def attribute(self, end: int, depth: int) -> None:
        for num, wt, v in _fields(self.s, end):
            if wt != 2:
                continue
            stop = self.s.tell() + v
            # AttributeProto: t=5, g=6, tensors=10, graphs=11, sparse_tensor=22, sparse_tensors=23.
            if num in (6, 11):
                self.graph(stop, depth + 1)
            elif num in (5, 10):
                self.tensor(stop, depth)
            elif num in (22, 23):
                self.sparse(stop, depth)
            else:
                self.s.skip(v)

    def tensor(self, end: int, depth: int) -> None:
        name = ""
        external = False
        locations: list[str] = []
        for num, wt, v in _fields(self.s, end):
            if wt == 0 and num == 14:
                external = v == 1
                continue
            if wt != 2:
                continue
            stop = self.s.tell() + v
            if num == 8:
                name = self.text(v)
            elif num == 13:
                key = val = ""
                for n2, w2, v2 in _fields(self.s, stop):
                    if w2 == 2 and n2 == 1:
                        key = self.text(v2)
                    elif w2 == 2 and n2 == 2:
                        val = self.text(v2)
                    elif w2 == 2:
                        self.s.skip(v2)
                if key == "location":
                    locations.append(val)
            else:
                self.s.skip(v)
        for loc in locations:
            self.external(name, loc, external)

    def external(self, tensor: str, loc: str, flagged: bool) -> None:
        norm = loc.replace("\\", "/")
        parts = norm.split("/")
        why = None
        if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
            why = "an absolute path"
        elif ".." in parts:
            why = "a path that climbs out of the model directory"
        elif "\x00" in norm or norm.startswith("~"):
            why = "an unusual path"
        elif self.base_dir is not None:
            # A relative name can still leave the directory through a symbolic link inside it.
            root = os.path.realpath(self.base_dir)
            real = os.path.realpath(os.path.join(root, norm))
            if os.path.commonpath([root, real]) != root:
                why = f"a path that a symbolic link in the model directory turns into {real!r}"
        if why:
            self.report(
                Hit(
                    Severity.CRITICAL,
                    "ONNX external data outside the model directory",
                    f"tensor {tensor!r} reads its data from {loc!r}, {why}; loading the model reads (and may "
                    "expose) an arbitrary file",
                    kind="onnx",
                    entry=self.entry,
                    callable=loc,
                    atlas=ATLAS_ARTIFACT,
                    remediation="Reject the model; external data must be relative paths inside its directory.",
                )
            )

    def domain(self, domain: str, op: str) -> None:
        if domain in KNOWN_DOMAINS or domain in self.domains:
            return
        self.domains.add(domain)
        py = domain == "ai.onnx.contrib" and op.lower().startswith("py")
        self.report(
            Hit(
                Severity.HIGH if py else Severity.MEDIUM,
                f"ONNX custom operator domain {domain!r}",
                f"operator {op!r} comes from domain {domain!r}, which the standard runtimes do not serve: "
                "loading it needs a custom-op library" + (" that runs Python code" if py else ""),
                kind="onnx",
                entry=self.entry,
                callable=f"{domain}::{op}",
                atlas=ATLAS_ARTIFACT,
                remediation="Load only with reviewed custom-op libraries, or re-export with standard operators.",
            )
        )


def scan_onnx(s: Stream, *, entry: str, report: Callable[[Hit], None], base_dir: str | None = None) -> None:
    """Walk an ONNX ModelProto from ``s`` (to the end of the stream).

    ``base_dir`` is the directory of a model file on disk: external-data names are then also resolved
    there, so that a symbolic link inside the directory cannot point them elsewhere.
    """
    end = s.size if s.size is not None else 1 << 62
    w = _Walker(s, entry, report, base_dir)
    try:
        w.model(end)
    except (_Bad, Truncated) as err:
        report(Hit(Severity.MEDIUM, "malformed ONNX model", str(err), kind="onnx", entry=entry, error=True))
        return
    if not w.graph_seen:
        report(Hit(Severity.LOW, "ONNX model without a graph", "", kind="onnx", entry=entry, atlas=None))
