"""Data-poisoning benchmark: mlsecops vs the reference methods, side by side on the same planted data.

Run from the repository root (the benchmark venv holds cleanlab, adversarial-robustness-toolbox, pandas):

    benchmarks/data/setup_venv.sh
    benchmarks/.venv-data/bin/python benchmarks/data/run.py            # everything (~20-40 min on 2 cores)
    benchmarks/.venv-data/bin/python benchmarks/data/run.py --skip-timing --seeds 1

Scenarios (every planted row is known, so precision, recall and false-positive rate are exact):
- label flips: scikit-learn digits and breast-cancer, 5/10/20% of labels flipped to a random other class;
  mlsecops ``ConfidentLabelDetector`` vs cleanlab ``find_label_issues`` on the same out-of-sample
  probabilities (the first round of our ensemble: logistic regression + Platt-scaled RBF SVM, 5-fold);
  also clean data, 2%/30% and one-way flips, wine, iris and overlapping classes, with a ceiling row
  (the same models trained on the clean labels, best threshold);
- backdoor: digits with a 2x2 patch (value 16, bottom-right corner) stamped on 5% / 10% of the images,
  taken from other classes and relabelled to one target class; mlsecops ``BackdoorClusterDetector`` vs
  ART ``SpectralSignatureDefense`` and ``ActivationDefence`` on a small PyTorch network trained on the
  poisoned data (the ART defences need a neural classifier);
- ratings: the synthetic e-commerce stream with 100 / 537 / 1000 fake accounts; mlsecops
  ``CoordinatedAccountDetector`` vs RDMA (rating deviation from mean agreement, Chirita et al. 2005,
  accounts with a z-score above 2), the classic shilling-attack statistic;
- ``data check`` timing on 10 million rows x 20 columns (CSV) vs a pandas-based profile of the same file
  (``read_csv`` + ``describe`` + quantiles + null counts + ``nunique``), each in a fresh process, with
  its peak resident memory.

Writes ``benchmarks/results/data.md`` and ``benchmarks/results/data.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
WORK = ROOT / "benchmarks" / ".work"


def rates(flag: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Precision, recall and false-positive rate of ``flag`` against ``truth``."""
    tp = int((flag & truth).sum())
    fp = int((flag & ~truth).sum())
    return {
        "precision": round(tp / max(int(flag.sum()), 1), 4),
        "recall": round(tp / max(int(truth.sum()), 1), 4),
        "fpr": round(fp / max(int((~truth).sum()), 1), 4),
        "flagged": int(flag.sum()),
        "planted": int(truth.sum()),
    }


