"""Streaming, parallel digests of files and file shards.

Each task hashes one file (or one ``[start, end)`` shard of a file) through a fixed buffer, so memory
stays constant whatever the model's size. Tasks run on a thread pool: ``hashlib`` and ``blake3`` release
the GIL while they hash large buffers, and reads release it too, so two threads keep two cores busy
without the cost of processes. Many tiny files are grouped into batches so that a model directory of
100,000 files does not pay for 100,000 futures.

Files are opened with ``O_NOFOLLOW | O_NONBLOCK`` and checked with ``fstat`` after opening: a symlink
swapped in after the directory walk, a FIFO (which would block a plain ``open`` forever) or a device
is refused instead of read.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from mlsecops.core.errors import InputError

__all__ = [
    "BUFFER",
    "HashAlgorithm",
    "HashTask",
    "default_workers",
    "hash_tasks",
    "open_beneath",
    "open_regular",
]

BUFFER = 1 << 20
"""Bytes read at a time per worker (1 MiB stays in the CPU cache between the read and the hash)."""
BLAKE3_WINDOW = 32 << 20
"""BLAKE3 hashes one large file at a time with all cores, through memory-mapped windows of this size:
big updates spread the tree hash over the cores, no copy out of the page cache, and only one window
is mapped at a time, so memory stays bounded (whole-file ``update_mmap`` maps the file at once)."""
_BLAKE3_BIG = 8 << 20
_BATCH_BYTES = 64 << 20
_BATCH_FILES = 512


class HashAlgorithm(StrEnum):
    """Per-file digest algorithms; names as the model-signing format records them in ``hash_type``."""

    SHA256 = "sha256"
    BLAKE3 = "blake3"
    BLAKE2 = "blake2b"

    def __str__(self) -> str:
        return self.value

    @property
    def digest_name(self) -> str:
        """The name recorded as a resource's ``algorithm``."""
        return self.value


class _Hasher(Protocol):
    def update(self, data: memoryview, /) -> object: ...
    def hexdigest(self) -> str: ...


def _new_hasher(algorithm: HashAlgorithm, *, all_threads: bool = False) -> _Hasher:
    if algorithm is HashAlgorithm.SHA256:
        return hashlib.sha256()
    if algorithm is HashAlgorithm.BLAKE2:
        return hashlib.blake2b()
    try:
        import blake3
    except ImportError:
        raise InputError(
            "BLAKE3 hashing needs the blake3 package: pip install 'mlsecops[signing]' (or pip install blake3)"
        ) from None
    hasher: _Hasher = blake3.blake3(max_threads=blake3.blake3.AUTO if all_threads else 1)
    return hasher


@dataclass(frozen=True)
class HashTask:
    """One file or shard to digest."""

    name: str
    """Identifier in the manifest (``path`` or ``path:start:end``)."""
    path: Path
    """The file to read."""
    start: int = 0
    end: int | None = None
    """End offset (exclusive); ``None`` reads to the end of the file."""
    size: int = 0
    """Expected number of bytes, for batching."""
    file_size: int | None = None
    """Size of the whole file when the walk saw it; for a shard, reading checks that the file still has
    exactly that size, so bytes appended after the walk cannot pass unhashed."""
    root: Path | None = None
    """The model folder ``path`` lies in (``path`` is ``root/rel``): the file is then opened from
    ``root`` without following any symlink on the way (``open_beneath``)."""
    rel: str = ""
    """``path`` relative to ``root``."""


