"""Protocol 4+ framing read the way each CPython unpickler reads it.

A ``FRAME`` opcode announces the length of the opcodes that follow. Real picklers close a frame on an
opcode boundary and end the last one with ``STOP``; a hand-made pickle need not, and then the three
ways CPython reads a pickle disagree (Python 3.11 ``Lib/pickle.py`` ``_Unframer`` and
``Modules/_pickle.c`` ``load_frame``/``_Unpickler_ReadFromFile``):

- ``pickle.loads(data)`` (C, in memory), and the C unpickler on a file with ``peek()`` whose buffer covers
  the frame: the frame length is only checked against the data; opcodes run on across frame ends. This
  is the straight reading the walker follows.
- the Python unpickler (``pickle._Unpickler``, which joblib uses): a read that crosses the end of the
  current frame raises, a frame opened before the current one is used up raises, and the next pickle of
  a stream starts at the end of the frame, not after ``STOP``.
- the C unpickler on a file without ``peek()`` (``io.BytesIO``, as ``torch.load`` reads ``data.pkl``
  from a zip), or with a frame longer than ``peek()`` returns: the frame is read with ``read(n)`` into
  a buffer, and a read that does not fit in what is left of the buffer *drops the rest of the buffer*
  and reads from the file after it. An argument that crosses the frame end therefore comes from the
  bytes after the frame, and a payload placed there runs while a straight walk sees other opcodes.

``CFileStream`` reproduces the third reading on top of a seekable ``Stream``; the walker re-walks a pickle
with it whenever the straight walk saw a frame boundary fall inside an opcode, a frame inside a frame, or
a frame that outlives ``STOP`` (``PickleResult.diverged``). The second reading is the straight one cut
short at the first such point, so what it runs is a prefix of what the straight walk already judged.
"""

from __future__ import annotations

from mlsecops.supplychain.scanner._io import FileRegion, Stream
from mlsecops.supplychain.scanner._types import Budget

__all__ = ["CFileStream", "MemRegion"]


class MemRegion(FileRegion):
    """A ``FileRegion`` over bytes in memory: a pickle found inside another one (nested, decoded) can be
    read again, so its frames can be re-walked the C way too.
    """

    def __init__(self, data: bytes | memoryview, start: int = 0, length: int | None = None) -> None:
        super().__init__(-1, start, len(data) - start if length is None else length)
        self._data = data

    def pread(self, n: int, pos: int) -> bytes:
        """Read up to ``n`` bytes at ``pos`` (relative to the region)."""
        if pos >= self.length or n <= 0:
            return b""
        n = min(n, self.length - pos)
        return bytes(self._data[self.start + pos : self.start + pos + n])

    def sub(self, start: int, length: int) -> MemRegion:
        """A region inside this one."""
        start = max(0, min(start, self.length))
        length = max(0, min(length, self.length - start))
        return MemRegion(self._data, self.start + start, length)


class CFileStream(Stream):
    """A stream read as ``_pickle.c`` reads a file object without ``peek()``.

    The unpickler holds one buffer, the bytes of its last ``read(n)`` from the file; ``_buf_end`` is
    the file offset where that buffer ends. A read of ``n`` bytes that fits before ``_buf_end`` is
    served from the buffer; one that does not fit drops what is left of it and reads ``n`` fresh bytes
    at ``_buf_end`` (which then become the buffer).
    """

    def __init__(self, region: FileRegion, budget: Budget, start: int) -> None:
        super().__init__(region, budget)
        self.seek(start)
        self._buf_end = start

    def _fit(self, n: int) -> None:
        pos = self.tell()
        if pos + n > self._buf_end:
            if pos < self._buf_end:
                super().skip(self._buf_end - pos)  # the rest of the buffer is dropped
            self._buf_end = self.tell() + n

    def read(self, n: int) -> bytes:
        """Read ``n`` bytes as the C unpickler would (see the class docstring)."""
        self._fit(n)
        return super().read(n)

    def skip(self, n: int) -> None:
        """Skip ``n`` bytes as the C unpickler would read them."""
        self._fit(n)
        super().skip(n)

    def want(self, n: int) -> None:
        """Position the stream where a read of ``n`` bytes starts (before a ``peek``)."""
        self._fit(n)

    def readline(self, limit: int = 4096) -> bytes:
        """A line from the buffer when it ends there, else the rest of the buffer is dropped first."""
        pos = self.tell()
        if pos < self._buf_end:
            if b"\n" in self.peek(min(limit, self._buf_end - pos)):
                return super().readline(limit)
            super().skip(self._buf_end - pos)
        out = super().readline(limit)
        self._buf_end = self.tell()
        return out

    def frame(self, n: int) -> None:
        """``load_frame``: read ``n`` bytes into the buffer unless they are there already; rewind."""
        pos = self.tell()
        if pos + n > self._buf_end:
            if pos < self._buf_end:
                super().skip(self._buf_end - pos)
            self._buf_end = self.tell() + n
