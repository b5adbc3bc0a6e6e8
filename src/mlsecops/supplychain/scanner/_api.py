"""Public entry points: scan one file, scan many paths in parallel, turn results into a ``Report``.

``scan_file`` opens the file read-only, hashes it on a second thread while the scanner reads only what
it needs, and never raises for hostile content: every problem becomes a hit, and an unexpected internal
error becomes an ``error`` verdict (fail closed). ``scan_paths`` expands directories (symlinks are
reported, not followed) and scans files in a process pool; ``scan_report`` renders the results as the
one ``Report`` type of the project, with the ``artifacts`` list in ``Report.data``.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mlsecops.core.errors import InputError
from mlsecops.core.severity import Severity
from mlsecops.supplychain.scanner._document import CHECK_NAME, finding_dict, scan_document
from mlsecops.supplychain.scanner._engine import ArtifactScanner
from mlsecops.supplychain.scanner._io import FileRegion, Stream
from mlsecops.supplychain.scanner._types import ArtifactScan, Budget, Hit, LimitReached, ScanLimits

if TYPE_CHECKING:
    from mlsecops.core.executor import Executor
    from mlsecops.core.findings import Finding, Report

__all__ = [
    "CHECK_NAME",
    "iter_files",
    "scan_document",
    "scan_fd",
    "scan_file",
    "scan_paths",
    "scan_report",
    "to_findings",
]


def _hash_file(fd: int, size: int, out: list[str]) -> None:
    import hashlib  # here, not at the top: a --no-hash scan should not pay for OpenSSL's start-up

    h = hashlib.sha256()
    pos = 0
    step = 4 << 20  # pread into a small buffer keeps RSS flat (an mmap would count the file in RSS)
    while pos < size:
        data = os.pread(fd, step, pos)
        if not data:
            break
        h.update(data)
        pos += len(data)
    out.append(h.hexdigest())


def scan_file(path: str | Path, *, limits: ScanLimits | None = None, sha256: bool = True) -> ArtifactScan:
    """Scan one file without loading, importing or executing anything from it.

    Args:
        path: the file.
        limits: scan bounds; the defaults suit model files up to tens of gigabytes.
        sha256: also compute the file's SHA-256 (on a second thread, while scanning).

    Returns:
        The result, with a verdict over everything inside the file.

    Raises:
        InputError: the path does not exist, is not a regular file, or cannot be opened.
    """
    limits = limits or ScanLimits()
    p = Path(path)
    t0 = time.monotonic()
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise InputError(f"{p}: no such file; give a model file, an archive or a directory") from None
    except OSError as err:
        raise InputError(f"{p}: cannot open ({err.strerror})") from None
    try:
        return scan_fd(fd, str(p), limits=limits, sha256=sha256, started=t0)
    finally:
        os.close(fd)


def scan_fd(
    fd: int, path: str, *, limits: ScanLimits | None = None, sha256: bool = True, started: float | None = None
) -> ArtifactScan:
    """Scan the regular file open as ``fd`` (the loading guard scans and loads through one descriptor).

    Raises:
        InputError: ``fd`` is not a regular file.
    """
    limits = limits or ScanLimits()
    t0 = started if started is not None else time.monotonic()
    p = path
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{p}: not a regular file")
    size = st.st_size
    digest: list[str] = []
    hasher = None
    if sha256:
        import threading

        hasher = threading.Thread(target=_hash_file, args=(fd, size, digest), daemon=True)
        hasher.start()
    budget = Budget(limits)
    scanner = ArtifactScanner(limits, budget)
    scanner.base_dir = os.path.dirname(os.path.abspath(p))
    if limits.max_file_bytes is not None and size > limits.max_file_bytes:
        scanner.add(
            Hit(
                Severity.MEDIUM,
                "file larger than the size limit",
                f"{size} bytes > {limits.max_file_bytes}; not scanned",
                kind="limit",
                error=True,
            )
        )
    else:
        try:
            scanner.scan(Stream(FileRegion(fd, 0, size), budget), "", 0)
        except LimitReached as err:
            scanner.add(
                Hit(
                    Severity.MEDIUM,
                    f"scan limit reached ({err.what})",
                    f"{err.detail}; the rest of the file was not inspected",
                    kind="limit",
                    error=True,
                    atlas=None,
                    remediation="Raise the limit (ScanLimits / --max-seconds) or inspect by hand.",
                )
            )
        except RecursionError:
            scanner.add(Hit(Severity.MEDIUM, "structure nested too deeply", "", kind="limit", error=True))
        except Exception as err:  # fail closed: a scanner bug must never read as "safe"
            scanner.add(
                Hit(
                    Severity.MEDIUM,
                    "scanner error",
                    f"{type(err).__name__}: {err}"[:300],
                    kind="limit",
                    error=True,
                    atlas=None,
                )
            )
    if hasher is not None:
        hasher.join()
    return ArtifactScan(
        path=str(p),
        sha256=digest[0] if digest else None,
        size=size,
        format=scanner.formats.get("", "unknown"),
        hits=scanner.hits,
        seconds=time.monotonic() - t0,
        entries_scanned=scanner.entries,
    )


def iter_files(
    paths: Iterable[str | Path], *, on_skip: Callable[[Path, str], None] | None = None
) -> Iterator[Path]:
    """Expand files and directories into files, in a stable order; symlinks are skipped and reported.

    Raises:
        InputError: a given path does not exist.
    """
    for raw in paths:
        p = Path(raw)
        if not p.exists() and not p.is_symlink():
            raise InputError(f"{p}: no such file or directory")
        if p.is_file():
            yield p
            continue
        if not p.is_dir():
            raise InputError(f"{p}: not a file or directory")
        for root, dirs, files in os.walk(p, followlinks=False):
            dirs.sort()
            for name in sorted(files):
                f = Path(root) / name
                if f.is_symlink():
                    if on_skip is not None:
                        on_skip(f, "symbolic link not followed")
                    continue
                if f.is_file():
                    yield f
            for d in dirs:
                if (Path(root) / d).is_symlink() and on_skip is not None:
                    on_skip(Path(root) / d, "symbolic link not followed")


def _scan_one(args: tuple[str, ScanLimits, bool]) -> ArtifactScan:
    path, limits, sha = args
    try:
        return scan_file(path, limits=limits, sha256=sha)
    except InputError as err:
        return ArtifactScan(
            path=path,
            sha256=None,
            size=0,
            format="unreadable",
            hits=[
                Hit(
                    Severity.MEDIUM,
                    "unreadable file",
                    err.diagnostics(),
                    kind="limit",
                    error=True,
                    atlas=None,
                )
            ],
            seconds=0.0,
        )


CHUNK_FILES = 64
"""Most files one executor task scans: small files cost less than a task's overhead on Ray."""


