"""Signed checkpoints of the audit chain, kept outside the workspace (as transparency logs do).

A hash chain alone cannot show that a database administrator rewrote the whole trail with freshly
recomputed hashes; neither can the head's HMAC when the same person also holds ``keys/``. A checkpoint
is a signed statement "event SEQ of the chain that starts with event-1 hash FIRST has hash H, as of
time T", made with the workspace's Ed25519 checkpoint key and appended as one JSON line to a file
kept elsewhere (another host, a ticket system, a write-once bucket). ``verify`` later checks every
line's signature against a public key the verifier trusts and then that the chain still holds each
checkpointed event: a rewritten, truncated or replaced chain no longer does, whoever holds the keys
now, because the checkpoints made before the rewrite are out of their reach.

What it guarantees, and what it does not:

- Events up to the newest checkpoint held elsewhere cannot be changed, deleted or replaced without
  ``verify --checkpoints`` failing; events after it are protected by the chain and the head's MAC only.
- A checkpoint file is public information (positions and hashes, never event content); anyone may keep
  a copy. Its lines cannot be forged without the private key, so a file that sits somewhere less
  trusted still cannot vouch for a rewritten chain.
- The private key lives in ``keys/audit-checkpoint.key`` (0600); verifying with the workspace's own
  ``keys/audit-checkpoint.pub`` only proves the checkpoints were made by whoever holds that directory:
  pass the public key kept elsewhere (``--public-key``) for the full guarantee.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import stat
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from mlsecops.core.errors import InputError, VerificationError, WorkspaceError
from mlsecops.store import audit
from mlsecops.store.models import AuditEvent

__all__ = [
    "PRIVATE_KEY_FILE",
    "PUBLIC_KEY_FILE",
    "Checkpoint",
    "CheckpointStatus",
    "load_or_create_key",
    "load_public_key",
    "read_checkpoints",
    "sign_head",
    "verify_checkpoints",
    "write_checkpoint",
]

PRIVATE_KEY_FILE = "audit-checkpoint.key"
PUBLIC_KEY_FILE = "audit-checkpoint.pub"
_DOMAIN = "mlsecops-audit-checkpoint/1"
MAX_FILE_BYTES = 64 << 20
"""A checkpoint file larger than this is refused (one line is about 400 bytes)."""
MAX_LINE_BYTES = 4096


@dataclass(frozen=True)
class Checkpoint:
    """One signed statement about the chain's head."""

    chain: str
    """Hash of event 1 (``workspace.init``): which chain this is about."""
    seq: int
    hash: str
    time: str
    """When it was made (UTC, ISO 8601)."""
    key_id: str
    """First 16 hex digits of SHA-256 over the raw public key that signed it."""
    signature: str
    """Base64 Ed25519 signature of ``statement()``."""

    def statement(self) -> bytes:
        """The signed bytes: domain tag and the fields, in a fixed order."""
        return f"{_DOMAIN}\n{self.chain}\n{self.seq}\n{self.hash}\n{self.time}\n{self.key_id}".encode()

    def to_line(self) -> str:
        """The JSON line written to a checkpoint file."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))


def _key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def _regular(path: Path) -> None:
    info = path.lstat()
    if not stat.S_ISREG(info.st_mode):
        raise WorkspaceError(f"{path} is not a regular file; refusing to use it")


def _write_new(path: Path, data: bytes, mode: int) -> bool:
    """Create ``path`` with ``data`` unless it exists; whether this call created it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return True


def load_or_create_key(keys_dir: Path) -> Ed25519PrivateKey:
    """The workspace's checkpoint signing key, created (0600, with its 0644 public half) on first use.

    Raises:
        WorkspaceError: the key file is not a regular file or not an Ed25519 private key.
    """
    path = keys_dir / PRIVATE_KEY_FILE
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        created = _write_new(path, pem, 0o600)
    except OSError as err:
        raise WorkspaceError(f"cannot create the checkpoint key {path}: {err.strerror or err}") from err
    if not created:
        try:
            _regular(path)
            loaded = serialization.load_pem_private_key(path.read_bytes()[:8192], password=None)
        except (OSError, ValueError, TypeError) as err:
            raise WorkspaceError(f"the checkpoint key {path} is unreadable or corrupt") from err
        if not isinstance(loaded, Ed25519PrivateKey):
            raise WorkspaceError(f"the checkpoint key {path} is not an Ed25519 key")
        key = loaded
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pub_path = keys_dir / PUBLIC_KEY_FILE
    try:
        if not _write_new(pub_path, public, 0o644) and pub_path.read_bytes()[:4096] != public:
            pub_path.unlink()
            _write_new(pub_path, public, 0o644)
    except OSError as err:
        raise WorkspaceError(
            f"cannot write the checkpoint public key {pub_path}: {err.strerror or err}"
        ) from err
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM file (``keys/audit-checkpoint.pub`` or a copy kept elsewhere).

    Raises:
        InputError: missing, not a regular file, or not an Ed25519 public key in PEM.
    """
    try:
        _regular(path)
        data = path.read_bytes()[:8192]
        key = serialization.load_pem_public_key(data)
    except FileNotFoundError:
        raise InputError(f"no public key at {path}") from None
    except (OSError, ValueError, TypeError, WorkspaceError) as err:
        raise InputError(f"{path} is not a PEM public key ({err})") from err
    if not isinstance(key, Ed25519PublicKey):
        raise InputError(f"{path} is not an Ed25519 public key (checkpoints are signed with Ed25519)")
    return key


def _first_hash(session: Session) -> str | None:
    value = session.execute(select(AuditEvent.hash).where(AuditEvent.seq == 1)).scalar()
    return value if isinstance(value, str) else None


def sign_head(session: Session, key: Ed25519PrivateKey, *, now: dt.datetime | None = None) -> Checkpoint:
    """Verify the chain, then sign its head.

    Raises:
        VerificationError: the chain does not verify (a checkpoint must never vouch for tampering).
    """
    status = audit.verify(session)
    if not status.ok or status.head is None:
        raise VerificationError(
            f"audit trail tampered at event {status.bad_seq}: {status.reason}; no checkpoint made"
        )
    chain = _first_hash(session)
    assert chain is not None  # an intact chain holds event 1
    when = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).isoformat(timespec="seconds")
    key_id = _key_id(key.public_key())
    unsigned = Checkpoint(chain, status.head.seq, status.head.hash, when, key_id, "")
    signature = base64.b64encode(key.sign(unsigned.statement())).decode("ascii")
    return Checkpoint(chain, status.head.seq, status.head.hash, when, key_id, signature)


def write_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Append ``checkpoint`` as one line to ``path`` (created 0644; never through a symlink).

    Raises:
        InputError: the file cannot be opened for appending, or is not a regular file.
    """
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as err:
        raise InputError(f"cannot append to {path}: {err.strerror or err}") from err
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise InputError(f"{path} is not a regular file")
        fh.write(checkpoint.to_line() + "\n")
        fh.flush()
        os.fsync(fh.fileno())


