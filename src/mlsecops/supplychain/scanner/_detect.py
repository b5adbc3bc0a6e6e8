"""Format detection by content (magic bytes and structure), never by file extension.

``detect(head)`` looks at the first bytes of a stream. Names are only used as a tie-breaker inside
containers whose layout fixes them (``data.pkl`` in a PyTorch archive); a ``.bin`` that is a zip is a
zip, a ``.pt`` that is a pickle is a pickle, a ``.h5`` that is a 7z archive is reported as one.
"""

from __future__ import annotations

import lzma
import struct
import zlib

from mlsecops.supplychain.scanner._onnx import looks_like_onnx
from mlsecops.supplychain.scanner._tf_savedmodel import looks_like_saved_model
from mlsecops.supplychain.scanner._tflite import looks_like_tflite

__all__ = ["COMPRESSED", "OPAQUE_ARCHIVES", "detect"]

COMPRESSED = {"gzip", "bz2", "xz", "lzma", "zlib", "lz4"}
"""Formats that are a compressed stream of another format (joblib compressors, .tar.gz...)."""

OPAQUE_ARCHIVES = {"rar": "RAR", "zstd": "Zstandard"}
"""Containers we recognise but cannot open (7-Zip is opened by ``_sevenzip`` when py7zr is installed)."""


def detect(head: bytes) -> str:
    """Name the format of a stream from its first bytes (at least 512 when available).

    Returns:
        One of ``zip``, ``tar``, ``gzip``, ``bz2``, ``xz``, ``lzma``, ``zlib``, ``lz4``, ``7z``, ``rar``,
        ``zstd``, ``npy``, ``hdf5``, ``gguf``, ``tflite``, ``safetensors``, ``tf-savedmodel``, ``onnx``,
        ``pickle``, ``text``, ``empty``
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
    if looks_like_tflite(head):
        return "tflite"
    if head[:4] == b"\x28\xb5\x2f\xfd" or (head[0] & 0xF0 == 0x50 and head[1:4] == b"\x2a\x4d\x18"):
        return "zstd"  # a frame, or a skippable frame (any of 16 magics) before one
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
    if _v7_tar(head):
        return "tar"
    if len(head) >= 10 and head[8:10] in (b'{"', b"{}", b"{ ", b"{\n"):
        n = struct.unpack("<Q", head[:8])[0]
        if 2 <= n <= 100 << 20:
            return "safetensors"
    if head[0] == 0x80 and len(head) > 1 and head[1] <= 5:
        return "pickle"
    if _lzma_alone(head):
        return "lzma"
    if _zlib(head):
        return "zlib"
    if looks_like_saved_model(head):
        return "tf-savedmodel"  # before ONNX: both open with a varint field 1 and a field 2
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
# Every opcode a pickle can open with: the unpickler needs no PROTO header, so a stream that starts with
# protocol-4 opcodes (SHORT_BINUNICODE, FRAME, ...) loads as well as one that starts with 0x80.
_PICKLE_P1 = {bytes([c]) for c in b"(c]})NKJMGUTXqhBCIFLSVPid\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f\x95\x96"}


def _v7_tar(head: bytes) -> bool:
    """A pre-POSIX tar header (no ``ustar`` magic): a valid header checksum and a sane name."""
    if len(head) < 512 or head[0] == 0 or head[:512] == bytes(512):
        return False
    field = head[148:156].replace(b"\x00", b" ").strip()
    if not field or any(c not in b"01234567" for c in field):
        return False
    hdr = bytearray(head[:512])
    hdr[148:156] = b" " * 8
    if int(field, 8) != sum(hdr):
        return False
    name = head[:100].split(b"\x00", 1)[0]
    return _printable(name) and head[156:157] in (b"\x00", b"0", b"1", b"2", b"3", b"4", b"5", b"6", b"7")


def _lzma_alone(head: bytes) -> bool:
    """An lzma-alone (``.lzma``) stream: the properties byte every encoder writes (joblib requires it),
    any dictionary size, a plausible length and a zero first range-coder byte; confirmed by decoding.
    """
    if len(head) < 14 or head[0] != 0x5D or head[13] != 0:
        return False
    size = struct.unpack("<Q", head[5:13])[0]
    if size != 0xFFFFFFFFFFFFFFFF and size > 1 << 48:
        return False
    try:
        lzma.LZMADecompressor(lzma.FORMAT_ALONE).decompress(head, 64)
    except lzma.LZMAError:
        return False
    return True


def _zlib(head: bytes) -> bool:
    """A zlib stream with any window size (joblib writes 0x78; ``zlib.decompress`` takes them all),
    confirmed by inflating the head (random bytes pass the header check one time in ~500).
    """
    if len(head) < 3 or head[0] & 0x0F != 8 or head[0] >> 4 > 7 or head[1] & 0x20:
        return False
    if (head[0] * 256 + head[1]) % 31:
        return False
    try:
        return bool(zlib.decompressobj(15).decompress(head, 64))
    except zlib.error:
        return False


def _printable(data: bytes) -> bool:
    if not data:
        return False
    bad = sum(1 for b in data if b < 9 or 13 < b < 32 or b == 127)
    return bad == 0
