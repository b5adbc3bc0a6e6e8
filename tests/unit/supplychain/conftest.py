"""Helpers for the scanner tests: a tiny pickle assembler and file builders.

Payloads are assembled opcode by opcode, never produced by pickling an object with ``__reduce__``
in the test process, so the test files show exactly which bytes each technique uses.
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from mlsecops.supplychain.scanner import ArtifactScan, ScanLimits, scan_file


def asm(*parts: object) -> bytes:
    """Assemble a pickle from parts.

    ``("G", mod, name)`` GLOBAL, ``("I", mod, name)`` INST, ``("U", text)`` SHORT_BINUNICODE,
    ``("S", text)`` protocol-0 STRING, ``("B", data)`` BINBYTES, ``("P", idx)`` BINPUT, ``("g", idx)``
    BINGET, ``("K", n)`` BININT1, ``("proto", n)`` PROTO; raw ``bytes`` pass through. Opcode names as
    strings: MARK, STOP, REDUCE, BUILD, TUPLE, TUPLE1, TUPLE2, TUPLE3, EMPTY_DICT, EMPTY_TUPLE,
    EMPTY_LIST, SETITEM, SETITEMS, APPENDS, NEWOBJ, NEWOBJ_EX, OBJ, POP, MEMOIZE, STACK_GLOBAL, NONE, DICT.
    """
    ops = {
        "MARK": b"(",
        "STOP": b".",
        "REDUCE": b"R",
        "BUILD": b"b",
        "TUPLE": b"t",
        "TUPLE1": b"\x85",
        "TUPLE2": b"\x86",
        "TUPLE3": b"\x87",
        "EMPTY_DICT": b"}",
        "EMPTY_TUPLE": b")",
        "EMPTY_LIST": b"]",
        "SETITEM": b"s",
        "SETITEMS": b"u",
        "APPENDS": b"e",
        "NEWOBJ": b"\x81",
        "NEWOBJ_EX": b"\x92",
        "OBJ": b"o",
        "POP": b"0",
        "MEMOIZE": b"\x94",
        "STACK_GLOBAL": b"\x93",
        "NONE": b"N",
        "DICT": b"d",
    }
    out = bytearray()
    for p in parts:
        if isinstance(p, bytes):
            out += p
        elif isinstance(p, str):
            out += ops[p]
        else:
            assert isinstance(p, tuple)
            tag = p[0]
            if tag == "G":
                out += b"c" + p[1].encode() + b"\n" + p[2].encode() + b"\n"
            elif tag == "I":
                out += b"i" + p[1].encode() + b"\n" + p[2].encode() + b"\n"
            elif tag == "U":
                raw = p[1].encode()
                out += b"\x8c" + bytes([len(raw)]) + raw
            elif tag == "S":
                out += b"S'" + p[1].encode() + b"'\n"
            elif tag == "B":
                out += b"B" + struct.pack("<I", len(p[1])) + p[1]
            elif tag == "P":
                out += b"q" + bytes([p[1]])
            elif tag == "g":
                out += b"h" + bytes([p[1]])
            elif tag == "K":
                out += b"K" + bytes([p[1]])
            elif tag == "proto":
                out += b"\x80" + bytes([p[1]])
            else:
                raise ValueError(tag)
    return bytes(out)


SYSTEM = asm(("proto", 2), ("G", "os", "system"), ("U", "echo pwned"), "TUPLE1", "REDUCE", "STOP")
"""The classic payload: os.system('echo pwned')."""

BENIGN = asm(("proto", 2), "EMPTY_DICT", ("U", "w"), ("K", 1), "SETITEM", "STOP")
"""{'w': 1}"""


def torch_zip(data_pkl: bytes, *, prefix: str = "archive", pkl_name: str = "data.pkl") -> bytes:
    """A PyTorch-style zip checkpoint whose data.pkl is ``data_pkl`` (plus a storage entry)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{prefix}/{pkl_name}", data_pkl)
        z.writestr(f"{prefix}/byteorder", "little")
        z.writestr(f"{prefix}/data/0", b"\x00" * 64)
        z.writestr(f"{prefix}/version", "3\n")
    return buf.getvalue()


@pytest.fixture
def scan(tmp_path: Path) -> Callable[..., ArtifactScan]:
    """``scan(data, name=..., limits=...)`` writes ``data`` to a file and scans it."""
    counter = [0]

    def _scan(data: bytes, name: str | None = None, limits: ScanLimits | None = None) -> ArtifactScan:
        counter[0] += 1
        path = tmp_path / (name or f"artifact{counter[0]}.bin")
        path.write_bytes(data)
        return scan_file(path, limits=limits)

    return _scan


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pb(num: int, value: int | bytes | str) -> bytes:
    """One protobuf field: varint for ints, length-delimited for bytes/str."""
    if isinstance(value, int):
        return _varint(num << 3) + _varint(value)
    raw = value.encode() if isinstance(value, str) else value
    return _varint(num << 3 | 2) + _varint(len(raw)) + raw


def onnx_model(nodes: list[tuple[str, str]], *, external: str | None = None) -> bytes:
    """A minimal ONNX ModelProto: nodes as (op_type, domain), optionally one external-data initializer."""
    graph = b"".join(
        pb(1, pb(1, "x") + pb(2, "y") + pb(4, op) + (pb(7, dom) if dom else b"")) for op, dom in nodes
    )
    if external is not None:
        tensor = pb(1, 4) + pb(2, 1) + pb(8, "w") + pb(13, pb(1, "location") + pb(2, external)) + pb(14, 1)
        graph += pb(5, tensor)
    graph += pb(5, pb(1, 2) + pb(2, 1) + pb(8, "b") + pb(9, b"\x00" * 8))
    graph += pb(2, "g")
    return pb(1, 8) + pb(2, "pytorch") + pb(7, graph) + pb(8, pb(1, "") + pb(2, 17))


@pytest.fixture
def pk() -> SimpleNamespace:
    """The payload helpers: ``pk.asm``, ``pk.SYSTEM``, ``pk.BENIGN``, ``pk.torch_zip``."""
    return SimpleNamespace(
        asm=asm, SYSTEM=SYSTEM, BENIGN=BENIGN, torch_zip=torch_zip, pb=pb, onnx_model=onnx_model
    )
