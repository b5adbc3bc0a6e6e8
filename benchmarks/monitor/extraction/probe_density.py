"""Probe: do active thieves' picks sit where the victim's answers are rare?

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/monitor/extraction/probe_density.py --seeds 1,2,3,4

An idea for a fourth statistic of the shadow test (k-center picks in the thief's output space might
land at rare class mixtures of the victim's): rank each answer's density among natural answers. The
density of an answer is the distance to its 10th nearest neighbour among the victim's answers on its
training rows; a row's rank is the share of those reference answers at least as isolated (small =
rare). For each thief kind the mean log-rank of its selected rows among its first 200 queries is
printed beside that of 300 random natural rows of the pool the thieves draw from. So is a coverage
rank in the victim's output space: a row's distance to the nearest answer of the client's earlier
rows, ranked among 500 natural answers' distances to the same history (small = far from everything
the client has seen, as a k-center pick would be), for the thief's selected rows and for every row of
a benign client's natural stream. A mean log-rank
``-m`` carries about ``m - 1 - ln m`` nats per query; the same for the victim's own top-two margin.
Development seeds only (the benchmark's held-out seeds start at 1000).
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from mlsecops.monitor._thieves import benign_stream, make_world, thief_picks

NEIGHBOURS = 10
KINDS = ("active_kcenter", "active_batch", "active_mixed", "active_margin")


def _margin(p: np.ndarray) -> np.ndarray:
    top = np.sort(p, axis=1)
    return np.asarray(top[:, -1] - top[:, -2])


def _ranks(
    p: np.ndarray, nn: Any, ref_dist: np.ndarray, ref_margin: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per answer, the log-rank of its density and of its margin among the reference answers."""
    d = nn.kneighbors(p, n_neighbors=NEIGHBOURS)[0][:, -1]
    dens = (1 + len(ref_dist) - np.searchsorted(ref_dist, d, side="left")) / (len(ref_dist) + 1)
    marg = (1 + np.searchsorted(ref_margin, _margin(p), side="right")) / (len(ref_margin) + 1)
    return np.log(dens), np.log(marg)


def _coverage(answers: np.ndarray, selected: np.ndarray, natural: np.ndarray) -> float:
    """Mean log-rank of the selected rows' distance to the earlier rows' answers (far = small rank)."""
    out = []
    for t in range(1, len(answers)):
        if not selected[t]:
            continue
        history = answers[:t]
        d = np.sqrt(((history - answers[t]) ** 2).sum(axis=1)).min()
        ref = np.sqrt(((natural[:, None, :] - history[None, :, :]) ** 2).sum(axis=2)).min(axis=1)
        out.append(np.log((1 + (ref >= d).sum()) / (len(ref) + 1)))
    return float(np.mean(out))


def main(argv: list[str] | None = None) -> None:
    from sklearn.neighbors import NearestNeighbors

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="1,2,3,4")
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args(argv)
    print("| seed | rows | selected | density log-rank | victim-margin log-rank | coverage log-rank |")
    print("|---|---|---|---|---|---|")
    for seed in (int(s) for s in args.seeds.split(",")):
        world = make_world("tabular", seed=seed)
        ref = world.proba(world.x_train[:3000])
        nn = NearestNeighbors(n_neighbors=NEIGHBOURS + 1).fit(ref)
        ref_dist = np.sort(nn.kneighbors(ref)[0][:, NEIGHBOURS])  # itself excluded
        ref_margin = np.sort(_margin(ref))

        nat = world.x_pool[np.random.default_rng(seed).choice(len(world.x_pool), 300, replace=False)]
        d, m = _ranks(world.proba(nat), nn, ref_dist, ref_margin)
        natural = world.proba(world.x_pool[np.random.default_rng(seed + 1).choice(len(world.x_pool), 500)])
        stream = benign_stream(world, "natural", args.queries, seed=seed * 7 + 2)
        answers = world.proba(np.vstack([r[1] for r in stream]))[: args.queries]
        cov = _coverage(answers, np.ones(len(answers), dtype=bool), natural)
        print(f"| {seed} | natural | 300 | {d.mean():.2f} | {m.mean():.2f} | {cov:.2f} |", flush=True)
        for kind in KINDS:
            requests, picked = thief_picks(world, kind, args.queries, seed=seed * 7 + 1)
            rows = np.vstack([r[1] for r in requests])[: args.queries]
            sel = picked[: args.queries]
            answers = world.proba(rows)
            d, m = _ranks(answers, nn, ref_dist, ref_margin)
            cov = _coverage(answers, sel, natural)
            print(
                f"| {seed} | {kind} | {int(sel.sum())} | {d[sel].mean():.2f} | {m[sel].mean():.2f} | {cov:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