def _scan_chunk(args: tuple[list[str], ScanLimits, bool]) -> list[ArtifactScan]:
    files, limits, sha = args
    return [_scan_one((f, limits, sha)) for f in files]


def chunks_of(files: Sequence[str], parallel: int) -> list[list[str]]:
    """Split ``files`` into tasks: about eight per worker, at most ``CHUNK_FILES`` files each."""
    if not files:
        return []
    size = max(1, min(CHUNK_FILES, len(files) // max(1, 8 * parallel)))
    return [list(files[i : i + size]) for i in range(0, len(files), size)]


def scan_paths(
    paths: Sequence[str | Path],
    *,
    limits: ScanLimits | None = None,
    workers: int | None = None,
    sha256: bool = True,
    progress: Callable[[ArtifactScan], None] | None = None,
    executor: Executor | None = None,
) -> list[ArtifactScan]:
    """Scan files and directories; several files are scanned in parallel processes.

    Args:
        paths: files and directories.
        limits: scan bounds per file.
        workers: process count (default: CPU count, at most 8; 1 scans in this process).
        sha256: compute file digests.
        progress: called once per finished file.
        executor: run the scans through this executor (``mlsecops.core.executor``: ``inline``,
            ``process`` or ``ray``) in tasks of up to ``CHUNK_FILES`` files; on a cluster every node
            must read the files at the same paths (a shared filesystem). Default: a local fork pool.

    Returns:
        One result per file, in the order the files were found.

    Raises:
        InputError: a path does not exist.
    """
    limits = limits or ScanLimits()
    skipped: list[ArtifactScan] = []

    def skip(p: Path, why: str) -> None:
        skipped.append(
            ArtifactScan(
                path=str(p),
                sha256=None,
                size=0,
                format="symlink",
                hits=[Hit(Severity.LOW, "symbolic link not followed", why, kind="container", atlas=None)],
                seconds=0.0,
            )
        )

    files = [str(f) for f in iter_files(paths, on_skip=skip)]
    n = workers if workers is not None else min(8, os.cpu_count() or 1)
    out: list[ArtifactScan] = []
    if executor is not None:
        tasks = [(chunk, limits, sha256) for chunk in chunks_of(files, executor.workers)]
        for batch in executor.map(_scan_chunk, tasks, desc="scanning"):
            for r in batch:
                out.append(r)
                if progress is not None:
                    progress(r)
    elif n <= 1 or len(files) <= 1:
        for f in files:
            r = _scan_one((f, limits, sha256))
            out.append(r)
            if progress is not None:
                progress(r)
    else:
        out.extend(_scan_pooled(files, n, limits, sha256, progress))
    for r in skipped:
        out.append(r)
        if progress is not None:
            progress(r)
    return out


def _scan_pooled(
    files: list[str],
    workers: int,
    limits: ScanLimits,
    sha256: bool,
    progress: Callable[[ArtifactScan], None] | None,
) -> list[ArtifactScan]:
    """Scan ``files`` on a local pool, in order; the files of a worker that died (killed, out of
    memory, a crash in native code) are scanned again once on a fresh pool, as the executors do.

    Raises:
        ExecutorError: a worker died again on the files left.
    """
    from concurrent.futures import ProcessPoolExecutor  # only when a pool is needed: it imports slowly
    from concurrent.futures.process import BrokenProcessPool

    from mlsecops.core.executor import WORKER_RETRIES, ExecutorError

    done: list[ArtifactScan] = []
    for attempt in range(WORKER_RETRIES + 1):
        left = files[len(done) :]
        try:
            with ProcessPoolExecutor(max_workers=min(workers, len(left))) as pool:
                for r in pool.map(_scan_one, [(f, limits, sha256) for f in left], chunksize=1):
                    done.append(r)
                    if progress is not None:
                        progress(r)
            return done
        except BrokenProcessPool:
            if attempt == WORKER_RETRIES:
                raise ExecutorError(
                    f"scanning: a worker process died twice ({len(files) - len(done)} of {len(files)} "
                    "files not scanned): out of memory or a crash in native code"
                ) from None
    return done


def to_findings(result: ArtifactScan) -> list[Finding]:
    """Turn the hits of one artifact into ``Finding`` values."""
    from mlsecops.core.findings import Finding

    return [Finding.model_validate(finding_dict(result, h)) for h in result.hits]


def scan_report(
    results: Sequence[ArtifactScan], *, subject: str | None = None, started: dt.datetime | None = None
) -> Report:
    """Build the ``artifact.scan`` report: findings of all artifacts, metrics, and ``data["artifacts"]``.

    It is ``scan_document`` read back as a ``Report``; the verdict is the worst artifact verdict
    (``safe`` when there is nothing to scan).
    """
    from mlsecops.report.json import report_from_dict

    return report_from_dict(scan_document(results, subject=subject, started=started))
