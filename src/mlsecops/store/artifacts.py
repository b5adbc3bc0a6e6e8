"""Content-addressed artifact store: blobs kept under ``artifacts/ab/cdef...`` by their SHA-256.

Writes stream through a temporary file in the same directory and are renamed into place, so a crash
never leaves a half-written blob under a valid name; an existing blob is never overwritten. Files are
written with mode 0600 inside 0700 directories.

This is the one layer through which blobs are read and written. With encryption at rest on (a
``Keyring`` whose workspace has encryption settings, ``store.encryption``), blobs are stored in the
chunked AES-GCM format of ``store._blobcrypt`` under the address of their plaintext, so digests,
signatures and lineage do not change; ``open``, ``copy_out``, ``export`` and ``plaintext_files`` give
the plaintext, re-hashed against its address, and nothing else reads blob files directly.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

from mlsecops.core.errors import InputError, VerificationError, WorkspaceError
from mlsecops.store._blobcrypt import (
    HEADER_SIZE,
    DecryptingReader,
    VerifyingReader,
    encrypt_stream,
    parse_header,
)

if TYPE_CHECKING:
    from mlsecops.store.encryption import Keyring, Policy

__all__ = ["CHUNK", "ArtifactStore", "sha256_file"]

_HEX = frozenset("0123456789abcdef")

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, streamed in 1 MiB chunks.

    Raises:
        InputError: the file cannot be read.
    """
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror or err}") from err
    return digest.hexdigest()


