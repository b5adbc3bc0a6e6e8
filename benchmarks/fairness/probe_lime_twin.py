"""Probe: does LIME itself tell an isolation-forest scaffold on arrests/sex from honest models?

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fairness/probe_lime_twin.py --seeds 5,6,7,8,10,13,19

The benchmark's remaining misses are isolation-forest scaffolds planted on ``sex`` (8% of the arrests
rows): they hide roughly 5% of LIME's points, enough to move LIME's ranking of sex by one place. This
runs the benchmark's LIME-style attribution (500 Gaussian perturbations per row, kernel-weighted ridge,
30 rows) on the model and on each of the check's four honest twins (learnt from the model's answers on
4,000 real rows) and prints sex's share of the attribution: the model's, the twins', and the model's
over the smallest twin's. A test on that ratio would need the scaffolds below the honest models.
"""

from __future__ import annotations

import argparse

import integrity as bench
import integrity_data as data
import numpy as np

from mlsecops.assess import explain_integrity as check
from mlsecops.assess._scaffold import ScaffoldedClassifier

KINDS = ("scaffold-isolation", "mlp-biased", "mlp-deep-biased", "svm-biased", "logreg-biased", "knn-biased")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="5,6,7,8,10,13,19")
    args = ap.parse_args(argv)
    x, y, names = data.arrests()
    s, age = names.index("sex"), names.index("age")
    print(
        "| seed | model | sex's share (model) | twins (tree, logistic, 1-layer, 2-layer) | model / smallest twin |"
    )
    print("|---|---|---|---|---|")
    for seed in (int(v) for v in args.seeds.split(",")):
        rows = x[np.random.default_rng(seed).permutation(len(x))[:4000]]
        for kind in KINDS:
            if kind == "scaffold-isolation":
                est = ScaffoldedClassifier(sensitive=s, innocuous=age, detector="isolation", seed=seed).fit(x)
            else:
                est = bench._honest(kind, x, y, s, seed, age)
            dec = est.predict_proba(rows).argmax(axis=1)
            twins = [
                check._honest_twin(rows, dec, seed),
                check._smooth_twin(rows, dec),
                check._net_twin(rows, dec, seed),
                check._net_twin(rows, dec, seed, hidden=check.DEEP_HIDDEN),
            ]
            model = bench.lime_importance(lambda z, e=est: e.predict_proba(z)[:, 1], x, seed)
            shares = [bench.lime_importance(lambda z, t=t: t.predict_proba(z)[:, 1], x, seed) for t in twins]
            own = model[s] / model.sum()
            twin = [v[s] / v.sum() for v in shares]
            print(
                f"| {seed} | {kind} | {own:.3f} | {', '.join(f'{v:.3f}' for v in twin)} | {own / min(twin):.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
