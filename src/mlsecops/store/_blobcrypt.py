"""The encrypted blob format: chunked AES-256-GCM bound to the blob's content address.

Layout of an encrypted blob file::

    header  = MAGIC (8) | version (1) | key id (8) | salt (16) | chunk size (4, big-endian)
    records = nonce (12) | AES-GCM(chunk) + tag (16), repeated; every chunk but the last is full

Each blob gets its own key, ``HKDF-SHA256(data key, salt)``, so nonces never repeat across blobs,
and each chunk its own random nonce. The associated data of every chunk is ``header | SHA-256 of
the plaintext (the address) | chunk index (8) | final flag (1)``: a blob moved to another address,
chunks reordered, dropped or appended, a truncated file, or a header edited all fail authentication.
An empty blob is one final record with no ciphertext. The reader re-hashes the plaintext it gives out
and refuses, at the end, content that does not hash to the address.

Memory stays bounded: one chunk (and the next, to know which is final) at a time.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
from collections.abc import Callable
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from mlsecops.core.errors import VerificationError

__all__ = [
    "CHUNK_SIZE",
    "HEADER_SIZE",
    "MAGIC",
    "DecryptingReader",
    "VerifyingReader",
    "encrypt_stream",
    "parse_header",
]

MAGIC = b"MLSECENC"
VERSION = 1
CHUNK_SIZE = 1 << 20
"""Plaintext bytes per chunk: the memory a read or write holds (two chunks), and the unit authenticated."""
MAX_CHUNK_SIZE = 64 << 20
"""Largest chunk size a header may claim: a forged header cannot make the reader allocate more."""
NONCE_SIZE = 12
TAG_SIZE = 16
SALT_SIZE = 16
KEY_ID_SIZE = 8
_HEADER = struct.Struct(">8sB8s16sI")
HEADER_SIZE = _HEADER.size
_INFO = b"mlsecops blob key v1"


def _blob_key(data_key: bytes, salt: bytes) -> AESGCM:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_INFO)
    return AESGCM(hkdf.derive(data_key))


def _aad(header: bytes, digest: bytes, index: int, final: bool) -> bytes:
    return header + digest + struct.pack(">QB", index, 1 if final else 0)


def parse_header(head: bytes) -> tuple[bytes, int] | None:
    """``(key id, chunk size)`` when ``head`` starts like an encrypted blob of this version, else None."""
    if len(head) < HEADER_SIZE or not head.startswith(MAGIC):
        return None
    magic, version, key_id, _salt, chunk = _HEADER.unpack_from(head)
    if magic != MAGIC or version != VERSION or not 0 < chunk <= MAX_CHUNK_SIZE:
        return None
    return key_id, chunk


def _read_full(src: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes, fewer only at the end of the stream."""
    parts, got = [], 0
    while got < n:
        part = src.read(n - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def encrypt_stream(
    src: BinaryIO,
    out: BinaryIO,
    *,
    data_key: bytes,
    key_id: bytes,
    digest: bytes,
    chunk_size: int = CHUNK_SIZE,
) -> tuple[str, int]:
    """Encrypt ``src`` into ``out`` for the address ``digest`` (raw SHA-256 of the plaintext).

    Returns:
        ``(sha256 hex, size)`` of the plaintext actually read, for the caller to compare with
        ``digest``: a source that changed while it was read gives another digest.
    """
    header = _HEADER.pack(MAGIC, VERSION, key_id, os.urandom(SALT_SIZE), chunk_size)
    aead = _blob_key(data_key, header[17:33])
    out.write(header)
    hasher, size, index = hashlib.sha256(), 0, 0
    chunk = _read_full(src, chunk_size)
    while True:
        following = _read_full(src, chunk_size) if len(chunk) == chunk_size else b""
        final = not following
        hasher.update(chunk)
        size += len(chunk)
        nonce = os.urandom(NONCE_SIZE)
        out.write(nonce)
        out.write(aead.encrypt(nonce, chunk, _aad(header, digest, index, final)))
        if final:
            return hasher.hexdigest(), size
        chunk, index = following, index + 1


class DecryptingReader(io.RawIOBase):
    """A read-only stream of a blob's plaintext, authenticated chunk by chunk.

    Raises ``VerificationError`` from ``read`` when a chunk fails authentication (wrong blob, tampered,
    truncated, reordered) and, at the end, when the plaintext does not hash to the address.
    """

    def __init__(
        self,
        fh: BinaryIO,
        *,
        key_for: Callable[[bytes], bytes],
        sha256: str,
        name: str,
        aad_digest: bytes | None = None,
    ) -> None:
        super().__init__()
        self._fh = fh
        self._sha = sha256
        self._name = name
        head = _read_full(fh, HEADER_SIZE)
        parsed = parse_header(head)
        if parsed is None:
            raise VerificationError(f"{name}: not an encrypted blob of a known format")
        key_id, self._chunk = parsed
        self._header = head
        self._digest = bytes.fromhex(sha256) if aad_digest is None else aad_digest
        self._aead = _blob_key(key_for(key_id), head[17:33])
        self._record = NONCE_SIZE + self._chunk + TAG_SIZE
        self._next = _read_full(fh, self._record)
        self._index = 0
        self._hasher = hashlib.sha256()
        self._buf = b""
        self._pos = 0
        self._done = False

    def readable(self) -> bool:
        return True

    def _refill(self) -> None:
        record = self._next
        if len(record) < NONCE_SIZE + TAG_SIZE:
            raise VerificationError(f"{self._name}: the encrypted blob is truncated")
        self._next = _read_full(self._fh, self._record) if len(record) == self._record else b""
        final = not self._next
        aad = _aad(self._header, self._digest, self._index, final)
        try:
            plain = self._aead.decrypt(record[:NONCE_SIZE], record[NONCE_SIZE:], aad)
        except InvalidTag:
            raise VerificationError(
                f"{self._name}: the encrypted blob fails authentication (tampered, truncated, reordered "
                "or moved from another address)"
            ) from None
        self._hasher.update(plain)
        self._index += 1
        self._buf, self._pos = plain, 0
        if final:
            self._done = True
            if self._hasher.hexdigest() != self._sha:
                raise VerificationError(f"{self._name}: the decrypted content does not hash to its address")

    def readinto(self, b: memoryview | bytearray) -> int:  # type: ignore[override]
        while self._pos >= len(self._buf):
            if self._done:
                return 0
            self._refill()
        n = min(len(b), len(self._buf) - self._pos)
        b[:n] = self._buf[self._pos : self._pos + n]
        self._pos += n
        return n

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes (all the rest when negative); whole chunks without copying when possible."""
        if size is None or size < 0:
            return self.readall()
        while self._pos >= len(self._buf):
            if self._done:
                return b""
            self._refill()
        if self._pos == 0 and size >= len(self._buf):
            out, self._buf = self._buf, b""
            return out
        out = self._buf[self._pos : self._pos + size]
        self._pos += len(out)
        return out

    def readall(self) -> bytes:
        """The rest of the plaintext (bounded only by the blob: prefer ``read(n)`` for big blobs)."""
        parts = []
        while chunk := self.read(self._chunk):
            parts.append(chunk)
        return b"".join(parts)

    def close(self) -> None:
        """Close the ciphertext file."""
        try:
            self._fh.close()
        finally:
            super().close()


class VerifyingReader(io.RawIOBase):
    """A plaintext blob's stream that raises ``VerificationError`` at the end unless it hashed to ``sha256``."""

    def __init__(self, fh: BinaryIO, *, sha256: str, name: str) -> None:
        super().__init__()
        self._fh = fh
        self._sha = sha256
        self._name = name
        self._hasher = hashlib.sha256()
        self._checked = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview | bytearray) -> int:  # type: ignore[override]
        n = self._fh.readinto(b)  # type: ignore[attr-defined]
        if n:
            self._hasher.update(memoryview(b)[:n])
            return int(n)
        if not self._checked:
            self._checked = True
            if self._hasher.hexdigest() != self._sha:
                raise VerificationError(f"{self._name}: the stored content does not hash to its address")
        return 0

    def close(self) -> None:
        """Close the file."""
        try:
            self._fh.close()
        finally:
            super().close()
