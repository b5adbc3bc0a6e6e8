"""Opcode arguments: lengths, strings, bytes, and what is hidden in them.

Large string and bytes arguments (tensor data in protocol 4/5 pickles) are skipped, not read; arguments
that themselves start like a pickle are walked as nested pickles (``pickle.loads(b"...")``,
``torch.storage._load_from_bytes``), and a zip inside a pickle is scanned as the artifact a loader would
read. After a ``joblib`` ``NumpyArrayWrapper`` is built, the raw array bytes that joblib writes inline
are skipped (object arrays are a nested pickle and are walked).
"""

from __future__ import annotations

import re
from typing import cast

from mlsecops.core.severity import Severity
from mlsecops.supplychain.scanner._decode import MAX_CODE, MAX_INPUT, MIN_INPUT, is_candidate
from mlsecops.supplychain.scanner._io import Stream
from mlsecops.supplychain.scanner._pickle_frames import CFileStream, MemRegion
from mlsecops.supplychain.scanner._pickle_state import (
    OPAQUE,
    Blob,
    Call,
    Dct,
    Glob,
    Malformed,
    WalkState,
    describe,
)

__all__ = [
    "KEEP_TOTAL",
    "MAX_STR",
    "BytesReader",
    "built_class",
    "decode_quoted",
    "int_line",
    "load_bytes",
    "name_line",
    "read_blob",
    "read_len",
    "read_text",
    "skip_joblib_array",
]

MAX_STR = 512
"""Strings up to this length are kept as themselves (names, dict keys, dtype strings)."""
_NESTED_MAX = 64 << 20
"""Largest bytes argument read into memory to walk as a nested pickle or zip (bounds memory)."""
_NESTED_DEPTH = 8
"""Deepest pickle-in-bytes nesting walked from a stream that cannot seek."""
_KEEP_BLOB = 256
"""Bytes arguments up to this size are kept whole (a loader may receive them)."""
KEEP_TOTAL = 64 << 20
"""Total bytes of long text kept whole per walker (bounds memory)."""
_NESTED_PEEK = 64
"""A kept bytes argument is probed as a nested pickle only when longer than this."""
# Allow-listed callables whose result is bytes encoded from a text argument (protocols 0-2).
_TEXT_TO_BYTES = {"_codecs.encode", "codecs.encode"}
# Generic constructors whose first argument is the class they build (copyreg's pickle helpers).
_CONSTRUCTORS = {"copyreg._reconstructor", "copyreg.__newobj__", "copyreg.__newobj_ex__"}
_DTYPE_RE = re.compile(r"^[<>|=]?([biufcOSUVMm?])(\d*)")


class BytesReader:
    """A ``RawReader`` over bytes in memory."""

    def __init__(self, data: bytes) -> None:
        self._d = memoryview(data)
        self._p = 0

    def read(self, n: int) -> bytes:
        """Read up to ``n`` bytes."""
        out = bytes(self._d[self._p : self._p + n])
        self._p += len(out)
        return out


def read_len(st: WalkState, op: int, width: int) -> int:
    """Read a ``width``-byte length argument (signed for BINSTRING and LONG4, as CPython reads them)."""
    raw = st.s.read_exact(width)
    n = int.from_bytes(raw, "little", signed=(op in (0x54, 0x8B)))
    if n < 0:
        raise Malformed(f"negative length at offset {st.s.tell() - width - 1}")
    return n


def read_text(st: WalkState, n: int, op_off: int) -> object:
    """A UTF-8 string argument of ``n`` bytes: itself when short, else a ``Blob``."""
    if n <= MAX_STR:
        raw = st.s.read_exact(n)
        if n >= MIN_INPUT and st.decoder is not None:
            st.decoder(st, raw, op_off)
        try:
            return raw.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise Malformed(f"string is not UTF-8 at offset {op_off}") from None
    out = read_blob(st, n, op_off, text=False, code=True)
    if isinstance(out, Blob):
        out.codec = "utf-8"
    return out


