"""A minimal HDF5 reader for the root group's string attributes (where Keras keeps ``model_config``).

Keras reads ``f.attrs["model_config"]`` (and ``training_config``) from the root group of an ``.h5``
file. We read exactly that, from the file format, with ``os.pread`` and ``struct``: the superblock
(versions 0-3), the root object header (versions 1 and 2, with continuation blocks), its attribute
messages, and a string value stored in the message (fixed length) or in a global heap collection
(variable length, what h5py writes for ``str``). Nothing is decompressed or executed and every read is
bounded; anything outside that subset (attributes in dense storage, shared datatypes) raises
``Hdf5Unsupported`` and the caller falls back to a text search. We do not use h5py: parsing hostile
files with the HDF5 C library is an attack surface of its own.

Format reference: the HDF5 File Format Specification, version 3.0 (sections II.A superblock, IV.A.1
object headers, IV.A.2 messages 0x0001 dataspace, 0x0003 datatype, 0x000C attribute, 0x0010
continuation, 0x0015 attribute info; III.E global heap).
"""

from __future__ import annotations

import struct

from mlsecops.supplychain.scanner._io import FileRegion

__all__ = ["Hdf5Unsupported", "root_string_attributes"]

Attributes = list[tuple[str, "str | bytes | None"]]

_MAGIC = b"\x89HDF\r\n\x1a\n"
_MAX_VALUE = 64 << 20
_MAX_MESSAGES = 10_000
_MAX_BLOCKS = 64


def _pad8(n: int) -> int:
    return (n + 7) // 8 * 8


class Hdf5Unsupported(Exception):
    """The file uses a part of HDF5 this reader does not follow (or is not valid HDF5)."""


