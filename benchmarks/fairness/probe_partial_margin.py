"""Probe: the partial-hiding rule's margin on honest models (spent seeds; no explainer ranks).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fairness/probe_partial_margin.py SEEDS KINDS > rows.jsonl

SEEDS and KINDS are comma-separated (honest kinds of ``integrity.HONEST``). One JSON line per model:
whether the check flagged it, its dependence on the sensitive column on real rows, and per explainer
family the group's own swap effect over the largest twin's and its swap-share fall below the twins'
(the smallest over the tree, network and smooth twins), the two quantities the rule thresholds
(``SWAP_RATIO_OWN``, ``SWAP_SHARE_GAP_OWN``).
"""

import json
import sys

sys.path.insert(0, "benchmarks/fairness")
import integrity as I

from mlsecops.assess.explain_integrity import _swap_share_gap, assess_integrity
from mlsecops.models import SklearnModel


def main() -> None:
    seeds = [int(v) for v in sys.argv[1].split(",")]
    KINDS = sys.argv[2].split(",")
    for case in I.cases(seeds):
        x, y, names, seed = case.x, case.y, case.names, case.seed
        s, p, age, planted = case.s, case.p, case.age, case.planted
        for kind in [k for k in I.HONEST if k in KINDS]:
            est = I._honest(kind, x, y, p, seed, age)
            res = assess_integrity(
                SklearnModel(est, input_shape=(x.shape[1],), n_classes=2),
                x,
                sensitive=[s],
                feature_names=names,
                seed=seed,
            )
            g = next(g for g in res.groups if g.group == planted)
            fams = []
            for f in g.flip:
                top = max(g.flip_expected[f], g.flip_expected_net[f], g.flip_expected_net_other[f])
                gap = min(
                    _swap_share_gap(g.flip[f], a, g.flip_rest[f], b)
                    for a, b in (
                        (g.flip_expected[f], g.flip_rest_expected[f]),
                        (g.flip_expected_net[f], g.flip_rest_expected_net[f]),
                        (g.flip_expected_smooth[f], g.flip_rest_expected_smooth[f]),
                    )
                )
                fams.append((f, round(g.flip[f] / top, 3) if top > 0 else None, round(gap, 3)))
            row = {
                "data": case.label,
                "seed": seed,
                "model": kind,
                "flagged": res.flagged,
                "dep": g.in_distribution,
                "fams": fams,
            }
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
