"""Scanners for the formats that carry no code by design but can lie about their structure.

- NumPy ``.npy``: the header is a Python literal (parsed with ``ast.literal_eval``, which builds
  literals only); an object dtype means the payload is a pickle, handed back to the caller to walk.
- safetensors: header size, JSON header, dtypes, shapes against byte ranges, ranges inside the file,
  overlaps (the checks the reference loader makes, done without loading).
- GGUF: magic, version, counts and string lengths against the file size (the heap overflows reported
  against GGML parsers came from unchecked counts), tensor offsets and dimensions, and the Jinja chat
  template, where server-side template injection payloads live.
"""

from __future__ import annotations

import ast
import json
import struct
from collections.abc import Callable

from mlsecops.core.severity import Severity
from mlsecops.supplychain.scanner._io import Stream, Truncated
from mlsecops.supplychain.scanner._remote_code import scan_metadata_text
from mlsecops.supplychain.scanner._templates import scan_template
from mlsecops.supplychain.scanner._types import ATLAS_ARTIFACT, Hit

__all__ = ["scan_gguf", "scan_npy_header", "scan_safetensors"]

Report = Callable[[Hit], None]

_SAFETENSORS_REMEDIATION = "Re-export the weights with the safetensors library from a trusted copy."


def scan_npy_header(s: Stream, *, entry: str, report: Report) -> tuple[bool, int | None]:
    """Parse a ``.npy`` header; the stream is left at the start of the payload.

    Returns:
        (object dtype, payload byte count when known).

    Raises:
        Truncated: the header is cut short.
    """
    head = s.read_exact(8)
    major = head[6]
    if major == 1:
        hlen = struct.unpack("<H", s.read_exact(2))[0]
    elif major in (2, 3):
        hlen = struct.unpack("<I", s.read_exact(4))[0]
    else:
        report(Hit(Severity.MEDIUM, "unknown .npy version", f"version {major}", kind="numpy", entry=entry))
        return False, None
    if hlen > 1 << 20:
        report(
            Hit(
                Severity.MEDIUM,
                "oversized .npy header",
                f"{hlen} bytes",
                kind="numpy",
                entry=entry,
                error=True,
            )
        )
        return False, None
    raw = s.read_exact(hlen)
    try:
        header = ast.literal_eval(raw.decode("latin-1"))
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        report(Hit(Severity.MEDIUM, "unparsable .npy header", "", kind="numpy", entry=entry, error=True))
        return False, None
    if not isinstance(header, dict) or "descr" not in header or "shape" not in header:
        report(Hit(Severity.MEDIUM, "malformed .npy header", repr(header)[:200], kind="numpy", entry=entry))
        return False, None
    descr = header["descr"]
    has_object, itemsize = _npy_dtype(descr)
    if has_object is None:
        report(Hit(Severity.MEDIUM, "invalid .npy dtype", repr(descr)[:200], kind="numpy", entry=entry))
        return False, None
    if has_object:
        report(
            Hit(
                Severity.LOW,
                "object array needs allow_pickle",
                "The array has an object dtype: its payload is a pickle that numpy.load runs only with "
                "allow_pickle=True. The pickle was walked; see the other findings.",
                kind="numpy",
                entry=entry,
                atlas=ATLAS_ARTIFACT,
                remediation="Store numeric arrays only; never pass allow_pickle=True for untrusted files.",
            )
        )
        return True, None
    count = 1
    shape = header["shape"]
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        report(Hit(Severity.MEDIUM, "malformed .npy shape", repr(shape)[:200], kind="numpy", entry=entry))
        return False, None
    for d in shape:
        count *= d
    return False, None if itemsize is None else count * itemsize


def _npy_dtype(descr: object) -> tuple[bool | None, int | None]:
    """(has objects, item size) of a ``.npy`` descr, as numpy.load reads it; (None, None) if invalid.

    numpy's own parser decides: ``descr_to_dtype`` builds a dtype from literals and imports or runs
    nothing, and it accepts spellings a text test misses (``'object'``, nested fields, subarrays).
    """
    try:
        from numpy.lib.format import descr_to_dtype

        dt = descr_to_dtype(descr)  # type: ignore[arg-type]  # any literal; numpy validates it
    except ImportError:
        # Without numpy fall back to the letter test (over-reports "Out" field names, never misses "O").
        text = repr(descr)
        return ("O" in text or "object" in text), None
    except (TypeError, ValueError, KeyError, IndexError, RecursionError):
        return None, None
    return bool(dt.hasobject), int(dt.itemsize)


