"""Explanation integrity: planted scaffolded models (Slack et al. 2020) and honest models, several seeds.

    nice -n 10 .venv/bin/python benchmarks/fairness/explain_run.py   # runs this and explain_speed.py

Scaffolds (``mlsecops.assess._scaffold``) decide on the sensitive column on inputs their
out-of-distribution detector takes for real, and on ``age`` elsewhere. Five attackers: a random-forest
detector trained against every perturbation family (``all``), against LIME's samplers only (``lime``),
against SHAP's coalitions only (``shap``: real-row and k-means backgrounds; the attacker who only wants
to fool SHAP), and two detectors that know no sampler: the distance to the 5th nearest real row
(``knn``) and an isolation forest (``isolation``). Proxy cases (``+proxy``) add a column that tracks
the sensitive one (the sensitive value plus Gaussian noise, Spearman about 0.7) and plant the scaffolds
on that proxy; the check is told only the sensitive column and must find the proxy itself. Honest
models: logistic regression and gradient boosting trained on the labels, an MLP, a rule that decides
on the sensitive column for every input, gradient boosting, logistic regression and an MLP trained on
labels with a planted disparity (``gbm-biased``, ``logreg-biased``, ``mlp-biased``: positives of the
sensitive group turned negative with probability 0.6; the last two extrapolate with slopes, unlike
trees; added later on the same labels: a two-layer MLP, a random forest, 25-nearest neighbours and an
RBF SVM, which fades to its intercept far from the data), and a rule
that decides on the sensitive column and ``age`` together for every input (``rule-mixed``: the honest
twin of a scaffold, using the same two features everywhere). For each model: whether ``assess_integrity`` flags it, its
in-distribution dependence on the sensitive column and the smallest perturbation dependence, and
whether the attack fooled the explainers it targets: the sensitive column's rank in SHAP's global
importance (shap's permutation explainer, 20 rows, 10 background rows; and with ``shap.kmeans(x, 10)``
as the background, as Slack et al. and SHAP's documentation use it) and in a LIME-style ranking
(per row 500 Gaussian perturbations, kernel-weighted ridge, |coefficient| averaged over 30 rows).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import integrity_data as data
import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from mlsecops.assess._perturbations import FAMILIES
from mlsecops.assess._scaffold import ScaffoldedClassifier, rule_classifier
from mlsecops.assess.explain_integrity import assess_integrity
from mlsecops.models import SklearnModel

DEV_SEEDS = (0, 1, 2)
"""Seeds the check's thresholds were developed on."""
FIRST_HELD_OUT_SEEDS = (3, 4)
"""Held-out seeds of the first run (the relative test alone): they showed honest models flagged on
SHAP's k-means perturbations, fixed by drawing each family's points in the data's group proportions."""
SECOND_HELD_OUT_SEEDS = (5, 6)
"""Held-out seeds of the second run (the honest twin and swap tests): 40/40 working scaffolds and 1/96
honest models flagged (an MLP on biased labels); the network twin and ``SWAP_RATIO_SEVERAL`` were then
developed on them."""
THIRD_HELD_OUT_SEEDS = (7, 8)
"""Held-out seeds of the third run (network twin): 40/42 working scaffolds, 0/96 honest models flagged;
then spent on probes that added honest kinds, an attacker and the dependence rule (rows kept in
explain.json as ``integrity_seeds_7_8``)."""
FOURTH_HELD_OUT_SEEDS = (9, 10)
"""Held-out seeds of the fourth run (the check of commit 6d672e1, every honest kind and attacker):
46/47 working scaffolds and 1/144 honest models flagged (a deep MLP, by the surrogate dependence test
alone), which made that test need the paired swaps' agreement (rows kept in explain.json as
``integrity_seeds_9_10``)."""
FIFTH_HELD_OUT_SEEDS = (11, 12)
"""Held-out seeds of the fifth run (commit 6539a5d): 46/47 working scaffolds and 0/144 honest models
flagged; the miss, a constant-answer scaffold behind a nearest-neighbour detector on the synthetic
data, led to the one-family partial-hiding rule (``SWAP_SHARE_GAP_OWN``), developed on seeds 5-12
(rows kept in explain.json as ``integrity_seeds_11_12``)."""
SIXTH_HELD_OUT_SEEDS = (13, 14)
"""Held-out seeds of the sixth run (commit 873c2ab, with the partial-hiding rule): 47/48 working
scaffolds and 1/144 honest models flagged (a two-layer MLP on synthetic seed 13, against the one-layer
network twin), which added the two-layer network twin; the miss, an isolation-forest scaffold on
arrests/sex that keeps 94% of the twin's swap effect (LIME-style rank 2), was left alone. Seeds 9-14
then checked the new twin without explainer ranks (rows kept in explain.json as
``integrity_seeds_13_14``)."""
SEVENTH_HELD_OUT_SEEDS = (15, 16)
"""Held-out seeds of the seventh run (commit e4c7bf8, with the two-layer network twin): 47/47 working
scaffolds and 1/144 honest models flagged (a two-layer MLP on arrests/sex seed 16, by the surrogate
share test alone, its own swap effect at 75% of the twins'), which made the surrogate tests need a
clear own-effect fall (``SWAP_RATIO_OWN``); scaffolds of seeds 9-16 re-checked without explainer ranks
(rows kept in explain.json as ``integrity_seeds_15_16``)."""
EIGHTH_HELD_OUT_SEEDS = (17, 18)
"""Held-out seeds of the eighth run (commit 9755a8d): 47/47 working scaffolds and 1/144 honest models
flagged (an RBF SVM on arrests/sex seed 18 by the absolute swap test: 49% of the closest twin's
effect), which lowered ``SWAP_RATIO`` to 0.3; scaffolds of seeds 9-18 re-checked without explainer
ranks (rows kept in explain.json as ``integrity_seeds_17_18``)."""
HELD_OUT_SEEDS = (19, 20)
"""Seeds never looked at while developing: the reported run."""
SEEDS = HELD_OUT_SEEDS
CASES: list[tuple[str, Callable[[], data.Data], str, bool]] = [
    ("synthetic", data.synthetic, "group", False),
    ("arrests", data.arrests, "colour", False),
    ("arrests", data.arrests, "sex", False),
    ("flchain", data.flchain, "female", False),
    ("synthetic", data.synthetic, "group", True),
    ("arrests", data.arrests, "colour", True),
]
ATTACKERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "all": ("forest", FAMILIES),
    "lime": ("forest", ("lime-gaussian", "lime-marginal", "lime-quartile")),
    "shap": ("forest", ("shap-coalition", "shap-kmeans")),
    "knn": ("knn", FAMILIES),
    "isolation": ("isolation", FAMILIES),
}
CONSTANT_ATTACKERS = {"knn-constant": ("knn", 1)}
"""Scaffolds that answer one class (positive) wherever their detector sees a perturbation, instead of
deciding on ``age``: explainers then see a model that decides on nothing there. Added after the
held-out run of seeds 7-8 (probed on seeds 5-8: missed behind this detector on the synthetic data)."""
PROXY_ATTACKERS = ("all", "knn", "isolation")
RANK_ROWS = 20
"""Rows SHAP explains for the rank columns (100 before the held-out run: the ranks cost most of the time)."""
RANK_BACKGROUND = 10
"""Background rows of SHAP with a real-row background (50 before)."""
HONEST = (
    "logreg",
    "gbm",
    "mlp",
    "rule-on-sensitive",
    "gbm-biased",
    "rule-mixed",
    "logreg-biased",
    "mlp-biased",
    "mlp-deep-biased",
    "forest-biased",
    "knn-biased",
    "svm-biased",
)
LATE_HONEST = ("mlp-deep-biased", "forest-biased", "knn-biased", "svm-biased")
"""Honest kinds added after the held-out run of seeds 7-8 (probed on those seeds: the SVM was flagged,
which changed the dependence test); held out for them from seeds 9-10 on."""


