"""Benchmark of the streaming ``data poison`` scan: time and peak memory at 1M / 10M rows, and recall /
false-positive rate against the in-memory scan on 200k rows. Not run in CI (long; run it by hand):

    nice -n 10 .venv/bin/python benchmarks/scale/poison_scale.py --rows 1000000 --detectors outliers

Data: scikit-learn digits tiled with Gaussian jitter (sd 0.3), 1% of the rows replaced by far-off
outliers and 2% of the labels flipped, written to a CSV in a temporary folder. Results go to
``benchmarks/results/scale-poison.json`` (one entry per run appended).
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "results" / "scale-poison.json"


def build(path: Path, rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Write ``rows`` planted rows to ``path`` chunk by chunk; return the (outlier, flipped) masks."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(seed)
    outliers = np.zeros(rows, dtype=bool)
    flips = np.zeros(rows, dtype=bool)
    with path.open("w") as fh:
        fh.write(",".join([*(f"f{i}" for i in range(64)), "label"]) + "\n")
        for start in range(0, rows, 50_000):
            n = min(50_000, rows - start)
            pick = rng.integers(0, y.size, n)
            Xc, yc = X[pick] + rng.normal(0, 0.3, (n, 64)), y[pick].copy()
            out = rng.random(n) < 0.01
            Xc[out] = rng.uniform(0, 16, (int(out.sum()), 64)) * rng.choice([-3, 3], (int(out.sum()), 64))
            flip = rng.random(n) < 0.02
            yc[flip] = (yc[flip] + rng.integers(1, 10, int(flip.sum()))) % 10
            outliers[start : start + n] = out
            flips[start : start + n] = flip & ~out
            np.savetxt(fh, np.column_stack([Xc, yc]), fmt=["%.3f"] * 64 + ["%d"], delimiter=",")
    return outliers, flips


def main() -> None:
    from mlsecops.data._stream import scan_file

    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--detectors", default="outliers")
    ap.add_argument("--sample-rows", type=int, default=50_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.csv"
        outliers, flips = build(path, args.rows)
        dets = args.detectors.split(",")
        truth = np.zeros(args.rows, dtype=bool)
        truth |= outliers if "outliers" in dets else truth
        truth |= flips if "labels" in dets else truth
        sink = Path(tmp) / "suspects.jsonl"
        t0 = time.perf_counter()
        res = scan_file(
            path,
            label="label",
            detectors=tuple(args.detectors.split(",")),
            sample_rows=args.sample_rows,
            suspects_path=sink,
        )
        elapsed = time.perf_counter() - t0
        flagged = np.zeros(args.rows, dtype=bool)
        flagged[[json.loads(line)["row"] for line in sink.read_text().splitlines()]] = True
    entry = {
        "rows": args.rows,
        "detectors": args.detectors,
        "sample_rows": args.sample_rows,
        "seconds": round(elapsed, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "recall": round(float((flagged & truth).sum() / max(truth.sum(), 1)), 4),
        "fpr": round(float((flagged & ~truth).sum() / max((~truth).sum(), 1)), 4),
        "suspects": int(res.metrics["suspect_rows"]),
    }
    runs = json.loads(OUT.read_text()) if OUT.exists() else []
    runs.append(entry)
    OUT.write_text(json.dumps(runs, indent=2) + "\n")
    print(json.dumps(entry))


if __name__ == "__main__":
    main()
