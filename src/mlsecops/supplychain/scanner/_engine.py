"""The dispatcher: detect each stream's format by content and hand it to the right scanner, recursively.

One ``ArtifactScanner`` scans one file. Containers (zip, tar, compressed streams) call back into
``scan`` for every member, one level deeper, so a pickle inside a zip inside a tar.gz is walked like a
top-level one and its hits name the whole path (``outer.tar.gz!model.zip!archive/data.pkl``). Tensor
payloads are never read: the storages of a PyTorch zip are skipped by name, safetensors/GGUF/ONNX/npy
payloads by their headers, joblib arrays by their wrappers. What we do not recognise is searched for
embedded pickles (bounded by ``ScanLimits.max_blob_search``).
"""

from __future__ import annotations

import json
import re
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import replace
from typing import Any, cast

from mlsecops.core.findings import Severity
from mlsecops.supplychain.scanner._detect import COMPRESSED, OPAQUE_ARCHIVES, detect
from mlsecops.supplychain.scanner._formats import (
    scan_gguf,
    scan_npy_header,
    scan_safetensors,
    scan_torchscript_code,
)
from mlsecops.supplychain.scanner._io import CHUNK, Bomb, FileRegion, Stream, Truncated, open_decompressed
from mlsecops.supplychain.scanner._keras import scan_h5, scan_keras_config
from mlsecops.supplychain.scanner._onnx import scan_onnx
from mlsecops.supplychain.scanner._pickle import PICKLE_REMEDIATION, PickleWalker
from mlsecops.supplychain.scanner._policy import Rule, judge
from mlsecops.supplychain.scanner._types import ATLAS_ARTIFACT, Budget, Hit, LimitReached, ScanLimits
from mlsecops.supplychain.scanner._zip import (
    ZipEntry,
    ZipListing,
    bad_member_name,
    find_eocd,
    list_zip,
    walk_local_headers,
)

__all__ = ["ArtifactScanner"]

_TORCH_MAGIC = 0x1950A86A20F9469CFC6C
_PICKLE_NAMES = (".pkl", ".pickle", ".debug_pkl", ".joblib")
_STORAGE = re.compile(r"^(.*/)?data/\d+$")
# A protocol-0 GLOBAL/INST at an opcode boundary (not inside a word) followed by a plausible next opcode,
# so that word lists ("macos\nsystem\n") in text files are not mistaken for pickles.
_P0_GLOBAL = re.compile(
    rb"(?<![\w.])[ci]([A-Za-z_][\w.]{0,120})\n([A-Za-z_][\w.]{0,120})\n(?=[(q\x94)RSVX\x8c\x85\x86\x87N}\]]|p\d)"
)
_PROTO = re.compile(rb"\x80[\x02-\x05]")
_MAX_PROBES = 20_000
_ELEMENT_SIZE = {
    "FloatStorage": 4,
    "DoubleStorage": 8,
    "HalfStorage": 2,
    "BFloat16Storage": 2,
    "LongStorage": 8,
    "IntStorage": 4,
    "ShortStorage": 2,
    "CharStorage": 1,
    "ByteStorage": 1,
    "BoolStorage": 1,
    "ComplexFloatStorage": 8,
    "ComplexDoubleStorage": 16,
    "UntypedStorage": 1,
    "QInt8Storage": 1,
    "QUInt8Storage": 1,
    "QInt32Storage": 4,
    "QUInt4x2Storage": 1,
    "QUInt2x4Storage": 1,
}


def _join(parent: str, name: str) -> str:
    return f"{parent}!{name}" if parent else name


class _ProbeBudget(Budget):
    """Budget for embedded-pickle probes: bytes re-read from memory are not charged, time is."""

    def __init__(self, main: Budget) -> None:
        super().__init__(main.limits, started=main.started)

    def charge(self, nbytes: int) -> None:
        self.check_time()


class _MemReader:
    def __init__(self, data: memoryview) -> None:
        self._d = data
        self._p = 0

    def read(self, n: int) -> bytes:
        out = bytes(self._d[self._p : self._p + n])
        self._p += len(out)
        return out


