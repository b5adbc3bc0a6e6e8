"""Evaluation data for the robustness checks: ``.npz`` (arrays ``X`` and ``y``) or CSV/Parquet with a
label column. Files are read without pickle (``allow_pickle=False``); a malformed file is an
``InputError`` with one line saying what was expected.
"""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from mlsecops.core.errors import InputError

__all__ = ["encode_labels", "load_dataset", "subsample"]


def load_dataset(path: str | Path, *, label: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read features and labels.

    Args:
        path: ``.npz`` with arrays ``X`` and ``y``, or ``.csv``/``.parquet`` with a header.
        label: name of the label column (CSV/Parquet; default ``label``, then ``y``, then ``target``).

    Returns:
        ``(X, y)``: float32 features and the raw label array.

    Raises:
        InputError: missing, unreadable or malformed file.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"data file {p} does not exist")
    suffix = p.suffix.lower()
    if suffix == ".npz":
        return _load_npz(p)
    if suffix == ".csv":
        header, rows = _read_csv(p)
        return _split_columns(p, header, rows, label)
    if suffix in (".parquet", ".pq"):
        try:
            import pyarrow.parquet as pq
        except ImportError as err:
            raise InputError("reading Parquet needs pyarrow: pip install pyarrow") from err
        try:
            table = pq.read_table(p)
        except Exception as err:  # pyarrow raises ArrowInvalid and friends on corrupt files
            raise InputError(f"{p} is not a readable Parquet file: {err}") from err
        cols = table.column_names
        data = [table.column(c).to_pylist() for c in cols]
        return _split_columns(p, cols, [list(r) for r in zip(*data, strict=True)], label)
    raise InputError(f"data must be .npz (arrays X and y), .csv or .parquet; got {p.name}")


def _load_npz(p: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(p, allow_pickle=False) as z:
            keys = set(z.files)
            xk = next((k for k in ("X", "x", "data") if k in keys), None)
            yk = next((k for k in ("y", "Y", "labels", "target") if k in keys), None)
            if xk is None or yk is None:
                raise InputError(f"{p} must hold arrays 'X' and 'y'; it holds {sorted(keys)}")
            x, y = z[xk], z[yk]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise InputError(f"{p} is not a readable .npz file: {err}") from err
    if x.dtype.kind not in "fiub":
        raise InputError(f"{p}: X must be numeric; got dtype {x.dtype}")
    if len(x) != len(y):
        raise InputError(f"{p}: X has {len(x)} rows but y has {len(y)}")
    return x.astype(np.float32), y


def _read_csv(p: Path) -> tuple[list[str], list[list[str]]]:
    try:
        with p.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            rows = [r for r in reader if r]
    except (UnicodeDecodeError, csv.Error) as err:
        raise InputError(f"{p} is not a readable CSV file: {err}") from err
    if not header:
        raise InputError(f"{p} is empty; expected a header row and data rows")
    return header, rows


def _split_columns(
    p: Path, header: list[str], rows: list[list[Any]], label: str | None
) -> tuple[np.ndarray, np.ndarray]:
    names = [h.strip() for h in header]
    col = label or next((c for c in ("label", "y", "target") if c in names), None)
    if col is None or col not in names:
        raise InputError(
            f"{p}: no label column {label or 'label'!r}; columns are {names[:10]}. Pass --label."
        )
    j = names.index(col)
    if any(len(r) != len(names) for r in rows):
        raise InputError(f"{p}: every row must have {len(names)} fields")
    try:
        x = np.array([[float(v) for i, v in enumerate(r) if i != j] for r in rows], dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise InputError(f"{p}: feature columns must be numeric ({err})") from err
    y = np.array([r[j] for r in rows])
    return x.reshape(len(rows), len(names) - 1), y


def encode_labels(y: np.ndarray, classes: np.ndarray | None) -> np.ndarray:
    """Turn raw labels into class indices, through the model's ``classes`` when it has them.

    Raises:
        InputError: labels that are not classes of the model, or not integers.
    """
    if classes is not None:
        cls = np.asarray(classes)
        lookup = {str(c): i for i, c in enumerate(cls.tolist())}
        try:
            return np.array(
                [
                    lookup[str(v if not isinstance(v, float) or not v.is_integer() else int(v))]
                    for v in y.tolist()
                ],
                dtype=np.int64,
            )
        except KeyError as err:
            raise InputError(
                f"label {err.args[0]!r} is not one of the model's classes {cls.tolist()[:10]}"
            ) from None
    try:
        yf = y.astype(np.float64)
    except (TypeError, ValueError) as err:
        raise InputError("labels must be integer class indices") from err
    if not np.all(np.isfinite(yf)) or not np.all(yf == np.round(yf)):
        raise InputError("labels must be integer class indices")
    return yf.astype(np.int64)


def subsample(n: int, max_examples: int | None, seed: int) -> np.ndarray:
    """Indices of at most ``max_examples`` rows, drawn without replacement and sorted (deterministic)."""
    if max_examples is None or max_examples >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=max_examples, replace=False))
