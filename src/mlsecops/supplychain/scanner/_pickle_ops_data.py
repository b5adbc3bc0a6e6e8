"""Handlers of the opcodes that push values, build containers, use the memo, or frame the pickle.

Values the walker does not need are pushed as ``OPAQUE``; short strings and small ints are kept (names,
dict keys, shapes, the torch legacy magic number). Large string and bytes arguments are read or skipped
by ``_pickle_args`` (which scans a nested pickle or zip inside them). The memo is modelled with a cap:
past ``ScanLimits.max_memo`` keys, new keys are counted but not kept, and reading one pushes ``LOST``.
"""

from __future__ import annotations

import codecs
import struct

from mlsecops.supplychain.scanner._decode import MAX_INPUT, MIN_INPUT
from mlsecops.supplychain.scanner._io import Truncated
from mlsecops.supplychain.scanner._pickle_args import (
    KEEP_TOTAL,
    MAX_STR,
    decode_quoted,
    int_line,
    read_blob,
    read_len,
    read_text,
)
from mlsecops.supplychain.scanner._pickle_frames import CFileStream
from mlsecops.supplychain.scanner._pickle_opcodes import Handler, registrar
from mlsecops.supplychain.scanner._pickle_sizes import NESTED, grow, measure, new_tuple
from mlsecops.supplychain.scanner._pickle_state import (
    LOST,
    NO_FRAME,
    OPAQUE,
    Blob,
    Coll,
    Dct,
    Frozen,
    Lst,
    Malformed,
    WalkState,
    set_items,
)

__all__ = ["DATA_OPS", "MAX_TUPLE"]

DATA_OPS: dict[int, Handler] = {}
"""Opcode -> handler, for the opcodes of this module."""
handles = registrar(DATA_OPS)

_LEN_WIDTH = {
    0x8C: 1,
    0x58: 4,
    0x8D: 8,
    0x43: 1,
    0x42: 4,
    0x8E: 8,
    0x96: 8,
    0x55: 1,
    0x54: 4,
    0x8A: 1,
    0x8B: 4,
}
"""Width in bytes of the length argument of each counted string, bytes and long opcode."""
MAX_TUPLE = 256
"""Items kept of a mark-based tuple or call argument list (longer tuples become ``OPAQUE``)."""
_LONG_KEPT = 16
"""LONG1/LONG4 values up to this many bytes are kept as ints (the torch legacy magic number is 10)."""
_LINE_MAX = 64 << 20
"""Longest protocol-0 STRING/UNICODE line read (a protocol-0 array's bytes are one such line)."""
_U16 = struct.Struct("<H").unpack
_I32 = struct.Struct("<i").unpack
_U32 = struct.Struct("<I").unpack


# -- constants ----------------------------------------------------------------------------------------


@handles("BININT1")
def _binint1(st: WalkState, op: int, op_off: int) -> None:
    st.stack.append(st.s.read_exact(1)[0])


@handles("BININT2")
def _binint2(st: WalkState, op: int, op_off: int) -> None:
    st.stack.append(_U16(st.s.read_exact(2))[0])


@handles("BININT")
def _binint(st: WalkState, op: int, op_off: int) -> None:
    st.stack.append(_I32(st.s.read_exact(4))[0])


@handles("BINFLOAT")
def _binfloat(st: WalkState, op: int, op_off: int) -> None:
    st.s.read_exact(8)
    st.stack.append(OPAQUE)


@handles("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8")
def _binunicode(st: WalkState, op: int, op_off: int) -> None:
    n = read_len(st, op, _LEN_WIDTH[op])
    st.stack.append(read_text(st, n, op_off))


@handles("SHORT_BINBYTES", "BINBYTES", "BINBYTES8", "BYTEARRAY8", "SHORT_BINSTRING", "BINSTRING")
def _binbytes(st: WalkState, op: int, op_off: int) -> None:
    n = read_len(st, op, _LEN_WIDTH[op])
    st.stack.append(read_blob(st, n, op_off, text=op in (0x55, 0x54)))


@handles("LONG1", "LONG4")
def _long(st: WalkState, op: int, op_off: int) -> None:
    n = read_len(st, op, _LEN_WIDTH[op])
    if n <= _LONG_KEPT:
        st.stack.append(int.from_bytes(st.s.read_exact(n), "little", signed=True))
    else:
        st.s.skip(n)
        st.stack.append(OPAQUE)


@handles("NONE")
def _none(st: WalkState, op: int, op_off: int) -> None:
    st.stack.append(None)