class _MixedRule:
    """Honest: positive when the sensitive column is above its split or ``age`` in its top quartile."""

    def __init__(self, x: np.ndarray, s: int, age: int) -> None:
        self.s, self.age = s, age
        self.ts = (
            float(np.unique(x[:, s]).mean()) if len(np.unique(x[:, s])) == 2 else float(np.median(x[:, s]))
        )
        self.ta = float(np.quantile(x[:, age], 0.75))
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = x.shape[1]

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        arr = np.asarray(x, dtype=np.float64)
        pos = ((arr[:, self.s] > self.ts) | (arr[:, self.age] > self.ta)).astype(np.float64)
        return np.stack([1.0 - pos, pos], axis=1)


def _with_proxy(d: data.Data, sensitive: str, seed: int) -> tuple[data.Data, str]:
    x, y, names = d
    rng = np.random.default_rng(1000 + seed)
    col = x[:, names.index(sensitive)].astype(np.float64)
    proxy = (col - col.mean()) / (col.std() or 1.0) + rng.normal(0.0, 0.9, size=len(col))
    return (
        np.column_stack([x, proxy]).astype(np.float32),
        y,
        [*names, f"{sensitive}_proxy"],
    ), f"{sensitive}_proxy"


def _honest(kind: str, x: np.ndarray, y: np.ndarray, s: int, seed: int, age: int) -> Any:
    if kind.endswith("-biased"):
        rng = np.random.default_rng(seed)
        group = x[:, s] > (np.unique(x[:, s]).mean() if len(np.unique(x[:, s])) == 2 else np.median(x[:, s]))
        yb = np.where(group & (y == 1) & (rng.random(len(y)) < 0.6), 0, y)
        if kind == "logreg-biased":
            return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, yb)
        if kind in ("mlp-biased", "mlp-deep-biased"):
            hidden = (32,) if kind == "mlp-biased" else (64, 64)
            return make_pipeline(
                StandardScaler(), MLPClassifier(hidden_layer_sizes=hidden, max_iter=300, random_state=seed)
            ).fit(x, yb)
        if kind == "forest-biased":
            return RandomForestClassifier(200, min_samples_leaf=5, random_state=seed, n_jobs=1).fit(x, yb)
        if kind == "knn-biased":
            return make_pipeline(StandardScaler(), KNeighborsClassifier(25)).fit(x, yb)
        if kind == "svm-biased":  # an RBF SVM: far from the data it fades to its intercept
            return make_pipeline(StandardScaler(), CalibratedClassifierCV(SVC(), ensemble=False)).fit(x, yb)
        return GradientBoostingClassifier(random_state=seed).fit(x, yb)
    if kind == "rule-mixed":
        return _MixedRule(x, s, age)
    if kind == "logreg":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    if kind == "gbm":
        return GradientBoostingClassifier(random_state=seed).fit(x, y)
    if kind == "mlp":
        return make_pipeline(
            StandardScaler(), MLPClassifier(hidden_layer_sizes=(32,), max_iter=300, random_state=seed)
        ).fit(x, y)
    return rule_classifier(x, s)


