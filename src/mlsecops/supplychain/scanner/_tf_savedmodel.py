"""TensorFlow SavedModel (``saved_model.pb``) and Keras v2 SavedModel metadata (``keras_metadata.pb``).

Read with ``_protobuf_wire`` (no TensorFlow, no protobuf descriptors, nothing executed). From
``saved_model.pb`` we read every ``MetaGraphDef``: the ops of its graph nodes and of every function in
the graph's function library (a ``tf.function`` lives there, and TF2 SavedModels keep almost all their
nodes in functions), the op list ``MetaInfoDef.stripped_op_list`` declares, asset file names, and the
Keras metadata a TF2 Keras model stores in its object graph (``SavedUserObject.metadata``). Ops are
judged by ``_tf_ops.TF_DANGEROUS_OPS``; Keras metadata by ``_keras.scan_keras_config`` (Lambda layers,
imported modules) plus the ``package>Name`` spelling of registered custom objects.

Field numbers are those of tensorflow/core/protobuf/{saved_model,meta_graph,saved_object_graph}.proto and
tensorflow/core/framework/{graph,function,node_def,attr_value,op_def}.proto.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from mlsecops.core.severity import Severity
from mlsecops.supplychain.scanner._io import CHUNK, FileRegion, Stream, Truncated
from mlsecops.supplychain.scanner._keras import scan_keras_config
from mlsecops.supplychain.scanner._onnx import scan_onnx
from mlsecops.supplychain.scanner._protobuf_wire import WireError, fields, read_text, varint
from mlsecops.supplychain.scanner._tf_ops import judge_tf_op
from mlsecops.supplychain.scanner._types import ATLAS_ARTIFACT, Hit

__all__ = [
    "classify_protobuf",
    "is_graph_def",
    "is_keras_metadata",
    "looks_like_graph_text",
    "looks_like_saved_model",
    "scan_graph_def",
    "scan_graph_text",
    "scan_keras_metadata",
    "scan_protobuf_model",
    "scan_saved_model",
]

Report = Callable[[Hit], None]

MAX_NESTING = 16
"""Function libraries nest inside attribute values only through names; deeper messages are malformed."""
MAX_METADATA_JSON = 16 << 20
"""Largest Keras metadata JSON string parsed (real ones are kilobytes per layer)."""
MAX_REPORTED_OPS = 64
"""Distinct dangerous ops reported per file (each with its first node); more are counted in the last."""

_REMEDIATION = "Do not load this SavedModel; rebuild it from reviewed code, or export only the weights."
_KERAS_REMEDIATION = (
    "Do not load this Keras SavedModel with custom objects or safe_mode off; rebuild the architecture in "
    "code and load the weights alone."
)

# MetaGraphDef / MetaInfoDef first-field keys a real saved_model.pb starts with (for the head test).
_META_GRAPH_KEYS = {0x0A, 0x12, 0x1A, 0x22, 0x2A, 0x32, 0x3A}
_META_INFO_KEYS = {0x0A, 0x12, 0x1A, 0x22, 0x2A, 0x32, 0x38, 0x42}


def _head_varint(head: bytes, i: int) -> tuple[int, int] | None:
    out = shift = 0
    while i < len(head) and shift < 64:
        b = head[i]
        out |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            return out, i
        shift += 7
    return None


def looks_like_saved_model(head: bytes) -> bool:
    """Whether the first bytes are a SavedModel: schema version 1, then a MetaGraphDef that opens with one
    of its own fields (an ONNX ModelProto has a text ``producer_name`` as its field 2).
    """
    i = 0
    if head[:2] == b"\x08\x01":
        i = 2
    if i >= len(head) or head[i] != 0x12:
        return False
    got = _head_varint(head, i + 1)
    if got is None:
        return False
    length, j = got
    if length < 2 or j >= len(head) or head[j] not in _META_GRAPH_KEYS:
        return False
    if head[j] == 0x0A:  # meta_info_def: its own first field must be one of MetaInfoDef's
        inner = _head_varint(head, j + 1)
        return inner is not None and inner[1] < len(head) and head[inner[1]] in _META_INFO_KEYS
    return True


class _SavedModel:
    def __init__(self, s: Stream, entry: str, report: Report) -> None:
        self.s = s
        self.entry = entry
        self.report = report
        self.ops: dict[str, str] = {}  # dangerous op -> where first seen
        self.nodes = 0
        self.keras_json = 0

    # -- messages --------------------------------------------------------------------------------------

    def saved_model(self, end: int) -> None:
        for num, wt, v in fields(self.s, end):
            if wt != 2:
                continue
            if num == 2:
                self.meta_graph(self.s.tell() + v)
            else:
                self.s.skip(v)

    def meta_graph(self, end: int) -> None:
        for num, wt, v in fields(self.s, end):
            if wt != 2:
                continue
            stop = self.s.tell() + v
            if num == 1:
                self.meta_info(stop)
            elif num == 2:
                self.graph(stop, "graph")
            elif num == 6:
                self.asset(stop)
            elif num == 7:
                self.object_graph(stop)
            else:
                self.s.skip(v)

    def meta_info(self, end: int) -> None:
        for num, wt, v in fields(self.s, end):
            if wt != 2:
                continue
            if num == 2:  # stripped_op_list: OpList.op (1) -> OpDef.name (1)
                for n2, w2, v2 in fields(self.s, self.s.tell() + v):
                    if w2 == 2 and n2 == 1:
                        name = self.op_def_name(self.s.tell() + v2)
                        if name is not None:
                            self.op(name, "the meta graph's op list")
                    elif w2 == 2:
                        self.s.skip(v2)
            else:
                self.s.skip(v)

    def op_def_name(self, end: int) -> str | None:
        name = None
        for num, wt, v in fields(self.s, end):
            if wt != 2:
                continue
            if num == 1:
                name = read_text(self.s, v, 4096)
            else:
                self.s.skip(v)
        return name

    def graph(self, end: int, where: str) -> None:
        for num, wt, v in fields(self.s, end):
            if wt != 2:
                continue
            stop = self.s.tell() + v
            if num == 1:
                self.node(stop, where)
            elif num == 2:
                self.library(stop)
            else:
                self.s.skip(v)

    def library(self, end: int) -> None:
        for num, wt, v in fields(self.s, end):
            if wt != 2:
                continue
            if num == 1:
                self.function(self.s.tell() + v)
            else:
                self.s.skip(v)

    def function(self, end: int) -> None:
        name = "?"  # the signature (field 1) is written first; nodes before it are named "?"
        for num, wt, v in fields(self.s, end):
            if wt != 2:
                continue
            if num == 1:
                name = self.op_def_name(self.s.tell() + v) or "?"
            elif num == 3:
                self.node(self.s.tell() + v, f"function {name!r}")
            else:
                self.s.skip(v)

    def node(self, end: int, where: str) -> None:
        self.nodes += 1
        op = ""
        name = ""
        attrs: dict[str, str] = {}
        for num, wt, v in fields(self.s, end):
            if wt != 2:
                continue
            if num == 1:
                name = read_text(self.s, v, 4096) or ""
            elif num == 2:
                op = read_text(self.s, v, 4096) or ""
            elif num == 5:
                key, val = self.attr_entry(self.s.tell() + v)
                if key and val is not None:
                    attrs[key] = val
            else:
                self.s.skip(v)
        self.op(op, f"node {name!r} in the {where}" if where == "graph" else f"node {name!r} in {where}")
        stream = attrs.get("output_stream", "")
        if op == "PrintV2" and stream.startswith("file://"):
            self.flag(
                "PrintV2 to file",
                Severity.CRITICAL,
                f"node {name!r} in {where} prints to {stream!r}: running the model appends to that file",
            )

    def attr_entry(self, end: int) -> tuple[str, str | None]:
        """A NodeDef attr map entry: the key and, for a string value (AttrValue.s), the string."""
        key, val = "", None
        for num, wt, v in fields(self.s, end):
            if wt != 2:
                continue
            if num == 1:
                key = read_text(self.s, v, 4096) or ""
            elif num == 2 and key == "output_stream":
                for n2, w2, v2 in fields(self.s, self.s.tell() + v):
                    if w2 == 2 and n2 == 2:
                        val = read_text(self.s, v2, 4096)
                    elif w2 == 2:
                        self.s.skip(v2)
            else:
                self.s.skip(v)
        return key, val

    def asset(self, end: int) -> None:
        for num, wt, v in fields(self.s, end):
            if wt != 2:
                continue
            if num == 2:
                fname = read_text(self.s, v, 4096) or ""
                norm = fname.replace("\\", "/")
                if norm.startswith("/") or ".." in norm.split("/") or (len(norm) > 1 and norm[1] == ":"):
                    self.flag(
                        "SavedModel asset outside the model directory",
                        Severity.HIGH,
                        f"asset file {fname!r} is resolved against the assets/ directory on load; this name "
                        "leaves it and makes the model read an arbitrary file",
                    )
            else:
                self.s.skip(v)

    def object_graph(self, end: int) -> None:
        """SavedObjectGraph.nodes (1) -> SavedObject.user_object (4) -> SavedUserObject.metadata (3)."""
        for num, wt, v in fields(self.s, end):
            if wt != 2:
                continue
            if num != 1:
                self.s.skip(v)
                continue
            for n2, w2, v2 in fields(self.s, self.s.tell() + v):
                if w2 != 2:
                    continue
                if n2 != 4:
                    self.s.skip(v2)
                    continue
                for n3, w3, v3 in fields(self.s, self.s.tell() + v2):
                    if w3 == 2 and n3 == 3:
                        self.keras_metadata(v3)
                    elif w3 == 2:
                        self.s.skip(v3)

    def keras_metadata(self, n: int) -> None:
        text = read_text(self.s, n, MAX_METADATA_JSON)
        if text is None:
            self.flag(
                "Keras metadata too large to inspect",
                Severity.MEDIUM,
                f"{n} bytes of layer metadata were not parsed",
            )
            return
        if text.strip():
            self.keras_json += 1
            judge_keras_json(text, entry=self.entry, report=self.report)

    # -- verdicts --------------------------------------------------------------------------------------

    def op(self, op: str, where: str) -> None:
        judged = judge_tf_op(op)
        if judged is None or op in self.ops:
            return
        if len(self.ops) >= MAX_REPORTED_OPS:
            return
        self.ops[op] = where
        sev, what = judged
        self.flag(f"TensorFlow op {op}", sev, f"{where} uses {op}, which {what}", op)

    def flag(self, title: str, sev: Severity, detail: str, op: str | None = None) -> None:
        self.report(
            Hit(
                sev,
                title,
                detail,
                kind="tensorflow",
                entry=self.entry,
                callable=f"tensorflow.raw_ops.{op}" if op else None,
                atlas=ATLAS_ARTIFACT,
                remediation=_REMEDIATION,
            )
        )


def scan_saved_model(s: Stream, *, entry: str, report: Report) -> None:
    """Walk a ``saved_model.pb`` (to the end of the stream) and report dangerous ops and Keras code."""
    end = s.size if s.size is not None else 1 << 62
    w = _SavedModel(s, entry, report)
    try:
        w.saved_model(end)
    except (WireError, Truncated) as err:
        if s.size is None and isinstance(err, Truncated) and s.at_eof():
            return  # a forward stream of unknown size ends where its data ends
        report(
            Hit(
                Severity.MEDIUM,
                "malformed SavedModel protobuf",
                f"{err}; what was read before it was judged",
                kind="tensorflow",
                entry=entry,
                atlas=ATLAS_ARTIFACT,
            )
        )


def _is_meta_graph(s: Stream, end: int) -> bool:
    """Whether ``[tell, end)`` opens like a MetaGraphDef: a bytes field 1-7 before anything malformed."""
    try:
        for num, wt, v in fields(s, end):
            if wt == 2:
                if 1 <= num <= 7:
                    return True
                s.skip(v)
    except (WireError, Truncated):
        pass
    return False


def classify_protobuf(s: Stream) -> tuple[bool, bool]:
    """(is a SavedModel, is an ONNX model) of a seekable stream, by its top-level fields.

    A SavedModel has fields 1 (varint) and 2 (MetaGraphDef) only; an ONNX ModelProto always has a graph
    (7). Both parsers skip fields they do not know, so a file with an ONNX graph and a field 2 that is a
    MetaGraphDef loads in both runtimes: it is both. A truncated file is classified by what it holds.
    The stream is left where it was.
    """
    start = s.tell()
    end = s.size if s.size is not None else start
    saved = onnx = False
    try:
        while s.tell() < end:
            key = varint(s)
            num, wt = key >> 3, key & 7
            if wt == 0:
                varint(s)
                continue
            if wt != 2:
                break
            n = varint(s)
            stop = min(s.tell() + n, end)
            if num == 2 and not saved:
                saved = _is_meta_graph(s, stop)
            onnx = onnx or num == 7
            s.seek(stop)
    except (WireError, Truncated):
        pass
    finally:
        s.seek(start)
    if not onnx and not saved:
        onnx = True  # neither: the ONNX walker reports what is wrong with it
    return saved, onnx


def scan_protobuf_model(
    s: Stream, *, entry: str, report: Report, base_dir: str | None, max_spool: int
) -> str:
    """Scan a stream detected as ``onnx`` or ``tf-savedmodel`` (the two share their first bytes): classify
    it by its fields, never by its head alone, and run the walker of each format it is.
    """
    if s.region is None:
        import tempfile

        with tempfile.TemporaryFile(prefix="mlsecops-scan-") as tmp:
            copied = 0
            while chunk := s.read(CHUNK):
                copied += len(chunk)
                if copied > max_spool:
                    report(
                        Hit(
                            Severity.MEDIUM,
                            "protobuf model too large to inspect",
                            f"more than {max_spool} bytes inside a compressed stream",
                            kind="tensorflow",
                            entry=entry,
                            error=True,
                        )
                    )
                    return "protobuf"
                tmp.write(chunk)
            tmp.flush()
            inner = Stream(FileRegion(tmp.fileno(), 0, copied), s.budget)
            return scan_protobuf_model(inner, entry=entry, report=report, base_dir=None, max_spool=max_spool)
    saved, onnx = classify_protobuf(s)
    start = s.tell()
    if saved:
        scan_saved_model(s, entry=entry, report=report)
        s.seek(start)
    if onnx:
        scan_onnx(s, entry=entry, report=report, base_dir=base_dir)
    return "onnx+tf-savedmodel" if saved and onnx else "tf-savedmodel" if saved else "onnx"


# -- frozen GraphDef (.pb) and text-format SavedModels (.pbtxt) -----------------------------------------

GRAPH_PROBE_NODES = 16
"""Nodes of a candidate GraphDef parsed to recognise it (every node is judged once it is recognised)."""
_OP_NAME = re.compile(rb"^[A-Za-z_][A-Za-z0-9_>.]*$")
_GRAPH_FIELDS = {1: 2, 2: 2, 3: 0, 4: 2, 5: 2}  # node, library, version (deprecated), versions, debug_info


def _graph_shape(s: Stream, end: int) -> bool | None:
    """True: a GraphDef (its first nodes have identifier ops); False: not one; None: bytes ran out."""
    nodes = 0
    try:
        for num, wt, v in fields(s, end):
            if _GRAPH_FIELDS.get(num) != wt:
                return False
            if num != 1:
                if wt == 2:
                    s.skip(v)
                continue
            op = None
            for n2, w2, v2 in fields(s, s.tell() + v):
                if w2 == 2 and n2 == 2 and v2 <= 256:
                    op = s.read_exact(v2)
                elif w2 == 2:
                    s.skip(v2)
            if op is None or not _OP_NAME.match(op):
                return False
            nodes += 1
            if nodes >= GRAPH_PROBE_NODES:
                return True
        return nodes > 0
    except (WireError, Truncated):
        return None if nodes else False


def is_graph_def(s: Stream) -> bool:
    """Whether the stream is a frozen ``GraphDef`` (TF1 ``frozen_graph.pb``, ``tf.io.write_graph``).

    A seekable stream is left where it was; a forward-only one is judged on its first bytes.
    """
    if s.peek(1) != b"\x0a":
        return False
    if not s.seekable or s.size is None:
        head = s.peek(HEAD_PROBE)
        return bool(_graph_shape(Stream(_Bytes(head), s.budget, size=len(head)), len(head)) is not False)
    start = s.tell()
    try:
        return _graph_shape(s, s.size) is True
    finally:
        s.seek(start)


def scan_graph_def(s: Stream, *, entry: str, report: Report) -> None:
    """Judge every node and function of a frozen GraphDef."""
    end = s.size if s.size is not None else 1 << 62
    w = _SavedModel(s, entry, report)
    try:
        w.graph(end, "graph")
    except (WireError, Truncated) as err:
        if s.size is None and isinstance(err, Truncated) and s.at_eof():
            return
        report(
            Hit(
                Severity.MEDIUM,
                "malformed GraphDef protobuf",
                f"{err}; what was read before it was judged",
                kind="tensorflow",
                entry=entry,
                atlas=ATLAS_ARTIFACT,
            )
        )


_PBTXT_HINT = re.compile(rb"\b(meta_graphs|node_def|node)\s*\{")
_PBTXT_OP = re.compile(rb"\b(?:op|name)\s*:\s*\"([A-Za-z_][A-Za-z0-9_>.]*)\"")
MAX_PBTXT = 64 << 20
"""Largest text-format graph searched (TensorFlow reads saved_model.pbtxt when saved_model.pb is absent)."""


def looks_like_graph_text(head: bytes) -> bool:
    """Whether text looks like a text-format SavedModel or GraphDef (``node {`` ... ``op: "..."``)."""
    return _PBTXT_HINT.search(head) is not None and b"op:" in head.replace(b" ", b"")


def scan_graph_text(s: Stream, *, entry: str, report: Report) -> None:
    """Judge the op names of a text-format SavedModel/GraphDef (``op: "X"`` and op-list ``name: "X"``)."""
    data = s.read(MAX_PBTXT + 1)
    w = _SavedModel(s, entry, report)
    for m in _PBTXT_OP.finditer(data[:MAX_PBTXT]):
        w.op(m.group(1).decode(), "the text-format graph")
    if len(data) > MAX_PBTXT:
        w.flag("text-format graph too large to inspect", Severity.MEDIUM, f"only the first {MAX_PBTXT} bytes")


# -- Keras v2 SavedModel metadata ---------------------------------------------------------------------


HEAD_PROBE = 64 << 10
"""Bytes of a forward-only stream (a deflated archive member) examined to recognise Keras metadata."""


class _Bytes:
    def __init__(self, data: bytes) -> None:
        self._d = data
        self._p = 0

    def read(self, n: int) -> bytes:
        out = self._d[self._p : self._p + n]
        self._p += len(out)
        return out


def _metadata_shape(s: Stream, end: int) -> bool | None:
    """True: a SavedMetadata with a Keras node; False: not one; None: the bytes ran out before deciding.

    Unknown fields are allowed (protobuf parsers skip them); wire types and lengths must be valid and
    every top-level field must be a ``nodes`` message (1).
    """
    entered = False
    try:
        for num, wt, v in fields(s, end):
            if num != 1 or wt != 2:
                return False
            entered = True
            for n2, w2, v2 in fields(s, s.tell() + v):
                if w2 == 2 and n2 in (3, 4):
                    head = s.peek(min(v2, 16))
                    if head.startswith(b"_tf_keras") or head.lstrip()[:1] == b"{":
                        return True
                if w2 == 2:
                    s.skip(v2)
        return False
    except WireError:
        return None if entered and s.at_eof() else False
    except Truncated:
        return None if entered else False


def is_keras_metadata(s: Stream) -> bool:
    """Whether the stream is a Keras ``SavedMetadata`` message (``keras_metadata.pb``).

    A seekable stream is parsed whole and left where it was; a forward-only one is judged on its first
    ``HEAD_PROBE`` bytes (a well-formed start that runs past them counts as metadata).
    """
    if s.peek(1) != b"\x0a":
        return False
    if not s.seekable or s.size is None:
        head = s.peek(HEAD_PROBE)
        return _metadata_shape(Stream(_Bytes(head), s.budget, size=len(head)), len(head)) is not False
    start = s.tell()
    try:
        return _metadata_shape(s, s.size) is True
    finally:
        s.seek(start)


def scan_keras_metadata(s: Stream, *, entry: str, report: Report) -> None:
    """Judge every layer's JSON metadata of a ``keras_metadata.pb`` (Keras 2 SavedModel)."""
    end = s.size if s.size is not None else 1 << 62
    try:
        for num, wt, v in fields(s, end):
            if wt != 2:
                continue
            if num != 1:
                s.skip(v)
                continue
            for n2, w2, v2 in fields(s, s.tell() + v):
                if w2 != 2:
                    continue
                if n2 == 4:
                    text = read_text(s, v2, MAX_METADATA_JSON)
                    if text is None:
                        report(_keras_hit(Severity.MEDIUM, "Keras metadata too large to inspect", "", entry))
                    else:
                        judge_keras_json(text, entry=entry, report=report)
                else:
                    s.skip(v2)
    except (WireError, Truncated) as err:
        report(
            Hit(
                Severity.MEDIUM,
                "malformed Keras metadata protobuf",
                f"{err}; what was read before it was judged",
                kind="keras",
                entry=entry,
                atlas=ATLAS_ARTIFACT,
            )
        )


def judge_keras_json(text: str, *, entry: str, report: Report) -> None:
    """Judge one Keras v2 layer metadata JSON string (Lambda layers, imports, registered custom objects)."""
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError):
        report(_keras_hit(Severity.MEDIUM, "unparsable Keras metadata", text[:120], entry))
        return
    scan_keras_config(meta, entry=entry, report=report)
    stack: list[object] = [meta]
    seen: set[str] = set()
    budget = 1_000_000
    while stack and budget > 0:
        budget -= 1
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            stack.extend(node.values())
            cls = node.get("class_name")
            if isinstance(cls, str) and ">" in cls and cls not in seen and not cls.startswith("keras"):
                seen.add(cls)
                report(
                    _keras_hit(
                        Severity.MEDIUM,
                        f"Keras custom object {cls}",
                        f"{cls!r} is a class registered by user code (register_keras_serializable); loading "
                        "with that code imported runs its from_config",
                        entry,
                    )
                )


def _keras_hit(sev: Severity, title: str, detail: str, entry: str) -> Hit:
    return Hit(
        sev, title, detail, kind="keras", entry=entry, atlas=ATLAS_ARTIFACT, remediation=_KERAS_REMEDIATION
    )