@handles("NEWTRUE", "NEWFALSE")
def _bool(st: WalkState, op: int, op_off: int) -> None:
    st.stack.append(op == 0x88)


@handles("INT", "LONG", "FLOAT")
def _number_line(st: WalkState, op: int, op_off: int) -> None:
    line = st.s.readline().rstrip(b"\n").rstrip(b"L")
    try:
        st.stack.append(int(line) if op != 0x46 else float(line))
    except ValueError:
        raise Malformed(f"bad number literal at offset {op_off}") from None


def _long_line(st: WalkState) -> bytes:
    """A line of up to ``_LINE_MAX`` bytes, found with growing peeks (linear in its length)."""
    s = st.s
    if type(s) is CFileStream:
        return s.readline(_LINE_MAX)
    want = 4096
    while True:
        head = s.peek(want)
        i = head.find(b"\n")
        if i >= 0:
            return s.read_exact(i + 1)
        if len(head) < want:
            raise Truncated(f"pickle ended inside a text line at offset {s.tell() + len(head)}")
        if want >= _LINE_MAX:
            raise Malformed(f"no end of line within {_LINE_MAX} bytes at offset {s.tell()}")
        want = min(want * 4, _LINE_MAX)


@handles("STRING")
def _string(st: WalkState, op: int, op_off: int) -> None:
    line = _long_line(st).rstrip(b"\n")
    if len(line) < 2 or line[:1] not in (b"'", b'"') or line[-1:] != line[:1]:
        raise Malformed(f"STRING without quotes at offset {op_off}")
    if len(line) >= MIN_INPUT and st.decoder is not None:
        try:
            raw = codecs.escape_decode(line[1 : MAX_INPUT + 1])[0]  # the bytes the loader makes
        except ValueError:
            raw = line[1:-1]
        st.decoder(st, raw, op_off)
    st.stack.append(decode_quoted(line[1:-1]))


@handles("UNICODE")
def _unicode(st: WalkState, op: int, op_off: int) -> None:
    line = _long_line(st).rstrip(b"\n")
    txt = line.decode("raw_unicode_escape", "replace")
    if len(line) >= MIN_INPUT and st.decoder is not None:
        st.decoder(st, txt[:MAX_INPUT].encode("utf-8", "surrogatepass"), op_off)
    if len(txt) <= MAX_STR:
        st.stack.append(txt)
    elif st.kept + len(line) <= KEEP_TOTAL:
        # Kept for torch.storage._load_from_bytes(codecs.encode(text, "latin1")).
        st.kept += len(line)
        st.stack.append(Blob(op_off + 1, len(line), line, codec="raw_unicode_escape"))
    else:
        st.stack.append(OPAQUE)


# -- containers ---------------------------------------------------------------------------------------


@handles("MARK")
def _mark(st: WalkState, op: int, op_off: int) -> None:
    st.meta.append(st.stack)
    st.stack = []


@handles("EMPTY_TUPLE")
def _empty_tuple(st: WalkState, op: int, op_off: int) -> None:
    st.stack.append(())


@handles("EMPTY_LIST")
def _empty_list(st: WalkState, op: int, op_off: int) -> None:
    st.stack.append(Lst())


@handles("EMPTY_DICT")
def _empty_dict(st: WalkState, op: int, op_off: int) -> None:
    st.stack.append(Dct())


@handles("EMPTY_SET")
def _empty_set(st: WalkState, op: int, op_off: int) -> None:
    st.stack.append(Coll())


@handles("TUPLE1", "TUPLE2", "TUPLE3")
def _tuple_n(st: WalkState, op: int, op_off: int) -> None:
    k = op - 0x84
    stack = st.stack
    if len(stack) < k:
        raise Malformed(f"stack underflow at offset {op_off}")
    items = stack[-k:]
    del stack[-k:]
    stack.append(new_tuple(st, items))


@handles("TUPLE")
def _tuple(st: WalkState, op: int, op_off: int) -> None:
    items = st.stack
    st.stack = st.pop_mark(op_off)
    if len(items) <= MAX_TUPLE:
        st.stack.append(new_tuple(st, items))
    else:
        n, d = measure(st, items)
        st.stack.append(Frozen(n + 1, d + 1))  # a long tuple: only its size is kept


@handles("DICT")
def _dict(st: WalkState, op: int, op_off: int) -> None:
    items = st.stack
    st.stack = st.pop_mark(op_off)
    d = Dct()
    if grow(st, d, items):
        _hashable_keys(st, items, 2, op_off)
    set_items(d, items)
    st.stack.append(d)