def default_workers() -> int:
    """Threads used for hashing: one per CPU (at least 1)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def open_regular(path: Path, *, follow_symlinks: bool = False) -> int:
    """A read-only descriptor of ``path``: no symlink followed at the last step (unless
    ``follow_symlinks``), never blocking on a FIFO, and refused unless ``fstat`` of the open descriptor
    says it is a regular file.

    Raises:
        InputError: missing, unreadable, a symlink, or not a regular file.
    """
    nofollow = 0 if follow_symlinks else getattr(os, "O_NOFOLLOW", 0)
    flags = os.O_RDONLY | nofollow | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as err:
        if not follow_symlinks and os.path.islink(path):
            raise InputError(f"{path} became a symlink while it was being read; refused") from None
        raise InputError(f"cannot read {path}: {err.strerror or err}") from err
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InputError(f"{path} is not a regular file (FIFO, socket or device); refused")
    return fd


def open_beneath(root: Path, name: str) -> int:
    """A read-only descriptor of the regular file ``root/name``, reached one folder at a time from
    ``root`` without following any symlink on the way (``openat`` with ``O_NOFOLLOW``): a folder of the
    model swapped for a symlink after the walk cannot redirect the read outside the model.

    Raises:
        InputError: a component is missing, a symlink or not a folder, or the file is not regular.
    """
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise InputError(f"{name!r} is not a file name inside {root}")
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    folder = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    where = root / name
    try:
        fd = os.open(root, folder)
    except OSError as err:
        raise InputError(f"cannot read {where}: {err.strerror or err}") from err
    try:
        for part in parts[:-1]:
            inner = os.open(part, folder | nofollow, dir_fd=fd)
            os.close(fd)
            fd = inner
        leaf = os.open(parts[-1], os.O_RDONLY | nofollow | getattr(os, "O_NONBLOCK", 0), dir_fd=fd)
    except OSError as err:
        raise InputError(
            f"cannot read {where}: {err.strerror or err} (a symlink, or a folder changed while it was read)"
        ) from err
    finally:
        os.close(fd)
    if not stat.S_ISREG(os.fstat(leaf).st_mode):
        os.close(leaf)
        raise InputError(f"{where} is not a regular file (FIFO, socket or device); refused")
    return leaf


def _open_task(task: HashTask) -> int:
    if task.root is not None:
        return open_beneath(task.root, task.rel)
    return open_regular(task.path)


def _digest_windows(task: HashTask, algorithm: HashAlgorithm) -> str:
    """Hash through memory-mapped windows (BLAKE3 on all cores). A file truncated by another process
    while it is mapped can end the process with SIGBUS; the same holds for model-signing's mmap.
    """
    hasher = _new_hasher(algorithm, all_threads=True)
    fd = _open_task(task)
    try:
        size = os.fstat(fd).st_size
        end = size if task.end is None else task.end
        if end > size or (task.file_size is not None and size != task.file_size):
            raise InputError(f"{task.path} changed size while it was read; refused")
        offset = task.start - task.start % mmap.ALLOCATIONGRANULARITY
        while offset < end:
            length = min(BLAKE3_WINDOW, end - offset)
            lo = max(0, task.start - offset)
            with (
                mmap.mmap(fd, length, access=mmap.ACCESS_READ, offset=offset) as window,
                memoryview(window) as view,
                view[lo:length] as part,
            ):
                hasher.update(part)
            offset += length
    except OSError as err:
        raise InputError(f"cannot read {task.path}: {err.strerror or err}") from err
    finally:
        os.close(fd)
    return hasher.hexdigest()


def _digest(task: HashTask, algorithm: HashAlgorithm, buf: bytearray) -> str:
    hasher = _new_hasher(algorithm)
    fd = _open_task(task)
    view = memoryview(buf)
    try:
        if task.start:
            os.lseek(fd, task.start, os.SEEK_SET)
        remaining = None if task.end is None else task.end - task.start
        with open(fd, "rb", buffering=0, closefd=False) as fh:
            while remaining is None or remaining > 0:
                want = len(buf) if remaining is None else min(len(buf), remaining)
                n = fh.readinto(view[:want])
                if not n:
                    break
                hasher.update(view[:n])
                if remaining is not None:
                    remaining -= n
        if remaining:
            raise InputError(f"{task.path} is shorter than expected (changed while it was read)")
        if task.file_size is not None and os.fstat(fd).st_size != task.file_size:
            raise InputError(f"{task.path} changed size while it was read; refused")
    except OSError as err:
        raise InputError(f"cannot read {task.path}: {err.strerror or err}") from err
    finally:
        os.close(fd)
    return hasher.hexdigest()


def _batches(tasks: Sequence[HashTask]) -> Iterator[list[HashTask]]:
    batch: list[HashTask] = []
    size = 0
    for t in tasks:
        batch.append(t)
        size += t.size
        if size >= _BATCH_BYTES or len(batch) >= _BATCH_FILES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def hash_tasks(
    tasks: Iterable[HashTask],
    algorithm: HashAlgorithm,
    *,
    workers: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> dict[str, str]:
    """Digest every task; return ``{name: hex digest}``.

    Args:
        tasks: files or shards to hash.
        algorithm: the digest algorithm.
        workers: threads to use (default: one per CPU).
        on_progress: called with the number of bytes of each finished batch.

    Raises:
        InputError: a file cannot be read or is not a regular file.
    """
    items = list(tasks)
    n = workers or default_workers()

    def run(batch: list[HashTask]) -> list[tuple[str, str]]:
        buf = bytearray(min(BUFFER, max((t.size for t in batch), default=0) or 1))
        out = [(t.name, _digest(t, algorithm, buf)) for t in batch]
        if on_progress is not None:
            on_progress(sum(t.size for t in batch))
        return out

    # Big tasks first, so one large file does not start last and leave a core idle at the end.
    items.sort(key=lambda t: -t.size)
    result: dict[str, str] = {}
    if algorithm is HashAlgorithm.BLAKE3 and n > 1:
        # BLAKE3 parallelises inside one file (a tree hash): big files go one at a time on all cores
        # through mapped windows (bounded memory, see BLAKE3_WINDOW); small ones share the thread pool.
        big = [t for t in items if t.size >= _BLAKE3_BIG]
        items = [t for t in items if t.size < _BLAKE3_BIG]
        for t in big:
            result[t.name] = _digest_windows(t, algorithm)
            if on_progress is not None:
                on_progress(t.size)
    if n == 1 or len(items) <= 1:
        for batch in _batches(items):
            result.update(run(batch))
        return result
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="mlsecops-hash") as pool:
        for pairs in pool.map(run, _batches(items)):
            result.update(pairs)
    return result
