"""The symbolic pickle machine's values and its explicit walker state.

The walker's stack holds stand-ins, never real objects: short strings and numbers as themselves,
``Glob`` for a resolved global, ``Call`` for the result of calling something, ``Dct`` and tuples for the
state that matters (joblib array wrappers, torch persistent ids), ``Blob`` for a bytes argument, and
``OPAQUE`` for everything else. ``WalkState`` is everything an opcode handler (``_pickle_ops``) reads or
changes: the stream, the stack and its marks, the memo, the result and the reporting hooks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mlsecops.core.severity import Severity
from mlsecops.supplychain.scanner._decode import MAX_TOTAL
from mlsecops.supplychain.scanner._io import Stream
from mlsecops.supplychain.scanner._policy import Rule, judge
from mlsecops.supplychain.scanner._types import Hit, ScanLimits

__all__ = [
    "LOST",
    "NO_FRAME",
    "OPAQUE",
    "PICKLE_REMEDIATION",
    "Blob",
    "Call",
    "Coll",
    "Dct",
    "Frozen",
    "Glob",
    "Lst",
    "Malformed",
    "PickleResult",
    "WalkState",
    "describe",
    "set_items",
]

PICKLE_REMEDIATION = (
    "Do not load this file with pickle, torch.load(weights_only=False) or joblib. Obtain the model from a "
    "trusted source, or convert its weights to safetensors in an isolated environment."
)
# Dict keys kept past the 64-key bound of ``Dct``: what BUILD planting and joblib's array reader use.
_KEY_STATE = frozenset({"dtype", "shape", "order", "numpy_array_alignment_bytes", "allow_mmap", "subclass"})
# Keys a ``Dct`` keeps in any case; beyond them a dict keeps dunder and ``_KEY_STATE`` keys only.
_DCT_KEYS = 64


class Malformed(Exception):
    """The opcode stream is not a pickle the real loader would accept past this point."""


class _Opaque:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<opaque>"


OPAQUE = _Opaque()
"""Any value the walker does not follow."""
LOST = _Opaque()
"""A memo value dropped by the memo cap."""
NO_FRAME = 1 << 62
"""``WalkState.frame_end`` when no frame is open (beyond any offset)."""


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
    n: int = 1
    """Objects reached when the result is traversed (``_pickle_sizes``)."""
    d: int = 0
    """Nesting depth below the result."""


class Dct:
    """A dict with string keys we keep (bounded).

    ``n`` counts the objects a traversal reaches (keys and values, ``_pickle_sizes``), ``d`` the nesting
    depth (1 when it holds plain values only). A plain class: one is made per pickled dict (hot).
    """

    __slots__ = ("d", "items", "n")

    def __init__(self) -> None:
        self.items: dict[str, object] = {}
        self.n = 1
        self.d = 1


class Lst:
    """A list (its items are not kept, only how many objects and levels they hold)."""

    __slots__ = ("d", "n")

    def __init__(self, n: int = 1, d: int = 1) -> None:
        self.n = n
        self.d = d


class Coll(Lst):
    """A set (its items are not kept)."""

    __slots__ = ()


class Frozen(Lst):
    """A hashable container whose items are not kept: a frozenset, or a tuple too long to keep."""

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
    frame_end: int | None = None
    """End of the frame open at STOP when it runs past STOP: where a framed reader's next pickle starts."""
    diverged: bool = False
    """Framing let two real readers see different opcodes (re-walked as the C unpickler reads a file)."""


