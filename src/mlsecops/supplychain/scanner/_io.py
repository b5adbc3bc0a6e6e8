"""Bounded, buffered byte streams over files, file regions and decompressors.

Every format scanner reads through ``Stream``. A stream over a file (or a region of one, such as a
stored zip entry) is seekable, so tensor payloads are skipped with a seek and never read. A stream over
a decompressor (deflate, gzip, bz2, xz/lzma, lz4) reads forward only and discards what it skips, in
bounded chunks. Every byte actually read is charged to the artifact's ``Budget``, so a bomb or an endless
stream ends in ``LimitReached`` instead of filling memory.
"""

from __future__ import annotations

import bz2
import lzma
import os
import zlib
from collections.abc import Callable
from typing import Protocol

from mlsecops.supplychain.scanner._types import Budget

__all__ = [
    "CHUNK",
    "Bomb",
    "Decompressed",
    "FileRegion",
    "RawReader",
    "Stream",
    "Truncated",
    "open_decompressed",
]

CHUNK = 1 << 20


class Bomb(Exception):
    """Decompression produced far more than a plausible ratio allows."""


class Truncated(Exception):
    """The stream ended before a structure it promised."""


class RawReader(Protocol):
    """Anything that reads forward: ``read(n)`` returns up to ``n`` bytes, ``b""`` at the end."""

    def read(self, n: int) -> bytes:
        """Read up to ``n`` bytes."""
        ...


class FileRegion:
    """A seekable region ``[start, start+length)`` of an open file, read with ``os.pread``."""

    def __init__(self, fd: int, start: int, length: int) -> None:
        self.fd = fd
        self.start = start
        self.length = length

    def pread(self, n: int, pos: int) -> bytes:
        """Read up to ``n`` bytes at ``pos`` (relative to the region)."""
        if pos >= self.length or n <= 0:
            return b""
        n = min(n, self.length - pos)
        return os.pread(self.fd, n, self.start + pos)

    def sub(self, start: int, length: int) -> FileRegion:
        """A region inside this one."""
        start = max(0, min(start, self.length))
        length = max(0, min(length, self.length - start))
        return FileRegion(self.fd, self.start + start, length)