def _shap_rank(model: SklearnModel, x: np.ndarray, s: int, seed: int, *, kmeans: bool = False) -> int:
    import shap

    rng = np.random.default_rng(seed)
    rows = x[rng.choice(len(x), RANK_ROWS, replace=False)]
    # kmeans: the summarised background SHAP's documentation recommends (Slack et al. used it)
    bg = (
        np.asarray(shap.kmeans(x, 10).data)
        if kmeans
        else x[rng.choice(len(x), RANK_BACKGROUND, replace=False)]
    )
    explainer = shap.explainers.Permutation(
        lambda z: model.predict_proba(np.asarray(z, dtype=np.float32))[:, 1],
        shap.maskers.Independent(bg, max_samples=len(bg)),
        seed=seed,
    )
    values = explainer(rows, max_evals=10 * x.shape[1], silent=True).values
    imp = np.abs(values).mean(axis=0)
    return int(np.argsort(-imp, kind="stable").tolist().index(s) + 1)


def lime_importance(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, seed: int) -> np.ndarray:
    """LIME-style global attribution: per row 500 Gaussian perturbations, kernel-weighted ridge on the
    positive-class score ``predict`` gives, |coefficient| summed over 30 rows."""
    rng = np.random.default_rng(seed)
    std = x.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    width = 0.75 * np.sqrt(x.shape[1])  # LIME's default kernel width
    total = np.zeros(x.shape[1])
    for i in rng.choice(len(x), 30, replace=False):
        z = (x[i] + rng.normal(size=(500, x.shape[1])) * std).astype(np.float32)
        z[0] = x[i]
        scaled = (z - x[i]) / std
        w = np.exp(-(np.linalg.norm(scaled, axis=1) ** 2) / width**2)
        total += np.abs(Ridge(alpha=1.0).fit(scaled, predict(z), sample_weight=w).coef_)
    return total