@dataclass(eq=False, slots=True)
class WalkState:
    """Everything an opcode handler reads or changes.

    The first group is fixed for a walker, ``seen`` and ``kept`` last across its walks, and the rest is
    reset by ``begin`` at the start of each pickle.
    """

    s: Stream
    """The opcode stream, positioned after the current opcode while its handler runs."""
    limits: ScanLimits
    entry: str
    """Entry name for hits (the container path of this pickle)."""
    report: Callable[[Hit], None]
    nested: Callable[[Stream, str, bool], None] | None
    """Scans a nested pickle (stream, entry, single); ``single`` walks exactly one pickle."""
    embedded: Callable[[Stream, str], None] | None
    """Scans bytes an allow-listed loader reads as a whole artifact (stream, entry)."""
    depth: int
    seen: dict[str, int] = field(default_factory=dict)
    """Globals already reported -> offset of the first report (one hit per global)."""
    kept: int = 0
    """Bytes of long text kept whole (``Blob.data``) so far, bounded by ``_pickle_args.KEEP_TOTAL``."""
    res: PickleResult = field(default_factory=lambda: PickleResult(ok=False, start=0, end=0))
    stack: list[object] = field(default_factory=list)
    """The stack above the innermost MARK."""
    meta: list[list[object]] = field(default_factory=list)
    """The stacks below each open MARK, innermost last."""
    memo: dict[int, object] = field(default_factory=dict)
    memo_len: int = 0
    """Memo keys written, including those the memo cap dropped."""
    frame_end: int = NO_FRAME
    """End offset of the open frame."""
    tsizes: dict[int, tuple[tuple[object, ...], int, int]] = field(default_factory=dict)
    """Tuples that hold containers, by id: (the tuple, objects reached, depth) (``_pickle_sizes``)."""
    flagged: set[str] = field(default_factory=set)
    """Anomaly kinds already reported in this pickle (one hit each)."""
    decoder: Callable[[WalkState, bytes, int], None] | None = None
    """Looks for an encoded payload in a string or bytes argument (data, offset); ``_pickle`` sets it."""
    decode_left: list[int] = field(default_factory=lambda: [MAX_TOTAL])
    """Bytes the decoder may still produce for this walker (``_decode.MAX_TOTAL``)."""

    def begin(self, res: PickleResult) -> None:
        """Start a new pickle: empty stack, marks and memo; ``res`` collects what it produces."""
        self.res = res
        self.stack = []
        self.meta = []
        self.memo = {}
        self.memo_len = 0
        self.frame_end = NO_FRAME
        self.tsizes = {}
        self.flagged = set()

    def anomaly(
        self, kind: str, title: str, detail: str, offset: int, severity: Severity = Severity.MEDIUM
    ) -> None:
        """Report a structure no real pickler writes (once per kind and pickle)."""
        if kind in self.flagged:
            return
        self.flagged.add(kind)
        self.hit(severity, title, detail, offset, None)

    def hit(self, severity: Severity, title: str, detail: str, offset: int, callable_: str | None) -> None:
        """Report one pickle finding."""
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

    def judge(self, module: str, name: str, offset: int) -> Glob:
        """Resolve and judge a global where it is referenced; report it once if it is not allowed."""
        j = judge(module, name, self.limits.policy)
        self.res.globals.add(j.name)
        if j.forced and j.name not in self.seen:
            self.seen[j.name] = offset
            self.hit(
                Severity.LOW,
                f"scan policy forces {j.name} allowed",
                f"The pickle imports {j.name}, which the built-in deny-list denies ({j.reason}); the scan "
                "policy's force_allow overrides that. Loading this file runs that callable.",
                offset,
                j.name,
            )
        if j.rule is not Rule.ALLOW and j.name not in self.seen:
            self.seen[j.name] = offset
            if j.rule is Rule.DENY:
                self.hit(
                    Severity.CRITICAL,
                    f"dangerous callable {j.name}",
                    f"The pickle imports {j.name} ({j.reason}); loading it runs that code.",
                    offset,
                    j.name,
                )
            else:
                self.hit(
                    Severity.MEDIUM,
                    f"unknown global {j.name}",
                    f"The pickle imports {j.name}, which is not on the allow-list of what model files need.",
                    offset,
                    j.name,
                )
        return Glob(module, name, j.name, offset)

    def need(self, k: int, op_off: int) -> None:
        """Raise ``Malformed`` unless the stack above the mark holds ``k`` values."""
        if len(self.stack) < k:
            raise Malformed(f"stack underflow at offset {op_off}")

    def pop_mark(self, op_off: int) -> list[object]:
        """The stack below the innermost MARK (removed from ``meta``); the caller makes it current."""
        if not self.meta:
            raise Malformed(f"no MARK on the stack at offset {op_off}")
        return self.meta.pop()


def set_items(d: Dct, items: list[object]) -> None:
    """Apply ``key, value, ...`` pairs to ``d``, keeping string keys only, within the key bound."""
    for i in range(0, len(items) - 1, 2):
        k = items[i]
        if isinstance(k, str) and (
            k in d.items or len(d.items) < _DCT_KEYS or k in _KEY_STATE or k.startswith("__")
        ):
            d.items[k] = items[i + 1]


def describe(v: object) -> str:
    """A short description of a stand-in for a finding."""
    if isinstance(v, Glob):
        return v.full
    if isinstance(v, Call):
        return f"the result of calling {describe(v.func)}"
    if isinstance(v, str):
        return repr(v[:60])
    if v is LOST:
        return "a memo value beyond the memo limit"
    if isinstance(v, Dct):
        return "a dict"
    if isinstance(v, tuple):
        return "a tuple"
    return "an opaque value"
