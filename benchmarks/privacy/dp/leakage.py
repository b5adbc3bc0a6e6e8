"""Membership leakage of the non-private and the DP models, measured with the audit's reference attacks.

The issue's measurement setting: digits, 500 members / 500 non-members drawn at random (seed 0), the
remaining 797 rows the attacker's reference pool. Targets, all MLP 64-256-256-10 trained on the 500
members: the non-private model (Adam 1e-3, batch 64, 100 epochs: 100% train accuracy), Opacus with its
tutorial settings and `dp_train` at epsilon 1, 3, 8.

Attacks: `mlsecops.assess.privacy.audit_privacy` on the non-private target with the reference pool and
K reference models (the non-private recipe: the attacker mimics the target's training; trained through
the executor), every attack that needs no label-only queries (loss, confidence, calibrated, LiRA
offline and online, RMIA). The DP targets are scored against the same K reference models (same records,
same plan: exactly what `audit_privacy` with the same seed would retrain) with the audit's own
`reference_scores` and `attack_metrics`.

Leakage estimate behind the cut: per attack the *held-out advantage* (threshold chosen on a random half
of the records, TPR - FPR measured on the other half, mean over splits: ~0 without leakage, unlike
max(TPR - FPR) over all thresholds); a model's leakage L is the largest over the attacks. Its noise floor
is the 95th percentile of L with the membership labels permuted (the same scores, no membership signal).
The cut 1 - max(L_dp, 0) / L_nonprivate has a paired bootstrap interval (the same resampled records for
both models).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

SEED = 0
N_MEMBERS = 500
N_NON_MEMBERS = 500
REFERENCES = 64
"""64 reference models: 32 IN and 32 OUT per record, from which LiRA online fits a variance per record."""
ATTACKS = ("loss", "confidence", "calibrated", "lira_offline", "lira_online", "rmia")
SPLITS = 50
NULL_ROUNDS = 200
BOOT_ROUNDS = 200
BOOT_SPLITS = 20


def split() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x, y = x.astype(np.float32), y.astype(np.int64)
    order = np.random.default_rng(SEED).permutation(len(x))
    m, n = order[:N_MEMBERS], order[N_MEMBERS : N_MEMBERS + N_NON_MEMBERS]
    p = order[N_MEMBERS + N_NON_MEMBERS :]
    return {"members": (x[m], y[m]), "non_members": (x[n], y[n]), "pool": (x[p], y[p])}


def _half_masks(n: int, splits: int, rng: np.random.Generator) -> np.ndarray:
    return rng.random((splits, n)) < 0.5


def held_out_advantage(s: np.ndarray, member: np.ndarray, halves: np.ndarray) -> float:
    """Mean over ``halves`` of TPR - FPR on the other half at the threshold that maximises it on the half."""
    out = []
    for half in halves:
        a_s, a_m = s[half], member[half]
        order = np.argsort(-a_s, kind="stable")
        tpr = np.cumsum(a_m[order]) / max(1, int(a_m.sum()))
        fpr = np.cumsum(~a_m[order]) / max(1, int((~a_m).sum()))
        thr = a_s[order][int(np.argmax(tpr - fpr))]
        b_s, b_m = s[~half], member[~half]
        pred = b_s >= thr
        out.append(float(pred[b_m].mean() - pred[~b_m].mean()))
    return float(np.mean(out))


def leakage(scores: dict[str, np.ndarray], member: np.ndarray, halves: np.ndarray) -> tuple[float, str]:
    """The largest held-out advantage over the attacks, and the attack that reaches it."""
    per = {a: held_out_advantage(scores[a], member, halves) for a in ATTACKS}
    best = max(per, key=lambda a: per[a])
    return per[best], best


def noise_floor(scores: dict[str, np.ndarray], member: np.ndarray) -> float:
    """95th percentile of the leakage estimate with the membership labels permuted (no signal)."""
    rng = np.random.default_rng(SEED + 1)
    halves = _half_masks(len(member), BOOT_SPLITS, rng)
    null = [leakage(scores, rng.permutation(member), halves)[0] for _ in range(NULL_ROUNDS)]
    return float(np.quantile(null, 0.95))


def paired_cut(
    base: dict[str, np.ndarray], other: dict[str, np.ndarray], member: np.ndarray
) -> tuple[float, float, float, float]:
    """Bootstrap (paired: the same resampled records) 95% intervals of the other model's leakage and of the cut."""
    rng = np.random.default_rng(SEED + 2)
    idx_in, idx_out = np.flatnonzero(member), np.flatnonzero(~member)
    leaks, cuts = [], []
    for _ in range(BOOT_ROUNDS):
        pick = np.concatenate([rng.choice(idx_in, len(idx_in)), rng.choice(idx_out, len(idx_out))])
        m = member[pick]
        # halves drawn per original record: a record drawn twice stays on one side, or the threshold
        # chosen on one half would be measured on its own copies (an upward bias)
        halves = _half_masks(len(member), BOOT_SPLITS, rng)[:, pick]
        lb = leakage({a: base[a][pick] for a in ATTACKS}, m, halves)[0]
        lo = leakage({a: other[a][pick] for a in ATTACKS}, m, halves)[0]
        leaks.append(lo)
        cuts.append(1 - max(lo, 0.0) / lb if lb > 0 else np.nan)
    return (
        float(np.quantile(leaks, 0.025)),
        float(np.quantile(leaks, 0.975)),
        float(np.nanquantile(cuts, 0.025)),
        float(np.nanquantile(cuts, 0.975)),
    )


