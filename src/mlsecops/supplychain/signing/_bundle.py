"""The OpenSSF model-signing wire format: a Sigstore bundle holding a DSSE envelope around an in-toto
statement.

::

    bundle  {mediaType: application/vnd.dev.sigstore.bundle.v0.3+json,
             verificationMaterial: {publicKey: {hint: sha256(PEM public key)}, tlogEntries: []},
             dsseEnvelope: {payloadType: application/vnd.in-toto+json, payload: base64(statement),
                            signatures: [{sig: base64(signature over PAE), keyid: ""}]}}
    statement {_type: https://in-toto.io/Statement/v1,
               subject: [{name: model name, digest: {sha256: SHA-256 over the resource digests in order}}],
               predicateType: https://model_signing/signature/v1.0,
               predicate: {serialization: {...}, resources: [{name, algorithm, digest}, ...]}}

The signature covers the DSSE pre-authentication encoding (PAE) of the payload, so the payload type is
signed too. Parsing is strict and bounded: a truncated or malformed bundle is a ``VerificationError``
that says what is missing, never a ``KeyError`` deep inside.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlsecops.core.errors import InputError, VerificationError
from mlsecops.core.inputs import parse_json
from mlsecops.supplychain.signing._hashing import open_regular
from mlsecops.supplychain.signing._keys import (
    PrivateKey,
    PublicKey,
    key_hint,
    sign_bytes,
    verify_bytes,
)
from mlsecops.supplychain.signing._manifest import Manifest, Serialization, check_name

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "MAX_BUNDLE_BYTES",
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "Bundle",
    "load_bundle_file",
    "make_bundle",
    "open_bundle",
    "pae",
    "read_bundle",
    "root_digest",
]

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
MAX_BUNDLE_BYTES = 512 << 20
"""Refuse bundles larger than this (a 100,000-file manifest is about 15 MB)."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding of ``payload``."""
    head = f"DSSEv1 {len(payload_type.encode())} {payload_type} {len(payload)} "
    return head.encode() + payload


def root_digest(digests: list[str]) -> str:
    """SHA-256 over the raw bytes of the resource digests in predicate order (the statement subject)."""
    h = hashlib.sha256()
    for digest in digests:
        h.update(bytes.fromhex(digest))
    return h.hexdigest()


def _statement(manifest: Manifest) -> dict[str, Any]:
    algorithm = manifest.serialization.algorithm_name
    items = manifest.sorted_items()
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": manifest.model_name, "digest": {"sha256": root_digest([d for _, d in items])}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": manifest.serialization.to_json(),
            "resources": [{"name": n, "algorithm": algorithm, "digest": d} for n, d in items],
        },
    }


def make_bundle(manifest: Manifest, key: PrivateKey) -> bytes:
    """Sign ``manifest`` with ``key`` and return the bundle as JSON bytes."""
    payload = json.dumps(_statement(manifest), indent=2, sort_keys=False).encode("utf-8")
    signature = sign_bytes(key, pae(PAYLOAD_TYPE, payload))
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": key_hint(key.public_key())}, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode("ascii"),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [{"sig": base64.b64encode(signature).decode("ascii"), "keyid": ""}],
        },
    }
    return json.dumps(bundle, indent=2).encode("utf-8")


@dataclass(frozen=True)
class Bundle:
    """A parsed (not yet verified) bundle."""

    key_hint: str | None
    """SHA-256 of the signer's PEM public key, when the bundle names it."""
    payload: bytes
    payload_type: str
    signatures: tuple[bytes, ...]


