"""Benchmark of the streaming ``data poison`` scan: time and peak memory at 1M / 10M rows, and recall /
false-positive rate against the in-memory scan (``scan_rows``) on the same file. Not run in CI (long;
run it by hand, with ``OMP_NUM_THREADS=1`` on a shared machine: OpenMP threads spinning against other
jobs made one gradient-boosting fit 7x slower here):

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/scale/poison_scale.py --rows 1000000 \\
        --detectors labels,backdoor,outliers --executor process --workers 2
    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/scale/poison_scale.py --rows 20000 \\
        --detectors labels,backdoor,outliers --sample-rows 10000 --fit-rows 10000 --in-memory

Data: scikit-learn digits tiled with Gaussian jitter (sd 0.3), the planted attacks of the data benchmark
(``benchmarks/data/run.py``) scaled: ``--trigger`` of the rows get the 2x2 patch (value 16, bottom-right
corner) and the label ``--target``, ``--outliers`` are replaced by far-off rows and ``--flips`` of the
others get a random other label. Written to a CSV chunk by chunk; the truth (one byte per row) goes to
a memory-mapped file, so no process holds the rows. Results are appended to
``benchmarks/results/scale-poison.json``.

Per detector, recall is the share of its planted rows it flags; FPR is the share of clean rows (nothing
planted) it flags. ``all`` is any flag against any planted row of the detectors that ran.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "results" / "scale-poison.json"
CLEAN, FLIP, TRIGGER, OUTLIER = 0, 1, 2, 3
PLANT = {"labels": FLIP, "backdoor": TRIGGER, "outliers": OUTLIER}
REASON = {"labels": "contradicted", "backdoor": "backdoor:", "outliers": "outlier:"}
"""A fragment of each detector's reason text, in the streaming and the in-memory report alike."""


