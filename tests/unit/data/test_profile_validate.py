"""Profiles and validation: a clean batch passes; each kind of violation is reported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlsecops.core.errors import InputError
from mlsecops.data import DataProfile, iter_chunks, profile_chunks, validate


def _write(path: Path, rng: np.random.Generator, n: int, *, shift: float = 0.0, labels: str = "ab") -> Path:
    lines = ["x,y,city,label"]
    cities = ["paris", "rome", "oslo"]
    for _ in range(n):
        x, y = rng.normal(shift, 1.0), rng.exponential(2.0)
        lines.append(f"{x:.5f},{y:.5f},{cities[rng.integers(3)]},{labels[rng.integers(len(labels))]}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _check(base: Path, new: Path, chunk_rows: int = 500) -> list[str]:
    baseline = profile_chunks(iter_chunks(base, chunk_rows=chunk_rows), label="label")
    current = profile_chunks(iter_chunks(new, chunk_rows=chunk_rows), label="label", reference=baseline)
    return [f.title for f in validate(baseline, current)]


def test_clean_batch_from_the_same_distribution_passes(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    base = _write(tmp_path / "base.csv", rng, 4000)
    for k in range(3):
        new = _write(tmp_path / f"new{k}.csv", rng, 2000)
        titles = _check(base, new)
        assert not [t for t in titles if "shift" in t or "missing" in t or "unseen" in t], titles


def test_distribution_shift_label_shift_and_range(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    base = _write(tmp_path / "base.csv", rng, 4000)
    shifted = _write(tmp_path / "shift.csv", rng, 2000, shift=0.8, labels="aaab")
    titles = _check(base, shifted)
    assert "distribution shift in 'x'" in titles
    assert "label distribution shift" in titles
    assert "distribution shift in 'y'" not in titles


def test_schema_nulls_and_unseen_categories(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    base = _write(tmp_path / "base.csv", rng, 1000)
    new = tmp_path / "new.csv"
    new.write_text(
        "x,city,label,extra\n"
        + "".join(f"{i},{'tokyo' if i % 5 == 0 else 'rome'},a,1\n" for i in range(50))
        + "\n".join(",rome,b,1" for _ in range(10))
        + "\n"
    )
    titles = _check(base, new)
    assert "column 'y' is missing" in titles
    assert "unexpected column 'extra'" in titles
    assert "unseen categories in 'city'" in titles
    assert "column 'x' has missing values" in titles


def test_chunked_profile_matches_single_pass(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    path = _write(tmp_path / "d.csv", rng, 3000)
    one = profile_chunks(iter_chunks(path, chunk_rows=10_000))
    many = profile_chunks(iter_chunks(path, chunk_rows=1000))
    for name in ("x", "y"):
        a, b = one.columns[name], many.columns[name]
        assert a.count == b.count == 3000
        assert a.mean == pytest.approx(b.mean) and a.std == pytest.approx(b.std)
        assert (a.min, a.max) == (b.min, b.max)
    assert one.columns["city"].categories == many.columns["city"].categories


def test_duplicate_rows_are_estimated_and_flagged(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    base = _write(tmp_path / "base.csv", rng, 2000)
    lines = base.read_text().splitlines()
    dup = tmp_path / "dup.csv"
    dup.write_text("\n".join(lines + lines[1:301]) + "\n")
    prof = profile_chunks(iter_chunks(dup, chunk_rows=700))
    assert prof.duplicate_rows == pytest.approx(300, abs=1)
    assert "more duplicate rows than the baseline" in _check(base, dup)


def test_profile_round_trips_through_json_and_rejects_garbage(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    prof = profile_chunks(iter_chunks(_write(tmp_path / "d.csv", rng, 500)), label="label")
    prof.save(tmp_path / "p.json")
    again = DataProfile.load(tmp_path / "p.json")
    assert again == prof and again.fingerprint == prof.fingerprint
    (tmp_path / "bad.json").write_text('{"rows": 3}')
    with pytest.raises(InputError, match="not a baseline profile"):
        DataProfile.load(tmp_path / "bad.json")
    with pytest.raises(InputError, match="label column"):
        profile_chunks(iter_chunks(tmp_path / "d.csv"), label="nope")