def _hashable_keys(st: WalkState, items: list[object], step: int, op_off: int) -> None:
    """Refuse a list, dict or set used as a dict key or set member: the real loader raises there.

    A container that holds itself this way (a dict as its own key, a set in itself) is an impossible
    cycle no pickler writes; what came before it has already run.
    """
    for i in range(0, len(items), step):
        if type(items[i]) in _UNHASHABLE:
            st.anomaly(
                "unhashable",
                "impossible structure: a list, dict or set used as a key or set member",
                "The pickle uses a mutable container (possibly the container itself) as a dict key or set "
                "member; no pickler writes this, and the real loader fails here after running what came "
                "before.",
                op_off,
            )
            raise Malformed(f"unhashable dict key or set member at offset {op_off}")


_UNHASHABLE = frozenset({Lst, Dct, Coll})
_PLAIN = NESTED.isdisjoint
"""Whether the types of some items are all plain values (no container whose size must be added)."""


@handles("LIST")
def _list(st: WalkState, op: int, op_off: int) -> None:
    items = st.stack
    st.stack = st.pop_mark(op_off)
    lst = Lst()
    grow(st, lst, items)
    st.stack.append(lst)


@handles("FROZENSET")
def _frozenset(st: WalkState, op: int, op_off: int) -> None:
    items = st.stack
    st.stack = st.pop_mark(op_off)
    c = Frozen()
    if grow(st, c, items):
        _hashable_keys(st, items, 1, op_off)
    st.stack.append(c)


@handles("APPEND")
def _append(st: WalkState, op: int, op_off: int) -> None:
    st.need(2, op_off)
    item = st.stack.pop()
    grow(st, st.stack[-1], (item,))


@handles("APPENDS", "ADDITEMS")
def _appends(st: WalkState, op: int, op_off: int) -> None:
    items = st.stack
    st.stack = st.pop_mark(op_off)
    st.need(1, op_off)
    if grow(st, st.stack[-1], items) and op == 0x90:
        _hashable_keys(st, items, 1, op_off)


@handles("SETITEM")
def _setitem(st: WalkState, op: int, op_off: int) -> None:
    st.need(3, op_off)
    stack = st.stack
    v = stack.pop()
    k = stack.pop()
    if type(k) in _UNHASHABLE:
        _hashable_keys(st, [k], 1, op_off)
    target = stack[-1]
    if isinstance(target, Dct):
        set_items(target, [k, v])
    grow(st, target, (k, v))


@handles("SETITEMS")
def _setitems(st: WalkState, op: int, op_off: int) -> None:
    items = st.stack
    st.stack = st.pop_mark(op_off)
    st.need(1, op_off)
    target = st.stack[-1]
    if type(target) is Dct and _PLAIN(map(type, items)):  # the common case, inlined (hot)
        target.n += len(items)
    elif grow(st, target, items):
        _hashable_keys(st, items, 2, op_off)
    if isinstance(target, Dct):
        set_items(target, items)


@handles("POP")
def _pop(st: WalkState, op: int, op_off: int) -> None:
    if st.stack:
        st.stack.pop()
    else:
        st.stack = st.pop_mark(op_off)


@handles("POP_MARK")
def _pop_mark(st: WalkState, op: int, op_off: int) -> None:
    st.stack = st.pop_mark(op_off)


@handles("DUP")
def _dup(st: WalkState, op: int, op_off: int) -> None:
    st.need(1, op_off)
    st.stack.append(st.stack[-1])


# -- memo ---------------------------------------------------------------------------------------------


def _put(st: WalkState, idx: int) -> None:
    """Memoize the top of the stack; past ``max_memo`` keys new keys are counted, not stored."""
    memo = st.memo
    if idx in memo:
        st.anomaly(
            "memo-rewrite",
            "memo key written twice",
            f"memo key {idx} is overwritten; picklers number memo entries once, in order, so a rewritten key "
            "changes what a later GET (a global's name, a callable) refers to.",
            st.s.tell(),
        )
        memo[idx] = st.stack[-1]
    else:
        st.memo_len += 1
        if st.memo_len <= st.limits.max_memo:
            memo[idx] = st.stack[-1]


@handles("BINPUT")
def _binput(st: WalkState, op: int, op_off: int) -> None:
    st.need(1, op_off)
    _put(st, st.s.read_exact(1)[0])