class Stream:
    """A buffered reader with ``peek``, ``skip`` and ``tell``; seekable when backed by a ``FileRegion``."""

    def __init__(self, source: FileRegion | RawReader, budget: Budget, *, size: int | None = None) -> None:
        self._region = source if isinstance(source, FileRegion) else None
        self._raw = None if isinstance(source, FileRegion) else source
        self.budget = budget
        self.size = self._region.length if self._region is not None else size
        self._buf = b""
        self._bpos = 0
        self._base = 0  # stream position of self._buf[0]
        self._eof = False

    @property
    def seekable(self) -> bool:
        """Whether ``seek`` and cheap ``skip`` are available."""
        return self._region is not None

    @property
    def region(self) -> FileRegion | None:
        """The file region behind the stream, when there is one."""
        return self._region

    def tell(self) -> int:
        """Current position in the stream."""
        return self._base + self._bpos

    def _fill(self, want: int) -> bool:
        """Make at least ``want`` unread bytes available; return False at the end of the stream."""
        avail = len(self._buf) - self._bpos
        if avail >= want:
            return True
        if self._eof:
            return False
        rest = self._buf[self._bpos :]
        self._base += self._bpos
        self._bpos = 0
        parts = [rest]
        have = len(rest)
        need = max(want - have, 64 * 1024)
        while have < want or need > 0:
            if self._region is not None:
                data = self._region.pread(need, self._base + have)
            else:
                assert self._raw is not None
                data = self._raw.read(need)
            if not data:
                self._eof = True
                break
            self.budget.charge(len(data))
            parts.append(data)
            have += len(data)
            need = 0 if have >= want else want - have
        self._buf = b"".join(parts)
        return len(self._buf) >= want

    def peek(self, n: int) -> bytes:
        """Return up to ``n`` next bytes without consuming them."""
        self._fill(n)
        return self._buf[self._bpos : self._bpos + n]

    def read(self, n: int) -> bytes:
        """Read up to ``n`` bytes (fewer only at the end of the stream)."""
        if n <= 0:
            return b""
        if len(self._buf) - self._bpos < n:
            self._fill(n)
        out = self._buf[self._bpos : self._bpos + n]
        self._bpos += len(out)
        return out

    def read_exact(self, n: int) -> bytes:
        """Read exactly ``n`` bytes or raise ``Truncated``."""
        out = self.read(n)
        if len(out) != n:
            raise Truncated(f"wanted {n} bytes at offset {self.tell() - len(out)}, got {len(out)}")
        return out

    def readline(self, limit: int = 4096) -> bytes:
        """Read through the next ``\\n`` (included), at most ``limit`` bytes, or raise ``Truncated``."""
        while True:
            idx = self._buf.find(b"\n", self._bpos, self._bpos + limit)
            if idx >= 0:
                out = self._buf[self._bpos : idx + 1]
                self._bpos = idx + 1
                return out
            avail = len(self._buf) - self._bpos
            if avail >= limit or not self._fill(avail + 4096):
                raise Truncated(f"no end of line within {limit} bytes at offset {self.tell()}")

    def skip(self, n: int) -> None:
        """Move ``n`` bytes forward; seek when seekable, else read and discard in bounded chunks."""
        if n <= 0:
            return
        avail = len(self._buf) - self._bpos
        if n <= avail:
            self._bpos += n
            return
        n -= avail
        self._base += len(self._buf)
        self._buf = b""
        self._bpos = 0
        if self._region is not None:
            if self._base + n > self._region.length:
                self._base = self._region.length
                raise Truncated(f"skip of {n} bytes runs past the end ({self._region.length})")
            self._base += n
            return
        assert self._raw is not None
        while n > 0:
            data = self._raw.read(min(n, CHUNK))
            if not data:
                self._eof = True
                raise Truncated("stream ended inside a skipped payload")
            self.budget.charge(len(data))
            self._base += len(data)
            n -= len(data)

    def seek(self, pos: int) -> None:
        """Jump to ``pos`` (seekable streams only)."""
        if self._region is None:
            raise ValueError("stream is not seekable")
        if self._base <= pos <= self._base + len(self._buf):
            self._bpos = pos - self._base
            return
        self._base = pos
        self._buf = b""
        self._bpos = 0
        self._eof = False

    def at_eof(self) -> bool:
        """Whether no byte is left."""
        return not self._fill(1)


class Decompressed:
    """A forward reader over a decompressor fed from another ``Stream``, with bounded output chunks."""

    def __init__(
        self,
        source: Stream,
        make: Callable[[], object],
        *,
        max_output: int | None = None,
        ratio_check: Callable[[int, int], None] | None = None,
    ) -> None:
        self._src = source
        self._d = make()
        self._pending = b""
        self._done = False
        self._out = 0
        self._start_in = source.tell()
        self._max_output = max_output
        self._ratio_check = ratio_check

    def read(self, n: int) -> bytes:
        """Read up to ``n`` decompressed bytes.

        Raises:
            Truncated: the compressed data is corrupt (the real loader fails at the same point).
        """
        try:
            return self._read(n)
        except (zlib.error, lzma.LZMAError, OSError, EOFError) as err:
            raise Truncated(f"corrupt compressed data: {err}") from None

    def _read(self, n: int) -> bytes:
        d = self._d
        n = max(1, min(n, CHUNK * 4))
        while not self._done:
            if isinstance(d, _ZLIB_TYPE):
                if d.unconsumed_tail:
                    out = d.decompress(d.unconsumed_tail, n)
                else:
                    data = self._src.read(CHUNK)
                    if not data:
                        self._done = True
                        out = d.flush()
                    else:
                        out = d.decompress(data, n)
                if d.eof:
                    self._done = True
            else:
                needs = getattr(d, "needs_input", True)
                data = self._src.read(CHUNK) if needs else b""
                if needs and not data:
                    self._done = True
                    out = b""
                else:
                    out = d.decompress(data, n)  # type: ignore[attr-defined]  # bz2/lzma decompressors
                    if getattr(d, "eof", False):
                        self._done = True
            if out:
                self._out += len(out)
                if self._ratio_check is not None:
                    self._ratio_check(self._src.tell() - self._start_in, self._out)
                if self._max_output is not None and self._out > self._max_output:
                    raise Truncated(f"decompressed data exceeds the declared size {self._max_output}")
                return out
        return b""