class ArtifactStore:
    """Blobs addressed by their SHA-256 under one root directory, encrypted when ``keyring``'s
    workspace has encryption on.
    """

    def __init__(self, root: Path, keyring: Keyring | None = None) -> None:
        self.root = root
        self.keyring = keyring

    def path_for(self, sha256: str) -> Path:
        """Where the blob with this digest lives (whether or not it exists); its bytes may be ciphertext:
        read it through ``open``, ``copy_out``, ``export`` or ``plaintext_files``.
        """
        if len(sha256) != 64 or any(c not in _HEX for c in sha256):
            raise InputError(f"not a SHA-256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:]

    def __contains__(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def policy(self) -> Policy | None:
        """The encryption settings in force now (None: blobs are stored as they are)."""
        return self.keyring.policy() if self.keyring is not None else None

    def digests(self) -> Iterator[str]:
        """Addresses of every blob file under the root (whether or not the database lists it)."""
        if not self.root.is_dir():
            return
        for sub in sorted(self.root.iterdir()):
            if len(sub.name) != 2 or not sub.is_dir() or not set(sub.name) <= _HEX:
                continue
            for blob in sorted(sub.iterdir()):
                sha = sub.name + blob.name
                if len(sha) == 64 and set(blob.name) <= _HEX and blob.is_file():
                    yield sha

    # ------------------------------------------------------------------ writing

    def _write_new(self, final: Path, fill: Callable[[BinaryIO], None], *, replace: bool = False) -> None:
        """Write a temporary file next to ``final`` with ``fill``, fsync it and rename it into place
        (over an existing file only with ``replace``), then fsync the directory.
        """
        final.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                fill(out)
                out.flush()
                os.fsync(out.fileno())
            if final.exists() and not replace:
                tmp.unlink()
                return
            os.replace(tmp, final)
            _fsync_dir(final.parent)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            raise WorkspaceError(
                f"cannot write to the artifact store {self.root}: {err.strerror or err}"
            ) from err
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def put_stream(self, stream: BinaryIO) -> tuple[str, int]:
        """Store the bytes of ``stream``; return ``(sha256, size)``.

        Raises:
            InputError: the stream changed while it was read (encrypted stores read it twice).
            KeyUnavailable: encryption is on and the key-encryption key is missing or wrong.
        """
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        policy = self.policy()
        if policy is not None:
            return self._put_encrypted(stream, policy)
        digest, size = hashlib.sha256(), 0
        fd, tmp_name = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            sha = digest.hexdigest()
            final = self.path_for(sha)
            final.parent.mkdir(mode=0o700, exist_ok=True)
            if final.exists():
                tmp.unlink()
            else:
                os.replace(tmp, final)
            return sha, size
        except OSError as err:
            tmp.unlink(missing_ok=True)
            raise WorkspaceError(
                f"cannot write to the artifact store {self.root}: {err.strerror or err}"
            ) from err
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _put_encrypted(self, stream: BinaryIO, policy: Policy) -> tuple[str, int]:
        """The address is the plaintext's digest, needed before the first chunk is sealed: a seekable
        source is hashed, then encrypted in a second pass that must hash the same; any other is first
        spooled encrypted under a one-time key, never as plaintext.
        """
        assert self.keyring is not None
        key = self.keyring.key(policy.active_key)
        key_id = bytes.fromhex(policy.active_key)
        try:
            start = stream.tell() if stream.seekable() else None
        except OSError:
            start = None
        if start is None:
            return self._put_spooled(stream, key, key_id)
        digest, size = hashlib.sha256(), 0
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
        sha = digest.hexdigest()
        final = self.path_for(sha)
        if final.is_file():
            return sha, size
        stream.seek(start)
        self._seal_into(final, stream, key, key_id, sha)
        return sha, size

    def _seal_into(
        self, final: Path, src: BinaryIO, key: bytes, key_id: bytes, sha: str, *, replace: bool = False
    ) -> None:
        def fill(out: BinaryIO) -> None:
            got, _ = encrypt_stream(src, out, data_key=key, key_id=key_id, digest=bytes.fromhex(sha))
            if got != sha:
                raise InputError("the file changed while it was being stored; store it again")

        self._write_new(final, fill, replace=replace)

    def _put_spooled(self, stream: BinaryIO, key: bytes, key_id: bytes) -> tuple[str, int]:
        once = os.urandom(32)
        unbound = bytes(32)
        with tempfile.TemporaryFile(dir=self.root, prefix=".spool-") as spool:
            sha, size = encrypt_stream(stream, spool, data_key=once, key_id=bytes(8), digest=unbound)
            final = self.path_for(sha)
            if not final.is_file():
                spool.seek(0)
                reader = DecryptingReader(
                    spool, key_for=lambda _: once, sha256=sha, name="spool", aad_digest=unbound
                )
                self._seal_into(final, cast(BinaryIO, reader), key, key_id, sha)
        return sha, size

    def put_file(self, path: Path) -> tuple[str, int]:
        """Store a copy of the file at ``path``; return ``(sha256, size)``.

        Raises:
            InputError: ``path`` is not a readable regular file.
        """
        if not path.is_file():
            raise InputError(f"{path} is not a regular file")
        try:
            with path.open("rb") as fh:
                return self.put_stream(fh)
        except PermissionError as err:
            raise InputError(f"cannot read {path}: permission denied") from err

    # ------------------------------------------------------------------ reading

    def _is_plain(self, head: bytes, policy: Policy | None, name: str) -> bool:
        """Whether a blob starting with ``head`` is stored as plaintext.

        Raises:
            VerificationError: encryption is complete and the blob is not encrypted.
        """
        parsed = parse_header(head)
        if policy is None:
            return True  # never encrypted: a blob that merely starts like a header is plaintext
        if parsed is not None and (not policy.accept_plain or self._holds(parsed[0].hex())):
            return False
        if policy.accept_plain:
            return True
        raise VerificationError(
            f"{name} of this encrypted workspace is stored unencrypted (replaced on disk?); "
            "restore it from a backup or re-register the artifact"
        )

    def _holds(self, key_id: str) -> bool:
        assert self.keyring is not None
        return self.keyring.holds(key_id)

    def open(self, sha256: str) -> BinaryIO:
        """Open a stored blob's plaintext for reading.

        With encryption on, each chunk is authenticated before it is returned, and reading to the end
        raises ``VerificationError`` unless the plaintext hashes to ``sha256``.

        Raises:
            InputError: no blob with that digest is stored.
            VerificationError: the stored blob fails authentication or does not hash to its address.
            KeyUnavailable: the key-encryption key is missing or wrong.
        """
        path = self.path_for(sha256)
        if not path.is_file():
            raise InputError(f"no artifact {sha256[:12]}... in the store {self.root}")
        fh = path.open("rb")
        if self.keyring is None:
            return fh
        try:
            policy = self.keyring.policy()
            if policy is None:
                return fh
            head = fh.read(HEADER_SIZE)
            fh.seek(0)
            name = f"artifact {sha256[:12]}..."
            if self._is_plain(head, policy, name):
                return cast(BinaryIO, VerifyingReader(fh, sha256=sha256, name=name))
            keyring = self.keyring
            return cast(
                BinaryIO, DecryptingReader(fh, key_for=keyring.key_by_raw_id, sha256=sha256, name=name)
            )
        except BaseException:
            fh.close()
            raise

    def copy_out(self, sha256: str, dest: Path) -> None:
        """Write the blob's verified plaintext to the new file ``dest`` (mode 0600); on any failure
        ``dest`` is removed.

        Raises:
            InputError, VerificationError, KeyUnavailable: as ``open``.
            WorkspaceError: ``dest`` cannot be written.
        """
        with self.open(sha256) as src:
            try:
                fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
            except OSError as err:
                raise WorkspaceError(f"cannot write {dest}: {err.strerror or err}") from err
            try:
                with os.fdopen(fd, "wb") as out:
                    while chunk := src.read(CHUNK):
                        out.write(chunk)
            except BaseException:
                dest.unlink(missing_ok=True)
                raise

    def encrypted_at_rest(self) -> bool:
        """Whether blob files may hold ciphertext (encryption settings exist)."""
        return self.policy() is not None

    def export(self, sha256: str, dest: Path) -> None:
        """Put the blob's plaintext at ``dest``: a hard link to the blob when it is stored as plaintext
        (nothing copied), a verified decrypted copy otherwise.

        Raises:
            as ``copy_out``.
        """
        if not self.encrypted_at_rest():
            blob = self.path_for(sha256)
            try:
                os.link(blob, dest)
            except OSError:
                shutil.copyfile(blob, dest)
            return
        self.copy_out(sha256, dest)

    @contextmanager
    def plaintext_files(self, blobs: Mapping[str, str]) -> Iterator[dict[str, Path]]:
        """``{name: path of its plaintext}`` for ``{name: sha256}``: the blob files themselves when
        stored as plaintext, else verified decrypted copies in a private folder removed afterwards.

        Raises:
            as ``copy_out``.
        """
        if not self.encrypted_at_rest():
            yield {name: self.path_for(sha) for name, sha in blobs.items()}
            return
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            stage = Path(tempfile.mkdtemp(prefix=".plain-", dir=self.root))
        except OSError as err:
            raise WorkspaceError(f"cannot stage blobs in {self.root}: {err.strerror or err}") from err
        try:
            out: dict[str, Path] = {}
            for i, (name, sha) in enumerate(blobs.items()):
                out[name] = stage / str(i)
                self.copy_out(sha, out[name])
            yield out
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    def verify(self, sha256: str) -> bool:
        """Whether the stored blob still hashes to its name (decrypted and authenticated first when
        encrypted).

        Raises:
            KeyUnavailable: the key-encryption key is missing or wrong.
        """
        if self.keyring is None:
            return sha256_file(self.path_for(sha256)) == sha256
        try:
            with self.open(sha256) as fh:
                while fh.read(CHUNK):
                    pass
        except VerificationError:
            return False
        return True

    def is_encrypted(self, sha256: str) -> bool:
        """Whether the blob file is in the encrypted format (by its header; ``open`` authenticates)."""
        try:
            with self.path_for(sha256).open("rb") as fh:
                return parse_header(fh.read(HEADER_SIZE)) is not None and self.encrypted_at_rest()
        except OSError:
            return False

    def reseal(self, sha256: str, key: bytes, key_id: str) -> None:
        """Re-encrypt one blob in place under data key ``key_id``, crash-safely: the new file is written
        next to it, fsynced and renamed over it; the plaintext is verified against the address first.

        Raises:
            InputError, VerificationError, KeyUnavailable: as ``open``.
        """
        with self.open(sha256) as src:
            self._seal_into(self.path_for(sha256), src, key, bytes.fromhex(key_id), sha256, replace=True)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
