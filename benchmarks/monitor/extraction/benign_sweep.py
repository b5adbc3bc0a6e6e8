"""False alarms of the extraction detector over many benign clients (run after ``run.py``).

    nice -n 10 .venv/bin/python benchmarks/monitor/extraction/benign_sweep.py [--clients 34] [--queries 2000]

Every benign kind (``natural``, ``retry``, ``burst``, ``skewed``, ``one_class``, ``noisy``) sends
``--queries`` queries from ``--clients`` clients on unseen seeds (60,000+), through the detector the
benchmark uses. Records the principals flagged and, per signal, the highest statistic any client
reached (the headroom below the threshold). Adds a ``benign_sweep`` section to
``benchmarks/results/monitor-extraction.json`` and re-renders the markdown.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import ROOT, _markdown, _ours  # noqa: E402

from mlsecops.monitor._thieves import BENIGN_KINDS, benign_stream, make_world  # noqa: E402
from mlsecops.monitor.interface import Observation  # noqa: E402

SEED_BASE = 60_000
_STATS = ("cusum_fit", "cusum_near", "cusum_margin", "cusum_rank")
_SHADOW = ("shadow",)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--world", default="tabular")
    ap.add_argument("--clients", type=int, default=34, help="clients per benign kind")
    ap.add_argument("--queries", type=int, default=2_000)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "monitor-extraction"))
    args = ap.parse_args(argv)
    started = time.time()
    world = make_world(args.world, seed=0)
    det = _ours(world, prada=False)
    kinds: dict[str, Any] = {}
    for kind in BENIGN_KINDS:
        flagged: list[dict[str, Any]] = []
        highest = dict.fromkeys((*_STATS, *_SHADOW), 0.0)
        for c in range(args.clients):
            reqs = benign_stream(world, kind, args.queries, seed=SEED_BASE + c)
            outputs = world.proba(np.concatenate([r for _, r in reqs]))
            det.reset()
            at = 0
            for i, (t, rows) in enumerate(reqs, 1):
                out = outputs[at : at + len(rows)]
                at += len(rows)
                obs = Observation(time=t, principal="c", model="m", inputs=rows, outputs=out, query_index=i)
                alerts = det.observe(obs)
                p = det._principals["m\x00c"]  # the statistics' paths, not only the alerts
                for k in _STATS:
                    highest[k] = max(highest[k], getattr(p, k))
                if p.shadow is not None:
                    for k, v in zip(_SHADOW, p.shadow.log_mix, strict=True):
                        highest[k] = max(highest[k], float(v))
                if alerts:
                    flagged.append({"client": c, "query": i, "signals": alerts[0].evidence["signals"]})
                    break
        kinds[kind] = {
            "clients": args.clients,
            "flagged": flagged,
            "highest": {k: round(v, 2) for k, v in highest.items()},
        }
        print(kind, len(flagged), kinds[kind]["highest"], flush=True)
    path = Path(args.out + ".json")
    # Added to an existing results file (re-rendered), or written alone for merge.py --sweep.
    doc = json.loads(path.read_text()) if path.exists() else {}
    doc["benign_sweep"] = {
        "world": args.world,
        "queries_per_client": args.queries,
        "seeds": f"{SEED_BASE}..{SEED_BASE + args.clients - 1}",
        "thresholds": {
            "cusum": det.cusum_threshold,
            "rank": det.rank_threshold,
            "shadow": det.shadow_threshold,
        },
        "kinds": kinds,
        "seconds": round(time.time() - started, 1),
    }
    path.write_text(json.dumps(doc, indent=1))
    if "clients" in doc:
        Path(args.out + ".md").write_text(_markdown(doc))


if __name__ == "__main__":
    main()