def build(
    path: Path, rows: int, *, seed: int = 0, flips: float, trigger: float, outliers: float, target: int
) -> np.ndarray:
    """Write ``rows`` rows to ``path`` chunk by chunk; return the per-row plant codes (memory-mapped)."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(seed)
    truth = np.lib.format.open_memmap(path.with_suffix(".truth.npy"), "w+", np.int8, (rows,))
    with path.open("w") as fh:
        fh.write(",".join([*(f"f{i}" for i in range(64)), "label"]) + "\n")
        for start in range(0, rows, 50_000):
            n = min(50_000, rows - start)
            pick = rng.integers(0, y.size, n)
            Xc, yc = X[pick] + rng.normal(0, 0.3, (n, 64)), y[pick].copy()
            code = np.zeros(n, dtype=np.int8)
            trig = (rng.random(n) < trigger / (1 - np.mean(y == target))) & (yc != target)
            img = Xc.reshape(n, 8, 8)
            img[trig, 6:8, 6:8] = 16.0
            yc[trig] = target
            code[trig] = TRIGGER
            out = (rng.random(n) < outliers) & ~trig
            Xc[out] = rng.uniform(0, 16, (int(out.sum()), 64)) * rng.choice([-3, 3], (int(out.sum()), 64))
            code[out] = OUTLIER
            flip = (rng.random(n) < flips) & (code == CLEAN)
            yc[flip] = (yc[flip] + rng.integers(1, 10, int(flip.sum()))) % 10
            code[flip] = FLIP
            truth[start : start + n] = code
            np.savetxt(fh, np.column_stack([Xc, yc]), fmt=["%.3f"] * 64 + ["%d"], delimiter=",")
    truth.flush()
    return truth


def rates(flags: dict[str, np.ndarray], truth: np.ndarray, dets: list[str]) -> dict[str, Any]:
    """Recall and FPR per detector and for any flag (see the module docstring)."""
    clean = truth == CLEAN
    out: dict[str, Any] = {}
    planted = np.isin(truth, [PLANT[d] for d in dets if d in PLANT])
    anyflag = np.zeros(truth.size, dtype=bool)
    for d in dets:
        f = flags.get(d, np.zeros(truth.size, dtype=bool))
        anyflag |= f
        mine = truth == PLANT[d]
        out[d] = {
            "recall": round(float(f[mine].mean()) if mine.any() else float("nan"), 4),
            "fpr": round(float(f[clean].mean()), 4),
            "flagged": int(f.sum()),
            "planted": int(mine.sum()),
        }
    out["all"] = {
        "recall": round(float(anyflag[planted].mean()), 4),
        "fpr": round(float(anyflag[clean].mean()), 4),
        "flagged": int(anyflag.sum()),
        "planted": int(planted.sum()),
    }
    return out


def _flags(items: Any, n: int, dets: list[str]) -> dict[str, np.ndarray]:
    flags = {d: np.zeros(n, dtype=bool) for d in dets}
    for item in items:
        for d in dets:
            if REASON[d] in item["reason"]:
                flags[d][item["row"]] = True
    return flags


def _peak_mb(who: int) -> float:
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)


def main() -> None:
    from mlsecops.core.executor import get_executor
    from mlsecops.data._stream import DEFAULT_FIT_ROWS, DEFAULT_SAMPLE_ROWS, scan_file

    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--detectors", default="labels,backdoor,outliers")
    ap.add_argument("--sample-rows", type=int, default=DEFAULT_SAMPLE_ROWS)
    ap.add_argument("--fit-rows", type=int, default=DEFAULT_FIT_ROWS)
    ap.add_argument("--flips", type=float, default=0.02)
    ap.add_argument("--trigger", type=float, default=0.02, help="share of all rows given the trigger")
    ap.add_argument("--outliers", type=float, default=0.01)
    ap.add_argument("--target", type=int, default=0)
    ap.add_argument("--executor", default=None, help="inline, process or ray (default: none, in process)")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--in-memory", action="store_true", help="also run scan_rows on the same file")
    ap.add_argument("--tmp", default=None, help="folder for the data file (default: a temporary one)")
    args = ap.parse_args()
    dets = args.detectors.split(",")
    executor = get_executor(args.executor, workers=args.workers) if args.executor else None
    entry: dict[str, Any] = {
        "rows": args.rows,
        "detectors": args.detectors,
        "sample_rows": args.sample_rows,
        "fit_rows": args.fit_rows,
        "plants": {"flips": args.flips, "trigger": args.trigger, "outliers": args.outliers},
        "executor": args.executor,
        "workers": args.workers,
    }
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        path = Path(tmp) / "data.csv"
        t0 = time.perf_counter()
        truth = build(
            path,
            args.rows,
            flips=args.flips,
            trigger=args.trigger,
            outliers=args.outliers,
            target=args.target,
        )
        entry["build_seconds"] = round(time.perf_counter() - t0, 1)
        entry["file_mb"] = round(path.stat().st_size / 2**20, 1)
        entry["build_peak_rss_mb"] = _peak_mb(resource.RUSAGE_SELF)
        sink = Path(tmp) / "suspects.jsonl"
        marks: dict[str, float] = {}
        t0 = time.perf_counter()
        res = scan_file(
            path,
            label="label",
            detectors=tuple(dets),
            sample_rows=args.sample_rows,
            fit_rows=args.fit_rows,
            suspects_path=sink,
            executor=executor,
            progress=lambda step, done, total: marks.setdefault(step, time.perf_counter()),
        )
        entry["seconds"] = round(time.perf_counter() - t0, 1)
        ends = [*(marks[k] for k in ("fit", "score")), t0 + entry["seconds"]]
        entry["phase_seconds"] = {
            k: round(end - marks[k], 1) for k, end in zip(("sample", "fit", "score"), ends, strict=True)
        }
        entry["peak_rss_mb"] = _peak_mb(resource.RUSAGE_SELF)
        entry["peak_rss_worker_mb"] = _peak_mb(resource.RUSAGE_CHILDREN) if executor else None
        with sink.open() as fh:
            flags = _flags((json.loads(line) for line in fh), args.rows, dets)
        entry["streaming"] = rates(flags, truth, dets)
        entry["suspects"] = int(res.metrics["suspect_rows"])
        if args.in_memory:
            from mlsecops.data._poison import scan_rows
            from mlsecops.data._readers import load_xy

            t0 = time.perf_counter()
            X, y, _, classes = load_xy(path, label="label")
            mem = scan_rows(X, y, detectors=tuple(dets), classes=classes, executor=executor)
            entry["in_memory_seconds"] = round(time.perf_counter() - t0, 1)
            entry["in_memory_peak_rss_mb"] = _peak_mb(resource.RUSAGE_SELF)
            entry["in_memory"] = rates(_flags(mem.suspects, args.rows, dets), truth, dets)
            entry["max_abs_diff"] = max(
                abs(entry["streaming"][k][m] - entry["in_memory"][k][m])
                for k in entry["streaming"]
                for m in ("recall", "fpr")
            )
        del truth
    runs = json.loads(OUT.read_text()) if OUT.exists() else []
    runs.append(entry)
    OUT.write_text(json.dumps(runs, indent=2) + "\n")
    print(json.dumps(entry))


if __name__ == "__main__":
    main()
