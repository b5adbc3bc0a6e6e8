"""Scan throughput at scale: the artifact scanner on the local fork pool, the process and Ray engines
(1, 2, 4 workers) and picklescan, on one generated corpus of many small and some large pickles.

    benchmarks/scale/scan_bench.py [--small 20000] [--large 200] [--large-mb 8] [--runs default]

Writes benchmarks/results/scale-scan.md and .json. picklescan runs from benchmarks/.venv-scale
(created here with pip, a benchmark-only venv: never a dependency of the package); skipped with a
note when the venv cannot be created. Ray starts a private local instance (the ``ray`` extra).

The corpus: ``small`` pickles of 1-6 KB (dicts of lists and numpy arrays; 1 in 100 carries a planted
``os.system`` reduce) and ``large`` pickles of ``large-mb`` MB (numpy arrays), in folders of 500.
Work is not equal: our scanner also hashes every file (SHA-256) and checks more than imports.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
VENV = ROOT / "benchmarks" / ".venv-scale"


class _Planted:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("echo planted",))


def make_corpus(root: Path, small: int, large: int, large_mb: int) -> dict[str, Any]:
    """Write the corpus once (kept between runs); return its size and planted count."""
    marker = root.with_name(f"{root.name}.done-{small}-{large}-{large_mb}")  # outside: not scanned
    rng = np.random.default_rng(0)
    planted = 0
    if not marker.exists():
        for i in range(small):
            folder = root / "small" / f"d{i // 500:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            if i % 100 == 7:
                obj: Any = {"state": _Planted(), "step": i}
            else:
                obj = {"w": rng.standard_normal(int(rng.integers(64, 600))), "meta": list(range(i % 50))}
            (folder / f"m{i}.pkl").write_bytes(pickle.dumps(obj, protocol=4))
        for i in range(large):
            folder = root / "large" / f"d{i // 50:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            arr = rng.standard_normal(large_mb * 131072)  # 8 bytes per float
            (folder / f"big{i}.pkl").write_bytes(pickle.dumps({"weights": arr, "epoch": i}, protocol=4))
        marker.touch()
    planted = len(range(7, small, 100))
    size = sum(p.stat().st_size for p in root.rglob("*.pkl"))
    return {"small": small, "large": large, "large_mb": large_mb, "bytes": size, "planted": planted}


def run_ours(root: Path, engine: str | None, workers: int) -> dict[str, Any]:
    from mlsecops.core.executor import get_executor
    from mlsecops.supplychain.scanner import scan_paths

    ex = get_executor(engine, workers=workers) if engine else None
    t0 = time.perf_counter()
    results = scan_paths([root], workers=workers, executor=ex)
    seconds = time.perf_counter() - t0
    flagged = sum(1 for r in results if r.hits)
    return {"seconds": seconds, "files": len(results), "flagged": flagged}


def ensure_peer_venv() -> Path | None:
    py = VENV / "bin" / "python"
    try:
        if not py.exists():
            subprocess.run([sys.base_prefix + "/bin/python3", "-m", "venv", str(VENV)], check=True)
        if subprocess.run([str(py), "-c", "import picklescan"], capture_output=True).returncode != 0:
            subprocess.run([str(py), "-m", "pip", "install", "--quiet", "picklescan"], check=True)
    except (OSError, subprocess.CalledProcessError) as err:
        print(f"picklescan venv unavailable: {err}", file=sys.stderr)
        return None
    return py


def run_picklescan(py: Path, root: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    out = subprocess.run([str(py), "-m", "picklescan", "-p", str(root)], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    infected = next((ln for ln in out.stdout.splitlines() if "Infected files" in ln), "")
    return {"seconds": seconds, "summary": infected.strip(), "exit": out.returncode}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", type=int, default=20000)
    ap.add_argument("--large", type=int, default=200)
    ap.add_argument("--large-mb", type=int, default=8)
    ap.add_argument(
        "--runs",
        default="fork:2,process:1,process:2,ray:1,ray:2,ray:4,picklescan",
        help="comma-separated ENGINE:WORKERS (fork = the default pool, no executor) and picklescan",
    )
    ap.add_argument("--corpus", type=Path, default=Path("/tmp/mlsecops-scale-corpus"))
    ap.add_argument(
        "--repeat", type=int, default=2, help="runs per setting: the first is cold (engine start-up)"
    )
    args = ap.parse_args()
    corpus = make_corpus(args.corpus, args.small, args.large, args.large_mb)
    rows = []
    for run in args.runs.split(","):
        if run == "picklescan":
            py = ensure_peer_venv()
            if py is None:
                rows.append({"run": run, "skipped": "venv could not be created"})
                continue
            res = run_picklescan(py, args.corpus)
        else:
            engine, workers = run.split(":")
            times = [
                run_ours(args.corpus, None if engine == "fork" else engine, int(workers))
                for _ in range(args.repeat)
            ]
            res = {**times[-1], "cold_seconds": times[0]["seconds"]}
            res["seconds"] = min(t["seconds"] for t in times)
        res["run"] = run
        res["files_per_s"] = (args.small + args.large) / res["seconds"]
        res["mb_per_s"] = corpus["bytes"] / 1e6 / res["seconds"]
        print(json.dumps(res), flush=True)
        rows.append(res)
    cmd = "nice -n 10 .venv/bin/python benchmarks/scale/scan_bench.py " + " ".join(sys.argv[1:])
    doc = {
        "command": cmd.strip(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load": os.getloadavg()},
        "corpus": corpus,
        "runs": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scale-scan.json").write_text(json.dumps(doc, indent=2) + "\n")
    lines = [
        "# Scan throughput at scale: process pool vs Ray vs picklescan",
        "",
        f"Reproduce: `{doc['command']}`",
        "",
        f"Corpus: {corpus['small']} small pickles, {corpus['large']} of {corpus['large_mb']} MB "
        f"({corpus['bytes'] / 1e6:.0f} MB), {corpus['planted']} planted. Machine: {os.cpu_count()} CPUs, "
        f"load average at the end {os.getloadavg()[0]:.1f} (shared with other jobs).",
        "",
        "Seconds are the best of the repeated runs (warm); `cold s` is the first run (pool or Ray worker",
        "start-up, imports). Ray runs on a private local instance started by the first Ray run.",
        "",
        "| run | seconds | cold s | files/s | MB/s | flagged |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['run']} | skipped: {r['skipped']} | | | | |")
        else:
            flagged = r.get("flagged", r.get("summary", ""))
            lines.append(
                f"| {r['run']} | {r['seconds']:.1f} | {r.get('cold_seconds', r['seconds']):.1f} | "
                f"{r['files_per_s']:.0f} | {r['mb_per_s']:.1f} | {flagged} |"
            )
    (RESULTS / "scale-scan.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