def _get(obj: Any, key: str, what: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise VerificationError(f"the signature bundle is malformed or truncated: {what} is missing")
    return obj[key]


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise VerificationError(f"the signature bundle is malformed: {what} is not base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise VerificationError(
            f"the signature bundle is malformed or truncated: {what} is not valid base64"
        ) from None


def read_bundle(data: bytes) -> Bundle:
    """Parse bundle JSON bytes.

    Raises:
        VerificationError: not JSON, truncated, or missing a required part.
    """
    try:
        # The bounded JSON reader: nesting is limited before decoding (no RecursionError on deep input).
        raw = parse_json(data, what="the signature bundle")
    except InputError as err:
        raise VerificationError(
            f"the signature bundle is truncated or not JSON: {err.diagnostics()}"
        ) from None
    media = _get(raw, "mediaType", "mediaType")
    if not isinstance(media, str) or not media.startswith("application/vnd.dev.sigstore.bundle"):
        raise VerificationError(f"not a Sigstore bundle (mediaType {media!r})")
    material = _get(raw, "verificationMaterial", "verificationMaterial")
    hint = material.get("publicKey", {}).get("hint") if isinstance(material, dict) else None
    envelope = _get(raw, "dsseEnvelope", "dsseEnvelope")
    payload_type = _get(envelope, "payloadType", "dsseEnvelope.payloadType")
    if payload_type != PAYLOAD_TYPE:
        raise VerificationError(f"the envelope carries {payload_type!r}, not an in-toto statement")
    payload = _b64(_get(envelope, "payload", "dsseEnvelope.payload"), "the payload")
    sigs = _get(envelope, "signatures", "dsseEnvelope.signatures")
    if not isinstance(sigs, list) or not sigs:
        raise VerificationError("the signature bundle holds no signature")
    signatures = tuple(_b64(_get(s, "sig", "a signature's sig"), "a signature") for s in sigs)
    return Bundle(
        key_hint=hint if isinstance(hint, str) and hint else None,
        payload=payload,
        payload_type=payload_type,
        signatures=signatures,
    )


def load_bundle_file(path: Path) -> bytes:
    """Read a bundle file through one descriptor, never more than ``MAX_BUNDLE_BYTES`` bytes.

    The size is judged by what is read, not by an earlier ``stat``, and a FIFO or device is refused on
    the open descriptor, so a file swapped after a check can neither hang the reader nor exhaust memory.

    Raises:
        InputError: missing, unreadable, or not a regular file.
        VerificationError: larger than ``MAX_BUNDLE_BYTES``.
    """
    if not path.exists() and not path.is_symlink():
        raise InputError(f"no signature at {path}; sign the model first with `mlsecops sign`")
    if path.is_dir():
        raise InputError(f"{path} is a directory, not a signature bundle")
    fd = open_regular(path, follow_symlinks=True)
    try:
        with open(fd, "rb", closefd=False) as fh:
            data = fh.read(MAX_BUNDLE_BYTES + 1)
    except OSError as err:
        raise InputError(f"cannot read the signature {path}: {err.strerror or err}") from err
    finally:
        os.close(fd)
    if len(data) > MAX_BUNDLE_BYTES:
        raise VerificationError(f"the signature bundle {path} is too large (over {MAX_BUNDLE_BYTES} bytes)")
    return data


def open_bundle(bundle: Bundle, key: PublicKey) -> Manifest:
    """Check the bundle's signature with ``key`` and return the signed manifest.

    Raises:
        VerificationError: a different key signed it, the signature does not verify, or the statement
            is malformed or inconsistent (its subject digest does not match its resources).
    """
    hint = key_hint(key)
    if bundle.key_hint is not None and bundle.key_hint != hint:
        raise VerificationError(
            f"the model was signed by key {bundle.key_hint[:16]}..., not by the given key {hint[:16]}...; "
            "verify with the signer's public key"
        )
    message = pae(bundle.payload_type, bundle.payload)
    if not any(verify_bytes(key, sig, message) for sig in bundle.signatures):
        raise VerificationError(
            "the signature does not match: the statement was altered or another key signed it"
        )
    try:
        statement = parse_json(bundle.payload, what="the signed payload")
    except InputError as err:
        raise VerificationError(f"the signed payload is not usable JSON: {err.diagnostics()}") from None
    if _get(statement, "_type", "statement _type") != STATEMENT_TYPE:
        raise VerificationError(f"the payload is not an in-toto {STATEMENT_TYPE} statement")
    if _get(statement, "predicateType", "predicateType") != PREDICATE_TYPE:
        raise VerificationError(
            f"the statement's predicate type is {statement['predicateType']!r}, not {PREDICATE_TYPE!r}"
        )
    subjects = _get(statement, "subject", "subject")
    if not isinstance(subjects, list) or len(subjects) != 1:
        raise VerificationError("the statement must have exactly one subject (the model)")
    name = _get(subjects[0], "name", "subject name")
    expected_root = _get(_get(subjects[0], "digest", "subject digest"), "sha256", "subject sha256 digest")
    predicate = _get(statement, "predicate", "predicate")
    ser = Serialization.from_json(_get(predicate, "serialization", "predicate.serialization"))
    resources = _get(predicate, "resources", "predicate.resources")
    if not isinstance(resources, list):
        raise VerificationError("predicate.resources is not a list")
    digests: dict[str, str] = {}
    for r in resources:
        rname = _get(r, "name", "a resource name")
        digest = _get(r, "digest", "a resource digest")
        if not isinstance(rname, str) or not isinstance(digest, str):
            raise VerificationError("a resource of the statement is malformed")
        path_part = rname.rsplit(":", 2)[0] if ser.method == "shards" else rname
        check_name(path_part)
        if rname in digests:
            raise VerificationError(f"the statement lists {rname!r} twice")
        try:
            bytes.fromhex(digest)
        except ValueError:
            raise VerificationError(f"the digest of {rname!r} is not hex") from None
        digests[rname] = digest.lower()
    manifest = Manifest(model_name=str(name), digests=digests, serialization=ser)
    if root_digest(list(digests.values())) != expected_root:
        raise VerificationError(
            "the statement is inconsistent: its subject digest does not match its resources"
        )
    return manifest
