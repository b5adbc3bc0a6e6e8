"""DP training benchmark: mlsecops `dp_train` vs Opacus with its tutorial settings, and a non-private MLP.

Digits (scikit-learn), stratified 70/30 split (seed 0): 1257 members (training rows), 540 held-out rows
(test set and non-members). Model: MLP 64-256-256-10 (ReLU) for every run, same initial weights.
For each epsilon in 1, 3, 8 (delta 1e-5):

- opacus: PrivacyEngine() defaults (PRV accountant), make_private_with_epsilon(max_grad_norm=1.0,
  epochs=20), DataLoader batch 64, SGD lr 0.05, raw features: the settings of the issue's measurement
  and Opacus's tutorials;
- mlsecops: `mlsecops.harden.dp.dp_train` with its defaults, plus the public pixel range (0, 16).

Leakage: loss and confidence threshold attacks (the privacy audit's, `mlsecops.assess.privacy`) on
540 members (random) vs the 540 held-out rows. Reported: AUC, membership advantage max(TPR - FPR) (biased
upward on 1080 rows), the held-out advantage (threshold chosen on one random half, measured on the
other, mean over 50 splits: unbiased, ~0 for a model that does not leak), TPR at 1% FPR, and the
empirical epsilon lower bound of `leakage_check`.

Run: nice -n 10 .venv/bin/python benchmarks/privacy/dp/run.py --part nonprivate|opacus|mlsecops
then: .venv/bin/python benchmarks/privacy/dp/run.py --merge
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[3]
RESULTS = ROOT / "benchmarks" / "results"
PARTS = Path(__file__).resolve().parent / "parts"
EPSILONS = (1.0, 3.0, 8.0)
DELTA = 1e-5
SEED = 0


def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    xtr, xte, ytr, yte = train_test_split(
        x.astype(np.float32), y, test_size=0.3, random_state=SEED, stratify=y
    )
    return xtr, ytr.astype(np.int64), xte, yte.astype(np.int64)


def mlp():  # type: ignore[no-untyped-def]
    import torch

    torch.manual_seed(SEED)
    return torch.nn.Sequential(
        torch.nn.Linear(64, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 10),
    )


def held_out_advantage(s: np.ndarray, member: np.ndarray, splits: int = 50) -> float:
    rng = np.random.default_rng(SEED)
    out = []
    for _ in range(splits):
        half = rng.random(len(s)) < 0.5
        a_s, a_m = s[half], member[half]
        order = np.argsort(-a_s)
        tpr = np.cumsum(a_m[order]) / max(1, a_m.sum())
        fpr = np.cumsum(~a_m[order]) / max(1, (~a_m).sum())
        thr = a_s[order][int(np.argmax(tpr - fpr))]
        b_s, b_m = s[~half], member[~half]
        pred = b_s >= thr
        out.append(pred[b_m].mean() - pred[~b_m].mean())
    return float(np.mean(out))


def evaluate(module, xtr, ytr, xte, yte, epsilon: float | None) -> dict:  # type: ignore[no-untyped-def]
    import torch

    from mlsecops.assess.privacy import audit_privacy
    from mlsecops.harden.dp import leakage_check
    from mlsecops.models.pytorch import TorchModel

    model = TorchModel(module.eval(), input_shape=(64,))
    acc = float(np.mean(model.predict_proba(xte).argmax(1) == yte))
    train_acc = float(np.mean(model.predict_proba(xtr).argmax(1) == ytr))
    pick = np.random.default_rng(SEED).permutation(len(xtr))[: len(xte)]
    audit = audit_privacy(
        model, (xtr[pick], ytr[pick]), (xte, yte), attacks=("loss", "confidence"), seed=SEED
    )
    member = audit.member
    per_attack = {}
    for a in audit.attacks:
        per_attack[a.attack] = {
            "auc": a.auc,
            "advantage": a.advantage,
            "held_out_advantage": held_out_advantage(audit.scores[a.attack], member),
            "tpr@0.01": a.tpr[0.01],
        }
    best = max(per_attack, key=lambda k: per_attack[k]["held_out_advantage"])
    leak = leakage_check(audit.scores, member, epsilon=epsilon if epsilon else 1e9, delta=DELTA, seed=SEED)
    del torch
    return {
        "test_accuracy": acc,
        "train_accuracy": train_acc,
        "attacks": per_attack,
        "strongest": best,
        "advantage": per_attack[best]["advantage"],
        "held_out_advantage": per_attack[best]["held_out_advantage"],
        "auc": per_attack[best]["auc"],
        "empirical_epsilon": leak.empirical_epsilon,
        "consistent_with_epsilon": leak.consistent if epsilon else None,
    }


def run_nonprivate() -> list[dict]:
    import torch

    xtr, ytr, xte, yte = data()
    net = mlp()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(SEED)
    xt, yt = torch.from_numpy(xtr), torch.from_numpy(ytr)
    start = time.perf_counter()
    for _ in range(100):
        perm = torch.randperm(len(xt), generator=gen)
        for b in range(0, len(xt), 64):
            idx = perm[b : b + 64]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xt[idx]), yt[idx]).backward()
            opt.step()
    secs = time.perf_counter() - start
    row = {"method": "non-private (Adam, 100 epochs)", "epsilon": None, "seconds": secs}
    row |= evaluate(net, xtr, ytr, xte, yte, None)
    return [row]


def run_opacus() -> list[dict]:
    import torch
    from opacus import PrivacyEngine

    xtr, ytr, xte, yte = data()
    rows = []
    for eps in EPSILONS:
        net = mlp()
        torch.manual_seed(SEED)
        loader = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(torch.from_numpy(xtr), torch.from_numpy(ytr)),
            batch_size=64,
            shuffle=True,
        )
        opt = torch.optim.SGD(net.parameters(), lr=0.05)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            engine = PrivacyEngine()
            private, dp_opt, dp_loader = engine.make_private_with_epsilon(
                module=net,
                optimizer=opt,
                data_loader=loader,
                target_epsilon=eps,
                target_delta=DELTA,
                epochs=20,
                max_grad_norm=1.0,
            )
            start = time.perf_counter()
            for _ in range(20):
                for xb, yb in dp_loader:
                    if len(xb) == 0:
                        continue
                    dp_opt.zero_grad()
                    torch.nn.functional.cross_entropy(private(xb), yb).backward()
                    dp_opt.step()
            secs = time.perf_counter() - start
            spent = engine.get_epsilon(DELTA)
        row = {
            "method": "Opacus tutorial settings (SGD 0.05, batch 64, 20 epochs, clip 1)",
            "epsilon": eps,
            "spent_epsilon": float(spent),
            "noise_multiplier": float(dp_opt.noise_multiplier),
            "seconds": secs,
        }
        row |= evaluate(private._module, xtr, ytr, xte, yte, spent)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def run_mlsecops() -> list[dict]:
    from mlsecops.harden.dp import dp_train
    from mlsecops.harden.dp.training import (
        DEFAULT_BATCH_SIZE,
        DEFAULT_CLIP,
        DEFAULT_EMA,
        DEFAULT_EPOCHS,
        DEFAULT_LR,
    )

    xtr, ytr, xte, yte = data()
    rows = []
    for eps in EPSILONS:
        r = dp_train(mlp(), xtr, ytr, epsilon=eps, delta=DELTA, input_range=(0.0, 16.0), seed=SEED)
        row = {
            "method": (
                f"mlsecops dp_train defaults (Adam {DEFAULT_LR:g}, batch {DEFAULT_BATCH_SIZE}, "
                f"{DEFAULT_EPOCHS} epochs, clip {DEFAULT_CLIP:g}, EMA {DEFAULT_EMA}, range 0-16)"
            ),
            "epsilon": eps,
            "spent_epsilon": r.epsilon,
            "noise_multiplier": r.noise_multiplier,
            "seconds": r.seconds,
        }
        row |= evaluate(r.module, xtr, ytr, xte, yte, r.epsilon)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def merge() -> None:
    rows = []
    for part in ("nonprivate", "opacus", "mlsecops"):
        rows += json.loads((PARTS / f"{part}.json").read_text())["rows"]
    meta = json.loads((PARTS / "mlsecops.json").read_text())["meta"]
    base = rows[0]
    for r in rows[1:]:
        r["accuracy_loss_rel"] = 1 - r["test_accuracy"] / base["test_accuracy"]
        r["advantage_cut"] = (
            1 - max(0.0, r["held_out_advantage"]) / base["held_out_advantage"]
            if base["held_out_advantage"] > 0
            else None
        )
    ours = [r for r in rows if r["method"].startswith("mlsecops") and r["epsilon"] <= 3]
    goal_acc = all(r["accuracy_loss_rel"] <= 0.042 for r in ours)
    goal_adv = all(r["advantage_cut"] is not None and r["advantage_cut"] >= 0.894 for r in ours)
    (RESULTS / "privacy-dp.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    lines = [
        "# DP training benchmark: mlsecops dp_train vs Opacus tutorial settings",
        "",
        f"Generated by `nice -n 10 .venv/bin/python benchmarks/privacy/dp/run.py --part nonprivate|opacus|mlsecops` "
        f"then `--merge` ({meta['versions']}; 2-core machine shared with other jobs, so wall times are noisy).",
        "",
        "Data: scikit-learn digits, stratified 70/30 split (seed 0): 1257 training rows (members), 540 held-out "
        "rows (test set and non-members). Model: MLP 64-256-256-10, ReLU, same initial weights everywhere. "
        "delta = 1e-5. Opacus: `PrivacyEngine()` (PRV accountant), `make_private_with_epsilon(max_grad_norm=1.0, "
        "epochs=20)`, batch 64, SGD lr 0.05, raw features (the settings of the issue's measurement). mlsecops: "
        "`dp_train` defaults with the public pixel range (0, 16).",
        "",
        "Leakage: the privacy audit's loss and confidence attacks on 540 random members vs the 540 held-out rows; "
        "the row shows the attack with the larger held-out advantage. `adv (max)` is max(TPR - FPR) over all "
        "thresholds (biased upward on 1080 rows: about 0.05 even without leakage); `adv (held-out)` chooses the "
        "threshold on a random half and measures on the other (mean of 50 splits; ~0 without leakage) and is "
        "the one the cut is computed from. `emp. eps` is the lower bound of `leakage_check` (95%); "
        "`consistent` says whether it stays below the spent epsilon.",
        "",
        "| method | eps target | eps spent | noise mult. | test acc | acc loss (rel.) | train acc | AUC | adv (max) | adv (held-out) | adv cut | TPR@1%FPR | emp. eps | consistent | train s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        f = lambda k, fmt="{:.3f}", r=r: "-" if r.get(k) is None else fmt.format(r[k])  # noqa: E731
        best = r["attacks"][r["strongest"]]
        lines.append(
            f"| {r['method']} | {f('epsilon', '{:g}')} | {f('spent_epsilon')} | {f('noise_multiplier')} | "
            f"{r['test_accuracy']:.3f} | {f('accuracy_loss_rel', '{:.1%}')} | {r['train_accuracy']:.3f} | "
            f"{r['auc']:.3f} | {r['advantage']:.3f} | {r['held_out_advantage']:.3f} | {f('advantage_cut', '{:.0%}')} | "
            f"{best['tpr@0.01']:.3f} | {r['empirical_epsilon']:.2f} | {r.get('consistent_with_epsilon', '-')} | {r['seconds']:.0f} |"
        )
    lines += [
        "",
        f"Goal at eps <= 3: accuracy within 4.2% of non-private: **{'met' if goal_acc else 'not met'}**; "
        f"membership advantage cut by >= 89.4%: **{'met' if goal_adv else 'not met'}** (see the note below).",
        "",
        "## Notes",
        "",
        "- Non-private reference: Adam 1e-3, batch 64, 100 epochs, train accuracy 1.0. The 4.2% goal needs "
        f"test accuracy >= {0.958 * base['test_accuracy']:.3f} at eps <= 3.",
        "- The mlsecops defaults (large expected batch, many epochs, Adam, weight averaging, public input "
        "range) beat the Opacus tutorial settings at eps 3 and 8 and lose at eps 1: on 1257 rows, 60 epochs "
        "at batch 256 cost a noise multiplier of 13 at eps 1, against 3.9 for 20 epochs at batch 64. Neither "
        "reaches the 4.2% goal at eps <= 3 on this 83k-parameter MLP. Exploration runs before this table "
        "(single seed, eps 3, test accuracy): Opacus-style SGD 0.1 batch 64 raw 0.935; Adam 3e-3 batch 256 60 "
        "epochs raw 0.935 (0.926 with weight averaging); the same with tanh 0.924; Adam 1e-2 clip 0.5 on x/16 "
        "0.930; batch 512 100 epochs 0.924; Adam 2e-3 batch 64 or 128 0.857-0.924; SGD momentum 0.9 "
        "0.876-0.902. Test accuracy at eps 3 plateaus near 0.93 for this model and data size.",
        "- Leakage: the non-private MLP leaks little to threshold attacks on digits (AUC 0.54). Held-out "
        "advantages of the DP models (0.00-0.07) are near the noise floor of this estimate (its spread over "
        "splits is about 0.03 on 1080 rows), so the cut is not resolved to the 89.4% the goal names; the "
        "reference-model attacks of `mlsecops assess privacy` (LiRA, RMIA) would be the next step. The "
        "leakage check found no row set proving an epsilon above the spent one (empirical epsilon 0.0 for "
        "every DP model; 1.15 for the non-private one).",
        "",
    ]
    (RESULTS / "privacy-dp.md").write_text("\n".join(lines))
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=("nonprivate", "opacus", "mlsecops"))
    ap.add_argument("--merge", action="store_true")
    args = ap.parse_args()
    if args.merge:
        merge()
        return
    import opacus
    import torch

    torch.set_num_threads(1)
    rows = {"nonprivate": run_nonprivate, "opacus": run_opacus, "mlsecops": run_mlsecops}[args.part]()
    meta = {
        "versions": f"torch {torch.__version__}, opacus {opacus.__version__}, python {platform.python_version()}",
        "load_average": os.getloadavg(),
    }
    PARTS.mkdir(exist_ok=True)
    (PARTS / f"{args.part}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
