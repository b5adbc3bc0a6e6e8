"""Merge partial runs of ``run.py --kinds ... --out PART`` into one results file.

    nice -n 10 .venv/bin/python benchmarks/monitor/extraction/merge.py PART1 PART2 ... [--sweep SWEEP] \
        [--null-sim NULL.json]

Clients come in the order of ``run.py``; the detector's per-request costs are pooled before the
percentiles are taken; the ART fidelities are joined per thief. ``--sweep``: a ``benign_sweep.py``
output whose ``benign_sweep`` section is carried over. Writes ``benchmarks/results/monitor-extraction``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import ROOT, _markdown, _summ  # noqa: E402

from mlsecops.monitor._thieves import BENIGN_KINDS, HARD_KIND, THIEF_KINDS  # noqa: E402


def _join(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """One kind's rows from two parts that ran different seeds: per-seed lists joined, summaries redone."""
    out: dict[str, Any] = {}
    for key, value in a.items():
        if isinstance(value, list):
            out[key] = value + b.get(key, [])
        elif isinstance(value, dict) and "queries" in value:
            joined = value["queries"] + b[key]["queries"]
            out[key] = _summ(joined, len(joined))
        else:
            out[key] = value
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("parts", nargs="+", help="--out prefixes of the partial runs")
    ap.add_argument("--sweep", help="a benign_sweep.py output prefix")
    ap.add_argument("--null-sim", help="a null_sim.py output (JSON): the shadow test's false-alarm rates")
    ap.add_argument("--reproduce", help="the commands that produced the parts (shown in the results)")
    ap.add_argument(
        "--art-from",
        help="an earlier results JSON whose ART section is carried over (for kinds whose streams are unchanged)",
    )
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "monitor-extraction"))
    args = ap.parse_args(argv)
    docs = [json.loads(Path(p + ".json").read_text()) for p in args.parts]
    doc: dict[str, Any] = {
        k: v for k, v in docs[0].items() if k not in ("clients", "art", "detector_ms_samples")
    }
    clients: dict[str, Any] = {}
    for d in docs:
        for k, v in d["clients"].items():
            clients[k] = _join(clients[k], v) if k in clients else v
    order = [*THIEF_KINDS, *(f"benign_{b}" for b in (*BENIGN_KINDS, HARD_KIND))]
    doc["clients"] = {k: clients[k] for k in order if k in clients}
    cost = np.concatenate([np.asarray(d["detector_ms_samples"], dtype=np.float64) for d in docs])
    doc["detector_ms"] = {
        "p50": float(np.percentile(cost, 50)),
        "p99": float(np.percentile(cost, 99)),
        "max": float(cost.max()),
        "requests": int(cost.size),
    }
    art = [d["art"] for d in docs if "skipped" not in d["art"]]
    doc["art"] = (
        {k: v for k in THIEF_KINDS for a in art for kk, v in a.items() if kk == k} if art else docs[0]["art"]
    )
    fresh = [d for d in docs if not any(c.get("carried") for c in d["clients"].values())]
    if fresh:
        doc["queries_per_client"] = fresh[0]["queries_per_client"]
        doc["seeds"] = sorted({s for d in fresh for s in d["seeds"]})
    doc["active_queries"] = {
        k: d.get("active_queries", d["queries_per_client"])
        for d in fresh
        for k in d["clients"]
        if k.startswith("active")
    }
    if args.reproduce:
        doc["reproduce"] = args.reproduce
    if args.art_from:
        previous = json.loads(Path(args.art_from).read_text())
        # The earlier run's active-learning rows, for the before/after line of the notes.
        doc["previous_active"] = {
            k: c["ours"] for k, c in previous["clients"].items() if k.startswith("active") and "ours" in c
        }
        earlier = previous["art"]
        doc["art"] = {**{k: v for k, v in earlier.items()}, **({} if "skipped" in doc["art"] else doc["art"])}
        doc["art_carried_over"] = True
    doc["seconds"] = round(max(d["seconds"] for d in docs), 1)
    doc["parallel_parts"] = len(docs)
    if args.null_sim:
        doc["null_sim"] = json.loads(Path(args.null_sim).read_text())
    if args.sweep:
        doc["benign_sweep"] = json.loads(Path(args.sweep + ".json").read_text())["benign_sweep"]
    Path(args.out + ".json").write_text(json.dumps(doc, indent=1))
    Path(args.out + ".md").write_text(_markdown(doc))
    print(_markdown(doc))


if __name__ == "__main__":
    main()
