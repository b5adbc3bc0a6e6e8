"""Check what you use: read a model once, into a private copy, and judge only that copy.

A path is a name, not a content: between a check that reads it (a scan, a hash) and a use that reads it
again (storing, signing, describing it in a BOM) another process can swap the file or rewrite it. The
cure is to read the source exactly once, through one file descriptor opened without following a
symlink and refused unless it is a regular file, into a copy nobody else can write, and to run every
check and every use on that copy. ``snapshot`` does that for a model file or directory;
``open_regular_file`` is the one safe way to open a source file; ``tree_digest`` is the registry's
identity of a set of files (``[name, sha256]`` pairs, a single-file model named ``"."``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from mlsecops.core.errors import InputError
from mlsecops.supplychain.signing._hashing import (
    BUFFER,
    HashAlgorithm,
    HashTask,
    hash_tasks,
    open_beneath,
    open_regular,
)
from mlsecops.supplychain.signing._manifest import model_files

__all__ = [
    "Snapshot",
    "content_files",
    "open_model_file",
    "open_regular_file",
    "read_regular",
    "snapshot",
    "tree_digest",
]


def open_regular_file(path: Path, *, follow_symlinks: bool = False) -> BinaryIO:
    """Open ``path`` for reading without following a final symlink (unless ``follow_symlinks``);
    refuse FIFOs, sockets and devices (checked on the open descriptor, so nothing can be swapped in).

    Raises:
        InputError: missing, unreadable, a symlink or not a regular file.
    """
    return open(open_regular(path, follow_symlinks=follow_symlinks), "rb")


def open_model_file(model: Path, name: str) -> BinaryIO:
    """Open the file ``name`` of the model at ``model`` (a directory, or a single file whose one name is
    ``"."`` or its own name): a directory's file is reached without following any symlink on the way
    (``open_beneath``), a single file without following a final one.

    Raises:
        InputError: unsafe or unreadable.
    """
    if name == "." or not model.is_dir():
        return open_regular_file(model)
    return open(open_beneath(model, name), "rb")


def read_regular(path: Path, *, limit: int, what: str) -> bytes:
    """All bytes of a small regular file (a symlink to one is followed), read through one descriptor and
    never more than ``limit`` bytes, so a FIFO, a device or a file swapped for a huge one is refused.

    Raises:
        InputError: missing, unreadable, not a regular file, or larger than ``limit`` bytes.
    """
    with open_regular_file(path, follow_symlinks=True) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise InputError(f"{what} {path} is larger than {limit} bytes; refused")
    return data


def tree_digest(files: Iterable[tuple[str, str]]) -> str:
    """SHA-256 of the canonical JSON list of sorted ``[name, sha256]`` pairs: a model's content identity.

    The registry names a version by it (``ModelVersion.digest``), and pipeline runs record it for every
    path a stage evaluated, so a gate run can be matched to the exact version it looked at.
    """
    canon = json.dumps(sorted([n, sha] for n, sha in files), separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()


def content_files(
    path: Path, *, extra_ignore: tuple[Path, ...] = (), workers: int | None = None
) -> list[tuple[str, str, int]]:
    """``(name, sha256, size)`` of every file of a model file or directory, named as the registry names
    them (``"."`` for a single file), sorted; ``tree_digest`` of the pairs is its content identity.

    Raises:
        InputError: the path is missing or unsafe, or a file cannot be read.
    """
    entries = model_files(path, extra_ignore=extra_ignore)
    single = path.is_file() and not path.is_symlink()
    tasks = [HashTask(name, real, size=size) for name, real, size in entries]
    digests = hash_tasks(tasks, HashAlgorithm.SHA256, workers=workers)
    return sorted(("." if single else name, digests[name], size) for name, _, size in entries)


@dataclass(frozen=True)
class Snapshot:
    """A private, read-once copy of a model."""

    path: Path
    """The copy: a file (named like the source file) or a directory (same relative names)."""
    files: tuple[tuple[str, str, int], ...]
    """``(name, sha256, size)`` of every file of the copy, ``"."`` for a single-file model."""

    @property
    def digest(self) -> str:
        """``tree_digest`` of the copy."""
        return tree_digest((n, sha) for n, sha, _ in self.files)


def copy_regular(src: BinaryIO, dest: Path) -> tuple[str, int]:
    """Copy the open ``src`` (read once) to a new file ``dest`` (0600); return ``(sha256, size)``.

    Raises:
        InputError: the copy cannot be written.
    """
    digest, size = hashlib.sha256(), 0
    with src as fh:
        try:
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
            with os.fdopen(fd, "wb") as out:
                while chunk := fh.read(BUFFER):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
        except OSError as err:
            raise InputError(f"cannot copy {dest.name}: {err.strerror or err}") from err
    return digest.hexdigest(), size


@contextmanager
def snapshot(
    path: Path, *, extra_ignore: tuple[Path, ...] = (), workdir: Path | None = None
) -> Iterator[Snapshot]:
    """Copy the model at ``path`` into a private temporary directory (0700) and yield the copy.

    Every source file is opened once (no symlink followed at the last step, regular files only) and
    hashed while it is copied, so the digests describe exactly the bytes of the copy; whatever happens
    to ``path`` afterwards does not change what a check of the copy sees. The copy is removed when the
    block ends.

    Args:
        path: model file or directory (same path safety as ``model_files``).
        extra_ignore: files to leave out (the signature bundle beside or inside the model).
        workdir: where to make the temporary directory (default: the system's).

    Raises:
        InputError: the path is missing or unsafe, or the copy cannot be written.
    """
    entries = model_files(path, extra_ignore=extra_ignore)
    single = path.is_file() and not path.is_symlink()
    try:
        root = Path(tempfile.mkdtemp(prefix=".mlsecops-snapshot-", dir=workdir))
    except OSError as err:
        raise InputError(f"cannot make a private copy of {path}: {err.strerror or err}") from err
    try:
        files = []
        for name, _real, _size in entries:
            dest = root / name
            dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            st = os.lstat(dest.parent)
            if not stat.S_ISDIR(st.st_mode):  # pragma: no cover - names come from our own walk
                raise InputError(f"{path}: unsafe file name {name!r}")
            sha, size = copy_regular(open_model_file(path, name), dest)
            files.append(("." if single else name, sha, size))
        yield Snapshot(path=root / entries[0][0] if single else root, files=tuple(sorted(files)))
    finally:
        shutil.rmtree(root, ignore_errors=True)