_FIELDS = {"chain": str, "seq": int, "hash": str, "time": str, "key_id": str, "signature": str}


def _parse_line(raw: bytes, number: int, source: Path) -> Checkpoint:
    where = f"{source}, line {number}"
    if len(raw) > MAX_LINE_BYTES:
        raise InputError(f"{where}: longer than {MAX_LINE_BYTES} bytes; not a checkpoint")
    try:
        doc: Any = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InputError(f"{where}: not JSON") from None
    if not isinstance(doc, dict) or set(doc) != set(_FIELDS):
        raise InputError(f"{where}: a checkpoint has exactly the fields {', '.join(sorted(_FIELDS))}")
    for name, kind in _FIELDS.items():
        value = doc[name]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise InputError(f"{where}: {name} must be a {kind.__name__}")
    if doc["seq"] < 1 or not all(
        len(doc[h]) == 64 and all(c in "0123456789abcdef" for c in doc[h]) for h in ("chain", "hash")
    ):
        raise InputError(f"{where}: seq must be >= 1 and chain, hash 64 lowercase hex digits")
    return Checkpoint(**doc)


def read_checkpoints(path: Path) -> list[Checkpoint]:
    """Every checkpoint in a file, in order; blank lines are skipped.

    Raises:
        InputError: missing, not a regular file, too large, or a line that is not a checkpoint (named).
    """
    try:
        _regular(path)
        with path.open("rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise InputError(f"no checkpoint file at {path}") from None
    except (OSError, WorkspaceError) as err:
        raise InputError(f"cannot read {path}: {err}") from err
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"{path} is larger than {MAX_FILE_BYTES >> 20} MiB; not a checkpoint file")
    found = [_parse_line(line, n, path) for n, line in enumerate(data.split(b"\n"), start=1) if line.strip()]
    if not found:
        raise InputError(f"{path} holds no checkpoint")
    return found


@dataclass(frozen=True)
class CheckpointStatus:
    """Outcome of ``verify_checkpoints``."""

    ok: bool
    checked: int
    """Checkpoints whose signature and position were checked."""
    newest: int
    """Highest position vouched for by a checkpoint."""
    reason: str = ""
    chain: audit.ChainStatus | None = None


def _bad(reason: str, checked: int, newest: int) -> CheckpointStatus:
    return CheckpointStatus(False, checked, newest, reason)


def verify_checkpoints(
    session: Session, checkpoints: Sequence[Checkpoint], public_key: Ed25519PublicKey
) -> CheckpointStatus:
    """Check each checkpoint's signature under ``public_key``, then that the chain still holds it.

    Fails on the first checkpoint with a bad signature or another key, one about another chain (event 1
    differs: the chain was replaced), or one whose position is gone or holds other content (events
    deleted or rewritten), and when the chain itself does not verify.
    """
    key_id = _key_id(public_key)
    newest = 0
    for n, cp in enumerate(checkpoints, start=1):
        if cp.key_id != key_id:
            return _bad(
                f"checkpoint {n} was signed by key {cp.key_id}, not by the given key {key_id}", n - 1, newest
            )
        try:
            public_key.verify(base64.b64decode(cp.signature, validate=True), cp.statement())
        except (InvalidSignature, ValueError):
            return _bad(
                f"checkpoint {n} (event {cp.seq}) has an invalid signature (forged or edited)", n - 1, newest
            )
        newest = max(newest, cp.seq)
    chain = _first_hash(session)
    for n, cp in enumerate(checkpoints, start=1):
        if cp.chain != chain:
            return _bad(
                f"checkpoint {n} is about a chain whose event 1 differs from this one's "
                "(the chain was replaced, or the checkpoint belongs to another workspace)",
                len(checkpoints),
                newest,
            )
    anchors = [audit.Anchor(cp.seq, cp.hash) for cp in checkpoints]
    status = audit.verify(session, anchors=anchors)
    if not status.ok:
        reason = status.reason.replace("the anchor records", "a signed checkpoint records")
        return CheckpointStatus(False, len(checkpoints), newest, reason, status)
    return CheckpointStatus(True, len(checkpoints), newest, chain=status)
