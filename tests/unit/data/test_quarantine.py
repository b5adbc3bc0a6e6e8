"""Quarantine files for every format, the trusted-rows option, and refusing to overwrite the input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlsecops.core.checks import Target, get_check
from mlsecops.core.errors import InputError
from mlsecops.data.quarantine import write_quarantine


def test_parquet_and_npz_are_split_without_touching_the_input(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = tmp_path / "d.parquet"
    pq.write_table(pa.table({"a": [1.0, 2.0, 3.0, 4.0], "label": ["x", "y", "x", "y"]}), src)
    mask = np.array([False, True, False, True])
    res = write_quarantine(src, mask, [{"row": 1, "score": 0.9, "reason": "r1"}], tmp_path / "q")
    assert (res.clean_rows, res.suspect_rows) == (2, 2)
    sus = pq.read_table(res.suspect).to_pydict()
    assert sus["_row"] == [1, 3] and sus["_reason"] == ["r1", ""] and pq.read_table(src).num_rows == 4
    npz = tmp_path / "d.npz"
    np.savez(npz, X=np.arange(12.0).reshape(4, 3), y=np.array([0, 1, 0, 1]))
    res = write_quarantine(npz, mask, [], tmp_path / "q")
    with np.load(res.clean) as c, np.load(res.suspect) as s:
        assert c["X"].shape == (2, 3) and s["rows"].tolist() == [1, 3]
    with pytest.raises(InputError, match="rows"):
        write_quarantine(npz, np.array([True]), [], tmp_path / "q2")


def test_trusted_rows_help_a_small_batch(tmp_path: Path) -> None:
    from sklearn.datasets import make_blobs

    X, y = make_blobs(n_samples=900, n_features=6, centers=3, cluster_std=2.5, random_state=3)
    trusted, batch = tmp_path / "trusted.csv", tmp_path / "batch.csv"
    names = [f"f{i}" for i in range(6)]
    for path, rows in ((trusted, slice(0, 800)), (batch, slice(800, 900))):
        lines = [",".join([*names, "label"])]
        labels = y[rows].copy()
        if path == batch:
            labels[:5] = (labels[:5] + 1) % 3
        lines += [",".join([*(f"{v:.4f}" for v in x), f"c{c}"]) for x, c in zip(X[rows], labels, strict=True)]
        path.write_text("\n".join(lines) + "\n")
    check = get_check("data.poison").create()
    opts = {"label": "label", "detectors": ["labels"], "trusted": str(trusted)}
    report = check.run(Target(paths=(batch,), options=opts))
    found = {r["row"] for r in report.data["suspect_rows"]}  # type: ignore[index, union-attr]
    assert {0, 1, 2, 3, 4} <= found and len(found) <= 7
    (tmp_path / "other.csv").write_text("f0,label\n1,c0\n2,c1\n")
    with pytest.raises(InputError, match="features per row"):
        check.run(Target(paths=(batch,), options={**opts, "trusted": str(tmp_path / "other.csv")}))