_ST_DTYPES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "F8_E8M0": 1,
    "F4": 1,
    "F6_E2M3": 1,
    "F6_E3M2": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
    "C64": 8,
}


def scan_safetensors(s: Stream, *, entry: str, report: Report) -> None:
    """Check a safetensors file's header without reading tensor data."""
    size = s.size
    n = struct.unpack("<Q", s.read_exact(8))[0]

    def bad(title: str, detail: str) -> None:
        report(
            Hit(
                Severity.MEDIUM,
                title,
                detail,
                kind="safetensors",
                entry=entry,
                remediation=_SAFETENSORS_REMEDIATION,
                atlas=ATLAS_ARTIFACT,
            )
        )

    if n > 100 << 20 or (size is not None and n > size - 8):
        bad("invalid safetensors header size", f"header claims {n} bytes (file has {size})")
        return
    raw = s.read_exact(n)
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError):
        bad("safetensors header is not JSON", "")
        return
    if not isinstance(header, dict):
        bad("safetensors header is not an object", "")
        return
    data_len = None if size is None else size - 8 - n
    spans: list[tuple[int, int, str]] = []
    for name, info in header.items():
        if name == "__metadata__":
            if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
                bad("safetensors metadata is not a string map", "")
            elif len(info) <= 4096:
                for mk, mv in info.items():
                    scan_metadata_text(str(mk), str(mv), entry=entry, report=report, kind="safetensors")
            continue
        if not isinstance(info, dict):
            bad("malformed safetensors tensor entry", f"tensor {name!r}")
            return
        dtype, shape, offs = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in _ST_DTYPES:  # JSON may put a list or an object here
            bad("unknown safetensors dtype", f"tensor {name!r} has dtype {dtype!r}")
            continue
        if (
            not isinstance(shape, list)
            or not all(isinstance(d, int) and d >= 0 for d in shape)
            or not isinstance(offs, list)
            or len(offs) != 2
            or not all(isinstance(o, int) and o >= 0 for o in offs)
        ):
            bad("malformed safetensors tensor entry", f"tensor {name!r}: shape {shape!r}, offsets {offs!r}")
            continue
        count = 0 if 0 in shape else 1
        for d in shape:
            count *= d
            if count > 1 << 64:  # no file holds more; stop before a huge shape makes a huge integer
                break
        nbytes = count * _ST_DTYPES[dtype]
        if offs[1] - offs[0] != nbytes and dtype not in ("F4", "F6_E2M3", "F6_E3M2"):
            bad(
                "safetensors shape does not match its byte range",
                f"tensor {name!r}: {shape} x {dtype} = {nbytes} bytes, range holds {offs[1] - offs[0]}",
            )
        if offs[0] > offs[1] or (data_len is not None and offs[1] > data_len):
            bad("safetensors range outside the file", f"tensor {name!r}: {offs} (data is {data_len} bytes)")
        spans.append((offs[0], offs[1], name))
    spans.sort()
    end = 0
    for a, b, name in spans:
        if a < end:
            bad("overlapping safetensors tensors", f"tensor {name!r} starts at {a}, inside the previous one")
            break
        if a > end:
            report(
                Hit(
                    Severity.LOW,
                    "gap between safetensors tensors",
                    f"{a - end} bytes before {name!r}",
                    kind="safetensors",
                    entry=entry,
                    atlas=None,
                )
            )
        end = max(end, b)
    if data_len is not None and spans and end < data_len:
        report(
            Hit(
                Severity.LOW,
                "trailing bytes after safetensors data",
                f"{data_len - end} bytes",
                kind="safetensors",
                entry=entry,
                atlas=None,
            )
        )


