"""Evaluation data for the robustness checks: ``.npz`` (arrays ``X`` and ``y``) or CSV/Parquet with a
label column.

Files are read by the data package's one reader (``mlsecops.data.read_labelled``), so the evaluation
and training sets of ``assess``, ``certify`` and ``harden`` get the same guards as ``data check``: regular
files only, every ``.npz`` member bounded before it is inflated, object arrays (pickles) refused, CSV
lines bounded. A malformed file is an ``InputError`` with one line saying what was expected.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlsecops.core.errors import InputError
from mlsecops.data import read_labelled

__all__ = ["encode_labels", "load_dataset", "subsample"]

DEFAULT_LABELS = ("label", "y", "target")
"""Label columns tried, in order, when none is named."""


def load_dataset(path: str | Path, *, label: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read features and labels.

    Args:
        path: ``.npz`` with arrays ``X`` and ``y``, or ``.csv``/``.parquet`` with a header.
        label: name of the label column (CSV/Parquet; default ``label``, then ``y``, then ``target``).

    Returns:
        ``(X, y)``: float32 features (finite; images keep their shape) and the raw label array.

    Raises:
        InputError: missing, unreadable or malformed file (see ``mlsecops.data.read_labelled``).
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"data file {p} does not exist")
    x, y, _ = read_labelled(p, label=label, default_labels=DEFAULT_LABELS, dtype=np.float32)
    return x, y


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
