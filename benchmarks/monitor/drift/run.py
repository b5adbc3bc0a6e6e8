"""Drift benchmark: mlsecops monitor drift side by side with evidently, alibi-detect and nannyml.

    benchmarks/monitor/drift/setup_venvs.sh                  # once: one venv per peer tool
    nice -n 10 .venv/bin/python benchmarks/monitor/drift/run.py [--clean 50] [--drifted 20]

Reference: 50,000 rows, 20 numeric + 5 categorical columns (``_data.py``); windows of 5,000 rows:
``--clean`` without drift, ``--drifted`` per drift scenario (mean +0.05/0.1/0.2 sd on 3 of 25 columns,
variance x1.2 on 3 columns, categorical total variation 0.1, covariance-only). Each tool runs in its
own process (``_peer.py``), the peers in ``benchmarks/.venv-drift-<tool>``, with default settings.
Writes ``benchmarks/results/monitor-drift.{json,md}``. A peer whose venv is missing or that fails is
reported as such, never left out silently. ``--slow-peer-windows N`` caps the windows per scenario of
a peer that needs more than a CPU-second per window (so one run fits in the time available); the table
says how many windows each number is over.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(HERE))

from _data import SCENARIOS, make_frame  # noqa: E402

WORK = ROOT / "benchmarks" / ".work" / "drift"
RESULTS = ROOT / "benchmarks" / "results"
PEERS = {"evidently": "evidently", "alibi": "alibi-detect", "nannyml": "nannyml"}


def _prepare(clean: int, drifted: int) -> dict[str, list[str]]:
    WORK.mkdir(parents=True, exist_ok=True)
    if not (WORK / "reference.csv").exists():
        make_frame(50_000, 1).to_csv(WORK / "reference.csv", index=False)
    manifest: dict[str, list[str]] = {}
    for s_i, scenario in enumerate(SCENARIOS):
        count = clean if scenario == "none" else drifted
        names = []
        for k in range(count):
            name = f"{scenario}-{k}.csv"
            if not (WORK / name).exists():
                make_frame(5_000, 10_000 * (s_i + 1) + k, scenario).to_csv(WORK / name, index=False)
            names.append(name)
        manifest[scenario] = names
    return manifest


def _python(tool: str) -> Path:
    if tool == "mlsecops":
        return ROOT / ".venv" / "bin" / "python"
    return ROOT / "benchmarks" / f".venv-drift-{tool}" / "bin" / "python"


def _version(tool: str) -> str:
    if tool == "mlsecops":
        return "this tree"
    out = subprocess.run(
        [str(_python(tool)), "-m", "pip", "show", PEERS[tool]], capture_output=True, text=True, check=False
    )
    for line in out.stdout.splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
    return "?"


def _run(tool: str, manifest: dict[str, list[str]]) -> dict[str, Any]:
    py = _python(tool)
    if not py.exists():
        return {"tool": tool, "error": f"no venv at {py.parent.parent} (setup_venvs.sh could not install it)"}
    man = WORK / f"manifest-{tool}.json"
    man.write_text(json.dumps(manifest))
    out = WORK / f"result-{tool}.json"
    out.unlink(missing_ok=True)
    proc = subprocess.run(
        [str(py), str(HERE / "_peer.py"), tool, str(WORK), str(man), str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 or not out.exists():
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"tool": tool, "error": f"exit {proc.returncode}: {last[:300]}"}
    result: dict[str, Any] = json.loads(out.read_text())
    result["version"] = _version(tool)
    return result


def _probe_cost(tool: str, manifest: dict[str, list[str]]) -> float | None:
    one = {"none": manifest["none"][:1]}
    res = _run(tool, one)
    if "error" in res:
        return None
    return float(res["results"]["none"]["cpu_s"][0])


def _table(results: list[dict[str, Any]]) -> str:
    head = ["tool", *SCENARIOS, "CPU-s / window (median)", "peak RSS MB", "RSS growth MB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['tool']} | " + " | ".join(["-"] * (len(head) - 2)) + f" | {r['error']} |")
            continue
        cells = [f"{r['tool']} {r.get('version', '')}".strip()]
        cpu: list[float] = []
        for s in SCENARIOS:
            x = r["results"].get(s)
            cells.append(f"{x['flagged']}/{x['windows']}" if x else "-")
            cpu.extend(x["cpu_s"] if x else [])
        cells.append(f"{statistics.median(cpu):.3f}" if cpu else "-")
        cells.append(f"{r['rss_peak_mb']:.0f}")
        cells.append(f"{r['rss_peak_mb'] - r['rss_after_setup_mb']:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


_NOTES = """
What the defaults are. mlsecops: per-column mean z-test, 20-quantile-bin chi-square, categorical
chi-square, missing-share test, and a pairwise correlation test, Benjamini-Hochberg at 0.05 over all
of them. alibi-detect `TabularDrift`: KS per numeric column, chi-square per categorical column,
Bonferroni at p_val 0.05. evidently `DataDriftPreset`: Wasserstein (normed, threshold 0.1) per numeric
column and Jensen-Shannon per categorical column at this size; the data set drifts when at least half
the columns do (`drift_share` 0.5). nannyml `UnivariateDriftCalculator` (chunk size = window size):
Jensen-Shannon per column, an alert when a column's distance exceeds the mean + 3 standard deviations
of the reference's own ten chunks (each also part of the reference it is compared with, so the band is
too narrow). evidently costs ~6 CPU-s per window, so it ran on 5 windows per scenario.

