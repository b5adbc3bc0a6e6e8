"""Format detection by content (magic bytes and structure), never by file extension.

``detect(head)`` looks at the first bytes of a stream. Names are only used as a tie-breaker inside
containers whose layout fixes them (``data.pkl`` in a PyTorch archive); a ``.bin`` that is a zip is a
zip, a ``.pt`` that is a pickle is a pickle, a ``.h5`` that is a 7z archive is reported as one.
"""

from __future__ import annotations

import struct

from mlsecops.supplychain.scanner._onnx import looks_like_onnx

__all__ = ["COMPRESSED", "OPAQUE_ARCHIVES", "detect"]

COMPRESSED = {"gzip", "bz2", "xz", "lzma", "zlib", "lz4"}
"""Formats that are a compressed stream of another format (joblib compressors, .tar.gz...)."""

OPAQUE_ARCHIVES = {"7z": "7-Zip", "rar": "RAR", "zstd": "Zstandard"}
"""Containers we recognise but cannot open without extra libraries."""


def detect(head: bytes) -> str:
    """Name the format of a stream from its first bytes (at least 512 when available).

    Returns:
        One of ``zip``, ``tar``, ``gzip``, ``bz2``, ``xz``, ``lzma``, ``zlib``, ``lz4``, ``7z``, ``rar``,
        ``zstd``, ``npy``, ``hdf5``, ``gguf``, ``safetensors``, ``onnx``, ``pickle``, ``text``, ``empty``
        or ``unknown``.
    """
    if not head:
        return "empty"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        return "zip"
    if head[:6] == b"\x93NUMPY":
        return "npy"
    if head[:8] == b"\x89HDF\r\n\x1a\n":
        return "hdf5"
    if head[:4] == b"GGUF":
        return "gguf"
    if head[:6] == b"7z\xbc\xaf\x27\x1c":
        return "7z"
    if head[:6] == b"Rar!\x1a\x07":
        return "rar"
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return "zstd"
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:3] == b"BZh" and head[3:4].isdigit():
        return "bz2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if head[:4] == b"\x04\x22\x4d\x18":
        return "lz4"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    if len(head) >= 10 and head[8:10] in (b'{"', b"{}", b"{ ", b"{\n"):
        n = struct.unpack("<Q", head[:8])[0]
        if 2 <= n <= 100 << 20:
            return "safetensors"
    if head[0] == 0x80 and len(head) > 1 and head[1] <= 5:
        return "pickle"
    if head[:3] == b"\x5d\x00\x00" and len(head) > 13:
        return "lzma"
    if (
        head[0] == 0x78
        and head[1:2] in (b"\x01", b"\x5e", b"\x9c", b"\xda")
        and (head[0] * 256 + head[1]) % 31 == 0
    ):
        return "zlib"
    if looks_like_onnx(head):
        return "onnx"
    if head[:1] in _PICKLE_P0 and _printable(head[:64]):
        return "pickle-text"
    if head[:1] in _PICKLE_P1:
        return "pickle-maybe"
    if _printable(head):
        return "text"
    return "unknown"


# First opcodes of protocol 0 (text) and protocol 1 (binary) pickles.
_PICKLE_P0 = {b"(", b"c", b"i", b"]", b"}", b")", b"N", b"I", b"L", b"F", b"S", b"V", b"l", b"d", b"t", b"p"}
_PICKLE_P1 = {b"(", b"c", b"]", b"}", b")", b"N", b"K", b"J", b"M", b"G", b"U", b"T", b"X", b"q", b"h"}


def _printable(data: bytes) -> bool:
    if not data:
        return False
    bad = sum(1 for b in data if b < 9 or 13 < b < 32 or b == 127)
    return bad == 0