_ZLIB_TYPE = type(zlib.decompressobj())


def open_decompressed(
    source: Stream,
    codec: str,
    *,
    ratio_check: Callable[[int, int], None] | None = None,
    size: int | None = None,
) -> Stream:
    """Wrap ``source`` in a decompressing stream.

    Args:
        source: the compressed bytes, positioned at the start of the compressed data.
        codec: ``deflate`` (raw), ``zlib``, ``gzip``, ``bz2``, ``xz``/``lzma`` or ``lz4``.
        ratio_check: called with (compressed bytes consumed, bytes produced) after each chunk.
        size: the declared decompressed size, when the container states one.

    Returns:
        A forward-only stream of the decompressed bytes.

    Raises:
        ModuleNotFoundError: ``lz4`` was asked for and the ``lz4`` package is not installed.
        ValueError: unknown codec.
    """
    makers: dict[str, Callable[[], object]] = {
        "deflate": lambda: zlib.decompressobj(-15),
        "zlib": lambda: zlib.decompressobj(15),
        "gzip": lambda: zlib.decompressobj(31),
        "bz2": bz2.BZ2Decompressor,
        "xz": lambda: lzma.LZMADecompressor(),
        "lzma": lambda: lzma.LZMADecompressor(),
    }
    if codec == "lz4":
        import lz4.frame  # optional; absent -> ModuleNotFoundError, reported by the caller

        raw: RawReader = _Lz4Reader(lz4.frame.LZ4FrameFile(_StreamFile(source), mode="rb"))
        return Stream(raw, source.budget, size=size)
    if codec == "zip-lzma":
        head = source.read_exact(4)
        props = source.read_exact(int.from_bytes(head[2:4], "little"))
        try:  # invalid properties (found by fuzzing) fail here, before any read's handler
            filt = lzma._decode_filter_properties(lzma.FILTER_LZMA1, props)  # type: ignore[attr-defined]  # as zipfile does
            lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[filt])
        except (lzma.LZMAError, ValueError) as err:
            raise Truncated(f"corrupt LZMA properties: {err}") from None
        makers[codec] = lambda: lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[filt])
    if codec not in makers:
        raise ValueError(f"unknown codec {codec!r}")
    return Stream(Decompressed(source, makers[codec], ratio_check=ratio_check), source.budget, size=size)


class _Lz4Reader:
    """``LZ4FrameFile`` whose corrupt-frame errors (``RuntimeError``, found by fuzzing) read as ``Truncated``."""

    def __init__(self, f: RawReader) -> None:
        self._f = f

    def read(self, n: int) -> bytes:
        try:
            return self._f.read(n)
        except (RuntimeError, OSError, EOFError) as err:
            raise Truncated(f"corrupt compressed data: {err}") from None


class _StreamFile:
    """Minimal file object over a ``Stream`` for third-party decompressors."""

    def __init__(self, s: Stream) -> None:
        self._s = s

    def read(self, n: int = -1) -> bytes:
        return self._s.read(CHUNK if n < 0 else n)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        return None

    @property
    def closed(self) -> bool:
        return False
