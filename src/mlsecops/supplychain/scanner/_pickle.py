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

Three more readings of the same bytes live here: frames (``_pickle_frames``: the loop keeps the end of
the open frame and reports an opcode that runs over it; a diverging pickle is walked again the way the
C unpickler reads a file), sizes (``_pickle_sizes``: how many objects and levels the loaded value
would have, for expansion and nesting bombs), and encoded payloads (``_decode``: string and bytes values
that are, or decode to, a pickle or Python code; pickles found are walked by a nested walker).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace

from mlsecops.core.severity import Severity
from mlsecops.supplychain.scanner._decode import (
    MAX_LAYERS,
    MAX_TOTAL,
    dangerous_calls,
    decode_layers,
    is_candidate,
    looks_like_pickle,
)
from mlsecops.supplychain.scanner._io import Stream, Truncated
from mlsecops.supplychain.scanner._pickle_frames import CFileStream, MemRegion
from mlsecops.supplychain.scanner._pickle_opcodes import dispatch_table
from mlsecops.supplychain.scanner._pickle_ops_calls import CALL_OPS
from mlsecops.supplychain.scanner._pickle_ops_data import DATA_OPS
from mlsecops.supplychain.scanner._pickle_state import (
    NO_FRAME,
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
        self._args = (entry, report, nested, depth, embedded)
        self._seen_hits: list[Hit] = []

        def record(h: Hit) -> None:
            self._seen_hits.append(h)
            report(h)

        self._state = WalkState(
            s=stream, limits=limits, entry=entry, report=record, nested=nested, embedded=embedded, depth=depth
        )
        if depth < MAX_LAYERS:
            self._state.decoder = _decoded

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
        fe = NO_FRAME  # end of the open frame (a local copy of st.frame_end: the loop is hot)
        try:
            while True:
                op_off = tell()
                if op_off >= fe:
                    if op_off > fe:
                        _crossed(st, fe)
                    fe = st.frame_end = NO_FRAME
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
                r = dispatch[op](st, op, op_off)
                if r:
                    if r is True:
                        break
                    fe = st.frame_end  # FRAME opened a frame
        except (Malformed, Truncated) as err:
            res.ok = False
            res.error = str(err)
            res.end = s.tell()
            if fe != NO_FRAME and res.end > fe:
                _crossed(st, fe)  # the failing opcode ran over the frame end: a C reader reads on
            if isinstance(err, Truncated) and any(
                w in res.error for w in ("wanted", "past the end", "ended inside a skipped")
            ):
                st.anomaly(
                    "eof",
                    "declared length runs past the end of the data",
                    f"{res.error}: an opcode announces more bytes than the data holds; loaders stop here, "
                    "after running what came before.",
                    res.end,
                )
        res.opcodes = n_ops
        budget.opcodes += n_ops & mask
        if res.diverged and type(s) is not CFileStream:
            self._rewalk(res, budget)
        return res

    def _rewalk(self, res: PickleResult, budget: Budget) -> None:
        """Walk the pickle again as the C unpickler reads a file (``_pickle_frames``); report what is new."""
        region = self._state.s.region
        if region is None:
            return  # not re-readable; the framing anomaly itself was reported
        entry, report, nested, depth, embedded = self._args
        first = {(h.title, h.callable) for h in self._seen_hits}

        def relay(h: Hit) -> None:
            if (h.title, h.callable) not in first:
                report(replace(h, title=f"{h.title} (as the C unpickler reads frames from a file)"))

        w = PickleWalker(
            CFileStream(region, budget, res.start),
            self.limits,
            entry=entry,
            report=relay,
            nested=nested,
            depth=depth,
            embedded=embedded,
        )
        w.walk(budget)


def _decoded(st: WalkState, data: bytes, offset: int) -> None:
    """Look for a pickle or Python code in a string or bytes argument, plain or encoded (``_decode``)."""
    if not data.isascii():
        # A str value: a loader that wants bytes encodes it with latin-1 (gzip text kept in a str).
        try:
            alt = data.decode("utf-8").encode("latin-1")
        except (UnicodeDecodeError, UnicodeEncodeError):
            alt = None
        if alt is not None and alt != data:
            _decoded(st, alt, offset)
    if not is_candidate(data):
        return
    if st.decode_left[0] <= 0:
        st.anomaly(
            "decode-budget",
            "too much encoded-looking data to decode",
            f"the pickle's strings decoded to more than {MAX_TOTAL} bytes; later strings were not decoded, "
            "so a payload encoded in them would not be seen.",
            offset,
        )
        return
    calls = dangerous_calls(data)
    if calls:
        _code_hit(st, "", calls, offset)
    layers = decode_layers(data, st.decode_left)
    if looks_like_pickle(data[:256]):  # a pickle kept as it is (short ones are not walked as nested)
        layers = itertools.chain([("a pickle kept as data", data)], layers)
    for chain, out in layers:
        if looks_like_pickle(out[:256]):
            buf: list[Hit] = []
            sub = Stream(MemRegion(out), st.s.budget)
            w = PickleWalker(
                sub, st.limits, entry=f"{st.entry}@{offset}", report=buf.append, depth=st.depth + 1
            )
            res = w.walk(st.s.budget)
            # Decoded bytes that happen to start like a pickle are noise unless the walk names a
            # callable that is not allowed (structure findings alone are not reported for them).
            if (res.ok or res.calls) and any(h.callable and h.severity >= Severity.MEDIUM for h in buf):
                for h in buf:
                    if h.severity >= Severity.MEDIUM:
                        st.report(replace(h, title=f"encoded payload ({chain}): {h.title}", offset=offset))
        else:
            calls = dangerous_calls(out)
            if calls:
                _code_hit(st, chain, calls, offset)


def _code_hit(st: WalkState, chain: str, calls: list[str], offset: int) -> None:
    first = next(c for c in calls if not c.startswith(("import ", "from ")))
    how = f"encoded ({chain})" if chain else "as plain text"
    st.hit(
        Severity.HIGH,
        f"Python code in a pickle string{f' ({chain})' if chain else ''}",
        f"A string or bytes value of the pickle holds Python code {how} that calls {', '.join(calls[:4])}; "
        "it was parsed, never run. Code stored as data runs when something passes it to exec or eval.",
        offset,
        first,
    )


def _crossed(st: WalkState, fe: int) -> None:
    """An opcode started inside the open frame and ended after it: the readers of frames disagree."""
    st.res.diverged = True
    st.anomaly(
        "frame-cross",
        "opcode crosses the end of a frame",
        f"the frame ending at offset {fe} ends inside an opcode's argument; picklers close frames between "
        "opcodes. The Python unpickler fails here, the C unpickler reading a file takes the argument from "
        "after the frame, and a straight reading takes it across: each sees different opcodes.",
        fe,
        Severity.MEDIUM,
    )
