"""Readers: every supported format in chunks, and a clear InputError for every malformed input."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from mlsecops.core.errors import InputError
from mlsecops.data import count_rows, iter_chunks, load_table, load_xy


def _csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_csv_chunks_cover_every_row_with_bounded_size(tmp_path: Path) -> None:
    rows = "\n".join(f"{i},{i * 0.5},c{i % 3}" for i in range(5000))
    path = _csv(tmp_path / "d.csv", "a,b,cat\n" + rows + "\n")
    chunks = list(iter_chunks(path, chunk_rows=1000))
    assert sum(len(c["a"]) for c in chunks) == 5000
    assert chunks[0]["cat"].dtype == object
    assert chunks[0]["a"].dtype == np.float64


def test_parquet_and_npy_and_npz_read(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": [1.0, 2.0, 3.0], "s": ["a", "b", None]}), tmp_path / "d.parquet")
    table = load_table(tmp_path / "d.parquet")
    assert table["x"].tolist() == [1.0, 2.0, 3.0] and table["s"][2] is None
    np.save(tmp_path / "imgs.npy", np.zeros((4, 2, 3, 3)))
    assert len(load_table(tmp_path / "imgs.npy")) == 18
    np.savez(tmp_path / "d.npz", X=np.ones((5, 1, 8, 8)), y=np.array([0, 1, 0, 1, 2]))
    X, y, names, classes = load_xy(tmp_path / "d.npz", label=None)
    assert X.shape == (5, 1, 8, 8) and y.tolist() == [0, 1, 0, 1, 2] and classes == ["0", "1", "2"]
    assert len(names) == 64


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("ragged.csv", "a,b\n1,2\n3\n", "Expected 2 columns"),
        ("empty.csv", "", "empty"),
        ("header.csv", "a,b\n", "no data rows"),
        ("binary.csv", "a,b\n\x00\x00\x00\n", "binary"),
    ],
)
def test_malformed_csv_gives_input_error(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = _csv(tmp_path / name, content)
    with pytest.raises(InputError, match=message):
        load_table(path)


def test_wrong_dtype_against_baseline_is_a_finding(tmp_path: Path) -> None:
    from mlsecops.data import profile_chunks, validate

    good = _csv(tmp_path / "good.csv", "a,b\n" + "\n".join(f"{i},{i}" for i in range(300)) + "\n")
    bad = _csv(tmp_path / "bad.csv", "a,b\n" + "\n".join(f"{i},{i}" for i in range(299)) + "\nx,oops\n")
    base = profile_chunks(iter_chunks(good))
    findings = validate(base, profile_chunks(iter_chunks(bad), reference=base))
    assert {f.title for f in findings} >= {"column 'a' changed type", "column 'b' changed type"}


def test_wrong_dtype_after_the_first_block_is_an_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlsecops.data import _readers

    monkeypatch.setattr(_readers, "_BLOCK_BYTES", 1000)
    rows = [f"{i},{i}" for i in range(3000)] + ["2.5,7", "x,oops"]
    path = _csv(tmp_path / "d.csv", "a,b\n" + "\n".join(rows) + "\n")
    with pytest.raises(InputError, match="after data row"):
        load_table(path)
    ok = _csv(tmp_path / "ok.csv", "a,b\n" + "\n".join(rows[:-1]) + "\n")
    assert load_table(ok)["a"][-1] == 2.5


def test_missing_label_column_and_text_features(tmp_path: Path) -> None:
    path = _csv(tmp_path / "d.csv", "a,b\n1,2\n3,4\n")
    with pytest.raises(InputError, match="label column 'label' not found"):
        load_xy(path, label="label")
    path2 = _csv(tmp_path / "t.csv", "a,name,label\n1,x,0\n2,y,1\n")
    with pytest.raises(InputError, match="numeric"):
        load_xy(path2, label="label")


def test_hostile_numpy_files(tmp_path: Path) -> None:
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError):
        load_table(tmp_path / "obj.npy")
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(InputError, match="npz"):
        load_xy(tmp_path / "bad.npz", label=None)
    np.savez(tmp_path / "noy.npz", X=np.ones((3, 2)))
    with pytest.raises(InputError, match="'X' and 'y'"):
        load_xy(tmp_path / "noy.npz", label=None)
    np.savez(tmp_path / "nan.npz", X=np.array([[np.nan, 1.0], [1.0, 2.0]]), y=np.array([0, 1]))
    with pytest.raises(InputError, match="NaN"):
        load_xy(tmp_path / "nan.npz", label=None)


def test_two_gigabyte_blob_fails_fast(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    with path.open("wb") as fh:
        fh.truncate(2 * 1024**3)  # sparse: no disk used, reads as NUL bytes
    assert os.path.getsize(path) == 2 * 1024**3
    with pytest.raises(InputError, match="binary"):
        load_table(path)


def test_unknown_extension_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_table(tmp_path / "nope.csv")
    _csv(tmp_path / "d.txt", "a\n1\n")
    with pytest.raises(InputError, match="unsupported"):
        load_table(tmp_path / "d.txt")


def test_count_rows_reads_no_values(tmp_path: Path) -> None:
    assert count_rows(_csv(tmp_path / "a.csv", "a,b\n1,2\n3,4\n")) == 2
    assert count_rows(_csv(tmp_path / "b.csv", "a,b\n1,2\n3,4")) == 2  # no final line break
    assert count_rows(_csv(tmp_path / "c.csv", "a,b\n")) == 0
    np.save(tmp_path / "x.npy", np.zeros((7, 3)))
    assert count_rows(tmp_path / "x.npy") == 7
    np.savez_compressed(tmp_path / "x.npz", X=np.zeros((5000, 4)), y=np.zeros(5000))
    assert count_rows(tmp_path / "x.npz") == 5000
    big = _csv(tmp_path / "big.csv", "a\n" + "1\n" * 100_000)
    assert 10 < count_rows(big, stop_after=10) <= 100_000


def test_npz_declaring_a_huge_array_is_refused_before_inflating(tmp_path: Path) -> None:
    import io
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (100_000, 100_000)}
    )
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("X.npy", header.getvalue() + bytes(1000))
        zf.writestr("y.npy", header.getvalue())
    with pytest.raises(InputError, match=r"74\.5 GiB"):
        load_xy(tmp_path / "bomb.npz", label=None)