def flip(
    y: np.ndarray, rate: float, seed: int, one_way: tuple[int, int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Flip ``rate`` of the labels to a random other class, or, ``one_way=(a, b)``, ``rate`` of class a to b."""
    rng = np.random.default_rng(seed)
    k = int(y.max()) + 1
    noisy = y.copy()
    if one_way is None:
        idx = rng.choice(y.size, round(rate * y.size), replace=False)
        noisy[idx] = (y[idx] + rng.integers(1, k, idx.size)) % k
    else:
        cand = np.flatnonzero(y == one_way[0])
        idx = rng.choice(cand, round(rate * cand.size), replace=False)
        noisy[idx] = one_way[1]
    mask = np.zeros(y.size, dtype=bool)
    mask[idx] = True
    return noisy, mask


def trigger(
    X: np.ndarray, y: np.ndarray, rate: float, target: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = y.size
    idx = rng.choice(np.flatnonzero(y != target), round(rate * n), replace=False)
    imgs = X.reshape(n, 8, 8).copy()
    imgs[idx, 6:8, 6:8] = 16.0
    y2 = y.copy()
    y2[idx] = target
    mask = np.zeros(n, dtype=bool)
    mask[idx] = True
    return imgs.reshape(n, 64), y2, mask


# ----------------------------------------------------------------------------------------- label flips


def _overlapping(*, return_X_y: bool = True) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification

    # Three classes whose clusters overlap: ~10% of the correct labels look like another class.
    return make_classification(
        n_samples=1000, n_features=20, n_informative=8, n_classes=3, class_sep=1.5, flip_y=0, random_state=0
    )


def _label_scenarios() -> list[tuple[str, Any, float, tuple[int, int] | None]]:
    from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine

    main = [
        (n, ld, r, None)
        for n, ld in (("digits", load_digits), ("breast-cancer", load_breast_cancer))
        for r in (0.05, 0.10, 0.20)
    ]
    # Scenarios the detector was not designed on: clean data, very low and very high rates, one-way
    # flips (breast-cancer malignant -> benign, digits 1 -> 7, as a share of the source class), other data.
    extra = [
        ("breast-cancer", load_breast_cancer, 0.0, None),
        ("breast-cancer", load_breast_cancer, 0.02, None),
        ("breast-cancer", load_breast_cancer, 0.30, None),
        ("breast-cancer", load_breast_cancer, 0.10, (0, 1)),
        ("digits", load_digits, 0.0, None),
        ("digits", load_digits, 0.20, (1, 7)),
        ("wine", load_wine, 0.0, None),
        ("wine", load_wine, 0.10, None),
        ("wine", load_wine, 0.20, None),
        ("iris", load_iris, 0.0, None),
        ("iris", load_iris, 0.10, None),
        ("overlapping 3-class", _overlapping, 0.0, None),
        ("overlapping 3-class", _overlapping, 0.10, None),
    ]
    return main + extra


def _best_recall(score: np.ndarray, truth: np.ndarray, max_fpr: float = 0.02) -> float:
    """Recall of the best threshold on ``score`` (chosen knowing ``truth``) with FPR <= ``max_fpr``."""
    order = np.argsort(-score, kind="stable")
    t = truth[order]
    ok = np.cumsum(~t) <= max_fpr * max(int((~truth).sum()), 1)
    return float(np.cumsum(t)[ok].max() / max(int(truth.sum()), 1)) if ok.any() else 0.0


def bench_labels(seeds: list[int]) -> list[dict[str, Any]]:
    from cleanlab.filter import find_label_issues

    from mlsecops.data import ConfidentLabelDetector, out_of_sample_proba

    rows = []
    clean_proba: dict[str, np.ndarray] = {}
    for name, loader, rate, one_way in _label_scenarios():
        X, y = loader(return_X_y=True)
        X = X.astype(np.float64)
        k = int(y.max()) + 1
        if name not in clean_proba:
            # The ceiling: the same models trained on the clean labels (10-fold, 2 repeats).
            clean_proba[name] = out_of_sample_proba(X, y, n_classes=k, cv=10, n_repeats=2, random_state=99)
        how = f" one-way {one_way[0]}->{one_way[1]}" if one_way else ""
        scen = f"{name} {round(rate * 100)}%{how} label flips"
        for seed in seeds:
            noisy, truth = flip(y, rate, seed, one_way)
            t0 = time.perf_counter()
            ours = ConfidentLabelDetector(random_state=seed).fit(X, noisy)
            t_ours = time.perf_counter() - t0
            t0 = time.perf_counter()
            proba = out_of_sample_proba(X, noisy, n_classes=k, n_repeats=1, random_state=seed)
            t_proba = time.perf_counter() - t0
            t0 = time.perf_counter()
            cl = find_label_issues(labels=noisy, pred_probs=proba)
            t_cl = time.perf_counter() - t0 + t_proba
            # The same flag budget as cleanlab: our top-k rows by score, k = cleanlab's count. This
            # compares the rankings at one operating point, apart from where each draws its line.
            budget = np.zeros(y.size, dtype=bool)
            budget[np.argsort(-ours.scores_, kind="stable")[: int(np.sum(cl))]] = True
            base = {"scenario": scen, "seed": seed}
            for method, flag, secs in (
                ("mlsecops", ours.suspect_, t_ours),
                ("cleanlab", cl, t_cl),
                ("mlsecops at cleanlab's flag count", budget, t_ours),
            ):
                extra = {"estimated_noise_rate": round(ours.noise_rate_, 4)} if method == "mlsecops" else {}
                rows.append(
                    {
                        **base,
                        "method": method,
                        "seconds": round(secs, 2),
                        **rates(np.asarray(flag, bool), truth),
                        **extra,
                    }
                )
            if truth.any():
                # Ranking quality apart from the threshold: the best threshold chosen knowing the truth,
                # FPR <= 0.02 by construction; for our scores and for the clean-trained ceiling.
                own = clean_proba[name][np.arange(y.size), noisy]
                for method, score in (
                    ("mlsecops ranking, best threshold", ours.scores_),
                    ("ceiling: clean-trained models, best threshold", -own),
                ):
                    rows.append(
                        {
                            **base,
                            "method": method,
                            "seconds": None,
                            "precision": None,
                            "recall": round(_best_recall(score, truth), 4),
                            "fpr": None,
                            "flagged": None,
                            "planted": int(truth.sum()),
                        }
                    )
            print(*rows[-5:], sep="\n", flush=True)
    return rows


# ----------------------------------------------------------------------------------------- backdoor


def _torch_model(X: np.ndarray, y: np.ndarray, seed: int) -> Any:
    import torch
    from art.estimators.classification import PyTorchClassifier
    from torch import nn

    torch.manual_seed(seed)
    torch.set_num_threads(2)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
    clf = PyTorchClassifier(
        model=model,
        loss=nn.CrossEntropyLoss(),
        optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
        input_shape=(64,),
        nb_classes=10,
        clip_values=(0.0, 1.0),
    )
    clf.fit(
        X.astype(np.float32), np.eye(10)[y].astype(np.float32), batch_size=64, nb_epochs=60, verbose=False
    )
    return clf


def bench_backdoor(seeds: list[int]) -> list[dict[str, Any]]:
    from art.defences.detector.poison import ActivationDefence, SpectralSignatureDefense
    from sklearn.datasets import load_digits

    from mlsecops.data import BackdoorClusterDetector

    X0, y0 = load_digits(return_X_y=True)
    rows = []
    targets = [0, 3, 7]
    for rate in (0.05, 0.10):
        for seed in seeds:
            target = targets[seed % len(targets)]
            X, y, truth = trigger(X0.astype(np.float64), y0, rate, target, seed)
            t0 = time.perf_counter()
            ours = BackdoorClusterDetector(random_state=seed).fit(X, y)
            t_ours = time.perf_counter() - t0
            Xs = (X / 16.0).astype(np.float32)
            Y = np.eye(10)[y].astype(np.float32)
            t0 = time.perf_counter()
            clf = _torch_model(Xs, y, seed)
            t_train = time.perf_counter() - t0
            clean_acc = float(np.mean(clf.predict(Xs[~truth]).argmax(1) == y[~truth]))
            trig = Xs[truth].copy().reshape(-1, 8, 8)
            asr = float(np.mean(clf.predict(trig.reshape(-1, 64)).argmax(1) == target))
            t0 = time.perf_counter()
            share = float(truth.sum() / max((y == target).sum(), 1))
            _, ss_clean = SpectralSignatureDefense(clf, Xs, Y, expected_pp_poison=rate).detect_poison()
            t_ss = time.perf_counter() - t0 + t_train
            t0 = time.perf_counter()
            _, ac_clean = ActivationDefence(clf, Xs, Y).detect_poison(nb_clusters=2, nb_dims=10, reduce="PCA")
            t_ac = time.perf_counter() - t0 + t_train
            scen = f"digits 2x2 trigger on {int(rate * 100)}% (target {target}, {share:.0%} of its class)"
            for method, flag, secs in (
                ("mlsecops", ours.suspect_, t_ours),
                ("ART SpectralSignatureDefense", np.asarray(ss_clean) == 0, t_ss),
                ("ART ActivationDefence", np.asarray(ac_clean) == 0, t_ac),
            ):
                rows.append(
                    {
                        "scenario": scen,
                        "seed": seed,
                        "method": method,
                        "seconds": round(secs, 2),
                        "model_clean_accuracy": round(clean_acc, 4),
                        "attack_success": round(asr, 4),
                        **rates(np.asarray(flag, dtype=bool), truth),
                    }
                )
                print(rows[-1], flush=True)
    return rows


# ----------------------------------------------------------------------------------------- ratings


def rdma(user: np.ndarray, item: np.ndarray, rating: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RDMA per account and the account ids (Chirita, Nejdl and Zamfir, 2005)."""
    users, u = np.unique(user, return_inverse=True)
    _items, i = np.unique(item, return_inverse=True)
    n_i = np.bincount(i)
    mean_i = np.bincount(i, weights=rating) / n_i
    dev = np.abs(rating - mean_i[i]) / n_i[i]
    score = np.bincount(u, weights=dev) / np.bincount(u)
    return users, score


def bench_ratings(seeds: list[int]) -> list[dict[str, Any]]:
    from mlsecops.data import CoordinatedAccountDetector, generate_ratings

    # The issue's three campaign sizes, then attacker variants the detector was not first designed on
    # (red-teamed in session 3) and a clean stream with genuine viral items (FPR only).
    variants: list[tuple[str, int, dict[str, Any]]] = [
        (f"ratings, {n} fake accounts", n, {}) for n in (100, 537, 1000)
    ]
    for label, kw in (
        ("spread over 4 weeks", {"campaign_days": 28.0}),
        ("4 stars instead of 5", {"fake_rating": 4}),
        ("popular target items", {"popular_targets": True}),
        ("10 targets, each fake rates ~30%", {"n_targets": 10, "target_share": 0.3}),
        ("30 camouflage ratings each", {"camouflage": 30}),
        ("smear: 1 star on good items", {"smear": True}),
        (
            "stealth: 4 weeks, 4 stars, 20 camouflage, 8 targets at 40%",
            {"campaign_days": 28.0, "fake_rating": 4, "camouflage": 20, "n_targets": 8, "target_share": 0.4},
        ),
    ):
        variants += [(f"ratings variant, {n} fake accounts, {label}", n, kw) for n in (100, 537)]
    variants.append(("ratings, no campaign, 3 genuine viral items", 0, {"viral_items": 3}))
    rows = []
    for name, n_fake, kw in variants:
        for seed in seeds:
            data = generate_ratings(n_fake=n_fake, seed=seed, **kw)
            t0 = time.perf_counter()
            det = CoordinatedAccountDetector().fit(data.user, data.item, data.rating, data.time)
            t_ours = time.perf_counter() - t0
            truth = np.isin(det.users_, data.fake_users)
            t0 = time.perf_counter()
            users, score = rdma(data.user, data.item, data.rating.astype(float))
            z = (score - score.mean()) / score.std()
            t_rdma = time.perf_counter() - t0
            assert np.array_equal(users, det.users_)
            for method, flag, secs in (("mlsecops", det.suspect_, t_ours), ("RDMA z>2", z > 2.0, t_rdma)):
                rows.append(
                    {
                        "scenario": f"{name} ({len(data)} ratings)",
                        "seed": seed,
                        "method": method,
                        "seconds": round(secs, 2),
                        **rates(np.asarray(flag), truth),
                    }
                )
                print(rows[-1], flush=True)
    return rows


# ----------------------------------------------------------------------------------------- timing


_PANDAS_PROFILE = """
import resource, sys, time
import pandas as pd
t0 = time.perf_counter()
df = pd.read_csv(sys.argv[1])
desc = df.describe(percentiles=[i / 20 for i in range(1, 20)])
nulls = df.isna().sum()
distinct = df.nunique()
dups = int(df.duplicated().sum())
print(time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""

_OURS_CHECK = """
import resource, sys, time
from pathlib import Path
from mlsecops.core.checks import Target
from mlsecops.data.checks import DataValidationCheck
t0 = time.perf_counter()
r = DataValidationCheck().run(Target(paths=(Path(sys.argv[1]),), options={"baseline": sys.argv[2]}))
print(time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, int(r.metrics["rows"]),
      len(r.findings))
"""


def _make_big_csv(path: Path, n_rows: int, n_cols: int = 20) -> None:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(0)
    block = 500_000
    with pacsv.CSVWriter(path, pa.schema([(f"c{j}", pa.float64()) for j in range(n_cols)])) as writer:
        for start in range(0, n_rows, block):
            m = min(block, n_rows - start)
            cols = {f"c{j}": np.round(rng.normal(j, 1.0 + j / 10, m), 4) for j in range(n_cols)}
            writer.write_table(pa.table(cols))


def bench_timing(n_rows: int) -> dict[str, Any]:
    WORK.mkdir(parents=True, exist_ok=True)
    big = WORK / f"big_{n_rows}.csv"
    if not big.exists():
        t0 = time.perf_counter()
        _make_big_csv(big, n_rows)
        print(f"generated {big} in {time.perf_counter() - t0:.0f}s", flush=True)
    small = WORK / "baseline_sample.csv"
    _make_big_csv(small, 200_000)
    baseline = WORK / "baseline.json"
    from mlsecops.data import iter_chunks, profile_chunks

    profile_chunks(iter_chunks(small)).save(baseline)
    out: dict[str, Any] = {"rows": n_rows, "columns": 20, "file_bytes": big.stat().st_size}
    for name, code, args in (
        ("mlsecops data check", _OURS_CHECK, [str(big), str(baseline)]),
        ("pandas profile", _PANDAS_PROFILE, [str(big)]),
    ):
        res = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False)
        if res.returncode != 0:
            out[name] = {"error": res.stderr.strip().splitlines()[-1] if res.stderr else "failed"}
        else:
            parts = res.stdout.split()
            out[name] = {"seconds": round(float(parts[0]), 1), "peak_rss_mb": round(float(parts[1]))}
        print(name, out[name], flush=True)
    return out


# ----------------------------------------------------------------------------------------- report


def _mean(rs: list[dict[str, Any]], key: str) -> float | None:
    vals = [r[key] for r in rs if r.get(key) is not None]
    return round(float(np.mean(vals)), 4) if vals else None


def _agg(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["scenario"].split(" (")[0], r["method"]), []).append(r)
    out = []
    for (scen, method), rs in groups.items():
        planted = any(r.get("planted") for r in rs)
        out.append(
            {
                "scenario": scen,
                "method": method,
                "runs": len(rs),
                **{k: _mean(rs, k) for k in ("precision", "recall", "fpr", "seconds")},
                "min_recall": min(r["recall"] for r in rs) if planted else None,
                "max_fpr": max((r["fpr"] for r in rs if r.get("fpr") is not None), default=None),
                "planted": planted,
            }
        )
        if not planted:
            out[-1]["recall"] = None
        if "estimated_noise_rate" in rs[0]:
            out[-1]["estimated_noise_rate"] = _mean(rs, "estimated_noise_rate")
    return out


def _goal(r: dict[str, Any]) -> str:
    """'yes' when every seed meets the goal, 'mean' when only the means do, else 'no' ('-': not a detector)."""
    if r["fpr"] is None:
        return "-"
    if not r["planted"]:
        return "yes" if r["max_fpr"] <= 0.02 else ("mean" if r["fpr"] <= 0.02 else "no")
    if r["min_recall"] >= 0.95 and r["max_fpr"] <= 0.02:
        return "yes"
    return "mean" if r["recall"] >= 0.95 and r["fpr"] <= 0.02 else "no"


def _f(v: float | None, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def write_results(result: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "data.json").write_text(json.dumps(result, indent=1))
    lines = [
        "# Data-poisoning benchmark",
        "",
        f"Run: {result['run']} on {result['machine']}. Reproduce with `benchmarks/data/setup_venv.sh &&"
        f" benchmarks/.venv-data/bin/python benchmarks/data/run.py {result['args']}`.",
        f"Reference tools: {result['versions']}.",
        "",
        "Planted rows are known exactly; precision, recall and false-positive rate (FPR = clean rows flagged /"
        " clean rows) are means over the seeds; `min recall` / `max FPR` are the worst seed. Goal: recall >= 0.95"
        " at FPR <= 0.02 on every scenario ('goal met': yes = on every seed, mean = on the means only; on"
        " clean data (0% flips) FPR alone). Rows 'best threshold' rate a ranking apart from its threshold:"
        " the recall of the best cut with FPR <= 0.02, chosen knowing the truth; the 'ceiling' row ranks by"
        " the same models trained on the clean labels (10-fold), i.e. what is reachable at all.",
        "",
        "| scenario | method | runs | precision | recall | FPR | min recall | max FPR | seconds | goal met |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["summary"]:
        lines.append(
            f"| {r['scenario']} | {r['method']} | {r['runs']} | {_f(r['precision'], '.3f')} |"
            f" {_f(r['recall'], '.3f')} | {_f(r['fpr'], '.4f')} | {_f(r['min_recall'], '.3f')} |"
            f" {_f(r['max_fpr'], '.4f')} | {_f(r['seconds'], '.1f')} | {_goal(r)} |"
        )
    t = result.get("timing")
    if t:
        lines += [
            "",
            f"## `data check` on {t['rows']:,} rows x {t['columns']} columns (CSV, {t['file_bytes'] / 1e9:.2f} GB)",
            "",
            "Each in a fresh process; peak RSS is the process's maximum resident memory. Our check streams the"
            " file in 32 MB blocks (its memory does not grow with the file: the profile pass peaks at 395 MB on"
            " a 300 MB slice and 412 MB on the whole 1.48 GB file; the check process also imports the workspace"
            " stack); the pandas profile loads the whole file.",
            "",
            "| tool | seconds | peak RSS MB |",
            "|---|---|---|",
        ]
        for name in ("mlsecops data check", "pandas profile"):
            v = t.get(name, {})
            lines.append(
                f"| {name} | {v.get('seconds', v.get('error', '-'))} | {v.get('peak_rss_mb', '-')} |"
            )
    bd = [r for r in result["rows"] if "trigger" in r["scenario"] and r["method"] == "mlsecops"]
    if bd:
        lines += [
            "",
            "Backdoor models (the network ART inspects): clean accuracy / attack success per run: "
            + ", ".join(f"{r['model_clean_accuracy']:.3f} / {r['attack_success']:.3f}" for r in bd)
            + ".",
        ]
    lines += ["", result["notes"], ""]
    (RESULTS / "data.md").write_text("\n".join(lines))


NOTES = (
    "cleanlab receives the same out-of-sample probabilities our first round computes (5-fold, logistic"
    " regression C=1 + Platt-scaled RBF SVM, one repeat) and runs with its defaults (prune_by_noise_rate)."
    " ART's defences inspect a 64-128-64-10 PyTorch MLP trained 60 epochs on the poisoned data;"
    " SpectralSignatureDefense gets the true poison rate of the training set as expected_pp_poison"
    " (it flags 1.5x that share of every class), ActivationDefence runs with 2 clusters, 10 PCA"
    " dimensions and its default 'smaller' analysis. Our backdoor detector learns its own features"
    " (scikit-learn MLP) and gets no hint about the poison rate. RDMA is the reference for ratings"
    " because neither reference library has a shilling-attack detector."
    "\n\nReading, label flips (issue 5). 10 seeds since session 3 (5 before): the mean recall of 57 planted"
    " rows moves by about 0.01 between seed sets (breast-cancer 10%, this detector: seeds 0-4 0.940, seeds"
    " 5-9 0.968). The detector averages logistic regression (C=1) and a Platt-scaled RBF SVM (gradient"
    " boosting above 5,000 rows) over repeated 5-fold splits in three rounds; rounds 2 and 3 refit on the"
    " rows whose calibrated posterior says the label is more likely right than wrong (session 2: a fixed"
    " margin); flags are capped at an estimated noise rate (EM over a class-pair noise matrix with a fitted"
    " temperature; the cap takes the largest rate among the temperatures within one log-likelihood unit of"
    " the best) plus 2% of the other rows. Breast-cancer 5/10/20%: mean recall 0.961/0.954/0.965 at mean"
    " FPR 0.018/0.017/0.019; cleanlab 0.889/0.895/0.934 at 0.005/0.012/0.022. The goal holds on the means"
    " of all six main scenarios (digits on every seed), not on every breast-cancer seed: the ceiling rows"
    " (the same models trained on the clean labels, best threshold chosen knowing the truth) reach a worst"
    " seed of 0.929/0.912/0.956, so no threshold on these models can. About 2% of breast-cancer's own rows"
    " look like the other class to any model trained on the rest, and flipped rows near the boundary look"
    " right. At cleanlab's own flag count our ranking is better on five of the six main scenarios and"
    " equal within one row on breast-cancer 5% (0.882 vs 0.889). Scenarios the detector was not designed"
    " on: clean data is flagged at <= 0.02 on breast-cancer (0.015), digits (0.011), wine (0.006) and iris"
    " (0.019, from the versicolor/virginica overlap); one-way flips (20% of digit 1 relabelled 7) 1.000 at"
    " 0.011 (cleanlab 0.750); wine 10%/20% and iris 10% meet the goal on the mean (0.972/0.958/0.953)."
    " Below the goal: breast-cancer 2% (11 flips: 0.946), 30% (0.932 at FPR 0.033; ceiling ranking 0.967),"
    " one-way malignant->benign (0.933 at 0.017; ceiling 0.952) and three overlapping classes"
    " (make_classification, class_sep 1.5: about 10% of the correct labels look like another class; clean"
    " data flagged at 0.038, cleanlab 0.033; even the ceiling ranking reaches only 0.765)."
    "\n\nReading, ratings. The account detector was red-teamed in session 3 (variants below the issue's"
    " three sizes, 10 seeds each): every variant meets the goal except the stealth campaign with 100 fake"
    " accounts (4 weeks, 4 stars, 20 camouflage ratings, each fake rating ~3 of 8 targets): 0.885, because"
    " about 12% of those accounts rate a single target with nothing else tying them to the campaign. A"
    " clean stream with genuine viral items flags nobody. RDMA, the classic shilling statistic, flags genuine"
    " raters of rare items and none of the fakes here: a large campaign sets the item mean it is measured"
    " against."
    "\n\nReading, backdoor. 10 seeds: recall 0.999/0.999 at FPR 0.0012/0.0005 (5%/10%), every seed within"
    " the goal; ART's defences 0.19-0.48 at FPR 0.07-0.34. Session 3 added two gates against genuine"
    " subgroups that other classes explain (clean tabular data with two blobs per class had been flagged at"
    " 15-49%): a flagged cluster must share one consistent change (the trigger) and stand apart from its"
    " class (a clean split, a clear gap to its sibling cluster, or a novel value on its trigger features)."
    " The red-team on scenarios beyond these two (benchmarks/data/redteam_backdoor.py, results in"
    " data-backdoor-redteam.md) finds gaps: on real MNIST and on some digits seeds with 1% or 10-20% poison"
    " the two-cluster split mixes poisoned and clean rows and the whole backdoor is missed."
    "\n\nSeconds are informative only: the label rows ran at load average 5-8 (two other engineers'"
    " experiments on the same 2 cores)."
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--only", choices=["labels", "backdoor", "ratings", "timing"], default=None)
    parser.add_argument("--render", action="store_true", help="rewrite data.md from data.json, run nothing")
    args = parser.parse_args()
    seeds = list(range(args.seeds))
    import art
    import cleanlab
    import pandas

    result: dict[str, Any] = {
        "run": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()} {os.cpu_count()} CPU, Python {platform.python_version()} (shared)",
        "args": " ".join(sys.argv[1:]),
        "versions": f"cleanlab {cleanlab.__version__}, adversarial-robustness-toolbox {art.__version__},"
        f" pandas {pandas.__version__}",
        "rows": [],
        "notes": NOTES,
    }
    previous: dict[str, Any] = {}
    if args.render:
        previous = json.loads((RESULTS / "data.json").read_text())
        previous["notes"] = result["notes"]
        previous["summary"] = _agg(previous["rows"])
        write_results(previous)
        return
    if args.skip_timing and (RESULTS / "data.json").exists():
        # Skipping the 10-million-row timing keeps the last measured one.
        result["timing"] = json.loads((RESULTS / "data.json").read_text()).get("timing")
        result["args"] += " (timing: from the previous run)"
    if args.only is not None and (RESULTS / "data.json").exists():
        # Re-running one part keeps the other parts' rows from the last full run.
        previous = json.loads((RESULTS / "data.json").read_text())
        keep = {"labels": "label flips", "backdoor": "trigger", "ratings": "ratings", "timing": "\0"}[
            args.only
        ]
        result["rows"] = [r for r in previous.get("rows", []) if keep not in r["scenario"]]
        result["args"] = previous.get("args", result["args"]) + f"; then --only {args.only}"
        if "timing" in previous:
            result["timing"] = previous["timing"]
    if args.only in (None, "labels"):
        result["rows"] += bench_labels(seeds)
    if args.only in (None, "backdoor"):
        result["rows"] += bench_backdoor(seeds)
    if args.only in (None, "ratings"):
        result["rows"] += bench_ratings(seeds)
    result["summary"] = _agg(result["rows"])
    if not args.skip_timing and args.only in (None, "timing"):
        result["timing"] = bench_timing(args.rows)
    write_results(result)
    print((RESULTS / "data.md").read_text())


if __name__ == "__main__":
    main()
