"""TensorFlow Lite flatbuffers: the operator codes a model asks the interpreter for.

A ``.tflite`` file cannot carry code, but it can name operators the interpreter resolves from its op
resolver: custom ops (``BuiltinOperator.CUSTOM`` with a ``custom_code``) need an implementation
registered by the application, and ``Flex*`` custom ops run the TensorFlow kernel of the same name
through the Flex delegate, so ``FlexWriteFile`` writes a file exactly as the TensorFlow op does. We read
``Model.operator_codes`` with a bounded flatbuffer reader (every offset checked against the file, no
recursion, vector lengths capped) and judge Flex ops with the TensorFlow op table.

Schema: tensorflow/lite/schema/schema.fbs (``Model`` field 1 ``operator_codes``; ``OperatorCode``
fields 0 ``deprecated_builtin_code`` int8, 1 ``custom_code`` string, 3 ``builtin_code`` int32).
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from mlsecops.core.severity import Severity
from mlsecops.supplychain.scanner._io import FileRegion, Stream
from mlsecops.supplychain.scanner._tf_ops import judge_tf_op
from mlsecops.supplychain.scanner._types import ATLAS_ARTIFACT, Hit

__all__ = ["BENIGN_CUSTOM_OPS", "looks_like_tflite", "scan_tflite"]

Report = Callable[[Hit], None]

TFLITE_IDENTIFIER = b"TFL3"
MAX_OPERATOR_CODES = 65_536
"""Operator codes read per model (real models use a few dozen)."""
MAX_IN_MEMORY = 256 << 20
"""Largest TFLite model read into memory when it is not a seekable file region (inside a deflated zip)."""
MAX_CUSTOM_CODE = 4096
"""Longest custom op name decoded."""
BUILTIN_CUSTOM = 32
"""``BuiltinOperator.CUSTOM``."""

BENIGN_CUSTOM_OPS = frozenset(
    {
        "TFLite_Detection_PostProcess",
        "Convolution2DTransposeBias",
        "MaxPoolingWithArgmax2D",
        "MaxUnpooling2D",
        "AudioSpectrogram",
        "Mfcc",
        "NumericVerify",
        "RandomUniform",
        "RandomStandardNormal",
        "Multinomial",
        "TFLite_Detection_PostProcess_v2",
    }
)
"""Custom ops that the stock TFLite runtimes (or MediaPipe) implement themselves."""

_REMEDIATION = "Load only with a reviewed op resolver, or re-convert the model with builtin operators."


class _Bad(Exception):
    pass


class _Buf:
    """Bounded random access to the flatbuffer: a file region, or bytes in memory."""

    def __init__(self, region: FileRegion | None, data: bytes | None, size: int) -> None:
        self.region = region
        self.data = data
        self.size = size

    def get(self, pos: int, n: int) -> bytes:
        if pos < 0 or n < 0 or pos + n > self.size:
            raise _Bad(f"offset {pos}+{n} outside the {self.size}-byte model")
        if self.data is not None:
            return self.data[pos : pos + n]
        assert self.region is not None
        out = self.region.pread(n, pos)
        if len(out) != n:
            raise _Bad(f"short read at {pos}")
        return out

    def u32(self, pos: int) -> int:
        return int(struct.unpack("<I", self.get(pos, 4))[0])

    def i32(self, pos: int) -> int:
        return int(struct.unpack("<i", self.get(pos, 4))[0])

    def u16(self, pos: int) -> int:
        return int(struct.unpack("<H", self.get(pos, 2))[0])

    def field(self, table: int, index: int) -> int | None:
        """Absolute position of field ``index`` of the table at ``table``, or ``None`` when absent."""
        vtable = table - self.i32(table)
        vsize = self.u16(vtable)
        if vsize < 4 or vsize % 2:
            raise _Bad(f"bad vtable size {vsize}")
        if 4 + 2 * index >= vsize:
            return None
        off = self.u16(vtable + 4 + 2 * index)
        return table + off if off else None

    def deref(self, pos: int) -> int:
        return pos + self.u32(pos)

    def string(self, pos: int, limit: int) -> str:
        start = self.deref(pos)
        n = self.u32(start)
        if n > limit:
            raise _Bad(f"string of {n} bytes")
        return self.get(start + 4, n).decode("utf-8", "replace")


def looks_like_tflite(head: bytes) -> bool:
    """A flatbuffer with the TFLite file identifier (the interpreter refuses files without it)."""
    return len(head) >= 8 and head[4:8] == TFLITE_IDENTIFIER


def scan_tflite(s: Stream, *, entry: str, report: Report) -> None:
    """Read a TFLite model's operator codes and report custom and Flex operators."""

    def hit(sev: Severity, title: str, detail: str, name: str | None = None, error: bool = False) -> None:
        report(
            Hit(
                sev,
                title,
                detail,
                kind="tflite",
                entry=entry,
                callable=name,
                atlas=ATLAS_ARTIFACT,
                remediation=_REMEDIATION,
                error=error,
            )
        )

    region = s.region
    if region is not None:
        buf = _Buf(region, None, region.length)
    else:
        data = s.read(MAX_IN_MEMORY + 1)
        if len(data) > MAX_IN_MEMORY:
            hit(Severity.MEDIUM, "TFLite model too large to inspect", f"more than {MAX_IN_MEMORY} bytes")
            return
        buf = _Buf(None, data, len(data))
    try:
        codes = _operator_codes(buf)
    except _Bad as err:
        hit(Severity.MEDIUM, "malformed TFLite model", str(err))
        return
    s.budget.charge(64 * len(codes))
    seen: set[str] = set()
    for builtin, custom in codes:
        if builtin != BUILTIN_CUSTOM or custom in seen:
            continue
        seen.add(custom)
        if custom.startswith("Flex"):
            tf_op = custom[4:]
            judged = judge_tf_op(tf_op)
            if judged is not None:
                sev, what = judged
                hit(
                    sev,
                    f"TFLite Flex op {tf_op}",
                    f"custom op {custom!r} runs the TensorFlow kernel {tf_op}, which {what}, through the "
                    "Flex delegate",
                    f"tensorflow.raw_ops.{tf_op}",
                )
            else:
                hit(
                    Severity.LOW,
                    f"TFLite Flex op {tf_op}",
                    f"custom op {custom!r} needs the TensorFlow Flex delegate",
                    f"tensorflow.raw_ops.{tf_op}",
                )
        elif custom in BENIGN_CUSTOM_OPS:
            continue
        else:
            hit(
                Severity.MEDIUM,
                f"TFLite custom op {custom[:80]!r}",
                f"operator {custom[:200]!r} is not built into TFLite: running the model needs native code "
                "registered for it by the application",
                custom[:200],
            )


def _operator_codes(buf: _Buf) -> list[tuple[int, str]]:
    """(effective builtin code, custom code) of every ``Model.operator_codes`` entry."""
    if buf.size < 8 or buf.get(4, 4) != TFLITE_IDENTIFIER:
        raise _Bad("no TFL3 identifier")
    root = buf.deref(0)
    pos = buf.field(root, 1)
    if pos is None:
        return []
    vec = buf.deref(pos)
    count = buf.u32(vec)
    if count > MAX_OPERATOR_CODES or vec + 4 + 4 * count > buf.size:
        raise _Bad(f"{count} operator codes")
    out: list[tuple[int, str]] = []
    for i in range(count):
        table = buf.deref(vec + 4 + 4 * i)
        dep = buf.field(table, 0)
        deprecated = struct.unpack("<b", buf.get(dep, 1))[0] if dep is not None else 0
        bpos = buf.field(table, 3)
        builtin = buf.i32(bpos) if bpos is not None else 0
        cpos = buf.field(table, 1)
        custom = buf.string(cpos, MAX_CUSTOM_CODE) if cpos is not None else ""
        # The interpreter's GetBuiltinCode: the larger of the two fields (the int8 one saturates at 127).
        out.append((max(builtin, deprecated), custom))
    return out