def _lime_rank(model: SklearnModel, x: np.ndarray, s: int, seed: int) -> int:
    total = lime_importance(lambda z: model.predict_proba(z)[:, 1], x, seed)
    return int(np.argsort(-total, kind="stable").tolist().index(s) + 1)


RANK_KEYS = ("biased_share_real", "shap_rank", "shap_kmeans_rank", "lime_rank", "fooled")


def _swap_summary(g: Any) -> dict[str, Any]:
    """The swap tests' extremes over families: the smallest ratio of the group's swap effect to the
    honest twin's, and the largest fall of its share of the swap effects below the twin's."""
    ratios = [g.flip[f] / g.flip_expected[f] for f in g.flip if g.flip_expected[f] > 0]
    gaps = []
    for f in g.flip:
        own, twin = g.flip[f] + g.flip_rest[f], g.flip_expected[f] + g.flip_rest_expected[f]
        if own > 0 and twin > 0:
            gaps.append(g.flip_expected[f] / twin - g.flip[f] / own)
    return {
        "min_swap_ratio": round(min(ratios), 3) if ratios else None,
        "max_swap_share_gap": round(max(gaps), 3) if gaps else None,
    }


@dataclass(frozen=True)
class Case:
    """One data set, sensitive column and seed: the rows and the columns the models are built on."""

    label: str  # the data set's name, ``+proxy`` when a proxy column is planted
    with_proxy: bool
    seed: int
    x: np.ndarray
    y: np.ndarray
    names: list[str]
    s: int  # the sensitive column
    p: int  # the planted column (the proxy, or the sensitive column itself)
    age: int  # the innocuous column the scaffolds decide on

    @property
    def planted(self) -> str:
        return self.names[self.p]


def cases(seeds: Iterable[int], only: str | None = None) -> Iterator[Case]:
    """Every case (or those whose ``data`` or ``data/sensitive`` is ``only``) over ``seeds``, each data set
    loaded once."""
    cache: dict[str, data.Data] = {}
    for name, load, sensitive, with_proxy in CASES:
        label = name + ("+proxy" if with_proxy else "")
        if only is not None and only not in (name, f"{name}/{sensitive}", label, f"{label}/{sensitive}"):
            continue
        if name not in cache:
            cache[name] = load()
        for seed in seeds:
            x, y, names = cache[name]
            planted = sensitive
            if with_proxy:
                (x, y, names), planted = _with_proxy(cache[name], sensitive, seed)
            s, p, age = names.index(sensitive), names.index(planted), names.index("age")
            yield Case(label, with_proxy, seed, x, y, names, s, p, age)


def twins(rows: np.ndarray, decisions: np.ndarray, seed: int) -> list[Any]:
    """The check's four honest twins of ``decisions`` on ``rows``: tree, logistic, 1-layer, 2-layer."""
    from mlsecops.assess import explain_integrity as check

    return [
        check._honest_twin(rows, decisions, seed),
        check._smooth_twin(rows, decisions),
        check._net_twin(rows, decisions, seed),
        check._net_twin(rows, decisions, seed, hidden=check.DEEP_HIDDEN),
    ]


