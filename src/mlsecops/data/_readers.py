"""Readers for tabular and array data: CSV, Parquet, NumPy ``.npy``/``.npz`` and image arrays.

Every reader yields ``Chunk`` values: a dict of column name -> 1-D NumPy array holding at most
``chunk_rows`` rows, so a profile or a check over a file larger than memory keeps constant memory.
``load_xy`` reads a whole (small enough) data set into a feature matrix and a label vector for the
poisoning detectors. Everything that cannot be read raises ``InputError`` with one line saying what
was expected and what came; nothing here executes content from the file (``allow_pickle=False``).
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from mlsecops.core.errors import InputError

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "Chunk",
    "count_rows",
    "file_format",
    "iter_chunks",
    "load_table",
    "load_xy",
]

Chunk = dict[str, np.ndarray]
"""Column name -> 1-D array (float64 for numbers, object for strings; missing values as NaN / None)."""

DEFAULT_CHUNK_ROWS = 200_000
"""Rows per chunk: about 32 MB for 20 float columns."""

_FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".npy": "npy",
    ".npz": "npz",
}


def file_format(path: Path) -> str:
    """Return ``csv``, ``parquet``, ``npy`` or ``npz`` for ``path``.

    Raises:
        InputError: missing file, empty file or an extension we do not read.
    """
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(
            f"{path}: unsupported data format {path.suffix!r}; expected .csv, .parquet, .npy or .npz"
        )
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")
    return fmt


def iter_chunks(path: Path, *, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[Chunk]:
    """Yield the rows of a data file as column chunks of at most ``chunk_rows`` rows.

    Arrays with more than two dimensions (image stacks) are flattened per sample into ``f0..fN``
    columns; a ``.npz`` contributes its ``X`` array as features and its ``y`` array as column ``y``.

    Raises:
        InputError: the file cannot be read, is ragged, or holds no rows.
    """
    fmt = file_format(path)
    if fmt == "csv":
        yield from _csv_chunks(path, chunk_rows)
    elif fmt == "parquet":
        yield from _parquet_chunks(path, chunk_rows)
    else:
        x, y = _load_arrays(path, fmt)
        names = [f"f{i}" for i in range(x.shape[1])]
        for start in range(0, x.shape[0], chunk_rows):
            block = np.asarray(x[start : start + chunk_rows], dtype=np.float64)
            chunk: Chunk = {n: block[:, i] for i, n in enumerate(names)}
            if y is not None:
                chunk["y"] = np.asarray(y[start : start + chunk_rows])
            yield chunk


def count_rows(path: Path, *, stop_after: int | None = None) -> int:
    """Count the data rows of a file without parsing its values, in constant memory.

    CSV: line breaks (a quoted field spanning lines counts once per line, so this is an upper bound);
    Parquet: the footer's row count; ``.npy``: the array header; ``.npz``: the header of array ``X`` (or
    the first array), read without inflating the rest, so a compressed bomb is measured before it is
    opened. With ``stop_after`` a CSV count stops as soon as it exceeds that many rows.

    Raises:
        InputError: as ``file_format``, or a header that cannot be read.
    """
    fmt = file_format(path)
    if fmt == "csv":
        lines, last = 0, b"\n"
        with path.open("rb") as fh:
            while block := fh.read(_BLOCK_BYTES):
                lines += block.count(b"\n")
                last = block[-1:]
                if stop_after is not None and lines - 1 > stop_after:
                    break
        return max(lines + (last != b"\n") - 1, 0)  # minus the header line
    if fmt == "parquet":
        try:
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        except ImportError as err:  # pragma: no cover - depends on the installed extras
            raise InputError("reading Parquet needs pyarrow: pip install 'mlsecops[data]'") from err
        except Exception as err:  # pyarrow raises several types for corrupt files
            raise InputError(f"{path}: not a readable Parquet file ({err})") from err
    try:
        if fmt == "npy":
            with path.open("rb") as fh:
                return _npy_rows(fh)
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if n.endswith(".npy")]
            if not names:
                raise InputError(f"{path}: the .npz holds no arrays")
            with zf.open("X.npy" if "X.npy" in names else names[0]) as fh:
                return _npy_rows(fh)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise InputError(f"{path}: not a readable NumPy file ({err})") from err


def _npy_rows(fh: Any) -> int:
    shape, _ = _npy_header(fh)
    return int(shape[0]) if shape else 1


def _npy_header(fh: Any) -> tuple[tuple[int, ...], np.dtype[Any]]:
    fmt = np.lib.format
    version = fmt.read_magic(fh)
    # Only the header is read; version 3.0 (UTF-8 field names) is 2.0 with another text encoding.
    read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    shape, _, dtype = read(fh)
    return tuple(int(d) for d in shape), dtype


MAX_ARRAY_BYTES = 4 << 30
"""Largest array a ``.npz`` may declare before it is inflated into memory."""


def _check_npz_sizes(path: Path) -> None:
    """Refuse a ``.npz`` whose arrays declare more than ``MAX_ARRAY_BYTES`` (a compressed bomb)."""
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            if not name.endswith(".npy"):
                continue
            with zf.open(name) as fh:
                shape, dtype = _npy_header(fh)
            size = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
            if size > MAX_ARRAY_BYTES:
                raise InputError(
                    f"{path}: array {name[:-4]!r} of shape {shape} would take {size / 2**30:.1f} GiB in memory"
                    f" (limit {MAX_ARRAY_BYTES / 2**30:.0f} GiB); split the data"
                )


def load_table(path: Path) -> Chunk:
    """Read a whole file into one chunk (for data sets that fit in memory).

    Raises:
        InputError: as ``iter_chunks``.
    """
    parts = list(iter_chunks(path))
    if not parts:
        raise InputError(f"{path}: no data rows")
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def load_xy(path: Path, *, label: str | None) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Read features and labels for the poisoning detectors.

    A ``.npz`` holds arrays ``X`` (any shape, first axis = samples; images are kept as they are) and
    ``y``; a CSV or Parquet file holds the label in column ``label`` and numeric features in the others.

    Returns:
        ``(X, y, feature_names, classes)`` with ``y`` as integer codes into ``classes`` (display names).

    Raises:
        InputError: missing label column, non-numeric features, NaN/inf, mismatched lengths.
    """
    fmt = file_format(path)
    if fmt in ("npy", "npz"):
        if fmt == "npy":
            raise InputError(f"{path}: a .npy holds no labels; use a .npz with arrays X and y")
        with _open_npz(path) as npz:
            if "X" not in npz.files or "y" not in npz.files:
                raise InputError(
                    f"{path}: expected arrays 'X' and 'y' in the .npz; found {sorted(npz.files)}"
                )
            x = _numeric(npz["X"], f"{path}: array X")
            y_raw = np.asarray(npz["y"])
        names = [f"f{i}" for i in range(int(np.prod(x.shape[1:])))]
    else:
        if not label:
            raise InputError(f"{path}: name the label column with --label")
        table = load_table(path)
        if label not in table:
            raise InputError(f"{path}: label column {label!r} not found; columns are {sorted(table)}")
        y_raw = table.pop(label)
        names = list(table)
        if not names:
            raise InputError(f"{path}: no feature columns besides the label {label!r}")
        bad = [n for n in names if table[n].dtype == object]
        if bad:
            raise InputError(f"{path}: feature columns must be numeric; non-numeric: {bad[:5]}")
        x = _numeric(np.column_stack([table[n] for n in names]), f"{path}: features")
    if y_raw.ndim != 1 or y_raw.shape[0] != x.shape[0]:
        raise InputError(
            f"{path}: y must be 1-D with one label per row of X; got {y_raw.shape} for {x.shape}"
        )
    if y_raw.dtype == object and any(v is None for v in y_raw):
        raise InputError(f"{path}: the label column has missing values")
    if y_raw.dtype.kind == "f" and not np.all(np.isfinite(y_raw)):
        raise InputError(f"{path}: the label column has missing or non-finite values")
    values, y = np.unique(y_raw.astype(str) if y_raw.dtype == object else y_raw, return_inverse=True)
    classes = [
        str(int(v)) if isinstance(v, float | np.floating) and float(v).is_integer() else str(v)
        for v in values
    ]
    return x, y.astype(np.int64), names, classes