class ArtifactScanner:
    """Scan one artifact; collects ``hits`` and the format of every entry in ``formats``."""

    def __init__(self, limits: ScanLimits, budget: Budget) -> None:
        self.limits = limits
        self.budget = budget
        self.hits: list[Hit] = []
        self.formats: dict[str, str] = {}
        self.entries = 0

    def add(self, hit: Hit) -> None:
        """Record a hit."""
        self.hits.append(hit)

    # -- dispatch ----------------------------------------------------------------------------------------

    def scan(self, s: Stream, entry: str, depth: int, *, hint: str = "") -> str:
        """Scan the stream ``s`` (the content of ``entry``) and return the format name."""
        if depth > self.limits.max_depth:
            self.add(
                Hit(
                    Severity.HIGH,
                    "containers nested too deep",
                    f"nesting deeper than {self.limits.max_depth} levels was not opened",
                    kind="container",
                    entry=entry,
                    atlas=ATLAS_ARTIFACT,
                )
            )
            return "nested"
        self.entries += 1
        head = s.peek(1024)
        fmt = detect(head)
        if hint == "pickle" and fmt in ("pickle-text", "pickle-maybe", "text", "unknown"):
            fmt = "pickle"
        try:
            out = self._dispatch(s, fmt, entry, depth)
        except Truncated as err:
            self.add(
                Hit(
                    Severity.LOW,
                    f"truncated {fmt} data",
                    str(err),
                    kind="container",
                    entry=entry,
                    error=True,
                    atlas=None,
                )
            )
            out = fmt
        except Bomb as err:
            self.add(
                Hit(
                    Severity.HIGH,
                    "decompression bomb",
                    str(err),
                    kind="container",
                    entry=entry,
                    atlas=ATLAS_ARTIFACT,
                )
            )
            out = fmt
        region = s.region
        if (
            fmt not in ("zip", "empty")
            and region is not None
            and region.length >= 22
            and depth < self.limits.max_depth
        ):
            self._polyglot(region, entry, depth)
        self.formats[entry] = out
        return out

    def _dispatch(self, s: Stream, fmt: str, entry: str, depth: int) -> str:
        if fmt == "zip":
            if s.region is None:
                return self._spooled_zip(s, entry, depth)
            return self._zip(s.region, entry, depth)
        if fmt == "tar":
            return self._tar(s, entry, depth)
        if fmt in COMPRESSED:
            return self._compressed(s, fmt, entry, depth)
        if fmt in OPAQUE_ARCHIVES:
            self.add(
                Hit(
                    Severity.MEDIUM,
                    f"{OPAQUE_ARCHIVES[fmt]} archive cannot be inspected",
                    f"{OPAQUE_ARCHIVES[fmt]} archives are not opened by this scanner; their content is "
                    "unknown",
                    kind="container",
                    entry=entry,
                    atlas=ATLAS_ARTIFACT,
                    remediation="Unpack the archive and scan its files.",
                )
            )
            return fmt
        if fmt == "npy":
            obj, _nbytes = scan_npy_header(s, entry=entry, report=self.add)
            if obj:
                self._pickles(s, entry, depth, forced=True)
                return "npy-object"
            return "npy"
        if fmt == "hdf5":
            scan_h5(s, entry=entry, report=self.add, max_search=self.limits.max_blob_search // 4)
            return "hdf5"
        if fmt == "safetensors":
            scan_safetensors(s, entry=entry, report=self.add)
            return "safetensors"
        if fmt == "gguf":
            scan_gguf(s, entry=entry, report=self.add)
            return "gguf"
        if fmt == "onnx":
            scan_onnx(s, entry=entry, report=self.add)
            return "onnx"
        if fmt in ("pickle", "pickle-text", "pickle-maybe"):
            start = s.tell()
            got = self._pickles(s, entry, depth, forced=fmt == "pickle")
            if got is not None:
                return got
            if s.seekable:
                s.seek(start)
            fmt = "text" if fmt == "pickle-text" else "unknown"
        if fmt == "empty":
            return "empty"
        self._blob(s, entry)
        return fmt

    # -- pickles -----------------------------------------------------------------------------------------

    def _nested(self, s: Stream, entry: str, single: bool) -> None:
        depth = entry.count("@") + entry.count("!")
        if depth > self.limits.max_depth + 4:
            self.add(Hit(Severity.HIGH, "pickles nested too deep", "", entry=entry))
            return
        if single:
            w = PickleWalker(s, self.limits, entry=entry, report=self.add, nested=self._nested)
            res = w.walk(self.budget)
            if not res.ok:
                self.add(
                    Hit(
                        Severity.LOW,
                        "malformed nested pickle",
                        res.error,
                        entry=entry,
                        error=True,
                        atlas=None,
                    )
                )
        else:
            self._pickles(s, entry, 0, forced=True)

    def _pickles(self, s: Stream, entry: str, depth: int, *, forced: bool) -> str | None:
        """Walk consecutive pickles; return the format, or None if the stream is not a pickle."""
        fmt = "pickle"
        count = 0
        legacy = False
        storages: dict[str, str] = {}
        while not s.at_eof():
            start = s.tell()
            buf: list[Hit] = []
            w = PickleWalker(s, self.limits, entry=entry, report=buf.append, nested=self._nested, depth=depth)
            res = w.walk(self.budget)
            if res.ok:
                self.hits.extend(buf)
                count += 1
                if count == 1 and res.value == _TORCH_MAGIC:
                    legacy, fmt = True, "pytorch-legacy"
                if any(g.startswith("joblib.") for g in res.globals) and not legacy:
                    fmt = "joblib"
                if legacy:
                    storages.update(res.storages)
                if legacy and count >= 5:
                    # Raw storage bytes follow; skip them by their sizes and look at what is left.
                    self._legacy_tail(s, entry, storages)
                    return fmt
                continue
            if count == 0:
                if not (forced or buf or res.protocol):
                    return None
                self.hits.extend(buf)
                self.add(
                    Hit(
                        Severity.LOW,
                        "malformed or truncated pickle",
                        f"{res.error}; a loader stops here (after running what came before)",
                        entry=entry,
                        offset=res.end,
                        error=True,
                        atlas=None,
                        remediation=PICKLE_REMEDIATION,
                    )
                )
                return fmt
            # Something that is not a pickle follows a complete one: search it for hidden pickles.
            self.hits.extend(h for h in buf if h.severity >= Severity.HIGH)
            if s.seekable:
                s.seek(start)
            self.add(
                Hit(
                    Severity.INFO,
                    "data after the last pickle",
                    f"non-pickle bytes start at offset {start}; they were searched for embedded pickles",
                    entry=entry,
                    offset=start,
                    atlas=None,
                )
            )
            self._blob(s, entry)
            break
        if count == 0:
            return None if not forced else fmt
        return fmt

    def _legacy_tail(self, s: Stream, entry: str, storages: dict[str, str]) -> None:
        """Skip the storages of a legacy torch checkpoint; scan anything that follows them."""
        for key in sorted(storages):
            size = _ELEMENT_SIZE.get(storages[key].rsplit(".", 1)[-1])
            raw = s.read(8)
            if size is None or len(raw) < 8:
                return
            s.skip(int.from_bytes(raw, "little") * size)
        if s.at_eof():
            return
        start = s.tell()
        self.add(
            Hit(
                Severity.MEDIUM,
                "data after the last tensor storage",
                f"a legacy checkpoint should end after its storages; {entry or 'the file'} continues at "
                f"offset {start}",
                entry=entry,
                offset=start,
                atlas=ATLAS_ARTIFACT,
            )
        )
        if self._pickles(s, entry, 1, forced=False) is None:
            if s.seekable:
                s.seek(start)
            self._blob(s, entry)

    def _blob(self, s: Stream, entry: str) -> None:
        """Search unrecognised bytes for pickle headers and protocol-0 globals."""
        limit = self.limits.max_blob_search
        base = s.tell()
        carry = b""
        searched = 0
        probes = 0
        seen_off: set[int] = set()
        while searched < limit:
            chunk = s.read(min(8 * CHUNK, limit - searched))
            if not chunk:
                return
            buf = carry + chunk
            buf_base = base + searched - len(carry)
            searched += len(chunk)
            for m in _P0_GLOBAL.finditer(buf):
                module, name = m.group(1).decode(), m.group(2).decode()
                j = judge(module, name)
                off = buf_base + m.start()
                if j.rule is Rule.DENY and off not in seen_off:
                    seen_off.add(off)
                    self.add(
                        Hit(
                            Severity.CRITICAL,
                            f"embedded pickle global {j.name}",
                            f"bytes at offset {off} name {j.name} ({j.reason}) the way a pickle does",
                            entry=entry,
                            offset=off,
                            callable=j.name,
                            remediation=PICKLE_REMEDIATION,
                        )
                    )
            view = memoryview(buf)
            for m in _PROTO.finditer(buf):
                off = buf_base + m.start()
                if off in seen_off or probes >= _MAX_PROBES:
                    continue
                probes += 1
                self._probe(view[m.start() :], s, off, entry)
            carry = buf[-512:]
        self.add(
            Hit(
                Severity.INFO,
                "search for embedded pickles stopped",
                f"only the first {limit} bytes of unrecognised data were searched",
                entry=entry,
                offset=base + limit,
                atlas=None,
            )
        )

    def _probe(self, data: memoryview, s: Stream, off: int, entry: str) -> None:
        pb = _ProbeBudget(self.budget)
        sub = Stream(_MemReader(data[: 4 << 20]), pb)
        buf: list[Hit] = []
        w = PickleWalker(sub, self.limits, entry=f"{entry}@{off}", report=buf.append)
        res = w.walk(pb)
        # A complete pickle, or a strong hit before the bytes stopped making sense: report what it names.
        if res.ok or any(h.severity >= Severity.HIGH for h in buf):
            for h in buf:
                self.add(replace(h, offset=off + (h.offset or 0), title=f"embedded pickle: {h.title}"))

    # -- containers --------------------------------------------------------------------------------------

    def _polyglot(self, region: FileRegion, entry: str, depth: int) -> None:
        if find_eocd(region) is None:
            return
        hits: list[Hit] = []
        try:
            listing = list_zip(region, self.budget, self.limits, entry=entry, report=hits)
        except (ValueError, Truncated):
            return
        if not listing.entries:
            return
        self.add(
            Hit(
                Severity.HIGH,
                "file is also a zip archive",
                "the file starts as one format and ends with a zip directory: loaders that check the "
                "first bytes and loaders that read the zip directory see different content",
                kind="container",
                entry=entry,
                atlas=ATLAS_ARTIFACT,
            )
        )
        self._zip(region, entry, depth, listing_hits=hits, listing=listing)

    def _spooled_zip(self, s: Stream, entry: str, depth: int) -> str:
        """A zip inside a compressed stream needs random access: copy it to an unnamed temporary file."""
        with tempfile.TemporaryFile(prefix="mlsecops-scan-") as tmp:
            copied = 0
            while True:
                chunk = s.read(CHUNK)
                if not chunk:
                    break
                copied += len(chunk)
                if copied > self.limits.max_spool:
                    self.add(
                        Hit(
                            Severity.MEDIUM,
                            "zip inside a compressed stream too large to open",
                            f"more than {self.limits.max_spool} bytes; not inspected",
                            kind="container",
                            entry=entry,
                            error=True,
                        )
                    )
                    return "zip"
                tmp.write(chunk)
            tmp.flush()
            return self._zip(FileRegion(tmp.fileno(), 0, copied), entry, depth)

    def _zip(
        self,
        region: FileRegion,
        entry: str,
        depth: int,
        *,
        listing_hits: list[Hit] | None = None,
        listing: ZipListing | None = None,
    ) -> str:
        hits: list[Hit] = listing_hits if listing_hits is not None else []
        if listing is None:
            try:
                listing = list_zip(region, self.budget, self.limits, entry=entry, report=hits)
            except (ValueError, Truncated) as err:
                self.hits.extend(hits)
                self.add(
                    Hit(
                        Severity.MEDIUM,
                        "unreadable zip archive",
                        f"{err}; entries were recovered from their local headers",
                        kind="container",
                        entry=entry,
                        error=True,
                    )
                )
                listing = ZipListing(walk_local_headers(region, self.limits), 0)
        self.hits.extend(hits)
        entries: list[ZipEntry] = listing.entries
        prefix = listing.prefix
        names = [e.name for e in entries]
        if prefix > 0:
            self.add(
                Hit(
                    Severity.MEDIUM,
                    "data before the first zip entry",
                    f"{prefix} bytes precede the archive; they were scanned on their own",
                    kind="container",
                    entry=entry,
                    offset=0,
                )
            )
            self.scan(Stream(region.sub(0, prefix), self.budget), _join(entry, "<prefix>"), depth + 1)
        torch_prefixes = {n[: -len("data.pkl")] for n in names if n == "data.pkl" or n.endswith("/data.pkl")}
        is_ts = any("code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names)
        is_keras = "config.json" in names and ("metadata.json" in names or "model.weights.h5" in names)
        fmt = "torchscript" if is_ts else "pytorch-zip" if torch_prefixes else "keras" if is_keras else "zip"
        if (
            not is_ts
            and not torch_prefixes
            and not is_keras
            and names
            and all(n.endswith(".npy") for n in names)
        ):
            fmt = "npz"
        for e in entries:
            self._zip_entry(region, e, entry, depth, torch_prefixes, is_ts or is_keras)
        return fmt

    def _zip_entry(
        self,
        region: FileRegion,
        e: ZipEntry,
        entry: str,
        depth: int,
        torch_prefixes: set[str],
        config_aware: bool,
    ) -> None:
        path = _join(entry, e.name)
        why = bad_member_name(e.name)
        if why:
            self.add(
                Hit(
                    Severity.HIGH,
                    "zip entry escapes the extraction directory",
                    f"{e.name!r}: {why}",
                    kind="container",
                    entry=path,
                    atlas=ATLAS_ARTIFACT,
                )
            )
        if e.is_symlink:
            self.add(
                Hit(
                    Severity.HIGH,
                    "symbolic link in zip archive",
                    "extracting it creates a link that later writes or reads can follow out of the directory",
                    kind="container",
                    entry=path,
                    atlas=ATLAS_ARTIFACT,
                )
            )
            return
        if e.is_dir or e.data_offset < 0:
            return
        if _STORAGE.match(e.name) and any(e.name.startswith(p + "data/") for p in torch_prefixes):
            return  # tensor storage bytes: torch never unpickles them
        if e.csize and e.usize > 64 << 20 and e.usize / e.csize > self.limits.max_ratio:
            self.add(
                Hit(
                    Severity.HIGH,
                    "compression bomb",
                    f"{e.name!r} expands {e.csize} -> {e.usize} bytes (ratio {e.usize / e.csize:.0f})",
                    kind="container",
                    entry=path,
                    atlas=ATLAS_ARTIFACT,
                )
            )
            return
        raw = Stream(region.sub(e.data_offset, e.csize), self.budget)
        codec = {8: "deflate", 12: "bz2", 14: "zip-lzma"}.get(e.method)
        if e.method == 0:
            s = raw
        elif codec is None:
            self.add(
                Hit(
                    Severity.MEDIUM,
                    f"zip compression method {e.method} not supported",
                    "the entry was not inspected",
                    kind="container",
                    entry=path,
                    error=True,
                )
            )
            return
        else:
            s = open_decompressed(raw, codec, ratio_check=self._ratio(path), size=e.usize)
        hint = "pickle" if e.name.endswith(_PICKLE_NAMES) else ""
        if config_aware and e.name.endswith(".json"):
            self._json_config(s, path)
            return
        if config_aware and "code/" in e.name and e.name.endswith(".py"):
            text = s.read(16 << 20).decode("utf-8", "replace")
            scan_torchscript_code(text, entry=path, report=self.add)
            return
        try:
            self.scan(s, path, depth + 1, hint=hint)
        except Bomb as err:
            self.add(Hit(Severity.HIGH, "decompression bomb", str(err), kind="container", entry=path))

    def _json_config(self, s: Stream, path: str) -> None:
        raw = s.read(64 << 20)
        try:
            cfg = json.loads(raw)
        except (ValueError, RecursionError):
            self.add(Hit(Severity.LOW, "unparsable JSON", "", kind="keras", entry=path, atlas=None))
            return
        scan_keras_config(cfg, entry=path, report=self.add)

    def _ratio(self, path: str) -> Callable[[int, int], None]:
        limit = self.limits.max_ratio

        def check(consumed: int, produced: int) -> None:
            if produced > 64 << 20 and produced > limit * max(consumed, 1):
                raise Bomb(
                    f"{path or 'stream'}: {consumed} compressed bytes expanded to more than {produced}"
                )

        return check

    def _compressed(self, s: Stream, codec: str, entry: str, depth: int) -> str:
        try:
            inner = open_decompressed(s, codec, ratio_check=self._ratio(entry))
        except ModuleNotFoundError:
            self.add(
                Hit(
                    Severity.MEDIUM,
                    f"{codec} stream cannot be inspected",
                    f"install the '{codec}' package to scan {codec}-compressed files",
                    kind="container",
                    entry=entry,
                    error=True,
                )
            )
            return codec
        inner_fmt = self.scan(inner, entry, depth + 1)
        if inner_fmt in ("pickle", "joblib"):
            return f"joblib-{codec}"
        return f"{codec}+{inner_fmt}"

    def _tar(self, s: Stream, entry: str, depth: int) -> str:
        region = s.region
        fobj = _TarIO(s)
        try:
            if region is not None:
                tf = tarfile.open(fileobj=cast(Any, fobj), mode="r:")  # noqa: SIM115  # closed with the stream
            else:
                tf = tarfile.open(fileobj=cast(Any, fobj), mode="r|")  # noqa: SIM115  # closed with the stream
        except tarfile.TarError as err:
            self.add(
                Hit(
                    Severity.MEDIUM,
                    "unreadable tar archive",
                    str(err),
                    kind="container",
                    entry=entry,
                    error=True,
                )
            )
            return "tar"
        names = []
        count = 0
        try:
            for m in tf:
                count += 1
                if count > self.limits.max_entries:
                    self.add(
                        Hit(
                            Severity.HIGH,
                            "too many tar entries",
                            f"more than {self.limits.max_entries}",
                            kind="container",
                            entry=entry,
                            error=True,
                        )
                    )
                    break
                tf.members = []  # type: ignore[attr-defined]  # keep memory flat on archives with many members
                path = _join(entry, m.name)
                names.append(m.name)
                why = bad_member_name(m.name)
                if why:
                    self.add(
                        Hit(
                            Severity.HIGH,
                            "tar entry escapes the extraction directory",
                            f"{m.name!r}: {why}",
                            kind="container",
                            entry=path,
                            atlas=ATLAS_ARTIFACT,
                        )
                    )
                if m.issym() or m.islnk():
                    target_why = bad_member_name(m.linkname)
                    self.add(
                        Hit(
                            Severity.HIGH if target_why else Severity.MEDIUM,
                            "link in tar archive",
                            f"{m.name!r} links to {m.linkname!r}"
                            + (f" ({target_why})" if target_why else ""),
                            kind="container",
                            entry=path,
                            atlas=ATLAS_ARTIFACT,
                        )
                    )
                    continue
                if m.isdev() or m.isfifo():
                    self.add(
                        Hit(
                            Severity.MEDIUM,
                            "device or fifo in tar archive",
                            m.name,
                            kind="container",
                            entry=path,
                        )
                    )
                    continue
                if not m.isreg():
                    continue
                if region is not None:
                    sub = Stream(region.sub(m.offset_data, m.size), self.budget)
                else:
                    f = tf.extractfile(m)
                    if f is None:
                        continue
                    sub = Stream(f, self.budget, size=m.size)
                self.scan(sub, path, depth + 1, hint="pickle" if m.name in ("pickle",) else "")
        except tarfile.TarError as err:
            self.add(
                Hit(
                    Severity.LOW,
                    "tar archive ends badly",
                    str(err),
                    kind="container",
                    entry=entry,
                    error=True,
                    atlas=None,
                )
            )
        legacy = {"sys_info", "pickle", "storages"}.issubset(set(names))
        return "pytorch-legacy-tar" if legacy else "tar"


class _TarIO:
    """File object over a ``Stream`` for ``tarfile`` (seekable when the stream is)."""

    def __init__(self, s: Stream) -> None:
        self._s = s

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            raise LimitReached("size", "tar reader asked to read a whole stream")
        return self._s.read(n)

    def tell(self) -> int:
        return self._s.tell()

    def seek(self, pos: int, whence: int = 0) -> int:
        if whence == 1:
            pos += self._s.tell()
        elif whence == 2:
            if self._s.size is None:
                raise OSError("cannot seek from the end")
            pos += self._s.size
        self._s.seek(pos)
        return pos

    def seekable(self) -> bool:
        return self._s.seekable
