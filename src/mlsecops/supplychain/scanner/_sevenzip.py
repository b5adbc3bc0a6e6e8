"""7-Zip archives, opened with py7zr (the ``scan`` extra) under the limits zip and tar get.

The member list is judged first: entry count, traversal names (``bad_member_name``, as for zip and
tar), symbolic links (reported, never extracted), encryption. The remaining members are decompressed
one at a time into a private temporary file through py7zr's writer-factory interface (nothing is written
where the archive says), with the bytes counted as they arrive: a member past ``max_spool`` or an
archive expanding past ``max_ratio`` times its size (64 MiB at least) stops extraction, whatever sizes
the header declares. Each member is then scanned as a nested artifact and its file truncated.

Without py7zr the archive is reported as one we cannot open (suspicious), with the extra to install.
"""

from __future__ import annotations

import io
import tempfile
from typing import Any

from mlsecops.core.severity import Severity
from mlsecops.supplychain.scanner._base import ScannerBase
from mlsecops.supplychain.scanner._containers import join_entry
from mlsecops.supplychain.scanner._io import CHUNK, Bomb, FileRegion, Stream
from mlsecops.supplychain.scanner._types import ATLAS_ARTIFACT, Hit, LimitReached
from mlsecops.supplychain.scanner._zip import bad_member_name

__all__ = ["INSTALL_HINT", "scan_sevenzip"]

INSTALL_HINT = "install the 'scan' extra (pip install 'mlsecops[scan]') to open 7-Zip archives"
MIN_BOMB_BYTES = 64 << 20
"""Expansion below this is never called a bomb (small archives of text compress very well)."""


class _Stop(Exception):
    """Raised from a writer to stop py7zr's extraction; the reason is kept on the scanner."""


class _RegionFile(io.RawIOBase):
    """A read-only, seekable raw file over a ``FileRegion`` (py7zr wants a real file object)."""

    def __init__(self, region: FileRegion) -> None:
        super().__init__()
        self.region = region
        self.pos = 0

    def readinto(self, b: Any) -> int:
        data = self.region.pread(len(b), self.pos)
        b[: len(data)] = data
        self.pos += len(data)
        return len(data)

    def seek(self, pos: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.region.length}[whence]
        self.pos = max(0, base + pos)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True


class _Extraction:
    """State of one archive's extraction: caps, the current member's file, what went wrong."""

    def __init__(self, sc: ScannerBase, entry: str, depth: int, archive_size: int) -> None:
        self.sc = sc
        self.entry = entry
        self.depth = depth
        self.total = 0
        self.total_cap = max(MIN_BOMB_BYTES, int(sc.limits.max_ratio * max(archive_size, 1)))
        self.member_cap = sc.limits.max_spool
        self.stopped: BaseException | None = None


class _MemberIO:
    """py7zr writer for one member: a temporary file, size-capped while written, scanned on close."""

    def __init__(self, ex: _Extraction, name: str) -> None:
        self.ex = ex
        self.name = name
        self.tmp = tempfile.TemporaryFile(prefix="mlsecops-7z-")  # noqa: SIM115  # closed in close()
        self.written = 0

    def write(self, data: bytes | bytearray) -> int:
        ex = self.ex
        self.written += len(data)
        ex.total += len(data)
        try:
            if self.written > ex.member_cap:
                raise LimitReached("size", f"7-Zip member {self.name!r} expands past {ex.member_cap} bytes")
            if ex.total > ex.total_cap:
                raise Bomb(f"{ex.entry or 'archive'}: 7-Zip members expand past {ex.total_cap} bytes")
            ex.sc.budget.charge(len(data))
        except (LimitReached, Bomb) as err:
            ex.stopped = err
            raise _Stop() from err
        self.tmp.write(data)
        return len(data)

    def read(self, size: int | None = None) -> bytes:
        return b""

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def flush(self) -> None:
        self.tmp.flush()

    def size(self) -> int:
        return self.written

    def close(self) -> None:
        ex = self.ex
        try:
            if ex.stopped is None:
                self.tmp.flush()
                region = FileRegion(self.tmp.fileno(), 0, self.written)
                ex.sc.scan(Stream(region, ex.sc.budget), join_entry(ex.entry, self.name), ex.depth + 1)
        except LimitReached as err:
            ex.stopped = err
            raise _Stop() from err
        finally:
            self.tmp.close()


