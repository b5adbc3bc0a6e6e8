"""What the audit chain keeps outside the database: the head key and this host's high-water mark.

Both live in the workspace's ``keys/`` directory (0700), files 0600, never in the database, so someone
who can write the database but not these files cannot forge a head or hide a rollback:

- ``audit-head.key``: 32 random bytes (hex). The head row carries HMAC-SHA256 of its position and hash
  with it; without the key no valid head can be made for a truncated, rewritten or replaced chain.
- ``audit-mark.json``: per database (keyed by a digest of its redacted URL), the hash of event 1 (the
  ``workspace.init`` event, the chain's identity) and the newest position and hash this host has seen
  committed. A database rolled back to an older copy, or a head copied from an older state, no longer
  holds that event, and ``verify`` says so; ``init`` refuses to start a new chain in a database this
  host knows held one.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlsecops.core.errors import WorkspaceError
from mlsecops.core.redaction import redact

__all__ = ["KEY_FILE", "MARK_FILE", "Mark", "Seal", "create_key", "head_mac", "load_key"]

KEY_FILE = "audit-head.key"
MARK_FILE = "audit-mark.json"
_KEY_BYTES = 32
_MAX_MARK_BYTES = 1 << 20
"""A mark file larger than this is not ours: refuse it rather than read it (bounded memory)."""

_log = logging.getLogger("mlsecops.store.audit")


@dataclass(frozen=True)
class Mark:
    """The newest committed event of one chain that this host has seen."""

    first: str
    """Hash of event 1 (``workspace.init``)."""
    seq: int
    hash: str


@dataclass(frozen=True)
class Seal:
    """How a workspace's sessions seal and check the audit head (``Session.info[audit.SEAL_INFO]``)."""

    keys_dir: Path
    key: bytes | None
    """The head key; ``None`` when the file is absent (another host, or deleted)."""
    database: str
    """Digest of the redacted database URL: which entry of the mark file is this database's."""
    accept_unsealed: bool = False
    """Set only while sealing a workspace from before sealing: extend a head that has no MAC yet."""

    @property
    def key_path(self) -> Path:
        """Where the head key lives."""
        return self.keys_dir / KEY_FILE

    def require_key(self) -> bytes:
        """The key, or a clear error naming the file to restore.

        Raises:
            WorkspaceError: the key file is missing.
        """
        if self.key is None:
            raise WorkspaceError(
                f"the audit head key {self.key_path} is missing, so the audit chain can be neither "
                "checked nor extended; restore it from a backup (or copy it from the host that created "
                "this workspace's database)"
            )
        return self.key

    def read_mark(self) -> Mark | None:
        """This host's mark for this database, if any.

        Raises:
            WorkspaceError: the mark file exists but is not ours.
        """
        entry = _read_marks(self.keys_dir).get(self.database)
        if entry is None:
            return None
        try:
            return Mark(first=str(entry["first"]), seq=int(entry["seq"]), hash=str(entry["hash"]))
        except (KeyError, TypeError, ValueError) as err:
            raise WorkspaceError(f"the audit mark {self.keys_dir / MARK_FILE} is corrupt") from err

    def advance_mark(self, mark: Mark) -> None:
        """Record ``mark`` if it is newer than the one on file (after its transaction committed).

        Never raises: the change is already committed; a mark that cannot be written only weakens
        rollback detection on this host, and a warning says so.
        """
        try:
            marks = _read_marks(self.keys_dir)
            old = marks.get(self.database)
            if old is not None and (old.get("first") != mark.first or int(old.get("seq", 0)) >= mark.seq):
                return  # not newer, or another chain: keep the evidence on file
            marks[self.database] = {"first": mark.first, "seq": mark.seq, "hash": mark.hash}
            _write_private(self.keys_dir / MARK_FILE, json.dumps(marks, sort_keys=True).encode())
        except (OSError, WorkspaceError, ValueError, TypeError) as err:
            _log.warning("cannot update the audit mark in %s: %s", self.keys_dir, err)


def database_id(url: str) -> str:
    """The mark file's key for a database: a digest of its URL with credentials removed."""
    return hashlib.sha256(redact(url).encode("utf-8")).hexdigest()[:32]


def head_mac(key: bytes, seq: int, head_hash: str) -> str:
    """HMAC-SHA256 of the head's position and hash."""
    return hmac.new(key, f"mlsecops-audit-head/1:{seq}:{head_hash}".encode(), hashlib.sha256).hexdigest()


def _check_private_file(path: Path) -> None:
    info = path.lstat()
    if not stat.S_ISREG(info.st_mode):
        raise WorkspaceError(f"{path} is not a regular file; refusing to use it")


def load_key(keys_dir: Path) -> bytes | None:
    """The head key, ``None`` when its file does not exist.

    Raises:
        WorkspaceError: the file exists but is not a key of ours.
    """
    path = keys_dir / KEY_FILE
    try:
        _check_private_file(path)
        text = path.read_bytes()[: 4 * _KEY_BYTES].decode("ascii").strip()
        key = bytes.fromhex(text)
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise WorkspaceError(f"the audit head key {path} is unreadable or corrupt") from err
    if len(key) != _KEY_BYTES:
        raise WorkspaceError(f"the audit head key {path} is corrupt (wrong length)")
    return key


def create_key(keys_dir: Path) -> bytes:
    """Create the head key (mode 0600, never overwriting one); return the key on file.

    Raises:
        WorkspaceError: the file cannot be written.
    """
    path = keys_dir / KEY_FILE
    key = secrets.token_bytes(_KEY_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:
        existing = load_key(keys_dir)
        if existing is None:  # pragma: no cover - deleted between the two calls
            raise WorkspaceError(f"the audit head key {path} vanished while being created") from None
        return existing
    except OSError as err:
        raise WorkspaceError(f"cannot create the audit head key {path}: {err.strerror or err}") from err
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key.hex() + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return key


def _read_marks(keys_dir: Path) -> dict[str, dict[str, Any]]:
    path = keys_dir / MARK_FILE
    try:
        _check_private_file(path)
        raw = path.read_bytes()[: _MAX_MARK_BYTES + 1]
    except FileNotFoundError:
        return {}
    except OSError as err:
        raise WorkspaceError(f"cannot read the audit mark {path}: {err.strerror or err}") from err
    try:
        if len(raw) > _MAX_MARK_BYTES:
            raise ValueError("too large")
        doc = json.loads(raw)
        if not isinstance(doc, dict) or not all(isinstance(v, dict) for v in doc.values()):
            raise ValueError("not a mapping of marks")
    except ValueError as err:
        raise WorkspaceError(f"the audit mark {path} is corrupt") from err
    return doc


def _write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` atomically with a 0600 file holding ``data``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