def _numeric(arr: np.ndarray, what: str) -> np.ndarray:
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise InputError(f"{what} must be numeric; got dtype {arr.dtype}")
    if arr.ndim < 2 or arr.shape[0] == 0:
        raise InputError(f"{what} must have shape (samples, features...); got {arr.shape}")
    out = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(out)):
        raise InputError(f"{what} contains NaN or infinite values")
    return out


def _open_npz(path: Path) -> np.lib.npyio.NpzFile:
    try:
        _check_npz_sizes(path)
        npz: np.lib.npyio.NpzFile = np.load(path, allow_pickle=False)
        return npz
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:
        raise InputError(f"{path}: not a readable .npz archive ({err})") from err


def _load_arrays(path: Path, fmt: str) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        if fmt == "npy":
            # mmap keeps a large array on disk; allow_pickle=False refuses object arrays (code execution).
            x = np.load(path, mmap_mode="r", allow_pickle=False)
            y = None
        else:
            with _open_npz(path) as npz:
                key = "X" if "X" in npz.files else (npz.files[0] if npz.files else None)
                if key is None:
                    raise InputError(f"{path}: the .npz holds no arrays")
                x = npz[key]
                y = npz["y"] if "y" in npz.files else None
    except (OSError, ValueError, EOFError) as err:
        raise InputError(f"{path}: not a readable NumPy file ({err})") from err
    if x.dtype.kind not in "biuf":
        raise InputError(f"{path}: array must be numeric; got dtype {x.dtype}")
    if x.ndim == 0 or x.shape[0] == 0:
        raise InputError(f"{path}: array holds no rows (shape {x.shape})")
    x = x.reshape(x.shape[0], -1) if x.ndim != 2 else x
    if y is not None and (y.ndim != 1 or y.shape[0] != x.shape[0]):
        raise InputError(f"{path}: y must be 1-D with one label per row; got {y.shape} for X {x.shape}")
    return x, y


