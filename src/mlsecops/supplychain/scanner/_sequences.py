"""Pickle streams and unrecognised bytes: consecutive pickles, legacy torch tails, embedded-pickle search.

A file may hold several pickles in a row (PyTorch's legacy format reads five), a pickle after junk, or
a pickle hidden in data no parser claims. ``PickleScanning`` walks every pickle of a stream, skips the
raw storages of a legacy checkpoint by their sizes and looks at whatever follows them, and searches
unrecognised bytes for pickle headers (probing each one) and protocol-0 globals.
"""

from __future__ import annotations

import re
from dataclasses import replace

from mlsecops.core.severity import Severity
from mlsecops.supplychain.scanner._base import ScannerBase
from mlsecops.supplychain.scanner._io import CHUNK, FileRegion, Stream
from mlsecops.supplychain.scanner._pickle import PICKLE_REMEDIATION, PickleWalker
from mlsecops.supplychain.scanner._policy import Rule, judge
from mlsecops.supplychain.scanner._targets import scan_targets
from mlsecops.supplychain.scanner._types import ATLAS_ARTIFACT, Budget, Hit

__all__ = ["PickleScanning"]

_TORCH_MAGIC = 0x1950A86A20F9469CFC6C
# A protocol-0 GLOBAL/INST at an opcode boundary (not inside a word). Each match is confirmed by walking
# a pickle from it: only one that calls something or reaches STOP is reported, so word lists
# ("cos\nsine\n(tangent)") in text files are not mistaken for pickles.
# The "not inside a word" test is the look-behind after the opcode byte: the pattern still starts with
# a character class (the engine's fast scan), and a candidate starts only where a run of word bytes
# does, so each byte is read a bounded number of times. Testing it after each match instead let a run
# of 8 MiB of "i" bytes cost 120 steps per byte (24 s for 174 compressed bytes; found by fuzzing).
_P0_GLOBAL = re.compile(rb"[ci](?<![\w.][ci])([A-Za-z_][\w.]{0,120})\n([A-Za-z_][\w.]{0,120})\n")
_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+\Z")  # module.qualname, as the walker resolves it
# Protocol-4 STACK_GLOBAL from two SHORT_BINUNICODE names (optionally memoized), with or without a
# PROTO header before it: where a loader started reading cannot be known inside unrecognised bytes.
# One pattern per string opcode, each starting with its literal opcode byte and requiring a name's first
# character: literal-prefixed patterns are scanned at memchr speed, an alternation is 20x slower.
_SG_GLOBALS = tuple(
    re.compile(p)
    for p in (
        rb"\x8c[\x01-\x78][A-Za-z_]",
        rb"X[\x01-\x78]\x00\x00\x00[A-Za-z_]",
        rb"T[\x01-\x78]\x00\x00\x00[A-Za-z_]",
        rb"\x8d[\x01-\x78]\x00{7}[A-Za-z_]",
    )
)
# String opcodes a STACK_GLOBAL name can come from: opcode -> width of its length field.
_STR_OPS = {0x8C: 1, 0x58: 4, 0x55: 1, 0x54: 4, 0x8D: 8}
_PROTO = re.compile(rb"\x80[\x02-\x05]")
_MAX_PROBES = 20_000
_ELEMENT_SIZE = {
    "FloatStorage": 4,
    "DoubleStorage": 8,
    "HalfStorage": 2,
    "BFloat16Storage": 2,
    "LongStorage": 8,
    "IntStorage": 4,
    "ShortStorage": 2,
    "CharStorage": 1,
    "ByteStorage": 1,
    "BoolStorage": 1,
    "ComplexFloatStorage": 8,
    "ComplexDoubleStorage": 16,
    "UntypedStorage": 1,
    "QInt8Storage": 1,
    "QUInt8Storage": 1,
    "QInt32Storage": 4,
    "QUInt4x2Storage": 1,
    "QUInt2x4Storage": 1,
}


def _stack_global_at(buf: bytes, i: int) -> tuple[str, str] | None:
    """(module, name) when ``buf[i:]`` is two string pushes (each maybe memoized) then STACK_GLOBAL."""
    names = []
    for _ in range(2):
        width = _STR_OPS.get(buf[i]) if i < len(buf) else None
        if width is None:
            return None
        n = int.from_bytes(buf[i + 1 : i + 1 + width], "little")
        raw = buf[i + 1 + width : i + 1 + width + n]
        if n > 256 or len(raw) != n:
            return None
        try:
            names.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            return None
        i += 1 + width + n
        if buf[i : i + 1] == b"\x94":
            i += 1
        elif buf[i : i + 1] == b"q":
            i += 2
    if buf[i : i + 1] != b"\x93":
        return None
    return names[0], names[1]


