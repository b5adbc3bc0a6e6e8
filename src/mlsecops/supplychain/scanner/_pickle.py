"""A symbolic pickle machine: walks opcodes with a stack and a memo, never builds a real object.

The walker mirrors the CPython unpickler opcode by opcode, but its stack holds stand-ins: short strings
and numbers as themselves, ``Glob`` for a resolved global, ``Call`` for the result of calling something,
small ``Dct``/tuples for state that matters (joblib array wrappers, torch persistent ids), and ``OPAQUE``
for everything else. Because the memo is modelled too, a name that ``STACK_GLOBAL`` builds from memo
entries (``BINGET 3; BINGET 7; STACK_GLOBAL``) resolves to the same ``module.qualname`` the real loader
would import. Every global is judged where it is referenced (``_policy.judge``), every call whose
callable is not a plain global is reported, and a ``BUILD`` whose state plants ``__setstate__`` or
``__reduce__`` is reported, so wrapping a dangerous callable in a chain cannot hide it.

Large string and bytes arguments (tensor data in protocol 4/5 pickles) are skipped, not read; arguments
that themselves start like a pickle are walked as nested pickles (``pickle.loads(b"...")``,
``torch.storage._load_from_bytes``). After a ``joblib`` ``NumpyArrayWrapper`` is built, the raw array
bytes that joblib writes inline are skipped (object arrays are a nested pickle and are walked).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from mlsecops.core.severity import Severity
from mlsecops.supplychain.scanner._io import Stream, Truncated
from mlsecops.supplychain.scanner._policy import Rule, judge
from mlsecops.supplychain.scanner._types import Budget, Hit, LimitReached, ScanLimits

__all__ = ["PICKLE_REMEDIATION", "Call", "Dct", "Glob", "Malformed", "PickleResult", "PickleWalker"]

PICKLE_REMEDIATION = (
    "Do not load this file with pickle, torch.load(weights_only=False) or joblib. Obtain the model from a "
    "trusted source, or convert its weights to safetensors in an isolated environment."
)
_MAX_STR = 512
_NESTED_MAX = 64 << 20


class Malformed(Exception):
    """The opcode stream is not a pickle the real loader would accept past this point."""


class _Opaque:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<opaque>"


OPAQUE = _Opaque()
_LOST = _Opaque()  # a memo value dropped by the memo cap


@dataclass(eq=False)
class Glob:
    """A global reference, resolved to ``module.qualname``."""

    module: str
    name: str
    full: str
    offset: int


@dataclass(eq=False)
class Call:
    """The result of calling ``func`` with ``args`` (REDUCE, NEWOBJ, OBJ, INST)."""

    func: object
    args: object
    offset: int
    state: object = None


@dataclass(eq=False)
class Dct:
    """A dict with string keys we keep (bounded)."""

    items: dict[str, object] = field(default_factory=dict)


class _Lst:
    __slots__ = ()


@dataclass(eq=False)
class Blob:
    """A bytes argument we did not keep whole: where it is, and its bytes when short."""

    start: int
    size: int
    data: bytes | None = None
    seekable: bool = False
    scanned: bool = False
    """Already scanned where it was read (a nested pickle or zip)."""
    codec: str | None = None
    """How the raw bytes decode to text (``utf-8``, ``raw_unicode_escape``); ``None`` for bytes."""


_MARK = object()


@dataclass
class PickleResult:
    """What walking one pickle produced."""

    ok: bool
    """Reached STOP."""
    start: int
    end: int
    protocol: int = 0
    value: object = None
    """Top of the stack at STOP (a stand-in)."""
    globals: set[str] = field(default_factory=set)
    persistent_ids: int = 0
    storages: dict[str, str] = field(default_factory=dict)
    """Legacy torch storages named by persistent ids: key -> storage type (``torch.FloatStorage``)."""
    error: str = ""
    opcodes: int = 0
    calls: int = 0
    """REDUCE, INST, OBJ, NEWOBJ(_EX) and BUILD opcodes executed (a probe that calls nothing is noise)."""


_ARRAY_WRAPPERS = {"joblib.numpy_pickle.NumpyArrayWrapper"}
# Allow-listed callables that hand a bytes argument to a full loader: torch.storage._load_from_bytes is
# torch.load(io.BytesIO(b), weights_only=False), which runs any pickle (zip, legacy or bare).
_BYTES_LOADERS = {"torch.storage._load_from_bytes"}
# Generic constructors whose first argument is the class they build (copyreg's pickle helpers).
_CONSTRUCTORS = {"copyreg._reconstructor", "copyreg.__newobj__", "copyreg.__newobj_ex__"}
# State keys kept however large the dict is: what planting and joblib's array reader depend on.
_KEY_STATE = frozenset({"dtype", "shape", "order", "numpy_array_alignment_bytes", "allow_mmap", "subclass"})
_KEEP_BLOB = 256
_KEEP_TOTAL = 64 << 20
_TEXT_TO_BYTES = {"_codecs.encode", "codecs.encode"}
_DUNDER_STATE = {
    "__setstate__",
    "__reduce__",
    "__reduce_ex__",
    "__getattr__",
    "__getattribute__",
    "__class__",
}


class PickleWalker:
    """Walk pickles from a ``Stream`` and report ``Hit`` values.

    Args:
        stream: positioned at the first opcode.
        limits: scan limits (opcode, memo and stack bounds).
        entry: entry name for hits (the container path of this pickle).
        report: receives each hit.
                nested: called to scan a nested pickle (stream, entry, single): ``single`` walks exactly one pickle
            and leaves the stream after it (joblib object arrays); otherwise the stream holds only pickles.
        embedded: called to scan bytes an allow-listed loader reads as a whole artifact (stream, entry).
    """

    def __init__(
        self,
        stream: Stream,
        limits: ScanLimits,
        *,
        entry: str,
        report: Callable[[Hit], None],
        nested: Callable[[Stream, str, bool], None] | None = None,
        depth: int = 0,
        embedded: Callable[[Stream, str], None] | None = None,
    ) -> None:
        self.s = stream
        self.limits = limits
        self.entry = entry
        self.report = report
        self.nested = nested
        self.depth = depth
        self.embedded = embedded
        self._seen: dict[str, int] = {}
        self._kept = 0

    # -- reporting -------------------------------------------------------------------------------------

    def _hit(self, severity: Severity, title: str, detail: str, offset: int, callable_: str | None) -> None:
        self.report(
            Hit(
                severity=severity,
                title=title,
                detail=detail,
                kind="pickle",
                entry=self.entry,
                offset=offset,
                callable=callable_,
                remediation=PICKLE_REMEDIATION,
            )
        )

    def _judge(self, module: str, name: str, offset: int, res: PickleResult) -> Glob:
        j = judge(module, name)
        res.globals.add(j.name)
        if j.rule is not Rule.ALLOW and j.name not in self._seen:
            self._seen[j.name] = offset
            if j.rule is Rule.DENY:
                self._hit(
                    Severity.CRITICAL,
                    f"dangerous callable {j.name}",
                    f"The pickle imports {j.name} ({j.reason}); loading it runs that code.",
                    offset,
                    j.name,
                )
            else:
                self._hit(
                    Severity.MEDIUM,
                    f"unknown global {j.name}",
                    f"The pickle imports {j.name}, which is not on the allow-list of what model files need.",
                    offset,
                    j.name,
                )
        return Glob(module, name, j.name, offset)

    # -- walking ---------------------------------------------------------------------------------------

    def walk(self, budget: Budget) -> PickleResult:
        """Walk one pickle, from the current position through its STOP.

        Returns:
            The result; ``ok`` is False when the stream is not (or stops being) a valid pickle.

        Raises:
            LimitReached: a scan limit was reached.
        """
        s = self.s
        res = PickleResult(ok=False, start=s.tell(), end=s.tell())
        stack: list[object] = []
        meta: list[list[object]] = []
        memo: dict[int, object] = {}
        memo_len = 0
        max_memo = self.limits.max_memo
        max_stack = self.limits.max_stack
        read = s.read
        n_ops = 0
        try:
            while True:
                op_off = s.tell()
                b = read(1)
                if not b:
                    raise Truncated(f"pickle ended without STOP at offset {op_off}")
                op = b[0]
                n_ops += 1
                if n_ops & 0xFFFF == 0:
                    budget.opcodes += 0x10000
                    if budget.opcodes > self.limits.max_opcodes:
                        raise LimitReached("opcodes", f"more than {self.limits.max_opcodes} pickle opcodes")
                    budget.check_time()
                    if len(stack) > max_stack or len(meta) > max_stack:
                        raise LimitReached("stack", f"pickle stack deeper than {max_stack}")
                # -- constants ----------------------------------------------------------------------
                if op == 0x4B:  # BININT1
                    stack.append(s.read_exact(1)[0])
                elif op == 0x4D:  # BININT2
                    stack.append(struct.unpack("<H", s.read_exact(2))[0])
                elif op == 0x4A:  # BININT
                    stack.append(struct.unpack("<i", s.read_exact(4))[0])
                elif op == 0x47:  # BINFLOAT
                    s.read_exact(8)
                    stack.append(OPAQUE)
                elif op in (0x8C, 0x58, 0x8D):  # SHORT_BINUNICODE, BINUNICODE, BINUNICODE8
                    n = self._len(op, {0x8C: 1, 0x58: 4, 0x8D: 8}[op])
                    stack.append(self._text(n, op_off, res))
                elif op in (0x43, 0x42, 0x8E, 0x96, 0x55, 0x54):  # bytes/bytearray/short+binstring
                    width = {0x43: 1, 0x42: 4, 0x8E: 8, 0x96: 8, 0x55: 1, 0x54: 4}[op]
                    n = self._len(op, width)
                    stack.append(self._blob(n, op_off, text=op in (0x55, 0x54), res=res))
                elif op == 0x8A or op == 0x8B:  # LONG1, LONG4
                    n = self._len(op, 1 if op == 0x8A else 4)
                    if n <= 16:
                        stack.append(int.from_bytes(s.read_exact(n), "little", signed=True))
                    else:
                        s.skip(n)
                        stack.append(OPAQUE)
                elif op == 0x4E:  # NONE
                    stack.append(None)
                elif op == 0x88 or op == 0x89:  # NEWTRUE, NEWFALSE
                    stack.append(op == 0x88)
                elif op in (0x49, 0x4C, 0x46):  # INT, LONG, FLOAT (text)
                    line = s.readline().rstrip(b"\n").rstrip(b"L")
                    try:
                        stack.append(int(line) if op != 0x46 else float(line))
                    except ValueError:
                        raise Malformed(f"bad number literal at offset {op_off}") from None
                elif op == 0x53:  # STRING (quoted repr)
                    line = s.readline(1 << 20).rstrip(b"\n")
                    if len(line) < 2 or line[:1] not in (b"'", b'"') or line[-1:] != line[:1]:
                        raise Malformed(f"STRING without quotes at offset {op_off}")
                    stack.append(self._decode_quoted(line[1:-1]))
                elif op == 0x56:  # UNICODE (raw-unicode-escape line)
                    line = s.readline(1 << 20).rstrip(b"\n")
                    txt = line.decode("raw_unicode_escape", "replace")
                    if len(txt) <= _MAX_STR:
                        stack.append(txt)
                    elif self._kept + len(line) <= _KEEP_TOTAL:
                        # Kept for torch.storage._load_from_bytes(codecs.encode(text, "latin1")).
                        self._kept += len(line)
                        stack.append(Blob(op_off + 1, len(line), line, codec="raw_unicode_escape"))
                    else:
                        stack.append(OPAQUE)
                # -- containers ---------------------------------------------------------------------
                elif op == 0x28:  # MARK
                    meta.append(stack)
                    stack = []
                elif op == 0x29:  # EMPTY_TUPLE
                    stack.append(())
                elif op == 0x5D:  # EMPTY_LIST
                    stack.append(_Lst())
                elif op == 0x7D:  # EMPTY_DICT
                    stack.append(Dct())
                elif op == 0x8F:  # EMPTY_SET
                    stack.append(OPAQUE)
                elif op in (0x85, 0x86, 0x87):  # TUPLE1..3
                    k = op - 0x84
                    if len(stack) < k:
                        raise Malformed(f"stack underflow at offset {op_off}")
                    items = tuple(stack[-k:])
                    del stack[-k:]
                    stack.append(items)
                elif op in (0x74, 0x6C, 0x64, 0x91):  # TUPLE, LIST, DICT, FROZENSET (mark based)
                    items_l = stack
                    stack = self._pop_mark(meta, op_off)
                    if op == 0x74:
                        stack.append(tuple(items_l) if len(items_l) <= 256 else OPAQUE)
                    elif op == 0x64:
                        d = Dct()
                        self._set_items(d, items_l)
                        stack.append(d)
                    else:
                        stack.append(_Lst() if op == 0x6C else OPAQUE)
                elif op == 0x61:  # APPEND
                    self._need(stack, 2, op_off)
                    stack.pop()
                elif op in (0x65, 0x90):  # APPENDS, ADDITEMS
                    stack = self._pop_mark(meta, op_off)
                    self._need(stack, 1, op_off)
                elif op == 0x73:  # SETITEM
                    self._need(stack, 3, op_off)
                    v = stack.pop()
                    k_ = stack.pop()
                    if isinstance(stack[-1], Dct):
                        self._set_items(stack[-1], [k_, v])
                elif op == 0x75:  # SETITEMS
                    items_l = stack
                    stack = self._pop_mark(meta, op_off)
                    self._need(stack, 1, op_off)
                    if isinstance(stack[-1], Dct):
                        self._set_items(stack[-1], items_l)
                elif op == 0x30:  # POP
                    if stack:
                        stack.pop()
                    else:
                        stack = self._pop_mark(meta, op_off)
                elif op == 0x31:  # POP_MARK
                    stack = self._pop_mark(meta, op_off)
                elif op == 0x32:  # DUP
                    self._need(stack, 1, op_off)
                    stack.append(stack[-1])
                # -- memo ---------------------------------------------------------------------------
                elif op in (0x71, 0x72, 0x70, 0x94):  # BINPUT, LONG_BINPUT, PUT, MEMOIZE
                    self._need(stack, 1, op_off)
                    if op == 0x71:
                        idx = s.read_exact(1)[0]
                    elif op == 0x72:
                        idx = struct.unpack("<I", s.read_exact(4))[0]
                    elif op == 0x70:
                        idx = self._int_line(op_off)
                    else:
                        idx = memo_len
                    if idx in memo:
                        memo[idx] = stack[-1]
                    else:
                        memo_len += 1
                        if memo_len <= max_memo:
                            memo[idx] = stack[-1]
                elif op in (0x68, 0x6A, 0x67):  # BINGET, LONG_BINGET, GET
                    if op == 0x68:
                        idx = s.read_exact(1)[0]
                    elif op == 0x6A:
                        idx = struct.unpack("<I", s.read_exact(4))[0]
                    else:
                        idx = self._int_line(op_off)
                    if idx in memo:
                        stack.append(memo[idx])
                    elif memo_len > max_memo:
                        stack.append(_LOST)
                    else:
                        raise Malformed(f"memo key {idx} read before it was written (offset {op_off})")
                # -- globals and calls --------------------------------------------------------------
                elif op == 0x63:  # GLOBAL
                    module = self._name_line(op_off)
                    name = self._name_line(op_off)
                    stack.append(self._judge(module, name, op_off, res))
                elif op == 0x93:  # STACK_GLOBAL
                    self._need(stack, 2, op_off)
                    name_v = stack.pop()
                    module_v = stack.pop()
                    if isinstance(module_v, str) and isinstance(name_v, str):
                        stack.append(self._judge(module_v, name_v, op_off, res))
                    else:
                        self._hit(
                            Severity.CRITICAL,
                            "global name built at load time",
                            "STACK_GLOBAL takes its module or name from a computed value, which no model "
                            f"file needs; the real callable cannot be known ({_describe(module_v)}, "
                            f"{_describe(name_v)}).",
                            op_off,
                            None,
                        )
                        stack.append(OPAQUE)
                elif op == 0x69:  # INST
                    module = self._name_line(op_off)
                    name = self._name_line(op_off)
                    args = stack
                    stack = self._pop_mark(meta, op_off)
                    g = self._judge(module, name, op_off, res)
                    res.calls += 1
                    stack.append(Call(g, tuple(args[:256]), op_off))
                elif op == 0x6F:  # OBJ
                    args = stack
                    stack = self._pop_mark(meta, op_off)
                    if not args:
                        raise Malformed(f"OBJ without a class at offset {op_off}")
                    self._check_callable(args[0], op_off, "OBJ")
                    res.calls += 1
                    stack.append(Call(args[0], tuple(args[1:257]), op_off))
                elif op == 0x52:  # REDUCE
                    self._need(stack, 2, op_off)
                    args_v = stack.pop()
                    func = stack.pop()
                    self._check_callable(func, op_off, "REDUCE")
                    res.calls += 1
                    if isinstance(func, Glob) and func.full in _BYTES_LOADERS:
                        self._load_bytes(args_v, op_off)
                    stack.append(Call(func, args_v, op_off))
                elif op == 0x81:  # NEWOBJ
                    self._need(stack, 2, op_off)
                    args_v = stack.pop()
                    cls = stack.pop()
                    self._check_callable(cls, op_off, "NEWOBJ")
                    res.calls += 1
                    stack.append(Call(cls, args_v, op_off))
                elif op == 0x92:  # NEWOBJ_EX
                    self._need(stack, 3, op_off)
                    stack.pop()
                    args_v = stack.pop()
                    cls = stack.pop()
                    self._check_callable(cls, op_off, "NEWOBJ_EX")
                    res.calls += 1
                    stack.append(Call(cls, args_v, op_off))
                elif op == 0x62:  # BUILD
                    self._need(stack, 2, op_off)
                    state = stack.pop()
                    inst = stack[-1]
                    self._check_build(inst, state, op_off)
                    res.calls += 1
                    if isinstance(inst, Call):
                        inst.state = state
                        cls_full = _built_class(inst)
                        if cls_full in _ARRAY_WRAPPERS:
                            self._skip_joblib_array(inst, op_off)
                            # joblib replaces the wrapper with the array it read (a later BUILD on the
                            # array reads nothing); the memo keeps the wrapper, as joblib's does.
                            stack[-1] = OPAQUE
                elif op in (0x82, 0x83, 0x84):  # EXT1, EXT2, EXT4
                    code = int.from_bytes(s.read_exact({0x82: 1, 0x83: 2, 0x84: 4}[op]), "little")
                    self._hit(
                        Severity.HIGH,
                        f"extension-registry global (code {code})",
                        "The pickle names a callable through the copyreg extension registry, which is empty "
                        "unless the loading program registered codes; the callable cannot be resolved "
                        "statically.",
                        op_off,
                        f"<extension code {code}>",
                    )
                    stack.append(OPAQUE)
                elif op in (0x50, 0x51):  # PERSID, BINPERSID
                    if op == 0x50:
                        s.readline(1 << 16)
                    else:
                        self._need(stack, 1, op_off)
                        pid = stack.pop()
                        if (
                            isinstance(pid, tuple)
                            and len(pid) >= 3
                            and pid[0] == "storage"
                            and isinstance(pid[1], Glob)
                            and isinstance(pid[2], str)
                            and len(res.storages) < max_memo
                        ):
                            res.storages[pid[2]] = pid[1].full
                    res.persistent_ids += 1
                    stack.append(OPAQUE)
                elif op in (0x97, 0x98):  # NEXT_BUFFER, READONLY_BUFFER
                    if op == 0x97:
                        stack.append(OPAQUE)
                    else:
                        self._need(stack, 1, op_off)
                # -- framing ------------------------------------------------------------------------
                elif op == 0x80:  # PROTO
                    proto = read(1)
                    if not proto or proto[0] > 5:
                        raise Malformed(f"unsupported pickle protocol at offset {op_off}")
                    res.protocol = proto[0]
                elif op == 0x95:  # FRAME
                    s.read_exact(8)
                elif op == 0x2E:  # STOP
                    res.ok = True
                    res.end = s.tell()
                    res.value = stack[-1] if stack else None
                    res.opcodes = n_ops
                    budget.opcodes += n_ops & 0xFFFF
                    return res
                else:
                    raise Malformed(f"invalid opcode 0x{op:02x} at offset {op_off}")
        except (Malformed, Truncated) as err:
            res.ok = False
            res.error = str(err)
            res.end = s.tell()
            res.opcodes = n_ops
            budget.opcodes += n_ops & 0xFFFF
            return res

    # -- helpers ---------------------------------------------------------------------------------------

    def _len(self, op: int, width: int) -> int:
        raw = self.s.read_exact(width)
        n = int.from_bytes(raw, "little", signed=(op in (0x54, 0x8B)))
        if n < 0:
            raise Malformed(f"negative length at offset {self.s.tell() - width - 1}")
        return n

    def _text(self, n: int, op_off: int, res: PickleResult) -> object:
        if n <= _MAX_STR:
            try:
                return self.s.read_exact(n).decode("utf-8", "surrogatepass")
            except UnicodeDecodeError:
                raise Malformed(f"string is not UTF-8 at offset {op_off}") from None
        out = self._blob(n, op_off, text=False, res=res)
        if isinstance(out, Blob):
            out.codec = "utf-8"
        return out

    def _blob(self, n: int, op_off: int, *, text: bool, res: PickleResult) -> object:
        """Read or skip a bytes/str argument; nested pickles and zips inside it are scanned."""
        s = self.s
        if text and n <= _MAX_STR:
            return s.read_exact(n).decode("latin-1")
        start = s.tell()
        if n <= _KEEP_BLOB:
            data = s.read_exact(n)
            if self.nested is not None and n > 64 and data[:1] == b"\x80" and 2 <= data[1:2][0] <= 5:
                self.nested(Stream(_BytesReader(data), s.budget, size=n), f"{self.entry}@{start}", False)
                return Blob(start, n, None, scanned=True)
            return Blob(start, n, data)
        head = s.peek(4)
        region = s.region
        if (
            self.nested is not None
            and head[:1] == b"\x80"
            and 2 <= head[1:2][0] <= 5
            and n <= _NESTED_MAX
            and self.depth < 8
        ):
            if region is not None:
                sub = Stream(region.sub(start, n), s.budget)
            else:
                sub = Stream(_BytesReader(s.read_exact(n)), s.budget, size=n)
            self.nested(sub, f"{self.entry}@{start}", False)
            if region is not None:
                s.seek(start + n)
            return Blob(start, n, None, scanned=True)
        if self.embedded is not None and head == b"PK\x03\x04" and (region is not None or n <= _NESTED_MAX):
            # A zip inside a pickle (the torch.save bytes of a pickled storage): torch.load reads it whole.
            if region is not None:
                self.embedded(Stream(region.sub(start, n), s.budget), f"{self.entry}@{start}")
                s.seek(start + n)
            else:
                self.embedded(
                    Stream(_BytesReader(s.read_exact(n)), s.budget, size=n), f"{self.entry}@{start}"
                )
            return Blob(start, n, None, scanned=True)
        s.skip(n)
        return Blob(start, n, None, seekable=region is not None)

    def _load_bytes(self, args: object, op_off: int) -> None:
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
        data = self._blob_bytes(arg, as_latin1)
        if data is not None and self.embedded is not None:
            start = arg.start if isinstance(arg, Blob) else op_off
            self.embedded(Stream(_BytesReader(data), self.s.budget, size=len(data)), f"{self.entry}@{start}")
            return
        if (
            isinstance(arg, Blob)
            and arg.codec is None
            and arg.seekable
            and self.s.region is not None
            and self.embedded is not None
        ):
            region = self.s.region.sub(arg.start, arg.size)
            self.embedded(Stream(region, self.s.budget), f"{self.entry}@{arg.start}")
            return
        self._hit(
            Severity.MEDIUM,
            "bytes handed to a loader were not inspected",
            "torch.storage._load_from_bytes loads its argument with torch.load(weights_only=False); the "
            f"argument ({_describe(arg)}) could not be followed",
            op_off,
            "torch.storage._load_from_bytes",
        )

    def _blob_bytes(self, arg: object, as_latin1: bool) -> bytes | None:
        """The bytes a loader receives for ``arg``, when we can know them (bounded)."""
        if isinstance(arg, str):
            raw_text = arg
        elif isinstance(arg, Blob):
            raw = arg.data
            if raw is None and arg.codec is not None and arg.seekable and self.s.region is not None:
                if arg.size > _NESTED_MAX:
                    return None
                raw = self.s.region.pread(arg.size, arg.start)
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

    def _decode_quoted(self, raw: bytes) -> object:
        if len(raw) > _MAX_STR:
            return OPAQUE
        try:
            return raw.decode("unicode_escape" if b"\\" in raw else "latin-1")
        except UnicodeDecodeError:
            return OPAQUE

    def _name_line(self, op_off: int) -> str:
        line = self.s.readline(1024)
        try:
            return line[:-1].decode("utf-8")
        except UnicodeDecodeError:
            raise Malformed(f"global name is not UTF-8 at offset {op_off}") from None

    def _int_line(self, op_off: int) -> int:
        try:
            return int(self.s.readline(64)[:-1])
        except ValueError:
            raise Malformed(f"bad memo key at offset {op_off}") from None

    @staticmethod
    def _need(stack: list[object], k: int, op_off: int) -> None:
        if len(stack) < k:
            raise Malformed(f"stack underflow at offset {op_off}")

    @staticmethod
    def _pop_mark(meta: list[list[object]], op_off: int) -> list[object]:
        if not meta:
            raise Malformed(f"no MARK on the stack at offset {op_off}")
        return meta.pop()

    @staticmethod
    def _set_items(d: Dct, items: list[object]) -> None:
        for i in range(0, len(items) - 1, 2):
            k = items[i]
            if isinstance(k, str) and (
                k in d.items or len(d.items) < 64 or k in _KEY_STATE or k.startswith("__")
            ):
                d.items[k] = items[i + 1]

    def _check_callable(self, func: object, op_off: int, opname: str) -> None:
        if isinstance(func, Glob):
            return
        if func is OPAQUE and opname.startswith("NEWOBJ"):
            return  # a class object we did not keep (e.g. obtained from the memo after the cap)
        self._hit(
            Severity.HIGH if func is not _LOST else Severity.MEDIUM,
            f"{opname} calls a computed callable",
            f"The callable of this {opname} is not a global but {_describe(func)}: a call through a "
            "chain (getattr, attrgetter, partial, a method of a returned object) that model files do "
            "not need.",
            op_off,
            _describe(func),
        )

    def _check_build(self, inst: object, state: object, op_off: int) -> None:
        states = list(state) if isinstance(state, tuple) else [state]
        for st in states:
            if isinstance(st, Dct):
                bad = sorted(_DUNDER_STATE.intersection(st.items))
                if bad:
                    self._hit(
                        Severity.CRITICAL,
                        f"BUILD plants {bad[0]}",
                        f"The state applied by BUILD sets {', '.join(bad)} on {_describe(inst)}; a later "
                        "BUILD or call then runs an arbitrary callable.",
                        op_off,
                        f"{_describe(inst)}.{bad[0]}",
                    )

    def _skip_joblib_array(self, wrapper: Call, op_off: int) -> None:
        state = wrapper.state
        if not isinstance(state, Dct):
            raise Malformed(f"joblib array wrapper without state at offset {op_off}")
        dtype = state.items.get("dtype")
        kind, itemsize = _dtype_size(dtype)
        if kind == "O":
            # Object arrays are a nested pickle written right after the wrapper.
            if self.nested is not None:
                self.nested(self.s, f"{self.entry}@{self.s.tell()}", True)
            return
        shape = state.items.get("shape")
        if itemsize is None or not isinstance(shape, tuple) or not all(isinstance(d, int) for d in shape):
            raise Malformed(f"cannot size the joblib array after offset {op_off}")
        count = 1
        for d in shape:
            count *= cast(int, d)
        if state.items.get("numpy_array_alignment_bytes") is not None:
            pad = self.s.read_exact(1)[0]
            self.s.skip(pad)
        self.s.skip(count * itemsize)


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self._d = memoryview(data)
        self._p = 0

    def read(self, n: int) -> bytes:
        out = bytes(self._d[self._p : self._p + n])
        self._p += len(out)
        return out


def _built_class(inst: Call) -> str | None:
    """The class an instance-building call makes: its callable, or the class copyreg is given."""
    func = inst.func
    if not isinstance(func, Glob):
        return None
    if func.full in _CONSTRUCTORS and isinstance(inst.args, tuple) and inst.args:
        first = inst.args[0]
        return first.full if isinstance(first, Glob) else None
    return func.full


_DTYPE_RE = re.compile(r"^[<>|=]?([biufcOSUVMm?])(\d*)")


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


def _describe(v: object) -> str:
    if isinstance(v, Glob):
        return v.full
    if isinstance(v, Call):
        return f"the result of calling {_describe(v.func)}"
    if isinstance(v, str):
        return repr(v[:60])
    if v is _LOST:
        return "a memo value beyond the memo limit"
    if isinstance(v, Dct):
        return "a dict"
    if isinstance(v, tuple):
        return "a tuple"
    return "an opaque value"
