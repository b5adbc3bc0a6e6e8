"""Streaming poisoning scan: seeded sample, same verdicts as in memory, bounded memory, row-named errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests.unit.data.conftest import plant_trigger, rates

from mlsecops.core.errors import InputError
from mlsecops.data._poison import scan_rows
from mlsecops.data._stream import reservoir_sample, scan_file


def _write_csv(path: Path, X: np.ndarray, y: np.ndarray) -> Path:
    cols = [f"f{i}" for i in range(X.shape[1])]
    with path.open("w") as fh:
        fh.write(",".join([*cols, "label"]) + "\n")
        for row, lab in zip(X, y, strict=True):
            fh.write(",".join(f"{v:.4f}" for v in row) + f",{int(lab)}\n")
    return path


@pytest.fixture(scope="module")
def planted(digits: tuple[np.ndarray, np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """Digits tiled 4x with small jitter (7,188 rows), 1% of the rows replaced by far-off outliers."""
    X, y = digits
    rng = np.random.default_rng(0)
    Xb = np.vstack([X + rng.normal(0, 0.3, X.shape) for _ in range(4)])
    yb = np.tile(y, 4)
    truth = np.zeros(yb.size, dtype=bool)
    idx = rng.choice(yb.size, yb.size // 100, replace=False)
    Xb[idx] = rng.uniform(0, 16, (idx.size, 64)) * rng.choice([-3, 3], (idx.size, 64))
    truth[idx] = True
    return _write_csv(tmp_path_factory.mktemp("stream") / "d.csv", Xb, yb), Xb, yb, truth


def test_reservoir_is_seeded_and_uniform(planted: tuple) -> None:
    path, _, yb, _ = planted
    a = reservoir_sample(path, label="label", sample_rows=1000, seed=3, chunk_rows=1000)
    b = reservoir_sample(path, label="label", sample_rows=1000, seed=3, chunk_rows=1000)
    c = reservoir_sample(path, label="label", sample_rows=1000, seed=4, chunk_rows=1000)
    assert a.n_rows == yb.size
    assert np.array_equal(a.rows, b.rows) and not np.array_equal(a.rows, c.rows)
    # Uniform: each quarter of the file holds about a quarter of the sample (binomial sd ~14 rows).
    quarters = np.bincount(a.rows * 4 // yb.size, minlength=4)
    assert np.all(np.abs(quarters - 250) < 70), quarters
    assert sorted(set(a.y_raw)) == sorted(str(v) for v in range(10))


def test_outliers_match_in_memory(planted: tuple) -> None:
    path, Xb, yb, truth = planted
    out = path.with_suffix(".jsonl")
    res = scan_file(
        path, label="label", detectors=("outliers",), sample_rows=3000, chunk_rows=1500, suspects_path=out
    )
    flagged = np.zeros(yb.size, dtype=bool)
    flagged[[json.loads(line)["row"] for line in out.read_text().splitlines()]] = True
    mem = scan_rows(Xb, yb, detectors=("outliers",))
    assert mem.mask is not None
    r_s, f_s = rates(flagged, truth)
    r_m, f_m = rates(mem.mask, truth)
    assert r_m > 0.9 and r_s > 0.9
    assert abs(r_s - r_m) <= 0.01 and abs(f_s - f_m) <= 0.01
    assert res.metrics["rows"] == yb.size and res.metrics["outliers"] == flagged.sum()


def _linear_models(n_samples: int, seed: int) -> list:
    """One standardised logistic regression: the default ensemble (logistic regression plus an SVM or
    gradient boosting, 30 fits per round) would take minutes here; the benchmark measures it."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return [make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=500))]


def _detector_flags(suspects: list, n: int) -> dict[str, np.ndarray]:
    flags = {d: np.zeros(n, dtype=bool) for d in ("labels", "backdoor")}
    for s in suspects:
        flags["labels"][s["row"]] |= "contradicted" in s["reason"]
        flags["backdoor"][s["row"]] |= "backdoor:" in s["reason"]
    return flags