class _ProbeBudget(Budget):
    """Budget for embedded-pickle probes: bytes re-read from memory are not charged, time is."""

    def __init__(self, main: Budget) -> None:
        super().__init__(main.limits, started=main.started)

    def charge(self, nbytes: int) -> None:
        self.check_time()


class _MemReader:
    def __init__(self, data: memoryview) -> None:
        self._d = data
        self._p = 0

    def read(self, n: int) -> bytes:
        out = bytes(self._d[self._p : self._p + n])
        self._p += len(out)
        return out


class PickleScanning(ScannerBase):
    """Walking pickle sequences and searching unrecognised bytes (a part of ``ArtifactScanner``)."""

    def _embedded(self, s: Stream, entry: str) -> None:
        """Scan bytes inside a pickle that a loader reads as a whole file (``_load_from_bytes``)."""
        depth = entry.count("@") + entry.count("!")
        if depth > self.limits.max_depth + 4:
            self.add(Hit(Severity.HIGH, "pickles nested too deep", "", entry=entry))
            return
        self.scan(s, entry, min(depth, self.limits.max_depth), hint="pickle")

    def _nested(self, s: Stream, entry: str, single: bool) -> None:
        depth = entry.count("@") + entry.count("!")
        if depth > self.limits.max_depth + 4:
            self.add(Hit(Severity.HIGH, "pickles nested too deep", "", entry=entry))
            return
        if single:
            w = PickleWalker(
                s, self.limits, entry=entry, report=self.add, nested=self._nested, embedded=self._embedded
            )
            res = w.walk(self.budget)
            if not res.ok:
                self.add(
                    Hit(
                        Severity.LOW,
                        "malformed nested pickle",
                        res.error,
                        entry=entry,
                        error=True,
                        atlas=None,
                    )
                )
        else:
            self._pickles(s, entry, 0, forced=True, blob=True)

    def _pickles(self, s: Stream, entry: str, depth: int, *, forced: bool, blob: bool = False) -> str | None:
        """Walk consecutive pickles; return the format, or None if the stream is not a pickle."""
        fmt = "pickle"
        count = 0
        legacy = False
        storages: dict[str, str] = {}
        while not s.at_eof():
            start = s.tell()
            buf: list[Hit] = []
            w = PickleWalker(
                s,
                self.limits,
                entry=entry,
                report=buf.append,
                nested=self._nested,
                depth=depth,
                embedded=self._embedded,
            )
            res = w.walk(self.budget)
            if res.ok:
                self.hits.extend(buf)
                count += 1
                if res.frame_end is not None and s.region is not None:
                    self._framed_next(s.region, res.frame_end, entry)
                if count == 1 and res.value == _TORCH_MAGIC:
                    legacy, fmt = True, "pytorch-legacy"
                if any(g.startswith("joblib.") for g in res.globals) and not legacy:
                    fmt = "joblib"
                if legacy:
                    storages.update(res.storages)
                if legacy and count >= 5:
                    # Raw storage bytes follow; skip them by their sizes and look at what is left.
                    self._legacy_tail(s, entry, storages)
                    return fmt
                continue
            if count == 0:
                # A guessed pickle (no PROTO header, no pickle name) that neither reaches STOP nor calls
                # anything is most likely other binary data: leave it to the embedded-pickle search.
                named_deny = any(h.severity >= Severity.CRITICAL and h.callable for h in buf)
                if not (forced or res.protocol or (buf and res.calls) or named_deny):
                    return None
                if blob and not res.calls and not any(h.callable for h in buf):
                    # A bytes value of a pickle that only starts like one (raw weights: 1 in 16,384
                    # arrays begins with PROTO 2..5) and breaks before calling or naming anything:
                    # data, not a pickle (its frame lengths and opcodes are noise too). Nothing ran
                    # before the break, and loading the outer pickle never unpickles it; a name or a
                    # call before a break is still reported.
                    return None
                self.hits.extend(buf)
                self.add(
                    Hit(
                        Severity.LOW,
                        "malformed or truncated pickle",
                        f"{res.error}; a loader stops here (after running what came before)",
                        entry=entry,
                        offset=res.end,
                        error=True,
                        atlas=None,
                        remediation=PICKLE_REMEDIATION,
                    )
                )
                return fmt
            # Something that is not a pickle follows a complete one: search it for hidden pickles.
            self.hits.extend(h for h in buf if h.severity >= Severity.HIGH)
            if s.seekable:
                s.seek(start)
            self.add(
                Hit(
                    Severity.INFO,
                    "data after the last pickle",
                    f"non-pickle bytes start at offset {start}; they were searched for embedded pickles",
                    entry=entry,
                    offset=start,
                    atlas=None,
                )
            )
            self._blob(s, entry)
            break
        if count == 0:
            return None if not forced else fmt
        return fmt

    def _framed_next(self, region: FileRegion, start: int, entry: str) -> None:
        """Walk the next pickle where a framed reader starts it: the end of a frame that outlived STOP."""
        buf: list[Hit] = []
        sub = Stream(region.sub(0, region.length), self.budget)
        sub.seek(start)
        PickleWalker(sub, self.limits, entry=entry, report=buf.append).walk(self.budget)
        for h in buf:
            if h.severity >= Severity.HIGH:
                self.add(replace(h, title=f"{h.title} (in the pickle a framed reader reads next)"))

    def _legacy_tail(self, s: Stream, entry: str, storages: dict[str, str]) -> None:
        """Skip the storages of a legacy torch checkpoint; scan anything that follows them."""
        for key in sorted(storages):
            size = _ELEMENT_SIZE.get(storages[key].rsplit(".", 1)[-1])
            raw = s.read(8)
            if size is None or len(raw) < 8:
                return
            s.skip(int.from_bytes(raw, "little") * size)
        if s.at_eof():
            return
        start = s.tell()
        self.add(
            Hit(
                Severity.MEDIUM,
                "data after the last tensor storage",
                f"a legacy checkpoint should end after its storages; {entry or 'the file'} continues at "
                f"offset {start}",
                entry=entry,
                offset=start,
                atlas=ATLAS_ARTIFACT,
            )
        )
        if self._pickles(s, entry, 1, forced=False) is None:
            if s.seekable:
                s.seek(start)
            self._blob(s, entry)

    def _blob(self, s: Stream, entry: str) -> None:
        """Search unrecognised bytes for pickle headers and protocol-0 globals."""
        limit = self.limits.max_blob_search
        base = s.tell()
        carry = b""
        searched = 0
        probes = 0
        seen_off: set[int] = set()
        seen_targets: set[int] = set()
        while searched < limit:
            chunk = s.read(min(8 * CHUNK, limit - searched))
            if not chunk:
                return
            buf = carry + chunk
            buf_base = base + searched - len(carry)
            searched += len(chunk)
            view = memoryview(buf)
            scan_targets(buf, base=buf_base, entry=entry, report=self.add, seen=seen_targets)
            starts = [m.start() for m in _PROTO.finditer(buf)]
            pos = 0
            while (m := _P0_GLOBAL.search(buf, pos)) is not None:
                i = m.start()
                pos = m.end()
                if judge(m.group(1).decode(), m.group(2).decode(), self.limits.policy).rule is Rule.DENY:
                    starts.append(i)
            for pattern in _SG_GLOBALS:
                for m in pattern.finditer(buf):
                    name = _stack_global_at(buf, m.start())
                    if name is not None and judge(*name, self.limits.policy).rule is Rule.DENY:
                        starts.append(m.start())
            for i in sorted(set(starts)):
                off = buf_base + i
                if off in seen_off or probes >= _MAX_PROBES:
                    continue
                seen_off.add(off)
                probes += 1
                self._probe(view[i:], s, off, entry)
            carry = buf[-512:]
        self.add(
            Hit(
                Severity.INFO,
                "search for embedded pickles stopped",
                f"only the first {limit} bytes of unrecognised data were searched",
                entry=entry,
                offset=base + limit,
                atlas=None,
            )
        )

    def _probe(self, data: memoryview, s: Stream, off: int, entry: str) -> None:
        pb = _ProbeBudget(self.budget)
        sub = Stream(_MemReader(data[: 4 << 20]), pb)
        buf: list[Hit] = []
        w = PickleWalker(sub, self.limits, entry=f"{entry}@{off}", report=buf.append)
        res = w.walk(pb)
        # Evidence must name a real module.qualname: in random bytes (raw weights, compressed data) a walk
        # often meets an EXT opcode or a call on an opaque value, which resolve to nothing a loader runs.
        named = [h for h in buf if h.callable and _DOTTED.match(h.callable)]
        # A complete pickle, or a strong hit and a call before the bytes stopped making sense.
        if (res.ok and named) or (res.calls and any(h.severity >= Severity.HIGH for h in named)):
            for h in buf:
                self.add(replace(h, offset=off + (h.offset or 0), title=f"embedded pickle: {h.title}"))
