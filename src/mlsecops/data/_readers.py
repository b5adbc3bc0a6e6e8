"""The one reader of data files: CSV, Parquet, NumPy ``.npy``/``.npz`` and image arrays.

Every data input of mlsecops goes through here: profiling, checking and registering data, the
poisoning scan, quarantine, and the evaluation and training sets of ``assess``, ``certify`` and
``harden``. A limit added here protects every caller. What the reader guarantees:

- Files are opened once, non-blocking, and must be regular files (checked on the open descriptor):
  a FIFO or device named ``x.csv`` is refused, never waited on.
- ``iter_chunks`` yields ``Chunk`` values (column name -> 1-D array) of at most ``chunk_rows`` rows,
  so a profile or check of a file larger than memory keeps constant memory. CSV text is cut into
  blocks of ``_BLOCK_BYTES`` at line ends; no line may exceed ``MAX_LINE_BYTES``, so a row without a
  line break is refused instead of being held whole. Every loop over the file is bounded by the size
  the file had when it was opened.
- ``.npz`` archives are read by our own member reader, never by ``numpy.load``'s: every member is
  checked (a member need not be named ``*.npy`` for NumPy to inflate it), each member's declared
  size and the archive's total are bounded before anything is inflated, each array's header is read
  first (shape, dtype), the array is inflated into a buffer of exactly the declared size, and a
  member that holds more or fewer bytes than its header declares is refused. So a small archive
  cannot inflate past ``MAX_ARRAY_BYTES`` per array / ``MAX_NPZ_BYTES`` in all.
- Object arrays (``dtype=object``: pickles inside ``.npy``/``.npz``) are refused with a clear
  ``InputError``; nothing here executes content from a file.

``load_table`` reads a whole (small enough) file into one chunk; ``read_labelled`` and ``load_xy``
read features and labels for the detectors and the robustness checks; ``load_npz`` reads every array
of a ``.npz`` (quarantine). What the reader does not bound: the number of rows of a CSV or Parquet
file read whole by ``load_table`` (callers check ``count_rows`` first), and memory of pyarrow while
it decodes one Parquet row group.
"""

from __future__ import annotations

import csv
import io
import lzma
import os
import stat
import tokenize
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from mlsecops.core.errors import InputError

__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "LABEL_NAMES",
    "MAX_ARRAY_BYTES",
    "MAX_LINE_BYTES",
    "MAX_NPZ_BYTES",
    "MAX_NPZ_MEMBERS",
    "Chunk",
    "count_rows",
    "file_format",
    "iter_chunks",
    "load_npz",
    "load_table",
    "load_xy",
    "open_data_file",
    "read_labelled",
    "text_lines",
]

Chunk = dict[str, np.ndarray]
"""Column name -> 1-D array (float64 for numbers, object for strings; missing values as NaN / None)."""

DEFAULT_CHUNK_ROWS = 200_000
"""Rows per chunk: about 32 MB for 20 float columns."""

MAX_LINE_BYTES = 1 << 20
"""Longest CSV line (1 MiB). Guards memory: a file without line breaks would otherwise be held whole
(and copied by the parser, 2.4x its size). 1 MiB holds a row of ~100,000 numeric columns."""

MAX_ARRAY_BYTES = 4 << 30
"""Largest array a ``.npy``/``.npz`` may declare (4 GiB), checked before it is read or inflated."""

MAX_NPZ_BYTES = 4 << 30
"""Largest total that the members of one ``.npz`` may declare uncompressed (4 GiB): bounds inflation
of the whole archive, whatever its members are named."""

MAX_NPZ_MEMBERS = 1_000
"""Most members one ``.npz`` may hold (a data set needs two or three)."""

X_NAMES = ("X", "x", "data")
"""Array names taken as the features of a ``.npz``, in order of preference."""

LABEL_NAMES = ("y", "Y", "labels", "target")
"""Array names taken as the labels of a ``.npz`` (and default label columns ``label, y, target``)."""

_FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".npy": "npy",
    ".npz": "npz",
}

_BLOCK_BYTES = 32 << 20
"""Bytes of CSV text parsed at a time. pyarrow's own streaming reader keeps memory that grows with the
file (measured: ~700 MB RSS for a 750 MB file), so we cut the file into blocks at line ends ourselves
and parse each block on its own, with the column types the first block set."""