def read_blob(st: WalkState, n: int, op_off: int, *, text: bool, code: bool = False) -> object:
    """Read or skip a bytes/str argument; nested pickles and zips inside it are scanned.

    ``code``: a str argument, read whole (up to ``MAX_CODE``) to look for Python code in it.
    """
    s = st.s
    if text and n <= MAX_STR:
        raw = s.read_exact(n)
        if n >= MIN_INPUT and st.decoder is not None:
            st.decoder(st, raw, op_off)
        return raw.decode("latin-1")
    if type(s) is CFileStream:
        s.want(n)
    start = s.tell()
    if n <= _KEEP_BLOB:
        data = s.read_exact(n)
        if st.nested is not None and n > _NESTED_PEEK and data[:1] == b"\x80" and 2 <= data[1:2][0] <= 5:
            st.nested(Stream(MemRegion(data), s.budget), f"{st.entry}@{start}", False)
            return Blob(start, n, None, scanned=True)
        if n >= MIN_INPUT and st.decoder is not None:
            st.decoder(st, data, op_off)
        return Blob(start, n, data)
    head = s.peek(64)
    region = s.region
    if (
        st.nested is not None
        and head[:1] == b"\x80"
        and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")  # the data may end after b"\x80" (fuzzing)
        and n <= _NESTED_MAX
        and st.depth < _NESTED_DEPTH
    ):
        if region is not None:
            sub = Stream(region.sub(start, n), s.budget)
        else:
            sub = Stream(MemRegion(s.read_exact(n)), s.budget)
        st.nested(sub, f"{st.entry}@{start}", False)
        if region is not None:
            s.seek(start + n)
        return Blob(start, n, None, scanned=True)
    if st.embedded is not None and head[:4] == b"PK\x03\x04" and (region is not None or n <= _NESTED_MAX):
        # A zip inside a pickle (the torch.save bytes of a pickled storage): torch.load reads it whole.
        if region is not None:
            st.embedded(Stream(region.sub(start, n), s.budget), f"{st.entry}@{start}")
            s.seek(start + n)
        else:
            st.embedded(Stream(BytesReader(s.read_exact(n)), s.budget, size=n), f"{st.entry}@{start}")
        return Blob(start, n, None, scanned=True)
    if st.decoder is not None and ((code and n <= MAX_CODE) or is_candidate(head)):
        # Text or compressed data that may decode to a payload: read its front (bounded) and look.
        k = min(n, MAX_INPUT)
        data = region.pread(k, start) if region is not None else s.read_exact(k)
        if region is not None:
            s.skip(n)
        elif k < n:
            s.skip(n - k)
        st.decoder(st, data, op_off)
        return Blob(start, n, None, seekable=region is not None)
    s.skip(n)
    return Blob(start, n, None, seekable=region is not None)


def load_bytes(st: WalkState, args: object, op_off: int) -> None:
    """Scan the bytes an allow-listed loader (``torch.storage._load_from_bytes``) will load.

    Protocols 0-2 have no bytes opcode: bytes arrive as ``_codecs.encode(text, "latin1")``.
    """
    arg = args[0] if isinstance(args, tuple) and args else None
    as_latin1 = False
    if (
        isinstance(arg, Call)
        and isinstance(arg.func, Glob)
        and arg.func.full in _TEXT_TO_BYTES
        and isinstance(arg.args, tuple)
        and arg.args
    ):
        arg, as_latin1 = arg.args[0], True
    if isinstance(arg, Blob) and arg.scanned:
        return
    if isinstance(arg, str) and not as_latin1:
        return  # torch.load of a str opens that path, which a model file cannot supply
    data = _blob_bytes(st, arg, as_latin1)
    if data is not None and st.embedded is not None:
        start = arg.start if isinstance(arg, Blob) else op_off
        st.embedded(Stream(BytesReader(data), st.s.budget, size=len(data)), f"{st.entry}@{start}")
        return
    if (
        isinstance(arg, Blob)
        and arg.codec is None
        and arg.seekable
        and st.s.region is not None
        and st.embedded is not None
    ):
        region = st.s.region.sub(arg.start, arg.size)
        st.embedded(Stream(region, st.s.budget), f"{st.entry}@{arg.start}")
        return
    st.hit(
        Severity.MEDIUM,
        "bytes handed to a loader were not inspected",
        "torch.storage._load_from_bytes loads its argument with torch.load(weights_only=False); the "
        f"argument ({describe(arg)}) could not be followed",
        op_off,
        "torch.storage._load_from_bytes",
    )


