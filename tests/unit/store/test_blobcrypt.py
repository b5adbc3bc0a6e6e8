"""The encrypted blob format: round trips at chunk boundaries, and every way a ciphertext can be
altered (bit flip, truncation, reordering, an appended or dropped chunk, another address, another key,
an edited header) refused, never returned as plaintext."""

from __future__ import annotations

import hashlib
import io
import os
from typing import BinaryIO, cast

import pytest

from mlsecops.core.errors import VerificationError
from mlsecops.store._blobcrypt import (
    HEADER_SIZE,
    NONCE_SIZE,
    TAG_SIZE,
    DecryptingReader,
    VerifyingReader,
    encrypt_stream,
    parse_header,
)

KEY = bytes(range(32))
KEY_ID = b"\x01" * 8
CHUNK = 16
RECORD = NONCE_SIZE + CHUNK + TAG_SIZE


def seal(plain: bytes, *, digest: bytes | None = None, key: bytes = KEY) -> bytes:
    out = io.BytesIO()
    d = digest if digest is not None else hashlib.sha256(plain).digest()
    got, size = encrypt_stream(
        io.BytesIO(plain), out, data_key=key, key_id=KEY_ID, digest=d, chunk_size=CHUNK
    )
    assert got == hashlib.sha256(plain).hexdigest() and size == len(plain)
    return out.getvalue()


def open_(blob: bytes, sha: str, key: bytes = KEY) -> bytes:
    reader = DecryptingReader(io.BytesIO(blob), key_for=lambda _: key, sha256=sha, name="blob")
    return reader.read()


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 5])
def test_round_trip_at_chunk_boundaries(size: int) -> None:
    plain = os.urandom(size)
    blob = seal(plain)
    sha = hashlib.sha256(plain).hexdigest()
    assert parse_header(blob) == (KEY_ID, CHUNK)
    records = max(1, -(-size // CHUNK))
    assert len(blob) == HEADER_SIZE + records * (NONCE_SIZE + TAG_SIZE) + size
    assert open_(blob, sha) == plain
    # small reads see the same bytes
    reader = DecryptingReader(io.BytesIO(blob), key_for=lambda _: KEY, sha256=sha, name="blob")
    assert b"".join(iter(lambda: reader.read(5), b"")) == plain


def test_plaintext_is_not_in_the_ciphertext() -> None:
    plain = b"SECRET-MARKER-" * 50
    assert b"SECRET-MARKER" not in seal(plain)


def _records(blob: bytes) -> list[bytes]:
    body = blob[HEADER_SIZE:]
    return [body[i : i + RECORD] for i in range(0, len(body), RECORD)]


PLAIN = b"abcdefghijklmnop" * 3 + b"tail"  # 3 full chunks and a short one
SHA = hashlib.sha256(PLAIN).hexdigest()


def _tampered() -> dict[str, bytes]:
    blob = seal(PLAIN)
    head, recs = blob[:HEADER_SIZE], _records(blob)
    flipped = bytearray(blob)
    flipped[HEADER_SIZE + NONCE_SIZE + 3] ^= 1
    header_edit = bytearray(blob)
    header_edit[20] ^= 1  # the salt: another blob key
    return {
        "bit flip": bytes(flipped),
        "truncated mid-record": blob[:-5],
        "last record dropped": head + b"".join(recs[:-1]),
        "records swapped": head + recs[1] + recs[0] + b"".join(recs[2:]),
        "record appended": blob + recs[0],
        "record duplicated": head + recs[0] + b"".join(recs),
        "header edited": bytes(header_edit),
        "header only": head,
    }


@pytest.mark.parametrize("case", list(_tampered()))
def test_tampering_is_refused(case: str) -> None:
    with pytest.raises(VerificationError):
        open_(_tampered()[case], SHA)


def test_moved_to_another_address_is_refused() -> None:
    other = b"other content"
    blob = seal(PLAIN)
    with pytest.raises(VerificationError, match="fails authentication"):
        open_(blob, hashlib.sha256(other).hexdigest())


def test_wrong_data_key_is_refused() -> None:
    with pytest.raises(VerificationError, match="fails authentication"):
        open_(seal(PLAIN), SHA, key=bytes(32))


def test_content_that_does_not_hash_to_its_address_is_refused() -> None:
    # sealed (with the key) under an address that is not its digest: authentic, but not this content
    wrong = hashlib.sha256(b"something else").digest()
    blob = seal(PLAIN, digest=wrong)
    with pytest.raises(VerificationError, match="does not hash to its address"):
        open_(blob, wrong.hex())


def test_a_forged_header_cannot_claim_a_huge_chunk() -> None:
    blob = bytearray(seal(PLAIN))
    blob[33:37] = (1 << 31).to_bytes(4, "big")
    assert parse_header(bytes(blob)) is None
    with pytest.raises(VerificationError, match="not an encrypted blob"):
        open_(bytes(blob), SHA)


def test_verifying_reader_checks_plaintext_blobs() -> None:
    good = VerifyingReader(cast(BinaryIO, io.BytesIO(PLAIN)), sha256=SHA, name="b")
    assert good.read() == PLAIN
    bad = VerifyingReader(cast(BinaryIO, io.BytesIO(PLAIN + b"!")), sha256=SHA, name="b")
    with pytest.raises(VerificationError, match="does not hash"):
        bad.read()