_GGUF_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def scan_gguf(s: Stream, *, entry: str, report: Report) -> None:
    """Check a GGUF header, key-value metadata, chat template and tensor table."""
    size = s.size

    def bad(title: str, detail: str, sev: Severity = Severity.HIGH) -> None:
        report(
            Hit(
                sev,
                title,
                detail,
                kind="gguf",
                entry=entry,
                atlas=ATLAS_ARTIFACT,
                remediation="Do not load this GGUF file; obtain it from a trusted source.",
            )
        )

    s.read_exact(4)
    version = struct.unpack("<I", s.read_exact(4))[0]
    if version not in (1, 2, 3):
        bad("unknown GGUF version", f"version {version}", Severity.MEDIUM)
        return
    n_tensors, n_kv = struct.unpack("<QQ", s.read_exact(16))
    limit = (size or 1 << 62) // 8
    if n_tensors > min(limit, 1 << 24) or n_kv > min(limit, 1 << 24):
        bad("implausible GGUF counts", f"{n_tensors} tensors, {n_kv} key/values in {size} bytes")
        return

    def string(max_len: int = 1 << 26) -> str | None:
        n = struct.unpack("<Q", s.read_exact(8))[0]
        if n > max_len or (size is not None and n > size):
            bad("GGUF string length out of bounds", f"{n} bytes at offset {s.tell() - 8}")
            raise Truncated("bad string length")
        if n > 1 << 20:
            s.skip(n)
            return None
        return s.read_exact(n).decode("utf-8", "replace")

    alignment = 32
    try:
        for _ in range(n_kv):
            key = string(1 << 16) or ""
            vtype = struct.unpack("<I", s.read_exact(4))[0]
            if vtype == 8:
                val = string()
                if "chat_template" in key:
                    if val is None:
                        bad(
                            "GGUF chat template too large to inspect",
                            f"{key}: more than 1 MiB",
                            Severity.MEDIUM,
                        )
                    else:
                        scan_template(val, where=key, entry=entry, report=report, kind="gguf")
            elif vtype == 9:
                itype = struct.unpack("<I", s.read_exact(4))[0]
                count = struct.unpack("<Q", s.read_exact(8))[0]
                if itype in _GGUF_FIXED:
                    if size is not None and count * _GGUF_FIXED[itype] > size:
                        bad("GGUF array length out of bounds", f"{key}: {count} items")
                        return
                    s.skip(count * _GGUF_FIXED[itype])
                elif itype == 8:
                    if size is not None and count * 8 > size:
                        bad("GGUF array length out of bounds", f"{key}: {count} strings")
                        return
                    for _i in range(count):
                        string()
                else:
                    bad("unsupported GGUF array type", f"{key}: item type {itype}", Severity.MEDIUM)
                    return
            elif vtype in _GGUF_FIXED:
                raw = s.read_exact(_GGUF_FIXED[vtype])
                if key == "general.alignment" and vtype == 4:
                    alignment = struct.unpack("<I", raw)[0] or 32
            else:
                bad("unknown GGUF value type", f"{key}: type {vtype}", Severity.MEDIUM)
                return
        infos: list[tuple[str, int, int]] = []
        for _ in range(n_tensors):
            name = string(1 << 16) or ""
            n_dims = struct.unpack("<I", s.read_exact(4))[0]
            if n_dims > 8:
                bad("GGUF tensor with too many dimensions", f"{name}: {n_dims}")
                return
            dims = struct.unpack(f"<{n_dims}Q", s.read_exact(8 * n_dims))
            _ttype, offset = struct.unpack("<IQ", s.read_exact(12))
            numel = 1
            for d in dims:
                numel *= d
            if numel > 1 << 48:
                bad("GGUF tensor dimensions overflow", f"{name}: {dims}")
                return
            infos.append((name, offset, numel))
        data_start = (s.tell() + alignment - 1) // alignment * alignment
        for name, offset, _numel in infos:
            if offset % alignment or (size is not None and data_start + offset > size):
                bad("GGUF tensor offset out of bounds", f"{name}: offset {offset}, data starts {data_start}")
                return
    except Truncated as err:
        bad("truncated GGUF header", str(err), Severity.MEDIUM)
