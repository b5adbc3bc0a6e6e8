"""Our own zip directory reader, so parser differences cannot hide an entry.

Python's ``zipfile`` refuses archives that PyTorch's reader (miniz) loads happily: entries with the
"encrypted" flag bit set, bad CRCs, odd general-purpose flags. Scanners built on ``zipfile`` crashed on
those and reported nothing while ``torch.load`` ran the payload. We parse the central directory and
every local header ourselves, read data ranges directly (stored) or through a bounded inflater
(deflate, bzip2, lzma), and report what a parser differential could exploit: central and local names
that differ, duplicate names, overlapping data ranges (the overlapped-entry zip bomb), data before the
first entry (a pickle or zip polyglot), absurd compression ratios, path traversal names and symlinks.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass

from mlsecops.core.severity import Severity
from mlsecops.supplychain.scanner._io import FileRegion, Stream
from mlsecops.supplychain.scanner._types import Budget, Hit, ScanLimits

__all__ = ["ZipEntry", "ZipListing", "bad_member_name", "list_zip"]

_EOCD = b"PK\x05\x06"
_EOCD64_LOC = b"PK\x06\x07"
_EOCD64 = b"PK\x06\x06"
_CDH = b"PK\x01\x02"
_LFH = b"PK\x03\x04"


@dataclass
class ZipEntry:
    """One central-directory entry, checked against its local header."""

    name: str
    method: int
    flags: int
    csize: int
    usize: int
    header_offset: int
    external_attr: int
    create_system: int
    data_offset: int = -1

    @property
    def is_dir(self) -> bool:
        """Directory entries end with a slash."""
        return self.name.endswith("/")

    @property
    def is_symlink(self) -> bool:
        """Unix symlink mode in the external attributes."""
        return self.create_system == 3 and (self.external_attr >> 16) & 0o170000 == 0o120000


@dataclass
class ZipListing:
    """The entries of an archive and where its first entry starts."""

    entries: list[ZipEntry]
    prefix: int
    """Bytes before the first local header (0 for a normal archive)."""


def bad_member_name(name: str) -> str | None:
    """Say why a member name escapes the extraction directory, or ``None`` when it does not."""
    n = name.replace("\\", "/")
    if n.startswith("/") or (len(n) > 1 and n[1] == ":"):
        return "absolute path"
    if any(part == ".." for part in n.split("/")):
        return "parent-directory traversal"
    if "\x00" in n:
        return "NUL byte in name"
    return None


def find_eocd(region: FileRegion) -> int | None:
    """Offset of the end-of-central-directory record, or ``None`` when there is none."""
    size = region.length
    tail_len = min(size, 65536 + 22)
    tail = region.pread(tail_len, size - tail_len)
    idx = tail.rfind(_EOCD)
    while idx >= 0:
        if idx + 22 <= len(tail):
            return size - tail_len + idx
        idx = tail.rfind(_EOCD, 0, idx)
    return None


def list_zip(
    region: FileRegion, budget: Budget, limits: ScanLimits, *, entry: str, report: list[Hit]
) -> ZipListing:
    """Read the central directory and local headers of the zip archive in ``region``.

    Args:
        region: the archive bytes.
        budget: charged for the directory bytes read.
        limits: entry-count limit.
        entry: container path, for hits.
        report: hits about the directory structure are appended here.

    Returns:
        The listing.

    Raises:
        ValueError: not a zip archive, or its directory is unreadable.
    """
    eocd = find_eocd(region)
    if eocd is None:
        raise ValueError("no end-of-central-directory record")
    rec = region.pread(22, eocd)
    (_, _disk, _cd_disk, _n_disk, n_total, cd_size, cd_offset, _clen) = struct.unpack("<4sHHHHIIH", rec)
    eocd_start = eocd
    loc = region.pread(20, eocd - 20) if eocd >= 20 else b""
    if len(loc) == 20 and loc[:4] == _EOCD64_LOC:
        # A zip64 end record sits right before the locator; the directory ends where it starts.
        actual = eocd - 20 - 56
        rec64 = region.pread(56, actual) if actual >= 0 else b""
        if len(rec64) == 56 and rec64[:4] == _EOCD64:
            fields = struct.unpack("<4sQHHIIQQQQ", rec64)
            eocd_start = actual
            if n_total == 0xFFFF or cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF:
                n_total, cd_size, cd_offset = fields[7], fields[8], fields[9]
    # Where the directory really is, relative to where the archive says it is: data prepended to an
    # archive shifts every offset (this is how zipfile reads self-extracting archives, too).
    cd_start = eocd_start - cd_size
    delta = cd_start - cd_offset
    if cd_start < 0 or delta < 0:
        raise ValueError("central directory offset points outside the file")
    cd = Stream(region.sub(cd_start, cd_size), budget)
    entries: list[ZipEntry] = []
    # Python's zipfile reads the directory by its size, miniz (PyTorch) by the entry count: walk every
    # record the size covers and report a count that disagrees, so neither reader sees a hidden entry.
    while True:
        if len(entries) >= limits.max_entries:
            report.append(
                Hit(
                    Severity.HIGH,
                    "too many zip entries",
                    f"more than {limits.max_entries} entries",
                    kind="container",
                    entry=entry,
                    error=True,
                )
            )
            break
        head = cd.read(46)
        if len(head) < 46 or head[:4] != _CDH:
            break
        f = struct.unpack("<4sBBHHHHHIIIHHHHHII", head)
        create_system, flags, method = f[2], f[4], f[5]
        csize, usize = f[9], f[10]
        nlen, xlen, clen = f[11], f[12], f[13]
        ext_attr, hoff = f[16], f[17]
        raw_name = cd.read_exact(nlen)
        extra = cd.read_exact(xlen)
        cd.skip(clen)
        if 0xFFFFFFFF in (csize, usize, hoff):
            usize, csize, hoff = _zip64_extra(extra, usize, csize, hoff)
        name = raw_name.decode("utf-8" if flags & 0x800 else "cp437", "replace")
        entries.append(ZipEntry(name, method, flags, csize, usize, hoff + delta, ext_attr, create_system))
    if len(entries) != n_total and n_total != 0xFFFF:
        report.append(
            Hit(
                Severity.HIGH,
                "zip entry count disagrees with its directory",
                f"the end record counts {n_total} entries, the directory holds {len(entries)}; readers that "
                "trust the count and readers that walk the directory see different files. All were scanned.",
                kind="container",
                entry=entry,
            )
        )
    _check_local_headers(region, entries, budget, entry=entry, report=report)
    first = min((e.header_offset for e in entries), default=cd_start)
    return ZipListing(entries, first)


def _zip64_extra(extra: bytes, usize: int, csize: int, hoff: int) -> tuple[int, int, int]:
    i = 0
    while i + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, i)
        if tag == 1:
            # a declared size past the field's end (found by fuzzing) reads what is there
            vals = list(struct.unpack_from(f"<{min(size, len(extra) - i - 4) // 8}Q", extra, i + 4))
            if usize == 0xFFFFFFFF and vals:
                usize = vals.pop(0)
            if csize == 0xFFFFFFFF and vals:
                csize = vals.pop(0)
            if hoff == 0xFFFFFFFF and vals:
                hoff = vals.pop(0)
            break
        i += 4 + size
    return usize, csize, hoff


def _check_local_headers(
    region: FileRegion, entries: list[ZipEntry], budget: Budget, *, entry: str, report: list[Hit]
) -> None:
    names: dict[str, int] = {}
    for e in entries:
        names[e.name] = names.get(e.name, 0) + 1
        lfh = region.pread(30, e.header_offset)
        budget.charge(30)
        if len(lfh) < 30 or lfh[:4] != _LFH:
            report.append(
                Hit(
                    Severity.MEDIUM,
                    "zip entry without a local header",
                    f"entry {e.name!r} points at offset {e.header_offset}, where no local header is",
                    kind="container",
                    entry=_join(entry, e.name),
                    offset=e.header_offset,
                    error=True,
                )
            )
            continue
        (_, _v, lflags, lmethod, _t, _d, _crc, _cs, _us, lnlen, lxlen) = struct.unpack("<4sHHHHHIIIHH", lfh)
        lname_raw = region.pread(lnlen, e.header_offset + 30)
        lname = lname_raw.decode("utf-8" if lflags & 0x800 else "cp437", "replace")
        e.data_offset = e.header_offset + 30 + lnlen + lxlen
        if lname != e.name:
            report.append(
                Hit(
                    Severity.HIGH,
                    "zip entry names disagree",
                    f"central directory says {e.name!r}, local header says {lname!r}; loaders that read "
                    "different records see different files",
                    kind="container",
                    entry=_join(entry, e.name),
                    offset=e.header_offset,
                )
            )
        if lmethod != e.method:
            report.append(
                Hit(
                    Severity.MEDIUM,
                    "zip compression methods disagree",
                    f"central directory method {e.method}, local header method {lmethod}",
                    kind="container",
                    entry=_join(entry, e.name),
                    offset=e.header_offset,
                )
            )
        if e.flags & 0x1:
            report.append(
                Hit(
                    Severity.MEDIUM,
                    "zip entry flagged as encrypted",
                    "The encryption flag is set: Python's zipfile refuses the entry while other readers "
                    "(PyTorch's) ignore the flag and load it. We scanned its bytes as stored.",
                    kind="container",
                    entry=_join(entry, e.name),
                    offset=e.header_offset,
                )
            )
        if e.data_offset + e.csize > region.length:
            report.append(
                Hit(
                    Severity.MEDIUM,
                    "zip entry runs past the end of the file",
                    f"entry {e.name!r} claims {e.csize} bytes from offset {e.data_offset}",
                    kind="container",
                    entry=_join(entry, e.name),
                    offset=e.data_offset,
                    error=True,
                )
            )
    dups = sorted(n for n, c in names.items() if c > 1)
    if dups:
        report.append(
            Hit(
                Severity.HIGH,
                "duplicate zip entry names",
                f"{len(dups)} names occur more than once (e.g. {dups[0]!r}); readers disagree about which "
                "copy they load. Every copy was scanned.",
                kind="container",
                entry=entry,
            )
        )
    spans = sorted((e.data_offset, e.data_offset + e.csize, e.name) for e in entries if e.data_offset >= 0)
    for (a0, a1, an), (b0, _b1, bn) in itertools.pairwise(spans):
        if b0 < a1 and a1 > a0:
            report.append(
                Hit(
                    Severity.HIGH,
                    "overlapping zip entries",
                    f"the data of {an!r} and {bn!r} overlap; overlapping entries are how zip bombs reach "
                    "huge sizes from a small file",
                    kind="container",
                    entry=entry,
                    offset=b0,
                )
            )
            break


def _join(parent: str, name: str) -> str:
    return f"{parent}!{name}" if parent else name


def walk_local_headers(region: FileRegion, limits: ScanLimits) -> list[ZipEntry]:
    """Recover entries from local headers alone (an archive whose directory is missing or cut off).

    Streaming readers load such archives, so their entries are scanned too. Entries whose size is only
    in a trailing data descriptor (flag bit 3) end the walk.
    """
    out: list[ZipEntry] = []
    pos = 0
    while len(out) < limits.max_entries:
        lfh = region.pread(30, pos)
        if len(lfh) < 30 or lfh[:4] != _LFH:
            break
        (_, _v, flags, method, _t, _d, _crc, csize, usize, nlen, xlen) = struct.unpack("<4sHHHHHIIIHH", lfh)
        name = region.pread(nlen, pos + 30).decode("utf-8" if flags & 0x800 else "cp437", "replace")
        extra = region.pread(xlen, pos + 30 + nlen)
        if 0xFFFFFFFF in (csize, usize):
            usize, csize, _ = _zip64_extra(extra, usize, csize, 0)
        e = ZipEntry(name, method, flags, csize, usize, pos, 0, 0, data_offset=pos + 30 + nlen + xlen)
        out.append(e)
        if flags & 0x8 or e.data_offset + csize > region.length:
            break
        pos = e.data_offset + csize
    return out