def train_nonprivate(module: Any, x: np.ndarray, y: np.ndarray, *, epochs: int = 100) -> Any:
    from mlsecops.assess.privacy._reference import train_torch

    return train_torch(module, x, y, epochs=epochs, lr=1e-3, batch_size=64, seed=SEED)


def train_opacus(
    module: Any, x: np.ndarray, y: np.ndarray, eps: float, delta: float, *, seed: int = SEED
) -> tuple[Any, float, float]:
    """Opacus tutorial settings: PrivacyEngine() (PRV), batch 64, SGD 0.05, clip 1, 20 epochs, raw inputs."""
    import torch
    from opacus import PrivacyEngine

    torch.manual_seed(seed)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=64, shuffle=True
    )
    opt = torch.optim.SGD(module.parameters(), lr=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        engine = PrivacyEngine()
        private, dp_opt, dp_loader = engine.make_private_with_epsilon(
            module=module,
            optimizer=opt,
            data_loader=loader,
            target_epsilon=eps,
            target_delta=delta,
            epochs=20,
            max_grad_norm=1.0,
        )
        for _ in range(20):
            for xb, yb in dp_loader:
                if len(xb) == 0:
                    continue
                dp_opt.zero_grad()
                torch.nn.functional.cross_entropy(private(xb), yb).backward()
                dp_opt.step()
        spent = float(engine.get_epsilon(delta))
    return private._module.eval(), spent, float(dp_opt.noise_multiplier)


def run(mlp: Any, epsilons: tuple[float, ...], delta: float, dp_label: str) -> list[dict[str, Any]]:
    """Train every target on the members, audit it, and return one row per target."""
    from mlsecops.assess.privacy import attack_metrics, audit_privacy
    from mlsecops.assess.privacy._attacks import reference_scores, threshold_scores
    from mlsecops.assess.privacy._reference import TorchRecipe
    from mlsecops.core.executor import get_executor
    from mlsecops.harden.dp import dp_train
    from mlsecops.models.pytorch import TorchModel

    d = split()
    (xm, ym), (xn, yn), pool = d["members"], d["non_members"], d["pool"]
    x, y = np.concatenate([xm, xn]), np.concatenate([ym, yn])
    member = np.arange(len(x)) < len(xm)

    targets: list[tuple[str, float | None, Any, dict[str, Any]]] = []
    start = time.perf_counter()
    net = train_nonprivate(mlp(), xm, ym)
    targets.append(
        ("non-private (Adam 1e-3, batch 64, 100 epochs)", None, net, {"seconds": time.perf_counter() - start})
    )
    for eps in epsilons:
        start = time.perf_counter()
        mod, spent, sigma = train_opacus(mlp(), xm, ym, eps, delta)
        info = {"spent_epsilon": spent, "noise_multiplier": sigma, "seconds": time.perf_counter() - start}
        targets.append(("Opacus tutorial settings", eps, mod, info))
    for eps in epsilons:
        r = dp_train(mlp(), xm, ym, epsilon=eps, delta=delta, input_range=(0.0, 16.0), seed=SEED)
        info = {"spent_epsilon": r.epsilon, "noise_multiplier": r.noise_multiplier, "seconds": r.seconds}
        targets.append((dp_label, eps, r.module, info))

    recipe = TorchRecipe(module=mlp(), epochs=100, lr=1e-3, batch_size=64)
    start = time.perf_counter()
    base_model = TorchModel(targets[0][2].eval(), input_shape=(64,))
    audit = audit_privacy(
        base_model,
        (xm, ym),
        (xn, yn),
        reference=pool,
        attacks=ATTACKS,
        references=REFERENCES,
        executor=get_executor("process"),
        learner=recipe,
        seed=SEED,
    )
    ref_seconds = time.perf_counter() - start
    assert audit.references is not None
    ref, inside = audit.references
    halves = _half_masks(len(x), SPLITS, np.random.default_rng(SEED))
    rows: list[dict[str, Any]] = []
    base_scores: dict[str, np.ndarray] = {}
    for i, (method, eps, module, info) in enumerate(targets):
        model = TorchModel(module.eval(), input_shape=(64,))
        proba = model.predict_proba(x)
        scores = {**threshold_scores(proba, y), **reference_scores(proba, ref, inside, y)}
        scores = {a: scores[a] for a in ATTACKS}
        if i == 0:
            base_scores = scores
        metrics = {a: attack_metrics(a, scores[a], member, seed=SEED) for a in ATTACKS}
        leak, best = leakage(scores, member, halves)
        row: dict[str, Any] = {
            "method": method,
            "epsilon": eps,
            **info,
            "train_accuracy": float(np.mean(proba[member].argmax(1) == ym)),
            "test_accuracy": float(np.mean(proba[~member].argmax(1) == yn)),
            "attacks": {
                a: {
                    **{k: v for k, v in m.to_json().items() if k not in ("roc", "most_exposed_members")},
                    "held_out_advantage": held_out_advantage(scores[a], member, halves),
                }
                for a, m in metrics.items()
            },
            "leakage": leak,
            "leakage_attack": best,
            "noise_floor": noise_floor(scores, member),
        }
        if i > 0:
            lo, hi, cut_lo, cut_hi = paired_cut(base_scores, scores, member)
            base_leak = rows[0]["leakage"]
            row |= {
                "leakage_ci": [lo, hi],
                "advantage_cut": 1 - max(leak, 0.0) / base_leak if base_leak > 0 else None,
                "advantage_cut_ci": [cut_lo, cut_hi],
            }
        rows.append(row)
        print({k: v for k, v in row.items() if k != "attacks"}, flush=True)
    rows[0]["reference_seconds"] = ref_seconds
    return rows


def _ci(v: list[float] | tuple[float, float], fmt: str = "{:.3f}") -> str:
    return f"[{fmt.format(v[0])}, {fmt.format(v[1])}]"


def section(rows: list[dict[str, Any]]) -> tuple[list[str], bool, bool]:
    """Markdown of the leakage part; whether the cut goal is met at eps <= 3 (point) and resolved (CI)."""
    base = rows[0]
    lines = [
        "## Leakage: reference-model attacks (LiRA, RMIA) on the issue's 500 / 500 split",
        "",
        f"Split: digits rows permuted with seed {SEED}: {N_MEMBERS} members (the training set of every target "
        f"below), {N_NON_MEMBERS} non-members (also the test set of this table), the other 797 rows the "
        f"attacker's reference pool. {REFERENCES} reference models (MLP 64-256-256-10, the non-private recipe: "
        "Adam 1e-3, batch 64, 100 epochs), each on half of the 1000 audited records (so every record is IN "
        "32 and OUT 32 of them) topped up from the pool to 500 rows, trained through the executor "
        f"(`audit_privacy`, process pool) in {base.get('reference_seconds', 0):.0f} s; the DP targets are scored "
        "against the same references with the audit's own `reference_scores` and `attack_metrics` (what "
        "`audit_privacy` with the same seed retrains). Attacks: loss, confidence, calibrated loss, LiRA offline "
        "and online (per-record variances from 32 models per side), RMIA.",
        "",
        "`leakage` is the cut's estimate: per attack the held-out advantage (threshold chosen on a random half "
        f"of the 1000 records, TPR - FPR measured on the other half, mean of {SPLITS} splits), the largest over "
        "the six attacks. `floor` is its noise floor: the 95th percentile of the same estimate with the "
        f"membership labels permuted ({NULL_ROUNDS} permutations): a leakage below it is indistinguishable from "
        f"none. Intervals: 95%, paired stratified bootstrap ({BOOT_ROUNDS} rounds) for the leakage and the cut; "
        "Clopper-Pearson for the TPRs (at 0.1% FPR on 500 non-members the resolution is 1/500: the TPR at zero "
        "false positives). `adv (max)` is max(TPR - FPR) over all thresholds of the strongest attack (biased "
        "upward, about 0.05 without leakage).",
        "",
        "| target | eps target | eps spent | test acc | train acc | strongest (TPR@0.1%) | AUC [95% CI] | adv (max) "
        "| TPR@1%FPR [CI] | TPR@0.1%FPR [CI] | leakage [CI] (attack) | floor | cut [CI] |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        att = r["attacks"]
        s = max(att, key=lambda a: (att[a]["tpr@0.001"], att[a]["tpr@0.01"], att[a]["auc"]))
        a = att[s]
        eps = "-" if r["epsilon"] is None else f"{r['epsilon']:g}"
        spent = "-" if r.get("spent_epsilon") is None else f"{r['spent_epsilon']:.3f}"
        leak = f"{r['leakage']:.3f}" + (f" {_ci(r['leakage_ci'])}" if "leakage_ci" in r else "")
        cut = "-"
        if r.get("advantage_cut") is not None:
            cut = f"{r['advantage_cut']:.0%} {_ci(r['advantage_cut_ci'], '{:.0%}')}"
        lines.append(
            f"| {r['method']} | {eps} | {spent} | {r['test_accuracy']:.3f} | {r['train_accuracy']:.3f} | {s} | "
            f"{a['auc']:.3f} {_ci(a['auc_ci'])} | {a['advantage']:.3f} | {a['tpr@0.01']:.3f} {_ci(a['tpr@0.01_ci'])} | "
            f"{a['tpr@0.001']:.3f} {_ci(a['tpr@0.001_ci'])} | {leak} ({r['leakage_attack']}) | "
            f"{r['noise_floor']:.3f} | {cut} |"
        )
    lines += [
        "",
        "Per attack on the non-private target (AUC, adv (max), held-out advantage, TPR@1%, TPR@0.1%):",
        "",
        "| attack | AUC | adv (max) | held-out adv | TPR@1%FPR | TPR@0.1%FPR |",
        "|---|---|---|---|---|---|",
    ]
    for name, a in base["attacks"].items():
        lines.append(
            f"| {name} | {a['auc']:.3f} | {a['advantage']:.3f} | {a['held_out_advantage']:.3f} | "
            f"{a['tpr@0.01']:.3f} | {a['tpr@0.001']:.3f} |"
        )
    ours = [r for r in rows[1:] if r["method"].startswith("mlsecops") and r["epsilon"] <= 3]
    met = bool(ours) and all(r["advantage_cut"] is not None and r["advantage_cut"] >= 0.894 for r in ours)
    resolved = bool(ours) and all(r["advantage_cut_ci"][0] >= 0.894 for r in ours)
    return lines, met, resolved


TARGETS = 6
"""Target models pooled by `run_pooled` (LiRA's evaluation: each on its own random half of the records)."""
POOLED_REFERENCES = 32


REFERENCE_CACHE = Path(__file__).resolve().parent / "parts" / "pooled-references.npz"
"""The pooled parts' reference scores (`audit.references`), saved by the first pooled run and reused: the
reference models depend only on the records, the pool, the recipe and the seed, never on the DP target."""


def run_pooled(
    mlp: Any,
    eps: float,
    delta: float,
    dp_label: str,
    *,
    opacus: bool = False,
    trainer: Any = None,
) -> list[dict[str, Any]]:
    """The leakage estimate pooled over TARGETS target pairs (non-private and `dp_train` at ``eps``).

    The 1000 audited records of `split()` stay fixed; target t trains on a random 500 of them (t = 0: the
    500 members of `split()`), the other 500 are its non-members. One set of POOLED_REFERENCES reference
    models (trained once through the executor by `audit_privacy` on target 0) scores every target: their
    IN/OUT assignment is independent of each target's membership. Pooling the T x 1000 (target, record)
    scores lowers the noise floor by about sqrt(T). ``trainer(x, y, seed) -> (module, spent epsilon)``
    replaces the DP recipe (default: `dp_train` defaults, or Opacus's tutorial settings with ``opacus``).
    """
    from mlsecops.assess.privacy import attack_metrics, audit_privacy
    from mlsecops.assess.privacy._attacks import reference_scores, threshold_scores
    from mlsecops.assess.privacy._reference import TorchRecipe
    from mlsecops.core.executor import get_executor
    from mlsecops.harden.dp import dp_train
    from mlsecops.models.pytorch import TorchModel

    d = split()
    (xm, ym), (xn, yn), pool = d["members"], d["non_members"], d["pool"]
    x, y = np.concatenate([xm, xn]), np.concatenate([ym, yn])
    rng = np.random.default_rng(SEED + 10)
    masks = [np.arange(len(x)) < len(xm)]
    for _ in range(TARGETS - 1):
        m = np.zeros(len(x), dtype=bool)
        m[rng.permutation(len(x))[: len(xm)]] = True
        masks.append(m)
    recipe = TorchRecipe(module=mlp(), epochs=100, lr=1e-3, batch_size=64)
    kinds = {"non-private (Adam 1e-3, batch 64, 100 epochs)": [], dp_label: []}
    accs: dict[str, list[float]] = {k: [] for k in kinds}
    spent: list[float] = []
    ref = inside = None
    if REFERENCE_CACHE.exists():
        with np.load(REFERENCE_CACHE) as cached:
            ref, inside = cached["ref"], cached["inside"]
        print(f"reference scores from {REFERENCE_CACHE}", flush=True)
    start = time.perf_counter()
    for t, m in enumerate(masks):
        net = train_nonprivate(mlp(), x[m], y[m])
        if ref is None:
            audit = audit_privacy(
                TorchModel(net, input_shape=(64,)),
                (x[m], y[m]),
                (x[~m], y[~m]),
                reference=pool,
                attacks=ATTACKS,
                references=POOLED_REFERENCES,
                executor=get_executor("process"),
                learner=recipe,
                seed=SEED,
            )
            assert audit.references is not None
            ref, inside = audit.references
            REFERENCE_CACHE.parent.mkdir(exist_ok=True)
            np.savez_compressed(REFERENCE_CACHE, ref=ref, inside=inside)
        if trainer is not None:
            dp_module, eps_spent = trainer(x[m], y[m], SEED + t)
        elif opacus:
            dp_module, eps_spent, _ = train_opacus(mlp(), x[m], y[m], eps, delta, seed=SEED + t)
        else:
            r = dp_train(mlp(), x[m], y[m], epsilon=eps, delta=delta, input_range=(0.0, 16.0), seed=SEED + t)
            dp_module, eps_spent = r.module, r.epsilon
        spent.append(eps_spent)
        for kind, module in zip(kinds, (net, dp_module), strict=True):
            proba = TorchModel(module.eval(), input_shape=(64,)).predict_proba(x)
            s = {**threshold_scores(proba, y), **reference_scores(proba, ref, inside, y)}
            kinds[kind].append({a: s[a] for a in ATTACKS})
            accs[kind].append(float(np.mean(proba[~m].argmax(1) == y[~m])))
        print(f"target {t}: {accs}", flush=True)
    member = np.concatenate(masks)
    pooled = {k: {a: np.concatenate([v[a] for v in vs]) for a in ATTACKS} for k, vs in kinds.items()}
    halves = _half_masks(len(member), SPLITS, np.random.default_rng(SEED))
    rows: list[dict[str, Any]] = []
    base = next(iter(pooled.values()))
    for i, (kind, scores) in enumerate(pooled.items()):
        metrics = {a: attack_metrics(a, scores[a], member, seed=SEED, bootstrap=False) for a in ATTACKS}
        leak, best = leakage(scores, member, halves)
        row: dict[str, Any] = {
            "method": kind,
            "epsilon": None if i == 0 else eps,
            "spent_epsilon": None if i == 0 else max(spent),
            "targets": TARGETS,
            "test_accuracy": float(np.mean(accs[kind])),
            "attacks": {
                a: {
                    **{k: v for k, v in mm.to_json().items() if k not in ("roc", "most_exposed_members")},
                    "held_out_advantage": held_out_advantage(scores[a], member, halves),
                }
                for a, mm in metrics.items()
            },
            "leakage": leak,
            "leakage_attack": best,
            "noise_floor": noise_floor(scores, member),
        }
        if i > 0:
            lo, hi, cut_lo, cut_hi = paired_cut(base, scores, member)
            row |= {
                "leakage_ci": [lo, hi],
                "advantage_cut": 1 - max(leak, 0.0) / rows[0]["leakage"],
                "advantage_cut_ci": [cut_lo, cut_hi],
            }
        rows.append(row)
    rows[0]["seconds"] = time.perf_counter() - start
    return rows


def pooled_section(rows: list[dict[str, Any]]) -> tuple[list[str], bool, bool]:
    """Markdown of the pooled estimate; whether its cut meets 89.4% (point) and is resolved (CI)."""
    base = rows[0]
    n = base["targets"]
    lines = [
        f"### Pooled over {n} targets per method (the cut, resolved)",
        "",
        f"`--part pooled`, `pooled-opacus`, `pooled-eps1`, `pooled-pretrained`, `pooled-public`, "
        f"`pooled-public-eps1`, `pooled-opacus-public`: the same 1000 audited records and pool; {n} targets per "
        "method (non-private; `dp_train` defaults at eps 3 and 1; Opacus tutorial settings at eps 3, from "
        "scratch and from the public pre-trained weights; the public pre-trained model alone, which saw no "
        "record (its leakage is the estimator's null); `dp_train` with public pre-training and a private head "
        "at eps 3 and 1), "
        "target t trained on "
        "its own random 500 of the 1000 records (the same 500 for every method; t = 0: the members "
        f"above), the other 500 its non-members; {POOLED_REFERENCES} reference models (trained once, through "
        "the executor, by `audit_privacy` in the first pooled part and reused from `parts/pooled-references.npz` by "
        "the later ones; their IN/OUT assignment is independent of every target's) score "
        f"all targets. The {n} x 1000 (target, record) scores are pooled, which lowers the noise floor by "
        f"about sqrt({n}). Test accuracy: mean over the targets, on each one's 500 non-members. The AUC "
        "intervals are not computed here (the leakage and cut intervals are).",
        "",
        "| target | eps | test acc | AUC | TPR@1%FPR [CI] | TPR@0.1%FPR [CI] | leakage [CI] (attack) | floor | "
        "LiRA online held-out adv | cut [CI] |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        att = r["attacks"]
        s = max(att, key=lambda a: (att[a]["tpr@0.001"], att[a]["tpr@0.01"], att[a]["auc"]))
        a = att[s]
        leak = f"{r['leakage']:.3f}" + (f" {_ci(r['leakage_ci'])}" if "leakage_ci" in r else "")
        cut = "-"
        if r.get("advantage_cut") is not None:
            cut = f"{r['advantage_cut']:.0%} {_ci(r['advantage_cut_ci'], '{:.0%}')}"
        eps = "-" if r["epsilon"] is None else f"{r['epsilon']:g} (spent <= {r['spent_epsilon']:.3f})"
        lines.append(
            f"| {r['method']} | {eps} | {r['test_accuracy']:.3f} | {a['auc']:.3f} ({s}) | "
            f"{a['tpr@0.01']:.3f} {_ci(a['tpr@0.01_ci'])} | {a['tpr@0.001']:.3f} {_ci(a['tpr@0.001_ci'])} | "
            f"{leak} ({r['leakage_attack']}) | {r['noise_floor']:.3f} | "
            f"{att['lira_online']['held_out_advantage']:.3f} | {cut} |"
        )
    dp = rows[1]  # ours (`--part pooled`)
    met = dp["advantage_cut"] >= 0.894
    resolved = dp["advantage_cut_ci"][0] >= 0.894
    return [*lines, ""], met, resolved
