"""Time of global SHAP on 1,000 rows: ``mlsecops assess explain`` against the ``shap`` package used directly.

Data: the flchain study (7 features, ``integrity_data.flchain``), 1,000 rows explained, 100 background
rows. Models: scikit-learn ``GradientBoostingClassifier`` (100 trees) and an MLP (32 hidden units,
scaled inputs, a scikit-learn Pipeline). Contenders per model:

- ``mlsecops explain``: ``explain(method="shap")`` whole (SHAP plus permutation importance, 5 repeats);
- ``mlsecops SHAP part``: our SHAP back end alone (``shap_values``): the exact ``TreeExplainer``
  (interventional, probability output) for the trees, the permutation explainer (10 evaluations per
  feature and row) for the MLP;
- ``shap TreeExplainer``: the same explainer called directly (trees);
- ``shap Permutation``: the permutation explainer with the same settings, called directly (MLP);
- ``shap Explainer (auto)``: ``shap.Explainer(predict_proba, background)``, shap's own choice (exact
  for 7 features), as a user would call it (MLP).

Each timed after one warm-up call (numba compiles shap's kernels on first use). Agreement: the
largest difference of mean |SHAP| per feature between ours and the direct call, and whether the
rankings are the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import integrity_data as data
import numpy as np
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlsecops.assess._explain_backends import shap_values
from mlsecops.assess.explain import explain
from mlsecops.models import SklearnModel

ROWS, BACKGROUND, SEED = 1000, 100, 0


def _timed(fn: Callable[[], Any], repeats: int = 3) -> tuple[float, Any]:
    fn()  # warm-up: numba compilation, caches
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _global(values: np.ndarray) -> np.ndarray:
    """Mean |SHAP| per feature of the positive class, from (rows, features[, classes]) values."""
    v = values[..., 1] if values.ndim == 3 else values
    return np.abs(v).mean(axis=0)


def run() -> dict[str, Any]:
    import shap

    x, y, names = data.flchain()
    rng = np.random.default_rng(SEED)
    idx = rng.choice(len(x), ROWS, replace=False)
    xs, ys = x[idx], y[idx]
    bg = x[np.sort(rng.choice(len(x), BACKGROUND, replace=False))]
    out: list[dict[str, Any]] = []
    gbm = GradientBoostingClassifier(random_state=SEED).fit(x, y)
    mlp = make_pipeline(
        StandardScaler(), MLPClassifier(hidden_layer_sizes=(32,), max_iter=300, random_state=SEED)
    )
    mlp.fit(x, y)
    m = x.shape[1]
    for model_name, est in (("gradient boosting", gbm), ("MLP", mlp)):
        adapter = SklearnModel(est, input_shape=(m,), n_classes=2)
        t_full, expl = _timed(
            lambda a=adapter: explain(
                a,
                xs,
                ys,
                feature_names=names,
                method="shap",
                max_rows=ROWS,
                background_rows=BACKGROUND,
                seed=SEED,
            )
        )
        t_ours, (vals, _, algo) = _timed(lambda a=adapter: shap_values(a, xs, bg, seed=SEED))
        ours = _global(vals)
        out.append(
            {
                "model": model_name,
                "tool": "mlsecops explain (whole)",
                "seconds": round(t_full, 2),
                "algorithm": expl.method,
            }
        )
        out.append(
            {
                "model": model_name,
                "tool": "mlsecops SHAP part",
                "seconds": round(t_ours, 2),
                "algorithm": algo,
            }
        )
        direct: list[tuple[str, Callable[[], np.ndarray]]] = []
        if model_name == "gradient boosting":

            def tree(est: Any = est) -> np.ndarray:
                te = shap.TreeExplainer(
                    est, data=bg, model_output="probability", feature_perturbation="interventional"
                )
                return np.asarray(te.shap_values(xs, check_additivity=False))

            direct.append(("shap TreeExplainer", tree))
        else:

            def perm(est: Any = est) -> np.ndarray:
                pe = shap.explainers.Permutation(
                    est.predict_proba, shap.maskers.Independent(bg, max_samples=BACKGROUND), seed=SEED
                )
                return np.asarray(pe(xs, max_evals=10 * m, silent=True).values)

            def auto(est: Any = est) -> np.ndarray:
                ae = shap.Explainer(est.predict_proba, bg)
                return np.asarray(ae(xs, silent=True).values)

            direct += [("shap Permutation", perm), ("shap Explainer (auto)", auto)]
        for tool, fn in direct:
            t, vals_d = _timed(fn)
            theirs = _global(vals_d)
            out.append(
                {
                    "model": model_name,
                    "tool": tool,
                    "seconds": round(t, 2),
                    "max_abs_diff_vs_ours": round(float(np.abs(theirs - ours).max()), 5),
                    "same_ranking": bool(np.array_equal(np.argsort(-theirs), np.argsort(-ours))),
                }
            )
            print(out[-1], flush=True)
    return {"rows": out, "n_rows": ROWS, "background": BACKGROUND, "features": names}
