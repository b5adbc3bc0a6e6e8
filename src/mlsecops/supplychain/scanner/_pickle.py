"""A symbolic pickle machine: walks opcodes with a stack and a memo, never builds a real object.

The walker mirrors the CPython unpickler opcode by opcode, but its stack holds stand-ins
(``_pickle_state``): short strings and numbers as themselves, ``Glob`` for a resolved global, ``Call``
for the result of calling something, small ``Dct``/tuples for state that matters (joblib array wrappers,
torch persistent ids), and ``OPAQUE`` for everything else. Because the memo is modelled too, a name that
``STACK_GLOBAL`` builds from memo entries (``BINGET 3; BINGET 7; STACK_GLOBAL``) resolves to the same
``module.qualname`` the real loader would import.

Each opcode has one handler, registered by name (``_pickle_opcodes``): values, containers, the memo and
framing in ``_pickle_ops_data``; globals, calls and persistent ids in ``_pickle_ops_calls`` (judging
each global, reporting computed callables and planted ``__setstate__``). Handlers share one explicit
``WalkState`` and run from a 256-entry dispatch table; ``_pickle_args`` reads their arguments (large
strings and bytes are skipped, nested pickles and zips in them are scanned, joblib's inline array bytes
are skipped). This module runs the loop and checks its limits.
"""

from __future__ import annotations

from collections.abc import Callable

from mlsecops.supplychain.scanner._io import Stream, Truncated
from mlsecops.supplychain.scanner._pickle_opcodes import dispatch_table
from mlsecops.supplychain.scanner._pickle_ops_calls import CALL_OPS
from mlsecops.supplychain.scanner._pickle_ops_data import DATA_OPS
from mlsecops.supplychain.scanner._pickle_state import (
    PICKLE_REMEDIATION,
    Call,
    Dct,
    Glob,
    Malformed,
    PickleResult,
    WalkState,
)
from mlsecops.supplychain.scanner._types import Budget, Hit, LimitReached, ScanLimits

__all__ = ["PICKLE_REMEDIATION", "Call", "Dct", "Glob", "Malformed", "PickleResult", "PickleWalker"]

_DISPATCH = dispatch_table(DATA_OPS, CALL_OPS)
"""The handler of each opcode byte (``_pickle_opcodes``)."""
_CHECK_EVERY = 0x10000
"""Opcodes between checks of the opcode, time and stack limits (a power of two: a mask test)."""


class PickleWalker:
    """Walk pickles from a ``Stream`` and report ``Hit`` values.

    Args:
        stream: positioned at the first opcode.
        limits: scan limits (opcode, memo and stack bounds).
        entry: entry name for hits (the container path of this pickle).
        report: receives each hit.
        nested: called to scan a nested pickle (stream, entry, single): ``single`` walks exactly one pickle
            and leaves the stream after it (joblib object arrays); otherwise the stream holds only pickles.
        depth: nesting depth of this pickle inside others.
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
        self.limits = limits
        self._state = WalkState(
            s=stream, limits=limits, entry=entry, report=report, nested=nested, embedded=embedded, depth=depth
        )

    def walk(self, budget: Budget) -> PickleResult:
        """Walk one pickle, from the current position through its STOP.

        Returns:
            The result; ``ok`` is False when the stream is not (or stops being) a valid pickle.

        Raises:
            LimitReached: a scan limit was reached.
        """
        st = self._state
        s = st.s
        res = PickleResult(ok=False, start=s.tell(), end=s.tell())
        st.begin(res)
        limits = self.limits
        max_stack = limits.max_stack
        dispatch = _DISPATCH
        read = s.read
        tell = s.tell
        mask = _CHECK_EVERY - 1
        n_ops = 0
        try:
            while True:
                op_off = tell()
                b = read(1)
                if not b:
                    raise Truncated(f"pickle ended without STOP at offset {op_off}")
                op = b[0]
                n_ops += 1
                if n_ops & mask == 0:
                    budget.opcodes += _CHECK_EVERY
                    if budget.opcodes > limits.max_opcodes:
                        raise LimitReached("opcodes", f"more than {limits.max_opcodes} pickle opcodes")
                    budget.check_time()
                    if len(st.stack) > max_stack or len(st.meta) > max_stack:
                        raise LimitReached("stack", f"pickle stack deeper than {max_stack}")
                if dispatch[op](st, op, op_off):
                    break
        except (Malformed, Truncated) as err:
            res.ok = False
            res.error = str(err)
            res.end = s.tell()
        res.opcodes = n_ops
        budget.opcodes += n_ops & mask
        return res