class _Reader:
    def __init__(self, region: FileRegion) -> None:
        self.r = region
        self.o = 8  # size of offsets
        self.ln = 8  # size of lengths

    def read(self, n: int, pos: int) -> bytes:
        data = self.r.pread(n, pos)
        if len(data) != n:
            raise Hdf5Unsupported(f"structure at {pos} runs past the end of the file")
        return data

    def uint(self, raw: bytes, at: int, size: int) -> int:
        return int.from_bytes(raw[at : at + size], "little")

    def root_header(self) -> int:
        sb = self.read(48, 0)
        if sb[:8] != _MAGIC:
            raise Hdf5Unsupported("no HDF5 signature")
        version = sb[8]
        if version in (0, 1):
            self.o, self.ln = sb[13], sb[14]
            start = 24 if version == 0 else 28
            if self.o not in (2, 4, 8) or self.ln not in (2, 4, 8):
                raise Hdf5Unsupported("odd address sizes")
            raw = self.read(start + 5 * self.o + 8, 0)
            return self.uint(raw, start + 4 * self.o + self.o, self.o)
        if version in (2, 3):
            self.o, self.ln = sb[9], sb[10]
            if self.o not in (2, 4, 8) or self.ln not in (2, 4, 8):
                raise Hdf5Unsupported("odd address sizes")
            raw = self.read(12 + 4 * self.o, 0)
            return self.uint(raw, 12 + 3 * self.o, self.o)
        raise Hdf5Unsupported(f"superblock version {version}")

    def messages(self, addr: int) -> list[tuple[int, int, bytes]]:
        """(type, flags, body) of every message of the object header at ``addr``."""
        out: list[tuple[int, int, bytes]] = []
        head = self.read(16, addr)
        if head[:4] == b"OHDR":
            flags = head[5]
            pos = addr + 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
            width = 1 << (flags & 3)
            size = self.uint(self.read(width, pos), 0, width)
            blocks = [(pos + width, size, True)]
        elif head[0] == 1:
            size = self.uint(head, 8, 4)
            blocks = [(addr + 16, size, False)]
            flags = 0
        else:
            raise Hdf5Unsupported(f"object header version {head[0]} at {addr}")
        seen = 0
        while blocks:
            start, size, v2 = blocks.pop(0)
            if size > _MAX_VALUE or seen > _MAX_BLOCKS:
                raise Hdf5Unsupported("object header too large")
            seen += 1
            data = self.read(size, start)
            i = 0
            while i < len(data) and len(out) < _MAX_MESSAGES:
                if v2:
                    if i + 4 > len(data):
                        break  # a gap shorter than a message prefix ends the chunk
                    mtype, msize, mflags = data[i], self.uint(data, i + 1, 2), data[i + 3]
                    i += 4 + (2 if flags & 0x04 else 0)
                else:
                    if i + 8 > len(data):
                        break
                    mtype, msize, mflags = self.uint(data, i, 2), self.uint(data, i + 2, 2), data[i + 4]
                    i += 8
                body = data[i : i + msize]
                i += msize
                if mtype == 0x10 and len(body) >= self.o + self.ln:
                    caddr, clen = self.uint(body, 0, self.o), self.uint(body, self.o, self.ln)
                    if v2:
                        if self.read(4, caddr) != b"OCHK":
                            raise Hdf5Unsupported("bad continuation block")
                        blocks.append((caddr + 4, clen - 8, True))
                    else:
                        blocks.append((caddr, clen, False))
                    continue
                out.append((mtype, mflags, body))
        return out

    def attribute(self, body: bytes) -> tuple[str, str | bytes | None]:
        """(name, value) of an attribute message; the value only for a string, else None."""
        version = body[0]
        nlen, dlen, slen = self.uint(body, 2, 2), self.uint(body, 4, 2), self.uint(body, 6, 2)
        if version == 1:
            i = 8  # version 1 pads each part to 8 bytes
            name = body[i : i + nlen]
            i += _pad8(nlen)
            dt = body[i : i + dlen]
            i += _pad8(dlen)
            i += _pad8(slen)
        elif version in (2, 3):
            i = 8 + (1 if version == 3 else 0)
            if body[1] & 0x03:
                raise Hdf5Unsupported("shared datatype or dataspace in an attribute")
            name = body[i : i + nlen]
            i += nlen
            dt = body[i : i + dlen]
            i += dlen + slen
        else:
            raise Hdf5Unsupported(f"attribute message version {version}")
        key = name.rstrip(b"\x00").decode("utf-8", "replace")
        value = body[i:]
        if len(dt) < 8:
            return key, None
        cls, size = dt[0] & 0x0F, self.uint(dt, 4, 4)
        if cls == 3:  # fixed-length string: the first element
            return key, value[:size].split(b"\x00", 1)[0]
        if cls == 9 and dt[1] & 0x0F == 1:  # variable-length string: (length, heap address, index)
            if len(value) < 4 + self.o + 4:
                return key, None
            n = self.uint(value, 0, 4)
            heap, index = self.uint(value, 4, self.o), self.uint(value, 4 + self.o, 4)
            return key, self.heap_object(heap, index, n)
        return key, None

    def heap_object(self, addr: int, index: int, length: int) -> bytes:
        head = self.read(8 + self.ln, addr)
        if head[:4] != b"GCOL":
            raise Hdf5Unsupported("bad global heap collection")
        total = self.uint(head, 8, self.ln)
        if total > _MAX_VALUE * 2:
            raise Hdf5Unsupported("global heap collection too large")
        pos, end = addr + 8 + self.ln, addr + total
        while pos + 8 + self.ln <= end:
            obj = self.read(8 + self.ln, pos)
            idx, size = self.uint(obj, 0, 2), self.uint(obj, 8, self.ln)
            if idx == 0:
                break
            if idx == index:
                if size > _MAX_VALUE:
                    raise Hdf5Unsupported("attribute value too large")
                return self.read(min(size, length), pos + 8 + self.ln)
            pos += 8 + self.ln + (size + 7) // 8 * 8
        raise Hdf5Unsupported("global heap object not found")


def root_string_attributes(region: FileRegion) -> Attributes:
    """Read the root group's attributes: (name, string value or ``None``), every message in order.

    A crafted header may repeat a name; the caller judges every copy, not the one a reader picks.

    Raises:
        Hdf5Unsupported: not HDF5, or attributes this reader does not follow (dense storage).
    """
    r = _Reader(region)
    out: Attributes = []
    try:
        for mtype, mflags, body in r.messages(r.root_header()):
            if mtype == 0x15:
                # Attribute info: with a fractal heap address, attributes live in dense storage.
                if len(body) >= 2 + r.o and r.uint(body, 2 + (2 if body[1] & 1 else 0), r.o) not in (
                    0,
                    (1 << (8 * r.o)) - 1,
                ):
                    raise Hdf5Unsupported("attributes in dense storage")
            elif mtype == 0x0C and len(body) >= 8:
                if mflags & 0x02:
                    raise Hdf5Unsupported("shared attribute message")
                out.append(r.attribute(body))
    except (IndexError, struct.error, ValueError) as err:
        raise Hdf5Unsupported(f"malformed HDF5 structure: {err}") from None
    return out