def _blob_bytes(st: WalkState, arg: object, as_latin1: bool) -> bytes | None:
    """The bytes a loader receives for ``arg``, when we can know them (bounded)."""
    if isinstance(arg, str):
        raw_text = arg
    elif isinstance(arg, Blob):
        raw = arg.data
        if raw is None and arg.codec is not None and arg.seekable and st.s.region is not None:
            if arg.size > _NESTED_MAX:
                return None
            raw = st.s.region.pread(arg.size, arg.start)
        if raw is None:
            return None
        if arg.codec is None:
            return raw if not as_latin1 else None
        raw_text = raw.decode(arg.codec, "replace")
    else:
        return None
    if not as_latin1:
        return raw_text.encode("utf-8", "surrogatepass")
    try:
        return raw_text.encode("latin-1")
    except UnicodeEncodeError:
        return None  # the real loader fails here too


def decode_quoted(raw: bytes) -> object:
    """The text inside a protocol-0 ``STRING`` literal's quotes (``OPAQUE`` when long or undecodable)."""
    if len(raw) > MAX_STR:
        return OPAQUE
    try:
        return raw.decode("unicode_escape" if b"\\" in raw else "latin-1")
    except UnicodeDecodeError:
        return OPAQUE


def name_line(st: WalkState, op_off: int) -> str:
    """A module or qualified name line of GLOBAL/INST."""
    line = st.s.readline(1024)
    try:
        return line[:-1].decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed(f"global name is not UTF-8 at offset {op_off}") from None


def int_line(st: WalkState, op_off: int) -> int:
    """A decimal memo key line of PUT/GET."""
    try:
        return int(st.s.readline(64)[:-1])
    except ValueError:
        raise Malformed(f"bad memo key at offset {op_off}") from None


def built_class(inst: Call) -> str | None:
    """The class an instance-building call makes: its callable, or the class copyreg is given."""
    func = inst.func
    if not isinstance(func, Glob):
        return None
    if func.full in _CONSTRUCTORS and isinstance(inst.args, tuple) and inst.args:
        first = inst.args[0]
        return first.full if isinstance(first, Glob) else None
    return func.full


def skip_joblib_array(st: WalkState, wrapper: Call, op_off: int) -> None:
    """Skip the array bytes joblib writes right after a built ``NumpyArrayWrapper``."""
    state = wrapper.state
    if not isinstance(state, Dct):
        raise Malformed(f"joblib array wrapper without state at offset {op_off}")
    dtype = state.items.get("dtype")
    kind, itemsize = _dtype_size(dtype)
    if kind == "O":
        # Object arrays are a nested pickle written right after the wrapper.
        if st.nested is not None:
            st.nested(st.s, f"{st.entry}@{st.s.tell()}", True)
        return
    shape = state.items.get("shape")
    if itemsize is None or not isinstance(shape, tuple) or not all(isinstance(d, int) for d in shape):
        raise Malformed(f"cannot size the joblib array after offset {op_off}")
    count = 1
    for d in shape:
        count *= cast(int, d)
    if state.items.get("numpy_array_alignment_bytes") is not None:
        pad = st.s.read_exact(1)[0]
        st.s.skip(pad)
    st.s.skip(count * itemsize)


def _dtype_size(dtype: object) -> tuple[str | None, int | None]:
    """Kind and item size of a symbolic ``numpy.dtype(...)`` call."""
    if not isinstance(dtype, Call) or not isinstance(dtype.args, tuple) or not dtype.args:
        return None, None
    spec = dtype.args[0]
    if not isinstance(spec, str):
        return None, None
    m = _DTYPE_RE.match(spec)
    if not m:
        return None, None
    kind, digits = m.group(1), m.group(2)
    st = dtype.state
    elsize = st[5] if isinstance(st, tuple) and len(st) > 5 and isinstance(st[5], int) else -1
    if kind == "O":
        return "O", 8
    # numpy takes the item size from the pickled state only for flexible types (S, U, V); for the
    # others it keeps the size the type string names, whatever the state says.
    if kind in "SUV" and elsize and elsize > 0:
        return kind, elsize
    if not digits:
        return (kind, 1) if kind in "b?" else (kind, None)
    size = int(digits)
    return kind, size * 4 if kind == "U" else size
