"""Content-addressed artifact store: blobs kept under ``artifacts/ab/cdef...`` by their SHA-256.

Writes stream through a temporary file in the same directory and are renamed into place, so a crash
never leaves a half-written blob under a valid name; an existing blob is never overwritten. Files are
written with mode 0600 inside 0700 directories.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from mlsecops.core.errors import InputError, WorkspaceError

__all__ = ["CHUNK", "ArtifactStore", "sha256_file"]

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
    """Blobs addressed by their SHA-256 under one root directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, sha256: str) -> Path:
        """Where the blob with this digest lives (whether or not it exists)."""
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise InputError(f"not a SHA-256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:]

    def __contains__(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def put_stream(self, stream: BinaryIO) -> tuple[str, int]:
        """Store the bytes of ``stream``; return ``(sha256, size)``."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
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

    def open(self, sha256: str) -> BinaryIO:
        """Open a stored blob for reading.

        Raises:
            InputError: no blob with that digest is stored.
        """
        path = self.path_for(sha256)
        if not path.is_file():
            raise InputError(f"no artifact {sha256[:12]}... in the store {self.root}")
        return path.open("rb")

    def verify(self, sha256: str) -> bool:
        """Whether the stored blob still hashes to its name."""
        return sha256_file(self.path_for(sha256)) == sha256
