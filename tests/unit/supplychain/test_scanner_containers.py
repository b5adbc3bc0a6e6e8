"""Containers: zip/tar parsing differentials, traversal names, links, bombs, nesting and size limits."""

from __future__ import annotations

import io
import os
import struct
import tarfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlsecops.supplychain.scanner import ArtifactScan, ScanLimits, Verdict, scan_file

Scan = Callable[..., ArtifactScan]


def _zip(entries: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def _titles(r: ArtifactScan) -> set[str]:
    return {h.title for h in r.hits}


def test_zip_slip_names(scan: Scan, pk: Any) -> None:
    r = scan(_zip({"../../etc/cron.d/x": b"hello", "ok.txt": b"fine"}))
    assert r.verdict is Verdict.SUSPICIOUS
    assert "zip entry escapes the extraction directory" in _titles(r)


def test_zip_symlink_entry(scan: Scan) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        info = zipfile.ZipInfo("link")
        info.create_system = 3
        info.external_attr = 0o120777 << 16
        z.writestr(info, "/etc/passwd")
    r = scan(buf.getvalue())
    assert "symbolic link in zip archive" in _titles(r) and r.verdict is Verdict.SUSPICIOUS


def test_tar_with_links_traversal_and_pickle(scan: Scan, pk: Any) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in {"model/data.pkl": pk.SYSTEM, "../evil": b"x"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("model/link")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/shadow"
        t.addfile(link)
    r = scan(buf.getvalue())
    assert r.verdict is Verdict.MALICIOUS and r.format == "gzip+tar"
    assert {"tar entry escapes the extraction directory", "link in tar archive"} <= _titles(r)
    assert any(h.entry == "model/data.pkl" and h.callable == "os.system" for h in r.hits)


def test_uncompressed_tar_of_benign_files(scan: Scan, pk: Any) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        info = tarfile.TarInfo("weights.pkl")
        info.size = len(pk.BENIGN)
        t.addfile(info, io.BytesIO(pk.BENIGN))
    r = scan(buf.getvalue())
    assert r.format == "tar" and r.verdict is Verdict.SAFE


def test_nested_zip_in_tar_in_zip(scan: Scan, pk: Any) -> None:
    inner = pk.torch_zip(pk.SYSTEM)
    tbuf = io.BytesIO()
    with tarfile.open(fileobj=tbuf, mode="w") as t:
        info = tarfile.TarInfo("inner.pt")
        info.size = len(inner)
        t.addfile(info, io.BytesIO(inner))
    r = scan(_zip({"bundle.tar": tbuf.getvalue()}))
    hit = next(h for h in r.hits if h.callable == "os.system")
    assert hit.entry == "bundle.tar!inner.pt!archive/data.pkl"


def test_nesting_depth_limit(scan: Scan, pk: Any) -> None:
    data = pk.SYSTEM
    for i in range(8):
        data = _zip({f"level{i}.zip": data})
    r = scan(data, limits=ScanLimits(max_depth=4))
    assert "containers nested too deep" in _titles(r)
    assert r.verdict is not Verdict.SAFE


def test_compression_bomb_is_reported_without_inflating(scan: Scan) -> None:
    data = _zip({"huge.bin": b"\x00" * (200 << 20)}, zipfile.ZIP_DEFLATED)
    assert len(data) < 1 << 20
    t0 = time.monotonic()
    r = scan(data)
    assert time.monotonic() - t0 < 5
    assert "compression bomb" in _titles(r) and r.verdict is Verdict.SUSPICIOUS


def test_gzip_bomb_stops_at_ratio(scan: Scan) -> None:
    import gzip

    data = gzip.compress(b"\x00" * (300 << 20), 9)
    r = scan(data)
    assert "decompression bomb" in _titles(r)


def _patch_zip(data: bytes, **kw: Any) -> bytes:
    """Rewrite fields of the first entry's local header (flags, name) or corrupt its CRC."""
    b = bytearray(data)
    if "flags" in kw:
        struct.pack_into("<H", b, 6, kw["flags"])
        cd = b.find(b"PK\x01\x02")
        struct.pack_into("<H", b, cd + 8, kw["flags"])
    if "local_name" in kw:
        n = struct.unpack_from("<H", b, 26)[0]
        new = kw["local_name"].encode()
        assert len(new) == n
        b[30 : 30 + n] = new
    if kw.get("bad_crc"):
        struct.pack_into("<I", b, 14, 0xDEADBEEF)
        cd = b.find(b"PK\x01\x02")
        struct.pack_into("<I", b, cd + 16, 0xDEADBEEF)
    return bytes(b)


def test_zip_parser_differentials_still_scanned(scan: Scan, pk: Any) -> None:
    base = pk.torch_zip(pk.SYSTEM)
    enc = scan(_patch_zip(base, flags=0x1))
    assert enc.verdict is Verdict.MALICIOUS and "zip entry flagged as encrypted" in _titles(enc)
    crc = scan(_patch_zip(base, bad_crc=True))
    assert crc.verdict is Verdict.MALICIOUS
    renamed = scan(_patch_zip(base, local_name="archive/data.pkX"))
    assert renamed.verdict is Verdict.MALICIOUS and "zip entry names disagree" in _titles(renamed)


def test_duplicate_entry_names_all_scanned(scan: Scan, pk: Any) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", pk.SYSTEM)
        z.writestr("archive/data.pkl", pk.BENIGN)
    r = scan(buf.getvalue())
    assert r.verdict is Verdict.MALICIOUS and "duplicate zip entry names" in _titles(r)


def test_pickle_zip_polyglot(scan: Scan, pk: Any) -> None:
    r = scan(pk.SYSTEM + pk.torch_zip(pk.BENIGN))
    assert r.verdict is Verdict.MALICIOUS
    r2 = scan(pk.BENIGN + pk.torch_zip(pk.SYSTEM))
    assert r2.verdict is Verdict.MALICIOUS and "file is also a zip archive" in _titles(r2)


def test_sparse_10gb_file_ends_within_limits(tmp_path: Path) -> None:
    path = tmp_path / "sparse.bin"
    with open(path, "wb") as f:
        f.truncate(10 << 30)
    t0 = time.monotonic()
    r = scan_file(path, limits=ScanLimits(max_blob_search=64 << 20), sha256=False)
    assert time.monotonic() - t0 < 20
    assert r.hits and r.verdict is Verdict.SAFE  # an info finding says how much was searched


def test_time_limit_yields_error_finding(scan: Scan, pk: Any) -> None:
    data = pk.asm(("proto", 2), "EMPTY_LIST", "MARK", *([("K", 1)] * 300_000), "APPENDS", "STOP")
    r = scan(data, limits=ScanLimits(max_seconds=0.0))
    assert r.verdict is Verdict.ERROR and any("time" in h.title for h in r.hits)


def test_size_limit_yields_error_finding(scan: Scan, pk: Any) -> None:
    r = scan(pk.BENIGN, limits=ScanLimits(max_file_bytes=4))
    assert r.verdict is Verdict.ERROR


def test_truncated_zip_recovered_from_local_headers(scan: Scan, pk: Any) -> None:
    data = pk.torch_zip(pk.SYSTEM)
    r = scan(data[: len(data) // 2])
    assert "unreadable zip archive" in _titles(r)
    assert r.verdict is Verdict.MALICIOUS  # the payload entry was still found and walked
    clean = pk.torch_zip(pk.BENIGN)
    assert scan(clean[: len(clean) // 2]).verdict is Verdict.ERROR


def test_fifo_and_missing_paths(tmp_path: Path) -> None:
    import pytest

    from mlsecops.core.errors import InputError

    with pytest.raises(InputError):
        scan_file(tmp_path / "missing.pt")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InputError):
        scan_file(fifo)


def test_mutated_files_never_crash_the_scanner(tmp_path: Path, pk: Any) -> None:
    import gzip
    import random

    seeds = [
        pk.torch_zip(pk.SYSTEM),
        gzip.compress(pk.SYSTEM * 3),
        pk.BENIGN * 4,
        pk.onnx_model([("Relu", "")], external="w.bin"),
        _zip({"a.npy": b"\x93NUMPY\x01\x00v\x00" + b" " * 118}),
    ]
    rng = random.Random(0)
    path = tmp_path / "fuzz.bin"
    for _ in range(300):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 6)):
            if rng.random() < 0.6 and data:
                data[rng.randrange(len(data))] = rng.randrange(256)
            else:
                data = data[: rng.randrange(len(data) + 1)]
        path.write_bytes(bytes(data))
        r = scan_file(path, limits=ScanLimits(max_seconds=5), sha256=False)
        assert not any(h.title == "scanner error" for h in r.hits), [h.detail for h in r.hits]


def test_zip_inside_compressed_streams_is_opened(scan: Scan, pk: Any) -> None:
    inner = pk.torch_zip(pk.SYSTEM)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        info = tarfile.TarInfo("model/pytorch_model.bin")
        info.size = len(inner)
        t.addfile(info, io.BytesIO(inner))
    r = scan(buf.getvalue())
    assert r.verdict is Verdict.MALICIOUS
    assert any(h.entry == "model/pytorch_model.bin!archive/data.pkl" for h in r.hits)
    deflated = _zip({"inner.zip": _zip({"m.pt": inner}, zipfile.ZIP_DEFLATED)}, zipfile.ZIP_DEFLATED)
    assert scan(deflated).verdict is Verdict.MALICIOUS
    tiny = scan(buf.getvalue(), limits=ScanLimits(max_spool=100))
    assert tiny.verdict is Verdict.ERROR