_COPY_BYTES = 16 << 20
"""Bytes inflated per read when an array is copied out of a ``.npz`` member."""

_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    OSError,
    ValueError,
    EOFError,
    NotImplementedError,  # an unsupported compression method
    RuntimeError,  # an encrypted member
)
"""What ``zipfile`` and its decompressors raise on a corrupt or unsupported archive."""

_HEADER_ERRORS = (ValueError, EOFError, OSError, SyntaxError, TypeError, RecursionError, tokenize.TokenError)
"""What NumPy's header parser (a tokenizer and ``ast.literal_eval`` over the header text) raises on garbage."""

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
_OPEN_FLAGS |= getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def file_format(path: Path) -> str:
    """Return ``csv``, ``parquet``, ``npy`` or ``npz`` for ``path``.

    Raises:
        InputError: missing file, not a regular file, empty file or an extension we do not read.
    """
    fmt = _FORMATS.get(path.suffix.lower())
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if fmt is None:
        raise InputError(
            f"{path}: unsupported data format {path.suffix!r}; expected .csv, .parquet, .npy or .npz"
        )
    with open_data_file(path):  # the regular-file and empty checks, on an open descriptor
        pass
    return fmt


def open_data_file(path: Path) -> BinaryIO:
    """Open a data file for reading: non-blocking, and only when it is a non-empty regular file.

    Checking the open descriptor (not the path) means a FIFO, device or socket is refused without a
    read that could block, and the file checked is the file read.

    Raises:
        InputError: missing, a directory, not a regular file, empty, or unreadable.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: a directory, not a data file") from None
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror or err})") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise InputError(f"{path}: a directory, not a data file")
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{path}: not a regular file (a device, FIFO or socket); give a data file")
        if st.st_size == 0:
            raise InputError(f"{path}: file is empty")
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def _size(fh: BinaryIO) -> int:
    return os.fstat(fh.fileno()).st_size


def _blocks(fh: BinaryIO, path: Path, size: int) -> Iterator[bytes]:
    """Read ``fh`` from its position in blocks; bounded by ``size``, the file's size when opened."""
    for _ in range(size // _BLOCK_BYTES + 2):
        block = fh.read(_BLOCK_BYTES)
        if not block:
            return
        yield block
    raise InputError(f"{path}: the file grew while it was being read")


def iter_chunks(path: Path, *, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[Chunk]:
    """Yield the rows of a data file as column chunks of at most ``chunk_rows`` rows.

    Arrays with more than two dimensions (image stacks) are flattened per sample into ``f0..fN``
    columns; a ``.npz`` contributes its ``X`` array as features and its ``y`` array as column ``y``.

    Raises:
        InputError: the file cannot be read, is ragged, has a line over ``MAX_LINE_BYTES``, holds
            Python objects, or holds no rows.
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
        with open_data_file(path) as fh:
            for block in _blocks(fh, path, _size(fh)):
                lines += block.count(b"\n")
                last = block[-1:]
                if stop_after is not None and lines - 1 > stop_after:
                    break
        return max(lines + (last != b"\n") - 1, 0)  # minus the header line
    if fmt == "parquet":
        pq = _pyarrow_parquet()
        try:
            with open_data_file(path) as fh:
                return int(pq.ParquetFile(fh).metadata.num_rows)
        except InputError:
            raise
        except Exception as err:  # pyarrow raises several types for corrupt files
            raise InputError(f"{path}: not a readable Parquet file ({err})") from err
    try:
        with open_data_file(path) as fh:
            if fmt == "npy":
                return _rows_of(_npy_header(fh, f"{path}"))
            with zipfile.ZipFile(fh) as zf:
                members = _npz_members(zf, path)
                key = _pick(members, X_NAMES) or next(iter(members), None)
                if key is None:
                    raise InputError(f"{path}: the .npz holds no arrays")
                with zf.open(members[key]) as member:
                    return _rows_of(_npy_header(member, f"{path}: array {key!r}"))
    except _ZIP_ERRORS as err:
        raise InputError(f"{path}: not a readable NumPy file ({type(err).__name__}: {err})") from err


def _rows_of(header: tuple[tuple[int, ...], bool, np.dtype[Any]]) -> int:
    shape = header[0]
    return int(shape[0]) if shape else 1


def _npy_header(fh: Any, what: str) -> tuple[tuple[int, ...], bool, np.dtype[Any]]:
    """Read a ``.npy`` magic and header (shape, Fortran order, dtype) without reading the data.

    Raises:
        InputError: not a NumPy array, or an object dtype (a pickle).
    """
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fh)
        # Only the header is read; version 3.0 (UTF-8 field names) is 2.0 with another text encoding.
        read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran, dtype = read(fh)
    except _HEADER_ERRORS as err:
        raise InputError(f"{what} is not a readable NumPy array ({type(err).__name__}: {err})") from None
    if dtype.itemsize == 0:
        raise InputError(f"{what} has a zero-size dtype ({dtype}); save numeric arrays")
    if dtype.hasobject:
        raise InputError(
            f"{what} holds Python objects (dtype {dtype}): such arrays are pickles and are never loaded;"
            " save numeric arrays"
        )
    return tuple(int(d) for d in shape), bool(fortran), dtype


def _nbytes(shape: tuple[int, ...], dtype: np.dtype[Any]) -> int:
    n = dtype.itemsize
    for d in shape:
        n *= d
    return n


def _too_big(what: str, shape: tuple[int, ...], size: int) -> InputError:
    return InputError(
        f"{what} of shape {shape} would take {size / 2**30:.1f} GiB in memory"
        f" (limit {MAX_ARRAY_BYTES / 2**30:.0f} GiB); split the data"
    )


def _npz_members(zf: zipfile.ZipFile, path: Path) -> dict[str, zipfile.ZipInfo]:
    """Map array names to members, checking every member's declared size before anything inflates.

    NumPy names a member ``X.npy`` or ``X`` array ``X`` and inflates either, so every member counts,
    whatever its name. Two members claiming one name are refused (which one a tool picks differs).

    Raises:
        InputError: too many members, a member or the total over the size limits, or a duplicate name.
    """
    infos = zf.infolist()
    if len(infos) > MAX_NPZ_MEMBERS:
        raise InputError(f"{path}: the .npz holds {len(infos)} members (limit {MAX_NPZ_MEMBERS})")
    members: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in infos:
        if info.is_dir():
            continue
        name = info.filename.removesuffix(".npy")
        if info.file_size > MAX_ARRAY_BYTES:
            raise InputError(
                f"{path}: member {info.filename!r} declares {info.file_size / 2**30:.1f} GiB uncompressed"
                f" (limit {MAX_ARRAY_BYTES / 2**30:.0f} GiB per array); refusing to inflate it"
            )
        total += info.file_size
        if total > MAX_NPZ_BYTES:
            raise InputError(
                f"{path}: the .npz members declare more than {MAX_NPZ_BYTES / 2**30:.0f} GiB uncompressed"
                " in all; refusing to inflate it (split the data)"
            )
        if name in members:
            raise InputError(f"{path}: the .npz holds two members for array {name!r}")
        members[name] = info
    return members


def _pick(members: dict[str, zipfile.ZipInfo], names: Sequence[str]) -> str | None:
    return next((n for n in names if n in members), None)


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, name: str) -> np.ndarray:
    """Inflate one ``.npz`` member into an array of exactly the size its header declares.

    Raises:
        InputError: not an array, object dtype, over ``MAX_ARRAY_BYTES``, or a member holding more
            or fewer bytes than its header declares.
    """
    what = f"{path}: array {name!r}"
    with zf.open(info) as fh:
        shape, fortran, dtype = _npy_header(fh, what)
        size = _nbytes(shape, dtype)
        if size > MAX_ARRAY_BYTES:
            raise _too_big(what, shape, size)
        if size > info.file_size:
            raise InputError(f"{what} declares {size} bytes of data; the member holds {info.file_size}")
        flat = np.empty(size // dtype.itemsize, dtype=dtype)
        raw = flat.view(np.uint8)
        for start in range(0, size, _COPY_BYTES):  # bounded: one read per _COPY_BYTES of the array
            block = fh.read(min(_COPY_BYTES, size - start))
            if len(block) != min(_COPY_BYTES, size - start):
                raise InputError(f"{what} is truncated: fewer bytes than its header declares")
            raw[start : start + len(block)] = np.frombuffer(block, dtype=np.uint8)
        if fh.read(1):
            raise InputError(f"{what} holds more bytes than its header declares; refusing it")
    return flat.reshape(shape, order="F" if fortran else "C")


def load_npz(path: Path, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Read arrays of a ``.npz`` through the bounded member reader (see the module docstring).

    Args:
        path: the archive.
        names: the arrays to read (all when ``None``); names not in the archive are skipped.

    Returns:
        Array name -> array, in archive order.

    Raises:
        InputError: not a readable archive, a bomb, an object array, or a malformed member.
    """
    try:
        with open_data_file(path) as fh, zipfile.ZipFile(fh) as zf:
            members = _npz_members(zf, path)
            wanted = [n for n in members if names is None or n in names]
            return {n: _read_member(zf, members[n], path, n) for n in wanted}
    except _ZIP_ERRORS as err:
        raise InputError(f"{path}: not a readable .npz archive ({type(err).__name__}: {err})") from err


def _load_npy(path: Path) -> np.ndarray:
    with open_data_file(path) as fh:
        shape, fortran, dtype = _npy_header(fh, f"{path}")
        size = _nbytes(shape, dtype)
        if size > MAX_ARRAY_BYTES:
            raise _too_big(f"{path}: the array", shape, size)
        offset = fh.tell()
        if offset + size > _size(fh):
            raise InputError(f"{path}: truncated: the header declares {size} bytes of data")
        if size == 0:
            return np.empty(shape, dtype=dtype)
        # A read-only map of the open file keeps a large array on disk (the map holds its own handle).
        return np.memmap(fh, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


def load_table(path: Path) -> Chunk:
    """Read a whole file into one chunk (for data sets that fit in memory).

    Raises:
        InputError: as ``iter_chunks``.
    """
    parts = list(iter_chunks(path))
    if not parts:
        raise InputError(f"{path}: no data rows")
    return _concat(parts)


def read_labelled(
    path: Path,
    *,
    label: str | None,
    default_labels: Sequence[str] = (),
    dtype: type[np.floating[Any]] = np.float64,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read features and raw labels: the one reader behind ``load_xy`` and ``assess``'s data sets.

    A ``.npz`` holds the features in ``X`` (or ``x``, ``data``; any shape, first axis = samples; images
    keep their shape) and the labels in ``y`` (or ``Y``, ``labels``, ``target``); a CSV or Parquet
    file holds the label in column ``label`` (else the first of ``default_labels`` present) and numeric
    features in the others.

    Args:
        path: the data file.
        label: the label column (CSV/Parquet).
        default_labels: columns tried in order when ``label`` is not given.
        dtype: floating type of the returned features.

    Returns:
        ``(X, y_raw, feature_names)``: finite features, one raw label per row (no missing ones).

    Raises:
        InputError: missing label column or array, non-numeric or non-finite features, object
            arrays, missing labels, mismatched lengths, or any reader error.
    """
    fmt = file_format(path)
    if fmt == "npy":
        raise InputError(f"{path}: a .npy holds no labels; use a .npz with arrays X and y")
    if fmt == "npz":
        arrays = load_npz(path, (*X_NAMES, *LABEL_NAMES))
        xk, yk = _pick_array(arrays, X_NAMES), _pick_array(arrays, LABEL_NAMES)
        if xk is None or yk is None:
            raise InputError(f"{path}: expected arrays 'X' and 'y' in the .npz; found {sorted(arrays)}")
        x = _numeric(arrays[xk], f"{path}: array {xk}", dtype)
        y_raw = arrays[yk]
        names = [f"f{i}" for i in range(int(np.prod(x.shape[1:])))]
    else:
        table = load_table(path)
        column = label or next((c for c in default_labels if c in table), None)
        if not column:
            raise InputError(f"{path}: name the label column with --label")
        if column not in table:
            raise InputError(f"{path}: label column {column!r} not found; columns are {sorted(table)[:20]}")
        y_raw = table.pop(column)
        names = list(table)
        if not names:
            raise InputError(f"{path}: no feature columns besides the label {column!r}")
        bad = [n for n in names if table[n].dtype == object]
        if bad:
            raise InputError(f"{path}: feature columns must be numeric; non-numeric: {bad[:5]}")
        x = _numeric(np.column_stack([table[n] for n in names]), f"{path}: features", dtype)
    if y_raw.ndim != 1 or y_raw.shape[0] != x.shape[0]:
        raise InputError(
            f"{path}: y must be 1-D with one label per row of X; got {y_raw.shape} for {x.shape}"
        )
    if y_raw.dtype == object and any(v is None for v in y_raw):
        raise InputError(f"{path}: the label column has missing values")
    if y_raw.dtype.kind == "f" and not np.all(np.isfinite(y_raw)):
        raise InputError(f"{path}: the label column has missing or non-finite values")
    return x, y_raw, names


def _pick_array(arrays: dict[str, np.ndarray], names: Sequence[str]) -> str | None:
    return next((n for n in names if n in arrays), None)


def load_xy(path: Path, *, label: str | None) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Read features and labels for the poisoning detectors.

    A ``.npz`` holds arrays ``X`` (any shape, first axis = samples; images are kept as they are) and
    ``y``; a CSV or Parquet file holds the label in column ``label`` and numeric features in the others.

    Returns:
        ``(X, y, feature_names, classes)`` with ``y`` as integer codes into ``classes`` (display names).

    Raises:
        InputError: missing label column, non-numeric features, NaN/inf, mismatched lengths, object
            arrays (see ``read_labelled``).
    """
    x, y_raw, names = read_labelled(path, label=label)
    values, y = np.unique(y_raw.astype(str) if y_raw.dtype == object else y_raw, return_inverse=True)
    classes = [
        str(int(v)) if isinstance(v, float | np.floating) and float(v).is_integer() else str(v)
        for v in values
    ]
    return x, y.astype(np.int64), names, classes


def _numeric(arr: np.ndarray, what: str, dtype: type[np.floating[Any]] = np.float64) -> np.ndarray:
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise InputError(f"{what} must be numeric; got dtype {arr.dtype}")
    if arr.ndim < 2 or arr.shape[0] == 0:
        raise InputError(f"{what} must have shape (samples, features...); got {arr.shape}")
    out = arr.astype(dtype, copy=False)
    if not np.all(np.isfinite(out)):
        raise InputError(f"{what} contains NaN or infinite values")
    return out


def _load_arrays(path: Path, fmt: str) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        if fmt == "npy":
            x = _load_npy(path)
            y = None
        else:
            arrays = load_npz(path, (*X_NAMES, *LABEL_NAMES))
            key = _pick_array(arrays, X_NAMES)
            if key is None:  # no features by name: the archive's first array
                arrays = load_npz(path)
                key = next(iter(arrays), None)
            if key is None:
                raise InputError(f"{path}: the .npz holds no arrays")
            x = arrays[key]
            yk = _pick_array(arrays, LABEL_NAMES)
            y = arrays[yk] if yk is not None and yk != key else None
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


def _pyarrow_parquet() -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError as err:  # pragma: no cover - depends on the installed extras
        raise InputError("reading Parquet needs pyarrow: pip install 'mlsecops[data]'") from err
    return pq


def _parquet_chunks(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    pq = _pyarrow_parquet()
    rows = 0
    try:
        with open_data_file(path) as fh:
            # Without pre-buffering and with a bounded read buffer: the defaults read ahead whole row
            # groups of every column (measured: 686 MB peak for a 2M x 25 file read in 100k-row batches,
            # 321 MB without).
            pf = pq.ParquetFile(fh, pre_buffer=False, buffer_size=1 << 20)
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
    with open_data_file(path) as fh:
        head = fh.read(MAX_LINE_BYTES)
    if b"\x00" in head:
        raise InputError(f"{path}: binary content (NUL bytes), not a CSV text file")
    if b"\n" not in head and len(head) == MAX_LINE_BYTES:
        raise InputError(f"{path}: no line break in the first MiB; not a CSV file with a header line")


def _csv_chunks(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    _sniff_text(path)
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        yield from _csv_chunks_stdlib(path, chunk_rows)
        return
    yield from _csv_chunks_arrow(path, chunk_rows)


def _long_line(path: Path, line: int) -> InputError:
    return InputError(
        f"{path}: line {line} is longer than {MAX_LINE_BYTES // 2**20} MiB"
        " (a row without line breaks?); refusing to hold it in memory"
    )


def _over_limit(line: bytes) -> bool:
    """Whether ``readline(MAX_LINE_BYTES + 1)`` stopped inside a line longer than the limit."""
    return len(line) > MAX_LINE_BYTES and not line.endswith(b"\n")


def _check_line_lengths(buf: bytes, path: Path, first_line: int) -> None:
    """Refuse ``buf`` (whole lines) if one line is longer than ``MAX_LINE_BYTES``.

    Jumps from line start to the last line break within ``MAX_LINE_BYTES + 1`` bytes: two jumps cover
    at least ``MAX_LINE_BYTES`` bytes, so a 32 MiB block takes at most ~65 searches, all in C.
    """
    pos, end = 0, len(buf)
    for _ in range(2 * (end // MAX_LINE_BYTES) + 2):
        if end - pos <= MAX_LINE_BYTES + 1:
            return
        cut = buf.rfind(b"\n", pos, pos + MAX_LINE_BYTES + 1)
        if cut < 0:
            raise _long_line(path, first_line + buf.count(b"\n", 0, pos))
        pos = cut + 1


def _csv_blocks(fh: BinaryIO, path: Path, size: int) -> Iterator[bytes]:
    """Yield the rest of ``fh`` in blocks of whole lines, none longer than ``MAX_LINE_BYTES``."""
    carry = b""
    line = 2  # the header is line 1
    for data in _blocks(fh, path, size):
        buf = carry + data
        cut = buf.rfind(b"\n")
        carry = buf[cut + 1 :]
        if len(carry) > MAX_LINE_BYTES:
            raise _long_line(path, line + buf.count(b"\n"))
        if cut < 0:
            continue
        whole = buf[: cut + 1]
        _check_line_lengths(whole, path, line)
        line += whole.count(b"\n")
        yield whole
    if carry.strip():
        yield carry


def _csv_header(fh: BinaryIO, path: Path, delimiter: str) -> tuple[bytes, list[str]]:
    header = fh.readline(MAX_LINE_BYTES + 1)
    if _over_limit(header):
        raise _long_line(path, 1)
    if not header.strip():
        raise InputError(f"{path}: the first line (the header) is empty")
    names = next(csv.reader([header.decode("utf-8", errors="replace")], delimiter=delimiter))
    if len(set(names)) != len(names):
        raise InputError(f"{path}: duplicate column names in the header")
    return header, names


def _csv_chunks_arrow(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    parse = pacsv.ParseOptions(delimiter=delimiter)
    with open_data_file(path) as fh:
        header, _ = _csv_header(fh, path, delimiter)
        types: dict[str, Any] | None = None
        rows = 0
        for block in _csv_blocks(fh, path, _size(fh)):
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


def text_lines(fh: BinaryIO, path: Path) -> Iterator[str]:
    """The lines of a binary text file as ``str``, refusing any line over ``MAX_LINE_BYTES``.

    Feed it to ``csv.reader`` instead of a text-mode file, which would read a line of any length.
    Bounded by the size the file had when this started.

    Raises:
        InputError: a line over the limit, or a file that grew while it was read.
    """
    size = _size(fh)
    for lineno in range(1, size + 2):
        raw = fh.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        if _over_limit(raw):
            raise _long_line(path, lineno)
        yield raw.decode("utf-8", errors="replace")
    raise InputError(f"{path}: the file grew while it was being read")


def _csv_chunks_stdlib(path: Path, chunk_rows: int) -> Iterator[Chunk]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with open_data_file(path) as fh:
        reader = csv.reader(text_lines(fh, path), delimiter=delimiter)
        try:
            header = next(reader, None)
            if not header:
                raise InputError(f"{path}: file is empty")
            rows: list[list[str]] = []
            total = 0
            for row in reader:
                if not row:
                    continue
                if len(row) != len(header):
                    raise InputError(
                        f"{path}: ragged CSV: line {reader.line_num} has {len(row)} fields,"
                        f" the header has {len(header)}"
                    )
                rows.append(row)
                if len(rows) >= chunk_rows:
                    total += len(rows)
                    yield _rows_to_chunk(header, rows)
                    rows = []
        except csv.Error as err:
            raise InputError(f"{path}: malformed CSV at line {reader.line_num} ({err})") from None
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