Memory: "peak RSS" is the process's high-water mark (imports and the reference included); "RSS growth"
is how much testing the windows added to it. Python-traced allocations while mlsecops tests one
window (reading the CSV included): 34 MB at the peak.

Beyond the targets (mlsecops, 20 windows each, same data): correlation change ~0.05 on two pairs
(covariance weight 0.05) 14/20, ~0.03: 3/20; mean +0.03 sd on 3 columns 11/20.

Online (`benchmarks/monitor/drift/online.py`: the guard's detector with its defaults, window 5,000,
step 1,000, alpha 0.01 per verdict, 100-row requests): 0 alerts over 128 clean verdicts; +0.05 sd on 3
columns alerted 2,000 to 5,000 rows after the onset (median 4,000) in 8 of 8 trials.
"""


def _write_md(doc: dict[str, Any]) -> str:
    table = _table(doc["results"])
    (RESULTS / "monitor-drift.md").write_text(
        "# Drift monitoring benchmark\n\n"
        "50,000-row reference (20 numeric + 5 categorical columns), 5,000-row windows; cells are windows\n"
        "flagged / windows tested. `none` counts false alarms; every other column counts detections.\n"
        "Each tool with its default settings, in its own process; CPU-s per window covers reading the\n"
        "window CSV and testing it. A peer that needs over a CPU-second per window runs on fewer windows\n"
        "(the denominators say how many). Command:\n\n"
        "    benchmarks/monitor/drift/setup_venvs.sh\n"
        "    nice -n 10 .venv/bin/python benchmarks/monitor/drift/run.py\n\n" + table + "\n" + _NOTES
    )
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clean", type=int, default=50)
    ap.add_argument("--drifted", type=int, default=20)
    ap.add_argument("--tools", default="mlsecops,alibi,nannyml,evidently")
    ap.add_argument("--slow-peer-windows", type=int, default=5)
    ap.add_argument("--render-only", action="store_true", help="Rewrite the .md from the saved .json.")
    ap.add_argument("--keep-others", action="store_true", help="Keep saved results of tools not in --tools.")
    args = ap.parse_args()
    if args.render_only:
        print(_write_md(json.loads((RESULTS / "monitor-drift.json").read_text())))
        return
    manifest = _prepare(args.clean, args.drifted)
    results = []
    for tool in args.tools.split(","):
        plan = manifest
        if tool != "mlsecops":
            cost = _probe_cost(tool, manifest)
            if cost is not None and cost > 1.0:
                plan = {s: names[: args.slow_peer_windows] for s, names in manifest.items()}
        print(f"running {tool} on {sum(map(len, plan.values()))} windows", file=sys.stderr, flush=True)
        res = _run(tool, plan)
        results.append(res)
        print(json.dumps({k: v for k, v in res.items() if k != "results"}), file=sys.stderr, flush=True)
    saved = RESULTS / "monitor-drift.json"
    if args.keep_others and saved.exists():  # rerun some tools, keep the others' last results
        ran = {r["tool"] for r in results}
        results += [r for r in json.loads(saved.read_text())["results"] if r["tool"] not in ran]
    doc = {
        "benchmark": "monitor-drift",
        "machine": {"python": platform.python_version(), "cpus": 2, "note": "shared with other jobs"},
        "reference_rows": 50_000,
        "window_rows": 5_000,
        "columns": "20 numeric + 5 categorical",
        "results": results,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "monitor-drift.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(_write_md(doc))


if __name__ == "__main__":
    main()
