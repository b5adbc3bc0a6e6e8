"""Audit strength: mlsecops' privacy audit against ART's inference attacks and ML Privacy Meter.

Targets (scikit-learn, so every tool can clone them): digits (500 members, 500 non-members, the rest of
the 1,797 rows as the reference pool) and breast-cancer (150/150, pool 269), each with an overfit and a
regularised model (overfit: an MLP with one hidden layer of 64, no weight decay, 200 epochs, 100%
train accuracy; regularised: logistic regression, C = 0.05). Every tool scores the same records; one metric definition
(``mlsecops.assess.privacy.attack_metrics``) turns each tool's scores into AUC and TPR at 0.1% and 1%
FPR. Wall time per tool; reference-model tools use K models each (``--references``).

    bash benchmarks/privacy/audit/setup_venv.sh
    nice -n 10 .venv/bin/python benchmarks/privacy/audit/run.py --references 4

Writes benchmarks/results/privacy-audit.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import pickle
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from mlsecops.assess.privacy import attack_metrics, audit_privacy
from mlsecops.core.executor import get_executor
from mlsecops.models.sklearn import SklearnModel

ROOT = Path(__file__).resolve().parents[3]
WORK = ROOT / "benchmarks" / ".work" / "privacy-audit"
PEER_PY = ROOT / "benchmarks" / ".venvs" / "privacy-audit" / "bin" / "python"
RESULTS = ROOT / "benchmarks" / "results"
REFERENCE_TOOLS = ("mlsecops", "art_shadow_models", "privacy_meter_reference")


def _splits(name: str, seed: int) -> tuple[np.ndarray, ...]:
    if name == "digits":
        x, y = load_digits(return_X_y=True)
        x, n = (x / 16.0).astype(np.float32), 500
    else:
        x, y = load_breast_cancer(return_X_y=True)
        x, n = ((x - x.mean(0)) / x.std(0)).astype(np.float32), 150
    p = np.random.default_rng(seed).permutation(len(x))
    m, o, pool = p[:n], p[n : 2 * n], p[2 * n :]
    return x[m], y[m], x[o], y[o], x[pool], y[pool]


TARGETS = {
    "digits-overfit": ("digits", lambda: MLPClassifier((64,), alpha=0.0, max_iter=200, random_state=0)),
    "digits-regularised": ("digits", lambda: LogisticRegression(C=0.05, max_iter=2000)),
    "breast-cancer-overfit": (
        "cancer",
        lambda: MLPClassifier((64,), alpha=0.0, max_iter=200, random_state=0),
    ),
    "breast-cancer-regularised": ("cancer", lambda: LogisticRegression(C=0.05, max_iter=2000)),
}


def _row(tool: str, scores: np.ndarray, member: np.ndarray, seconds: float) -> dict[str, object]:
    m = attack_metrics(tool, scores, member, bootstrap=False)
    return {
        "tool": tool,
        "auc": round(m.auc, 4),
        "tpr@0.01": round(m.tpr[0.01], 4),
        "tpr@0.001": round(m.tpr[0.001], 4),
        "seconds": round(seconds, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--references", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--targets", default=",".join(TARGETS))
    args = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    out: dict[str, object] = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "references": args.references,
        "targets": {},
    }
    for name in args.targets.split(","):
        data, make = TARGETS[name]
        xm, ym, xn, yn, xp, yp = _splits(data, args.seed)
        est = make().fit(xm, ym)
        (WORK / f"{name}.pkl").write_bytes(pickle.dumps(est))
        np.savez(WORK / f"{name}.npz", xm=xm, ym=ym, xn=xn, yn=yn, xp=xp, yp=yp)
        member = np.arange(len(xm) + len(xn)) < len(xm)
        t = time.perf_counter()
        audit = audit_privacy(
            SklearnModel(est),
            (xm, ym),
            (xn, yn),
            reference=(xp, yp),
            references=args.references,
            executor=get_executor("process", workers=args.workers),
            seed=args.seed,
        )
        ours = time.perf_counter() - t
        rows = [_row(f"mlsecops:{a}", audit.scores[a], member, ours) for a in audit.scores]
        best = max(rows, key=lambda r: (r["tpr@0.001"], r["tpr@0.01"], r["auc"]))
        rows.insert(0, {**best, "tool": "mlsecops (strongest: " + str(best["tool"]).split(":")[1] + ")"})
        peers = subprocess.run(
            [
                str(PEER_PY),
                str(Path(__file__).with_name("_peers.py")),
                str(WORK),
                name,
                str(args.references),
                str(args.seed),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if peers.returncode != 0:
            rows.append({"tool": "peers", "error": peers.stderr[-500:]})
        else:
            (WORK / f"{name}-peers.json").write_text(peers.stdout.strip().splitlines()[-1])
            for tool, res in json.loads(peers.stdout.strip().splitlines()[-1]).items():
                if "error" not in res and len(res["scores"]) != len(member):
                    res["error"] = f"returned {len(res['scores'])} scores for {len(member)} records"
                if "error" in res:
                    rows.append({"tool": tool, "error": res["error"], "seconds": round(res["seconds"], 1)})
                else:
                    rows.append(_row(tool, np.asarray(res["scores"]), member, res["seconds"]))
        acc = {"train": float(est.score(xm, ym)), "test": float(est.score(xn, yn))}
        out["targets"][name] = {
            "accuracy": acc,
            "members": len(xm),
            "non_members": len(xn),
            "pool": len(xp),
            "rows": rows,
        }  # type: ignore[index]
        print(name, acc, json.dumps(rows), flush=True)
        _write(out)


def _write(out: dict[str, object]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "privacy-audit.json").write_text(json.dumps(out, indent=2) + "\n")
    lines = [
        "# Privacy audit strength: mlsecops vs ART and ML Privacy Meter",
        "",
        f"K = {out['references']} reference/shadow models per reference-model tool; machine: {out['machine']}, "
        "2 shared cores (busy with other jobs: compare wall times within a target only). TPR at 0.1% FPR "
        "with fewer than 1,000 non-members is the TPR at zero false positives. The mlsecops rows share one "
        "wall time, the whole audit (every attack, the K reference models, the label-only queries); each "
        "peer row is that attack alone.",
        "Reproduce: `bash benchmarks/privacy/audit/setup_venv.sh && nice -n 10 .venv/bin/python "
        "benchmarks/privacy/audit/run.py --references 4`",
        "",
    ]
    for name, t in out["targets"].items():  # type: ignore[attr-defined]
        lines += [
            f"## {name} (train acc {t['accuracy']['train']:.3f}, test acc {t['accuracy']['test']:.3f}; "
            f"{t['members']} members / {t['non_members']} non-members, pool {t['pool']})",
            "",
            "| tool / attack | AUC | TPR@1% FPR | TPR@0.1% FPR | wall s |",
            "|---|---|---|---|---|",
        ]
        for r in t["rows"]:
            if "error" in r:
                lines.append(f"| {r['tool']} | error: {str(r['error'])[:120]} | | | {r.get('seconds', '')} |")
            else:
                lines.append(
                    f"| {r['tool']} | {r['auc']} | {r['tpr@0.01']} | {r['tpr@0.001']} | {r['seconds']} |"
                )
        lines.append("")
    (RESULTS / "privacy-audit.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
