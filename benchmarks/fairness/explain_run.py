"""Run the explanation benchmarks and write benchmarks/results/explain.{json,md}.

nice -n 10 .venv/bin/python benchmarks/fairness/explain_run.py [--only integrity|speed]

The integrity part can be split by data set over several processes, then merged:

    nice -n 10 .venv/bin/python benchmarks/fairness/explain_run.py --only integrity --data arrests/sex [--seeds 4]
    nice -n 10 .venv/bin/python benchmarks/fairness/explain_run.py --merge

``--reuse-ranks`` takes the scaffolds' explainer ranks (SHAP, SHAP with a k-means background, LIME) from
the rows of the last ``explain.json`` with the same data, column, seed and model instead of recomputing
them: they do not depend on the check, and they cost most of the time. ``--models a,b`` runs only
those models.
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
        seeds = ", ".join(str(v) for v in doc["integrity"].get("seeds", []))
        lines += [
            "## Explanation integrity (planted scaffolds vs honest models)",
            "",
            f"Seeds: {seeds or 'see the rows'}. Scaffolded models flagged: **{s['scaffolded_flagged']}/"
            f"{s['scaffolded']}**; of those whose attack worked (some explainer no longer names the planted "
            f"column first): **{s.get('effective_flagged', '-')}/{s.get('effective', '-')}**; honest models "
            f"flagged: **{s['honest_flagged']}/{s['honest']}**"
            + (
                f" (of them {s['honest_late_flagged']}/{s['honest_late']} of the kinds added in session 9: "
                f"{', '.join(integrity.LATE_HONEST)})"
                if s.get("honest_late")
                else ""
            )
            + ". Median time per model: "
            f"{s['median_seconds']:.1f} s (1,000 real rows and 1,000 points per perturbation family; the "
            "honest twins learn from up to 4,000 real rows; wall time, load-sensitive).",
            "",
            "| data | planted column | seed | model | flagged | hidden from | dependence (data) | min dependence "
            "(perturbed) | share (data) | min share (perturbed) | min swap ratio (vs twin) | max swap share gap "
            "(vs twin) | biased on real rows | SHAP rank | SHAP rank (k-means bg) | LIME-style rank |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in doc["integrity"]["rows"]:
            share = r.get("share_in_distribution")
            low = r.get("min_share_perturbed")
            lines.append(
                f"| {r['data']} | {r['sensitive']} | {r['seed']} | {r['model']} | {'yes' if r['flagged'] else 'no'} | "
                f"{', '.join(r['hidden_from']) or '-'} | {r['in_distribution']:.3f} | {r['min_perturbed']:.3f} | "
                f"{'-' if share is None else f'{share:.3f}'} | {'-' if low is None else f'{low:.3f}'} | "
                f"{_num(r.get('min_swap_ratio'))} | {_num(r.get('max_swap_share_gap'))} | "
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


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _arg(flag: str) -> str | None:
    return sys.argv[sys.argv.index(flag) + 1] if flag in sys.argv[:-1] else None


def _old_ranks(path: Path) -> dict[tuple[str, str, int, str], dict] | None:
    if "--reuse-ranks" not in sys.argv or not path.exists():
        return None
    rows = json.loads(path.read_text()).get("integrity", {}).get("rows", [])
    for part in sorted(RESULTS.glob("explain-integrity.*.json")):  # parts of a run not merged yet
        rows += json.loads(part.read_text())["rows"]
    return {
        (r["data"], r["sensitive"], r["seed"], r["model"]): r
        for r in rows
        if all(k in r for k in integrity.RANK_KEYS)
    }


def main() -> None:
    import shap

    only, part = _arg("--only"), _arg("--data")
    path = RESULTS / "explain.json"
    if part is not None:  # one data set's share of the integrity run, merged by --merge
        seeds = tuple(int(v) for v in (_arg("--seeds") or ",".join(map(str, integrity.SEEDS))).split(","))
        tag = part.replace("/", "-") + ("" if seeds == integrity.SEEDS else "." + "-".join(map(str, seeds)))
        models = tuple(m for m in (_arg("--models") or "").split(",") if m) or None
        tag += "" if models is None else "." + "-".join(models)
        out = RESULTS / f"explain-integrity.{tag}.json"
        doc = integrity.run(seeds, only=part, ranks=_old_ranks(path), models=models)
        out.write_text(json.dumps(doc, indent=2) + "\n")
        return
    doc = json.loads(path.read_text()) if path.exists() and (only or "--merge" in sys.argv) else {}
    doc["shap_version"] = shap.__version__
    if "--merge" in sys.argv:
        parts = sorted(RESULTS.glob("explain-integrity.*.json"))
        if not parts:  # merging nothing would replace the last run's rows with none
            sys.exit("--merge: no explain-integrity.*.json parts to merge (run the parts first)")
        rows = [r for f in parts for r in json.loads(f.read_text())["rows"]]
        doc["integrity"] = {
            "rows": rows,
            "summary": integrity.summarise(rows),
            "seeds": list(integrity.SEEDS),
        }
        for f in parts:
            f.unlink()
    else:
        if only in (None, "speed"):
            doc["speed"] = explain_speed.run()
        if only in (None, "integrity"):
            doc["integrity"] = {**integrity.run(), "seeds": list(integrity.SEEDS)}
    path.write_text(json.dumps(doc, indent=2) + "\n")
    notes = RESULTS / "explain-notes.md"  # the hand-written reading of the last run
    (RESULTS / "explain.md").write_text(_md(doc) + (notes.read_text() if notes.exists() else ""))
    print((RESULTS / "explain.md").read_text())


if __name__ == "__main__":
    main()
