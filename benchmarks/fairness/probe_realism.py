"""Probe: does the model drop a group's effect where the explainer's points look least real?

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fairness/probe_realism.py \\
        --data synthetic,arrests/colour,arrests/sex,flchain --seeds 17,18,19,20,21,22,23,24

A scaffold answers honestly where its detector takes a point for real and hides the sensitive column
elsewhere. This learns a detector of our own the attacker's way (a random forest telling each
perturbation family's points from real rows, scored out of fold), splits the family's points into thirds
by how real it finds them, and in each third takes the model's swap effect on the planted column (the
share of points whose decision changes when the column takes another group's value) over the largest
of the check's four honest twins'. One line per model: the lowest ratio in the least-real third over
the families, and the most-real third's ratio on that family. A test on it would need every scaffold
below every honest model.
"""

from __future__ import annotations

import argparse
import itertools

import integrity as bench
import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import cross_val_predict

from mlsecops.assess import explain_integrity as check
from mlsecops.assess._perturbations import FAMILIES, perturb

REAL_ROWS = 1000
TWIN_ROWS = 4000
MODELS = (
    "scaffold-all",
    "scaffold-lime",
    "scaffold-shap",
    # the honest kinds on biased labels, and the rules
    *(kind for kind in bench.HONEST if kind not in ("logreg", "gbm", "mlp")),
)


def _family_points(
    case: bench.Case, data: np.ndarray
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per family: its points, the same points with the planted column swapped, and how real each looks."""
    out = {}
    for fam in FAMILIES:
        rng = np.random.default_rng(case.seed + 7)
        pts = check._same_groups(perturb(fam, data, 3 * len(data), rng), data, [case.s], rng)
        both = np.vstack([data, pts])
        label = np.r_[np.zeros(len(data)), np.ones(len(pts))]
        forest = RandomForestClassifier(100, min_samples_leaf=3, random_state=case.seed, n_jobs=1)
        unreal = cross_val_predict(forest, both, label, cv=2, method="predict_proba")[len(data) :, 1]
        keys = check._group_keys(pts, data, [case.p])
        donors = rng.integers(0, len(pts), size=len(pts))
        for _ in range(8):  # a donor of another group, so the swap changes the group
            same = keys[donors] == keys
            if not same.any():
                break
            donors[same] = rng.integers(0, len(pts), size=int(same.sum()))
        swapped = pts.copy()
        swapped[:, case.p] = pts[donors, case.p]
        out[fam] = (pts, swapped, unreal)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="arrests/colour", help="comma-separated benchmark cases")
    ap.add_argument("--seeds", default="17,18,19,20,21,22,23,24")
    args = ap.parse_args(argv)
    seeds = [int(v) for v in args.seeds.split(",")]
    print("| data | seed | model | truth | least-real third | most-real third | family |")
    print("|---|---|---|---|---|---|---|")
    for case in itertools.chain.from_iterable(bench.cases(seeds, d) for d in args.data.split(",")):
        order = np.random.default_rng(case.seed).permutation(len(case.x))
        data, twin_rows = case.x[order[:REAL_ROWS]], case.x[order[:TWIN_ROWS]]
        points = _family_points(case, data)
        for name, (truth, est) in bench.build(case, MODELS).items():
            dec = est.predict_proba(twin_rows).argmax(axis=1)
            if len(np.unique(dec)) < 2:
                continue
            twins = bench.twins(twin_rows, dec, case.seed)
            worst = None
            for fam, (pts, swapped, unreal) in points.items():
                own = est.predict_proba(pts).argmax(axis=1) != est.predict_proba(swapped).argmax(axis=1)
                theirs = [t.predict(pts) != t.predict(swapped) for t in twins]
                ratios = []
                for third in (unreal >= np.quantile(unreal, 2 / 3), unreal <= np.quantile(unreal, 1 / 3)):
                    top = max(float(f[third].mean()) for f in theirs)
                    ratios.append(float(own[third].mean()) / top if top > 0 else float("nan"))
                if ratios[0] == ratios[0] and (worst is None or ratios[0] < worst[0]):
                    worst = (ratios[0], ratios[1], fam)
            if worst is not None:
                print(
                    f"| {case.label}/{case.names[case.s]} | {case.seed} | {name} | {truth} | {worst[0]:.2f} "
                    f"| {worst[1]:.2f} | {worst[2]} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
