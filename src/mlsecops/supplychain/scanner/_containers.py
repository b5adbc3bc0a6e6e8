"""Containers: zip (our own directory reader), tar, compressed streams, zip-in-compressed-stream spooling.

Every member is scanned through ``scan`` one level deeper, so its hits name the whole path
(``outer.tar.gz!model.zip!archive/data.pkl``). The storages of a PyTorch zip are skipped by name (torch
never unpickles them); traversal names, links, bombs and parser differentials become hits.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, cast

from mlsecops.core.severity import Severity
from mlsecops.supplychain.scanner._base import ScannerBase
from mlsecops.supplychain.scanner._io import CHUNK, Bomb, FileRegion, Stream, Truncated, open_decompressed
from mlsecops.supplychain.scanner._keras import scan_keras_config
from mlsecops.supplychain.scanner._remote_code import scan_config_code
from mlsecops.supplychain.scanner._targets import scan_targets
from mlsecops.supplychain.scanner._torch_export import FORMAT as EXPORT_FORMAT
from mlsecops.supplychain.scanner._torch_export import (
    ExportPlan,
    is_torch_export,
    plan_payloads,
    scan_export_program,
)
from mlsecops.supplychain.scanner._torchscript import MAX_CODE_BYTES, scan_torchscript_sources
from mlsecops.supplychain.scanner._types import ATLAS_ARTIFACT, Hit, LimitReached
from mlsecops.supplychain.scanner._zip import (
    ZipEntry,
    ZipListing,
    bad_member_name,
    find_eocd,
    list_zip,
    walk_local_headers,
)

__all__ = ["ContainerScanning", "join_entry"]

_PICKLE_NAMES = (".pkl", ".pickle", ".debug_pkl", ".joblib")
_CODE_NAMES = (
    ".py",
    ".pyc",
    ".pyo",
    ".pyw",
    ".so",
    ".dll",
    ".dylib",
    ".pyd",
    ".exe",
    ".sh",
    ".bat",
    ".ps1",
    ".pth",
)
_STORAGE = re.compile(r"^(.*/)?data/\d+$")


def join_entry(parent: str, name: str) -> str:
    """The entry path of ``name`` inside ``parent`` (``parent!name``)."""
    return f"{parent}!{name}" if parent else name


class ContainerScanning(ScannerBase):
    """Opening containers (a part of ``ArtifactScanner``)."""

    def _polyglot(self, region: FileRegion, entry: str, depth: int, *, expected: bool = False) -> None:
        """Scan a zip found at the end of another format; ``expected`` when that format appends one by
        design (TFLite metadata packs its associated files so): the members are scanned all the same.
        """
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
                Severity.INFO if expected else Severity.HIGH,
                "file is also a zip archive",
                "the file starts as one format and ends with a zip directory: loaders that check the "
                "first bytes and loaders that read the zip directory see different content",
                kind="container",
                entry=entry,
                atlas=ATLAS_ARTIFACT,
            )
        )
        self._zip(region, entry, depth, listing_hits=hits, listing=listing, host_scanned=expected)

    def _spooled_zip(self, s: Stream, entry: str, depth: int) -> str:
        """A zip inside a compressed stream needs random access: copy it to an unnamed temporary file."""
        import tempfile  # imported when needed: a JSON scan of one checkpoint should start fast

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
        host_scanned: bool = False,
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
        if prefix > 0 and not host_scanned:  # a host format that appends a zip was scanned as itself
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
            self.scan(Stream(region.sub(0, prefix), self.budget), join_entry(entry, "<prefix>"), depth + 1)
        torch_prefixes = {n[: -len("data.pkl")] for n in names if n == "data.pkl" or n.endswith("/data.pkl")}
        is_ts = any("code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names)
        is_keras = "config.json" in names and ("metadata.json" in names or "model.weights.h5" in names)
        is_export = not is_ts and is_torch_export(names)
        fmt = "torchscript" if is_ts else "pytorch-zip" if torch_prefixes else "keras" if is_keras else "zip"
        fmt = EXPORT_FORMAT if is_export else fmt
        if (
            not is_ts
            and not torch_prefixes
            and not is_keras
            and not is_export
            and names
            and all(n.endswith(".npy") for n in names)
        ):
            fmt = "npz"
        ts_sources: list[tuple[str, bytes]] | None = [] if is_ts else None
        plan = self._export_program(region, entries, entry) if is_export else None
        for e in entries:
            try:
                self._zip_entry(
                    region, e, entry, depth, torch_prefixes, is_ts or is_keras, names, ts_sources, plan
                )
            except (
                Truncated
            ) as err:  # a corrupt entry read outside ``scan`` (a JSON config): found by fuzzing
                self.add(
                    Hit(
                        Severity.LOW,
                        "truncated zip entry",
                        str(err),
                        kind="container",
                        entry=join_entry(entry, e.name),
                        error=True,
                        atlas=None,
                    )
                )
        if ts_sources:
            scan_torchscript_sources(ts_sources, report=self.add, tick=self.budget.check_time)
        return fmt

    def _zip_entry(
        self,
        region: FileRegion,
        e: ZipEntry,
        entry: str,
        depth: int,
        torch_prefixes: set[str],
        config_aware: bool,
        names: list[str],
        ts_sources: list[tuple[str, bytes]] | None = None,
        plan: ExportPlan | None = None,
    ) -> None:
        path = join_entry(entry, e.name)
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
        if e.data_offset < 0 or (e.is_dir and e.csize == 0):
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
        if plan is not None and e.name in plan.raw:
            return  # raw tensor bytes of a torch.export program: read with frombuffer, never unpickled
        s = self._open_entry(region, e, path)
        if s is None:
            return
        if plan is not None and e.name in plan.pickled:
            # torch.export.load unpickles it (torch.load(weights_only=False), pickle.loads, torchbind).
            self.scan(s, path, depth + 1, hint="pickle")
            return
        hint = "pickle" if e.name.endswith(_PICKLE_NAMES) else ""
        if e.name.endswith(".json"):
            # config.json of a .keras file (whatever else the zip holds), or any JSON a loader may read.
            strict = config_aware or e.name.rsplit("/", 1)[-1] == "config.json"
            self._json_config(s, path, depth + 1, strict=strict, siblings=(e.name, names))
            return
        if ts_sources is not None and "code/" in e.name and e.name.endswith(".py"):
            # torch.jit.load compiles these: judged together once the whole archive is listed.
            ts_sources.append((path, s.read(MAX_CODE_BYTES + 1)))
            return
        if e.name.lower().endswith(_CODE_NAMES):
            # torch.package runs the Python modules it carries, and they shadow the modules its pickles
            # import (an in-archive collections.py serves "collections.OrderedDict"); remote-code model
            # repositories import theirs too; native libraries load as code.
            package = any(n.endswith(".data/extern_modules") for n in names)
            self.add(
                Hit(
                    Severity.HIGH if package else Severity.MEDIUM,
                    "Python module in torch.package archive" if package else "code file in model archive",
                    f"{e.name!r} is program code that a loader of this archive may import or run"
                    + (
                        " (torch.package imports it in place of the module of the same name)"
                        if package
                        else ""
                    ),
                    kind="container",
                    entry=path,
                    atlas=ATLAS_ARTIFACT,
                    remediation="Review the code, or load only the weights from a format without code.",
                )
            )
        try:
            self.scan(s, path, depth + 1, hint=hint)
        except Bomb as err:
            self.add(Hit(Severity.HIGH, "decompression bomb", str(err), kind="container", entry=path))

    def _open_entry(self, region: FileRegion, e: ZipEntry, path: str) -> Stream | None:
        """The (decompressed) content of a zip entry; ``None`` with a hit for unknown compression."""
        raw = Stream(region.sub(e.data_offset, e.csize), self.budget)
        codec = {8: "deflate", 12: "bz2", 14: "zip-lzma"}.get(e.method)
        if e.method == 0:
            return raw
        if codec is None:
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
            return None
        return open_decompressed(raw, codec, ratio_check=self._ratio(path), size=e.usize)

    def _export_program(self, region: FileRegion, entries: list[ZipEntry], entry: str) -> ExportPlan:
        """Judge a torch.export program's JSON and learn how each of its payloads is read."""
        plan = ExportPlan()
        names = {e.name for e in entries}
        for e in entries:
            is_model = "models/" in e.name and e.name.endswith(".json")
            is_config = "data/" in e.name and e.name.endswith("_config.json")
            if not (is_model or is_config) or e.data_offset < 0 or e.is_symlink:
                continue
            path = join_entry(entry, e.name)
            s = self._open_entry(region, e, path)
            raw = s.read(_MAX_JSON + 1) if s is not None else b""
            try:
                if len(raw) > _MAX_JSON:
                    raise ValueError(f"more than {_MAX_JSON} bytes")
                doc = json.loads(raw)
            except (ValueError, RecursionError, Bomb) as err:
                why = str(err)[:200]
                self.add(
                    Hit(Severity.MEDIUM, "unreadable torch.export JSON", why, kind="torch-export", entry=path)
                )
                continue
            if is_model:
                scan_export_program(doc, entry=path, report=self.add)
            else:
                plan_payloads(doc, e.name, names, plan)
        return plan

    def _json_config(
        self, s: Stream, path: str, depth: int, *, strict: bool, siblings: tuple[str, list[str]] | None = None
    ) -> None:
        raw = s.read(_MAX_JSON + 1)
        if len(raw) > _MAX_JSON:
            # Whitespace padding compresses to nothing: a configuration past the limit is not "clean".
            self.add(
                Hit(
                    Severity.MEDIUM,
                    "JSON configuration too large to inspect",
                    f"more than {_MAX_JSON} bytes; a loader would still read all of it",
                    kind="keras",
                    entry=path,
                    error=True,
                )
            )
            return
        try:
            cfg = json.loads(raw)
        except (ValueError, RecursionError):
            if strict:
                self.add(Hit(Severity.LOW, "unparsable JSON", "", kind="keras", entry=path, atlas=None))
            # Not JSON: scan it by its content like any other entry.
            self.scan(Stream(_Mem(raw), self.budget, size=len(raw)), path, depth)
            return
        scan_keras_config(cfg, entry=path, report=self.add)
        scan_targets(raw, base=0, entry=path, report=self.add)
        if siblings is not None:  # remote-code modules are looked up beside the configuration
            folder = siblings[0].rpartition("/")[0]
            names = set(siblings[1])
            scan_config_code(
                cfg, entry=path, report=self.add, has_file=lambda f: f"{folder}/{f}".lstrip("/") in names
            )

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
        import tarfile  # with shutil it costs ~10 ms of start-up that scans without a tar never need

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
                path = join_entry(entry, m.name)
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


_MAX_JSON = 64 << 20


class _Mem:
    def __init__(self, data: bytes) -> None:
        self._d = data
        self._p = 0

    def read(self, n: int) -> bytes:
        out = self._d[self._p : self._p + n]
        self._p += len(out)
        return out


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
