"""False-alarm rate of the shadow test under its exact null, with the statistics' real dependence.

    nice -n 10 .venv/bin/python benchmarks/monitor/extraction/null_sim.py [--clients 3] [--streams 40000]

Under the null a benign client's new row is exchangeable with its class's comparison rows, so its rank
vector is a uniformly random member of the pooled set. The pooled sets (new row and comparison rows,
ranked by shadow margin, output-space coverage and entropy) are recorded on real benign streams of the
benchmark's victim (natural, one-class, two-class and noisy clients), and ``false_alarm`` replays
random members of them through the restarted mixture (``mlsecops.monitor._shadow.false_alarm`` with
``pooled=``). Prints the share of ``--streams`` simulated 2,000-answer streams that cross each level,
and with independent and correlated statistics for comparison. Writes ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import _ours  # noqa: E402

from mlsecops.monitor import _shadow  # noqa: E402
from mlsecops.monitor._thieves import benign_stream, make_world  # noqa: E402

LEVELS = (11.0, 12.0, 13.0, 14.0, 15.0, 16.0)


def _record(
    det: object, world: object, kinds: list[str], clients: int, queries: int, seed: int
) -> np.ndarray:
    """Pooled rank sets of every ranked row of the benign streams (NaN-padded to one width)."""
    sets: list[np.ndarray] = []
    original = _shadow.ShadowState.observe

    def observe(self: _shadow.ShadowState, cal: object, w: np.ndarray, label: int) -> np.ndarray | None:
        pooled = original(self, cal, w, label)  # type: ignore[arg-type]
        if pooled is not None:
            sets.append(pooled)
        return pooled

    _shadow.ShadowState.observe = observe  # type: ignore[method-assign]
    try:
        from mlsecops.monitor.interface import Observation

        for kind in kinds:
            for c in range(clients):
                reqs = benign_stream(world, kind, queries, seed=seed + c)  # type: ignore[arg-type]
                outputs = world.proba(np.concatenate([r for _, r in reqs]))  # type: ignore[attr-defined]
                det.reset()  # type: ignore[attr-defined]
                at = 0
                for i, (t, rows) in enumerate(reqs, 1):
                    out = outputs[at : at + len(rows)]
                    at += len(rows)
                    det.observe(  # type: ignore[attr-defined]
                        Observation(time=t, principal="c", model="m", inputs=rows, outputs=out, query_index=i)
                    )
    finally:
        _shadow.ShadowState.observe = original  # type: ignore[method-assign]
    width = max(s.shape[0] for s in sets)
    out = np.full((len(sets), width, sets[0].shape[1]), np.nan)
    for i, s in enumerate(sets):
        out[i, : s.shape[0]] = s
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--world", default="tabular")
    ap.add_argument(
        "--clients", type=int, default=3, help="benign clients per kind whose pooled sets are kept"
    )
    ap.add_argument("--queries", type=int, default=1_500)
    ap.add_argument("--streams", type=int, default=40_000, help="simulated 2,000-answer streams per level")
    ap.add_argument("--sets", type=int, default=3_000, help="pooled sets drawn from the recorded ones")
    ap.add_argument("--out", default="/tmp/extraction-null-sim.json")
    args = ap.parse_args(argv)
    started = time.time()
    world = make_world(args.world, seed=0)
    det = _ours(world, prada=False)
    kinds = ["natural", "one_class", "skewed", "noisy"]
    pooled = _record(det, world, kinds, args.clients, args.queries, seed=70_000)
    rng = np.random.default_rng(0)
    pooled = pooled[rng.choice(len(pooled), size=min(args.sets, len(pooled)), replace=False)]
    maxima = {
        "real": _shadow.null_maxima(2_000, args.streams, seed=1, pooled=pooled),
        "independent": _shadow.null_maxima(2_000, args.streams // 4, seed=1),
        "correlated_0.8": _shadow.null_maxima(2_000, args.streams // 4, seed=1, correlation=0.8),
    }
    result = {k: {str(level): float((m >= level).mean()) for level in LEVELS} for k, m in maxima.items()}
    doc = {
        "world": args.world,
        "threshold": _shadow.SHADOW_THRESHOLD,
        "streams": {
            "real": args.streams,
            "independent": args.streams // 4,
            "correlated_0.8": args.streams // 4,
        },
        "pooled_sets": len(pooled),
        "benign_kinds": kinds,
        "clients_per_kind": args.clients,
        "false_alarm": result,
        "seconds": round(time.time() - started, 1),
    }
    Path(args.out).write_text(json.dumps(doc, indent=1))
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
