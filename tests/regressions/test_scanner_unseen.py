"""Regressions from the second red-team round: techniques the first corpus did not hold.

Every malicious sample here was loaded once by the real loader (pickle, joblib, numpy, torch) in a
throw-away process with a harmless command before the fix, and ran it while the scanner said ``safe``.
Payloads are assembled opcode by opcode; nothing in this file runs them. Each case names its class of
bypass; benign twins beside them must stay ``safe``.
"""

from __future__ import annotations

import io
import lzma
import pickle
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import pytest
from tests._deps import require

from mlsecops.supplychain.scanner import Verdict, scan_file


def _u(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def _g(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


SYSTEM = b"\x80\x02" + _g("os", "system") + _u("id") + b"\x85R."
P0_SYSTEM = b"cos\nsystem\n(S'id'\ntR."
HEADERLESS = _u("os") + _u("system") + b"\x93" + _u("id") + b"\x85R."


def _torch_zip(data_pkl: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", data_pkl)
        z.writestr("archive/version", "3\n")
    return buf.getvalue()


def _joblib(*, build: bytes, elsize: int, fillers: int, array: bytes) -> bytes:
    """{'a': wrapper} with a hand-built joblib NumpyArrayWrapper, its raw bytes, then a payload."""
    state = (
        b"}("
        + _u("shape")
        + b"K\x04\x85"
        + _u("order")
        + _u("C")
        + b"".join(_u(f"k{i}") + b"N" for i in range(fillers))
        + _u("dtype")
        + _u("numpy")
        + _u("dtype")
        + b"\x93"
        + _u("f8")
        + b"\x89\x88\x87R(K\x03"
        + _u("<")
        + b"NNNJ"
        + struct.pack("<i", elsize)
        + b"J\xff\xff\xff\xffK\x00tb"
        + _u("numpy_array_alignment_bytes")
        + b"K\x10ub"
    )
    return b"\x80\x04}" + _u("a") + build + state + array + b"s0" + HEADERLESS


_NAW = _u("joblib.numpy_pickle") + _u("NumpyArrayWrapper") + b"\x93"


def _v7_tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    raw = bytearray(buf.getvalue())
    pos = 0
    while pos + 512 <= len(raw) and raw[pos : pos + 512] != bytes(512):
        hdr = raw[pos : pos + 512]
        size = int(hdr[124:136].rstrip(b"\x00 ") or b"0", 8)
        hdr[257:345] = bytes(88)
        hdr[148:156] = b" " * 8
        hdr[148:156] = b"%06o\x00 " % sum(hdr)
        raw[pos : pos + 512] = hdr
        pos += 512 + (size + 511) // 512 * 512
    return bytes(raw)


MALICIOUS: dict[str, bytes] = {
    # protocol 4 resolves dotted names with getattr: sklearn.base.np.f2py.subprocess.Popen is Popen, and
    # the last part "Popen" looked like an allow-listed estimator class under "sklearn.".
    "dotted-walk-popen": b"\x80\x04"
    + _u("sklearn.base")
    + _u("np.f2py.subprocess.Popen")
    + b"\x93"
    + _u("id")
    + b"\x85R.",
    "dotted-walk-cdll": b"\x80\x04ctorch.nn.modules.module\ntorch.ctypes.CDLL\n"
    + _u("libc.so.6")
    + b"\x85R.",
    # torch.storage._load_from_bytes is allow-listed (pickled tensors use it) but is
    # torch.load(weights_only=False): a short protocol-0 pickle argument runs before the magic check.
    "load-from-bytes-p0": b"\x80\x03"
    + _g("torch.storage", "_load_from_bytes")
    + b"C"
    + bytes([len(P0_SYSTEM)])
    + P0_SYSTEM
    + b"\x85R.",
    # ...and protocol 2 passes bytes as _codecs.encode(text, "latin1").
    "load-from-bytes-codecs": b"\x80\x02"
    + _g("torch.storage", "_load_from_bytes")
    + _g("_codecs", "encode")
    + _u(P0_SYSTEM.decode())
    + _u("latin1")
    + b"\x86R\x85R.",
    # The unpickler needs no PROTO header: a file may start with any opcode.
    "headerless-protocol-4": HEADERLESS,
    "headerless-frame": b"\x95" + struct.pack("<Q", len(HEADERLESS)) + HEADERLESS,
    # Junk, then a protocol-0 global followed by an opcode the old search did not expect (DUP).
    "junk-then-global-dup": bytes(range(200, 256)) * 2 + b"\ncos\nsystem\n2(S'id'\ntR.",
    # joblib reads count * itemsize raw bytes after each NumpyArrayWrapper; any disagreement on where
    # they end lets the scanner parse decoy opcodes while joblib runs the real ones.
    "joblib-elsize-desync": _joblib(
        build=_NAW + b")\x81", elsize=1, fillers=0, array=b"\x00" + bytes(3) + b"s." + b"N." * 13
    ),
    "joblib-reconstructor-desync": _joblib(
        build=_g("copyreg", "_reconstructor") + _NAW + _g("builtins", "object") + b"N\x87R",
        elsize=-1,
        fillers=0,
        array=b"\x00" + b"s." + b"N." * 15,
    ),
    "joblib-alignment-after-64-keys": _joblib(
        build=_NAW + b")\x81", elsize=-1, fillers=64, array=b"\x02\x00\x00" + bytes(29) + b"s.N"
    ),
    # numpy.load accepts the dtype spelled "object"; the header holds no "O".
    "npy-descr-object": b"\x93NUMPY\x01\x00"
    + struct.pack("<H", 118)
    + "{'descr': 'object', 'fortran_order': False, 'shape': (1,), }".ljust(117).encode()
    + b"\n"
    + SYSTEM,
    # joblib recognises lzma by "5d 00"; the dictionary size after it is free (4 KiB here).
    "lzma-small-dictionary": lzma.compress(
        SYSTEM, format=lzma.FORMAT_ALONE, filters=[{"id": lzma.FILTER_LZMA1, "dict_size": 4096}]
    ),
    "zlib-small-window": (lambda c: c.compress(SYSTEM) + c.flush())(zlib.compressobj(9, zlib.DEFLATED, 10)),
    # A legacy torch tar in the v7 layout (no "ustar" magic): tarfile and torch.load read it.
    "v7-tar-legacy-checkpoint": _v7_tar(
        {"sys_info": pickle.dumps({}, 2), "storages": b"cos\nsystem\n2(S'id'\ntR.", "pickle": b"N."}
    ),
}


@pytest.mark.parametrize("name", sorted(MALICIOUS))
def test_unseen_bypass_is_detected(tmp_path: Path, name: str) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(MALICIOUS[name])
    result = scan_file(path)
    assert result.verdict is Verdict.MALICIOUS, [h.title for h in result.hits]


def test_load_from_bytes_zip_argument_is_scanned(tmp_path: Path) -> None:
    data = b"\x80\x03" + _g("torch.storage", "_load_from_bytes")
    blob = _torch_zip(SYSTEM)
    data += b"B" + struct.pack("<I", len(blob)) + blob + b"\x85R."
    path = tmp_path / "t.pkl"
    path.write_bytes(data)
    result = scan_file(path)
    assert result.verdict is Verdict.MALICIOUS
    assert any(h.callable == "os.system" for h in result.hits)


def test_dunder_key_after_64_state_keys_is_reported(tmp_path: Path) -> None:
    fill = b"".join(_u(f"k{i}") + b"N" for i in range(70))
    data = (
        b"\x80\x02"
        + _g("collections", "OrderedDict")
        + b")RN}("
        + fill
        + _u("__setstate__")
        + _g("collections", "OrderedDict")
        + b"u\x86b."
    )
    path = tmp_path / "s.pkl"
    path.write_bytes(data)
    assert any("__setstate__" in h.title for h in scan_file(path).hits)


def test_benign_twins_stay_safe(tmp_path: Path) -> None:
    torch = require("torch", "torch")
    import joblib
    import numpy as np

    files = {
        "tensors_p2.pkl": pickle.dumps({"w": torch.randn(3), "p": torch.nn.Parameter(torch.randn(2))}, 2),
        "tensors_p5.pkl": pickle.dumps({"w": torch.randn(3)}, 5),
        "words.txt": b"macos\nsystem\n2\ncos\nsine\n(tangent)\n" * 20,
        "lzma.joblib": lzma.compress(pickle.dumps({"a": 1}, 2), format=lzma.FORMAT_ALONE),
        "fields.npy": _npy_bytes(np.zeros(2, dtype=[("Out", "<f8"), ("v", "<f4", (3,))])),
        "dotted_nested_class.pkl": b"\x80\x04" + _u("collections") + _u("OrderedDict") + b"\x93)R.",
    }
    buf = io.BytesIO()
    joblib.dump({"a": np.arange(5.0), "s": np.array(["x", "yz"]), "o": np.zeros(3, "f2")}, buf)
    files["aligned.joblib"] = buf.getvalue()
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        result = scan_file(tmp_path / name)
        assert result.verdict is Verdict.SAFE, (name, [h.title for h in result.hits])


def _npy_bytes(arr: object) -> bytes:
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def test_random_binaries_starting_like_pickles_are_not_flagged(tmp_path: Path) -> None:
    # Headerless pickles are now tried from any opcode byte; ordinary binary data must still pass.
    import numpy as np

    rng = np.random.default_rng(7)
    for first in b"(c]})NKJMGUTXqhBCIFLSVPid\x88\x8a\x8c\x8d\x8e\x95\x96\x5d\x78":
        data = bytes([first]) + rng.normal(size=1024).astype("float32").tobytes()
        (tmp_path / "w.bin").write_bytes(data)
        result = scan_file(tmp_path / "w.bin")
        assert result.verdict is Verdict.SAFE, (hex(first), [h.title for h in result.hits])


@pytest.mark.parametrize(
    "head",
    [
        b"7z\xbc\xaf\x27\x1c\x00\x04",
        b"Rar!\x1a\x07\x01\x00",
        b"\x28\xb5\x2f\xfd",
        b"\x5f\x2a\x4d\x18\x04\x00\x00\x00",
    ],
    ids=["7z", "rar5", "zstd", "zstd-skippable-frame"],
)
def test_archives_we_cannot_open_are_suspicious(tmp_path: Path, head: bytes) -> None:
    (tmp_path / "weights.bin").write_bytes(head + bytes(200))
    result = scan_file(tmp_path / "weights.bin")
    assert result.verdict is Verdict.SUSPICIOUS
    assert any("cannot be inspected" in h.title for h in result.hits)