def test_labels_and_backdoor_match_in_memory(
    digits: tuple[np.ndarray, np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Digits x2 with jitter (3,594 rows), 4% trigger rows (2x2 patch, target 0), 4% label flips of
    the others. The label and backdoor detectors fit on 2,400 rows; the other 1,194 are scored by the
    fitted models. Recall and FPR of each detector are within 0.01 of ``scan_rows`` on the whole file."""
    from mlsecops.data import _labels, _stream

    monkeypatch.setattr(_labels, "_default_models", _linear_models)
    monkeypatch.setattr(_stream, "_default_models", _linear_models)
    X, y = digits
    rng = np.random.default_rng(1)
    Xb = np.vstack([X + rng.normal(0, 0.3, X.shape) for _ in range(2)])
    Xb, yb, trig = plant_trigger(Xb, np.tile(y, 2), 0.04, 0, seed=1)
    flip_mask = np.zeros(yb.size, dtype=bool)
    idx = rng.choice(np.flatnonzero(~trig), round(0.04 * yb.size), replace=False)
    yb[idx] = (yb[idx] + rng.integers(1, 10, idx.size)) % 10
    flip_mask[idx] = True
    path = _write_csv(tmp_path / "planted.csv", Xb, yb)
    res = scan_file(
        path,
        label="label",
        detectors=("labels", "backdoor"),
        sample_rows=yb.size,
        fit_rows=2400,
        chunk_rows=1000,
    )
    assert res.metrics["fit_rows"] == 2400 and res.metrics["rows"] == yb.size
    stream = _detector_flags(res.suspects, yb.size)
    mem = _detector_flags(scan_rows(Xb, yb, detectors=("labels", "backdoor")).suspects, yb.size)
    clean = ~flip_mask & ~trig
    outside = np.ones(yb.size, dtype=bool)
    outside[_stream._subset(yb.size, 2400, 0)] = False  # the sample is the whole file here
    for det, truth in (("labels", flip_mask), ("backdoor", trig)):
        r_s, r_m = stream[det][truth].mean(), mem[det][truth].mean()
        f_s, f_m = stream[det][clean].mean(), mem[det][clean].mean()
        assert r_m > 0.9 and r_s > 0.9, (det, r_s, r_m)
        assert abs(r_s - r_m) <= 0.01 and abs(f_s - f_m) <= 0.01, (det, r_s, r_m, f_s, f_m)
        # Rows outside the fitted subset are found too, not only the subset's own verdicts.
        assert stream[det][truth & outside].mean() > 0.9, det


@pytest.mark.slow  # five pool start-ups: 23 s on the shared 2-core machine at load 4, 52 s at 16
def test_label_folds_on_a_process_pool_give_the_same_report(
    digits: tuple[np.ndarray, np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The label detector's folds, the refit of its models and the chunk scoring run on a process pool:
    the flagged rows and scores are those of the in-process run, and the planted flips are found."""
    from mlsecops.core.executor import ProcessExecutor
    from mlsecops.data import _labels, _stream

    monkeypatch.setattr(_labels, "_default_models", _linear_models)
    monkeypatch.setattr(_stream, "_default_models", _linear_models)
    X, y = digits
    rng = np.random.default_rng(2)
    idx = rng.choice(y.size, 72, replace=False)
    yn = y.copy()
    yn[idx] = (y[idx] + rng.integers(1, 10, idx.size)) % 10
    path = _write_csv(tmp_path / "flips.csv", X, yn)
    kw = {
        "label": "label",
        "detectors": ("labels",),
        "sample_rows": y.size,
        "fit_rows": 1200,
        "chunk_rows": 600,
    }
    inline = scan_file(path, **kw)
    pooled = scan_file(path, **kw, executor=ProcessExecutor(workers=1))
    assert pooled.suspects == inline.suspects and pooled.metrics == inline.metrics
    flagged = np.zeros(y.size, dtype=bool)
    flagged[[s["row"] for s in pooled.suspects]] = True
    truth = np.zeros(y.size, dtype=bool)
    truth[idx] = True
    recall, fpr = rates(flagged, truth)
    assert recall > 0.9 and fpr < 0.03, (recall, fpr)


def test_clean_rows_not_flagged(digits: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    X, y = digits
    path = _write_csv(tmp_path / "clean.csv", X, y)
    res = scan_file(path, label="label", detectors=("outliers",), sample_rows=800, chunk_rows=500)
    assert res.metrics["outliers"] / y.size < 0.02


def test_corrupt_row_is_named(digits: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    X, y = digits
    path = _write_csv(tmp_path / "bad.csv", X[:1200], y[:1200])
    lines = path.read_text().splitlines()
    parts = lines[1101].split(",")
    parts[3] = ""
    lines[1101] = ",".join(parts)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"data row 1101\b"):
        scan_file(path, label="label", detectors=("outliers",), sample_rows=200, chunk_rows=500)


def test_check_streams_above_the_switch(planted: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlsecops.core.checks import Target
    from mlsecops.data import checks

    path, _, _, truth = planted
    monkeypatch.setattr(checks, "STREAM_ABOVE_ROWS", 1000)
    target = Target(paths=(path,), options={"label": "label", "detectors": "outliers"})
    report = checks.DataPoisonCheck().run(target)
    assert report.data["mode"] == "streaming"
    assert report.metrics["outliers"] >= 0.9 * truth.sum()
    with pytest.raises(InputError, match="option quarantine needs every row"):
        checks.DataPoisonCheck().run(
            Target(paths=(path,), options={"label": "label", "quarantine": str(path.parent / "q")})
        )


_MEMORY_SCRIPT = """
import resource, sys
from pathlib import Path
import sklearn.neighbors, pyarrow.parquet
from mlsecops.data._stream import scan_file
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
res = scan_file(Path(sys.argv[1]), label="label", detectors=("outliers",), sample_rows=2000, chunk_rows=100_000)
print(int(res.metrics["rows"]), int(res.metrics["outliers"]), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)
"""


def test_peak_memory_stays_below_the_file(tmp_path: Path) -> None:
    """2,000,000 rows x 24 float64 features (381 MB held whole): the scan adds well under that to the
    peak memory of a process that has imported its libraries (measured: about 255 MB)."""
    import subprocess
    import sys

    import pyarrow as pa
    import pyarrow.parquet as pq

    rows, cols = 2_000_000, 24
    path = tmp_path / "big.parquet"
    rng = np.random.default_rng(0)
    schema = pa.schema(
        [*(pa.field(f"f{i}", pa.float64()) for i in range(cols)), pa.field("label", pa.int64())]
    )
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, 200_000):
            block = rng.normal(size=(200_000, cols))
            if start == 1_000_000:
                block[:20] += 50.0  # planted far-off rows
            arrays = [pa.array(block[:, i]) for i in range(cols)]
            arrays.append(pa.array(rng.integers(0, 2, 200_000)))
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
    held = rows * (cols + 1) * 8 / 2**20
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT, str(path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    n, outliers, rss_kb = map(int, out.stdout.split())
    assert n == rows
    assert outliers >= 20
    added = rss_kb / 1024
    assert added < 0.8 * held, f"the scan added {added:.0f} MB; the file held whole is {held:.0f} MB"
