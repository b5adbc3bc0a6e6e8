"""Run the explanation benchmarks and write benchmarks/results/explain.{json,md}.

nice -n 10 .venv/bin/python benchmarks/fairness/explain_run.py [--only integrity|speed]
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import explain_speed
import integrity

RESULTS = Path(__file__).resolve().parents[1] / "results"


def _md(doc: dict) -> str:
    lines = ["# Explanations and explanation integrity", ""]
    lines += [
        "Command: `nice -n 10 .venv/bin/python benchmarks/fairness/explain_run.py` "
        f"(Python {platform.python_version()}, shap {doc.get('shap_version')}, 2 shared cores).",
        "",
    ]
    if "integrity" in doc:
        s = doc["integrity"]["summary"]
        lines += [
            "## Explanation integrity (planted scaffolds vs honest models)",
            "",
            f"Scaffolded models flagged: **{s['scaffolded_flagged']}/{s['scaffolded']}**; honest models flagged: "
            f"**{s['honest_flagged']}/{s['honest']}**. Median time per model: {s['median_seconds']:.1f} s "
            "(1,000 real rows and 1,000 points per perturbation family).",
            "",
            "| data | sensitive | seed | model | flagged | hidden from | dependence (data) | min dependence (perturbed) | biased on real rows | SHAP rank | SHAP rank (k-means bg) | LIME-style rank |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in doc["integrity"]["rows"]:
            lines.append(
                f"| {r['data']} | {r['sensitive']} | {r['seed']} | {r['model']} | {'yes' if r['flagged'] else 'no'} | "
                f"{', '.join(r['hidden_from']) or '-'} | {r['in_distribution']:.3f} | {r['min_perturbed']:.3f} | "
                f"{r.get('biased_share_real', '-')} | {r.get('shap_rank', '-')} | {r.get('shap_kmeans_rank', '-')} | "
                f"{r.get('lime_rank', '-')} |"
            )
        lines.append("")
    if "speed" in doc:
        lines += [
            "## Global SHAP on 1,000 rows (flchain, 7 features, 100 background rows)",
            "",
            "| model | tool | seconds | max abs diff of mean abs SHAP vs ours | same ranking |",
            "|---|---|---|---|---|",
        ]
        for r in doc["speed"]["rows"]:
            lines.append(
                f"| {r['model']} | {r['tool']} | {r['seconds']} | {r.get('max_abs_diff_vs_ours', '-')} | "
                f"{r.get('same_ranking', '-')} |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    import shap

    only = sys.argv[2] if len(sys.argv) > 2 and sys.argv[1] == "--only" else None
    path = RESULTS / "explain.json"
    doc = json.loads(path.read_text()) if path.exists() and only else {}
    doc["shap_version"] = shap.__version__
    if only in (None, "speed"):
        doc["speed"] = explain_speed.run()
    if only in (None, "integrity"):
        doc["integrity"] = integrity.run()
    path.write_text(json.dumps(doc, indent=2) + "\n")
    (RESULTS / "explain.md").write_text(_md(doc))
    print((RESULTS / "explain.md").read_text())


if __name__ == "__main__":
    main()