def _factory(ex: _Extraction) -> Any:
    from py7zr.io import Py7zIO, WriterFactory

    class MemberIO(_MemberIO, Py7zIO):
        pass

    class Factory(WriterFactory):
        def create(self, filename: str) -> Py7zIO:
            return MemberIO(ex, filename)

    return Factory()


def _hit(sc: ScannerBase, sev: Severity, title: str, detail: str, entry: str, *, error: bool = False) -> None:
    sc.add(Hit(sev, title, detail, kind="container", entry=entry, atlas=ATLAS_ARTIFACT, error=error))


def scan_sevenzip(sc: ScannerBase, s: Stream, entry: str, depth: int) -> str:
    """Scan a 7-Zip archive's members as nested artifacts; returns the format name (``7z``)."""
    try:
        import py7zr
    except ImportError:
        _hit(
            sc,
            Severity.MEDIUM,
            "7-Zip archive cannot be inspected",
            f"py7zr is not installed: {INSTALL_HINT}",
            entry,
        )
        return "7z"
    if s.region is not None:
        return _scan_region(sc, py7zr, s.region, entry, depth)
    with tempfile.TemporaryFile(prefix="mlsecops-scan-") as tmp:
        copied = 0
        while True:
            chunk = s.read(CHUNK)
            if not chunk:
                break
            copied += len(chunk)
            if copied > sc.limits.max_spool:
                _hit(
                    sc,
                    Severity.MEDIUM,
                    "7-Zip archive inside a compressed stream too large to open",
                    f"more than {sc.limits.max_spool} bytes; not inspected",
                    entry,
                )
                return "7z"
            tmp.write(chunk)
        tmp.flush()
        return _scan_region(sc, py7zr, FileRegion(tmp.fileno(), 0, copied), entry, depth)


def _scan_region(sc: ScannerBase, py7zr: Any, region: FileRegion, entry: str, depth: int) -> str:
    ex = _Extraction(sc, entry, depth, region.length)
    try:
        archive = py7zr.SevenZipFile(
            io.BufferedReader(_RegionFile(region)), mode="r", max_extract_size=ex.total_cap + 1
        )
    except Exception as err:  # py7zr raises many types for hostile headers; none may escape as "safe"
        _hit(
            sc,
            Severity.MEDIUM,
            "7-Zip archive cannot be inspected",
            f"{type(err).__name__}: {err}"[:300],
            entry,
        )
        return "7z"
    with archive:
        if archive.needs_password():
            _hit(sc, Severity.MEDIUM, "encrypted 7-Zip archive", "its members cannot be inspected", entry)
            return "7z"
        members = list(archive.files)
        if len(members) > sc.limits.max_entries:
            _hit(
                sc,
                Severity.HIGH,
                "too many 7-Zip entries",
                f"{len(members)} > {sc.limits.max_entries}",
                entry,
            )
            return "7z"
        targets: list[str] = []
        for f in members:
            name = str(f.filename)
            path = join_entry(entry, name)
            why = bad_member_name(name)
            if why:
                _hit(
                    sc,
                    Severity.HIGH,
                    "7-Zip entry escapes the extraction directory",
                    f"{name!r}: {why}",
                    path,
                )
                continue
            if f.is_symlink or getattr(f, "is_junction", False):
                _hit(
                    sc,
                    Severity.HIGH,
                    "symbolic link in 7-Zip archive",
                    "extracting it creates a link that later writes or reads can follow out of the directory",
                    path,
                )
                continue
            if f.is_directory or getattr(f, "is_socket", False):
                continue
            targets.append(name)
        if not targets:
            return "7z"
        try:
            archive.extract(targets=targets, factory=_factory(ex))
        except _Stop:
            pass
        except py7zr.exceptions.DecompressionBombError as err:  # py7zr's own total cap (the same bound)
            ex.stopped = Bomb(f"{entry or 'archive'}: {err}"[:300])
        except Exception as err:  # corrupt streams, CRC errors, unsupported filters
            if ex.stopped is None:
                _hit(
                    sc,
                    Severity.MEDIUM,
                    "7-Zip archive cannot be inspected",
                    f"extraction failed: {type(err).__name__}: {err}"[:300],
                    entry,
                )
    if isinstance(ex.stopped, LimitReached):
        raise ex.stopped
    if isinstance(ex.stopped, Bomb):
        raise ex.stopped
    return "7z"