@handles("LONG_BINPUT")
def _long_binput(st: WalkState, op: int, op_off: int) -> None:
    st.need(1, op_off)
    _put(st, _U32(st.s.read_exact(4))[0])


@handles("PUT")
def _put_line(st: WalkState, op: int, op_off: int) -> None:
    st.need(1, op_off)
    _put(st, int_line(st, op_off))


@handles("MEMOIZE")
def _memoize(st: WalkState, op: int, op_off: int) -> None:
    st.need(1, op_off)
    _put(st, st.memo_len)


def _get(st: WalkState, idx: int, op_off: int) -> None:
    """Push a memo value; a key dropped by the memo cap pushes ``LOST``."""
    memo = st.memo
    if idx in memo:
        st.stack.append(memo[idx])
    elif st.memo_len > st.limits.max_memo:
        st.stack.append(LOST)
    else:
        raise Malformed(f"memo key {idx} read before it was written (offset {op_off})")


@handles("BINGET")
def _binget(st: WalkState, op: int, op_off: int) -> None:
    _get(st, st.s.read_exact(1)[0], op_off)


@handles("LONG_BINGET")
def _long_binget(st: WalkState, op: int, op_off: int) -> None:
    _get(st, _U32(st.s.read_exact(4))[0], op_off)


@handles("GET")
def _get_line(st: WalkState, op: int, op_off: int) -> None:
    _get(st, int_line(st, op_off), op_off)


# -- framing ------------------------------------------------------------------------------------------


@handles("PROTO")
def _proto(st: WalkState, op: int, op_off: int) -> None:
    proto = st.s.read(1)
    if not proto or proto[0] > 5:
        raise Malformed(f"unsupported pickle protocol at offset {op_off}")
    if op_off != st.res.start:
        st.anomaly(
            "proto",
            "PROTO opcode after the start of the pickle",
            f"a PROTO opcode at offset {op_off} changes the protocol mid-stream (to {proto[0]}); picklers write "
            "it once, first. A later protocol below 3 turns on the unpickler's Python 2 name mapping.",
            op_off,
        )
    st.res.protocol = proto[0]


_FRAME_MIN = 4
"""Shortest frame picklers write (CPython leaves shorter data unframed)."""


@handles("FRAME")
def _frame(st: WalkState, op: int, op_off: int) -> int:
    s = st.s
    n = int.from_bytes(s.read_exact(8), "little")
    start = s.tell()
    if st.frame_end != NO_FRAME and op_off < st.frame_end:
        st.res.diverged = True
        st.anomaly(
            "frame-nested",
            "frame opened inside a frame",
            f"a FRAME at offset {op_off} starts before the frame open since ends (at {st.frame_end}); the "
            "Python unpickler refuses this, the C unpickler reads on, and the two see different opcodes.",
            op_off,
        )
    if n < _FRAME_MIN:
        st.anomaly("frame-short", "frame shorter than picklers write", f"a FRAME of {n} bytes", op_off)
    if s.size is not None and start + n > s.size:
        st.anomaly(
            "frame-eof",
            "frame runs past the end of the data",
            f"the FRAME at offset {op_off} declares {n} bytes; only {s.size - start} follow. Loaders stop "
            "here (after running what came before).",
            op_off,
        )
    if type(s) is CFileStream:
        s.frame(n)
    st.frame_end = s.tell() + n if type(s) is CFileStream else start + n
    return 2  # tells the walk loop that the frame changed


@handles("STOP")
def _stop(st: WalkState, op: int, op_off: int) -> bool:
    res = st.res
    res.ok = True
    res.end = st.s.tell()
    res.value = st.stack[-1] if st.stack else None
    if len(st.stack) != 1 or st.meta:
        st.anomaly(
            "stack",
            "stack not empty at STOP",
            f"{len(st.stack) + sum(len(m) for m in st.meta)} values and {len(st.meta)} marks are on the stack "
            "at STOP; picklers leave exactly the result, so something was built (or called) and discarded.",
            op_off,
        )
    if st.frame_end != NO_FRAME and res.end < st.frame_end:
        res.frame_end = st.frame_end
        st.anomaly(
            "frame-tail",
            "frame continues after STOP",
            f"the frame open at STOP ends at offset {st.frame_end}, {st.frame_end - res.end} bytes later; "
            "picklers end the last frame with STOP. A framed reader starts its next pickle at the frame's "
            "end, an unframed one right after STOP, so the two read different next pickles.",
            op_off,
        )
    return True