def _parquet_chunks(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    try:
        import pyarrow.parquet as pq
    except ImportError as err:  # pragma: no cover - depends on the installed extras
        raise InputError("reading Parquet needs pyarrow: pip install 'mlsecops[data]'") from err
    try:
        pf = pq.ParquetFile(path)
        rows = 0
        for batch in pf.iter_batches(batch_size=chunk_rows):
            rows += batch.num_rows
            yield {name: _arrow_to_numpy(batch.column(i)) for i, name in enumerate(batch.schema.names)}
    except InputError:
        raise
    except Exception as err:  # pyarrow raises ArrowInvalid, OSError...: all mean "unreadable file"
        raise InputError(f"{path}: not a readable Parquet file ({type(err).__name__}: {err})") from err
    if rows == 0:
        raise InputError(f"{path}: no data rows")


def _arrow_to_numpy(col: object) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    assert isinstance(col, pa.Array)
    if pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_boolean(col.type):
        return np.asarray(pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    if pa.types.is_timestamp(col.type) or pa.types.is_date(col.type):
        return np.asarray(
            pc.cast(pc.cast(col, pa.timestamp("s")), pa.int64()).to_numpy(zero_copy_only=False),
            dtype=np.float64,
        )
    return np.asarray(pc.cast(col, pa.string()).to_numpy(zero_copy_only=False), dtype=object)


def _sniff_text(path: Path) -> None:
    # A CSV is text with a header line: refuse binary content and absurd first lines up front, so a
    # multi-gigabyte blob named .csv gives a one-line error instead of a long parse into memory.
    with path.open("rb") as fh:
        head = fh.read(1 << 20)
    if b"\x00" in head:
        raise InputError(f"{path}: binary content (NUL bytes), not a CSV text file")
    if b"\n" not in head and len(head) == 1 << 20:
        raise InputError(f"{path}: no line break in the first MiB; not a CSV file with a header line")


def _csv_chunks(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    _sniff_text(path)
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        yield from _csv_chunks_stdlib(path, chunk_rows)
        return
    yield from _csv_chunks_arrow(path, chunk_rows)


_BLOCK_BYTES = 32 << 20
"""Bytes of CSV text parsed at a time. pyarrow's own streaming reader keeps memory that grows with the
file (measured: ~700 MB RSS for a 750 MB file), so we cut the file into blocks at line ends ourselves
and parse each block on its own, with the column types the first block set."""


def _csv_blocks(fh: BinaryIO) -> Iterator[bytes]:
    carry = b""
    while True:
        data = fh.read(_BLOCK_BYTES)
        if not data:
            if carry.strip():
                yield carry
            return
        buf = carry + data
        cut = buf.rfind(b"\n")
        if cut < 0:
            carry = buf
            continue
        carry = buf[cut + 1 :]
        yield buf[: cut + 1]


def _csv_chunks_arrow(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    parse = pacsv.ParseOptions(delimiter=delimiter)
    with path.open("rb") as fh:
        header = fh.readline()
        if not header.strip():
            raise InputError(f"{path}: the first line (the header) is empty")
        names = next(csv.reader([header.decode("utf-8", errors="replace")], delimiter=delimiter))
        if len(set(names)) != len(names):
            raise InputError(f"{path}: duplicate column names in the header")
        types: dict[str, Any] | None = None
        rows = 0
        for block in _csv_blocks(fh):
            convert = pacsv.ConvertOptions(column_types=types) if types else None
            try:
                table = pacsv.read_csv(
                    io.BytesIO(header + block), parse_options=parse, convert_options=convert
                )
            except pa.ArrowInvalid as err:
                where = f" after data row {rows}" if rows else ""
                raise InputError(f"{path}: malformed CSV{where} ({_arrow_msg(err)})") from err
            if types is None:
                # Pin the first block's types so a wrong-typed value later is an error, not a new type;
                # all-empty columns stay free (their type shows up in a later block).
                # Integers are pinned as float64: a column of whole numbers may hold decimals further down.
                types = {
                    f.name: pa.float64() if pa.types.is_integer(f.type) else f.type
                    for f in table.schema
                    if not pa.types.is_null(f.type)
                }
            for batch in table.to_batches(max_chunksize=chunk_rows):
                if batch.num_rows:
                    yield {
                        name: _arrow_to_numpy(batch.column(i)) for i, name in enumerate(batch.schema.names)
                    }
            rows += table.num_rows
            del table
    if rows == 0:
        raise InputError(f"{path}: no data rows (header only)")


def _arrow_msg(err: Exception) -> str:
    return " ".join(str(err).split())[:200]


def _concat(parts: list[Chunk]) -> Chunk:
    if len(parts) == 1:
        return parts[0]
    out: Chunk = {}
    for k in parts[0]:
        arrs = [p[k] for p in parts]
        if any(a.dtype == object for a in arrs):
            arrs = [a.astype(object) for a in arrs]
        out[k] = np.concatenate(arrs)
    return out


def _csv_chunks_stdlib(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with path.open("r", newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        header = next(reader, None)
        if not header:
            raise InputError(f"{path}: file is empty")
        rows: list[list[str]] = []
        total = 0
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise InputError(
                    f"{path}: ragged CSV: line {lineno} has {len(row)} fields, the header has {len(header)}"
                )
            rows.append(row)
            if len(rows) >= chunk_rows:
                total += len(rows)
                yield _rows_to_chunk(header, rows)
                rows = []
        if rows:
            total += len(rows)
            yield _rows_to_chunk(header, rows)
        if total == 0:
            raise InputError(f"{path}: no data rows (header only)")


def _rows_to_chunk(header: list[str], rows: list[list[str]]) -> Chunk:
    cols = list(zip(*rows, strict=True))
    out: Chunk = {}
    for name, values in zip(header, cols, strict=True):
        try:
            out[name] = np.array([float(v) if v.strip() else np.nan for v in values], dtype=np.float64)
        except ValueError:
            out[name] = np.array([v if v != "" else None for v in values], dtype=object)
    return out