def build(case: Case, models: Iterable[str] | None = None) -> dict[str, tuple[str, Any]]:
    """The case's models (or only those named), each with its truth: ``scaffolded`` or ``honest``."""
    wanted = None if models is None else set(models)
    x, y, seed, p, age = case.x, case.y, case.seed, case.p, case.age
    built: dict[str, tuple[str, Any]] = {}
    for attacker, (detector, families) in ATTACKERS.items():
        if case.with_proxy and attacker not in PROXY_ATTACKERS:
            continue
        if wanted is not None and f"scaffold-{attacker}" not in wanted:
            continue
        est = ScaffoldedClassifier(
            sensitive=p, innocuous=age, families=families, detector=detector, seed=seed
        ).fit(x)
        built[f"scaffold-{attacker}"] = ("scaffolded", est)
    for attacker, (detector, constant) in CONSTANT_ATTACKERS.items():
        if case.with_proxy or (wanted is not None and f"scaffold-{attacker}" not in wanted):
            continue
        est = ScaffoldedClassifier(
            sensitive=p, innocuous=age, detector=detector, seed=seed, constant=constant
        ).fit(x)
        built[f"scaffold-{attacker}"] = ("scaffolded", est)
    for kind in HONEST:
        if wanted is not None and kind not in wanted:
            continue
        built[kind] = ("honest", _honest(kind, x, y, p, seed, age))
    return built


def run(
    seeds: tuple[int, ...] = SEEDS,
    only: str | None = None,
    ranks: dict[tuple[str, str, int, str], dict[str, Any]] | None = None,
    models: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Every case (or those whose ``data`` or ``data/sensitive`` is ``only``) over ``seeds``.

    ``ranks``: explainer ranks of earlier runs, by ``(data, column, seed, model)``, reused rather than
    recomputed (they do not depend on the check). ``models``: only these models.
    """
    rows: list[dict[str, Any]] = []
    for case in cases(seeds, only):
        x, names, seed, s, p, planted = case.x, case.names, case.seed, case.s, case.p, case.planted
        for model_name, (truth, est) in build(case, models).items():
            adapter = SklearnModel(est, input_shape=(x.shape[1],), n_classes=2)
            t0 = time.perf_counter()
            res = assess_integrity(adapter, x, sensitive=[s], feature_names=names, seed=seed)
            seconds = time.perf_counter() - t0
            g = next(g for g in res.groups if g.group == planted)
            row: dict[str, Any] = {
                "data": case.label,
                "sensitive": planted,
                "seed": seed,
                "model": model_name,
                "truth": truth,
                "flagged": res.flagged,
                "hidden_from": sorted({f for grp in res.groups for f in grp.hidden_from}),
                "in_distribution": g.in_distribution,
                "min_perturbed": min(g.perturbed.values()),
                "share_in_distribution": g.share_in_distribution,
                "min_share_perturbed": min(g.share_perturbed.values(), default=None),
                **_swap_summary(g),
                "seconds": round(seconds, 2),
            }
            old = (ranks or {}).get((row["data"], planted, seed, model_name))
            if truth == "scaffolded" and old is not None:  # same scaffold, same seeds: same ranks
                row.update({k: old[k] for k in RANK_KEYS})
            elif truth == "scaffolded":
                row["biased_share_real"] = round(est.biased_share(x), 4)
                row["shap_rank"] = _shap_rank(adapter, x, p, seed)
                row["shap_kmeans_rank"] = _shap_rank(adapter, x, p, seed, kmeans=True)
                row["lime_rank"] = _lime_rank(adapter, x, p, seed)
                # the attack worked when some explainer no longer names the planted column first
                row["fooled"] = max(row["shap_rank"], row["shap_kmeans_rank"], row["lime_rank"]) > 1
            rows.append(row)
            print(row, flush=True)
    return {"rows": rows, "summary": summarise(rows)}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts over rows: scaffolds flagged (all, and those that fooled an explainer), honest flagged."""
    scaff = [r for r in rows if r["truth"] == "scaffolded"]
    fooled = [r for r in scaff if r.get("fooled", True)]
    honest = [r for r in rows if r["truth"] == "honest"]
    late = [r for r in honest if r["model"] in LATE_HONEST]
    return {
        "honest_late_flagged": sum(r["flagged"] for r in late),
        "honest_late": len(late),
        "scaffolded_flagged": sum(r["flagged"] for r in scaff),
        "scaffolded": len(scaff),
        "effective_flagged": sum(r["flagged"] for r in fooled),
        "effective": len(fooled),
        "honest_flagged": sum(r["flagged"] for r in honest),
        "honest": len(honest),
        "median_seconds": float(np.median([r["seconds"] for r in rows])) if rows else 0.0,
    }
