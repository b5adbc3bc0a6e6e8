"""The attribution back ends of ``assess.explain``: permutation importance, marginal ablation, SHAP.

Each works on a ``ModelAdapter`` through ``predict_proba`` only, so every framework is explained the same
way. SHAP (the optional ``shap`` package, extra ``mlsecops[explain]``) uses its exact ``TreeExplainer``
when the adapter wraps a scikit-learn tree model (the raw estimator is ``SklearnModel.estimator``), and
its model-agnostic permutation explainer over a background sample otherwise; both explain class
probabilities, so the two paths agree in units.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from mlsecops.core.errors import InputError
from mlsecops.models.interface import ModelAdapter

__all__ = [
    "TREE_MODELS",
    "ablation_values",
    "feature_name_warnings_off",
    "permutation_scores",
    "shap_values",
    "tree_estimator",
]

TREE_MODELS = (
    "DecisionTreeClassifier",
    "ExtraTreeClassifier",
    "RandomForestClassifier",
    "ExtraTreesClassifier",
    "GradientBoostingClassifier",
)
"""scikit-learn classifiers SHAP's ``TreeExplainer`` explains exactly (probability output)."""
SHAP_MAX_EVALS_PER_FEATURE = 10
"""Model evaluations per feature and row for the permutation explainer (at least ``2 * features + 1``):
bounds the cost of model-agnostic SHAP to ``rows x features x 10 x background`` predictions."""


@contextlib.contextmanager
def feature_name_warnings_off() -> Iterator[None]:
    """Silence scikit-learn's "X does not have valid feature names" while explaining.

    Adapters hand estimators arrays; a model fitted on a DataFrame warns on every one of the thousands
    of batches an explainer sends, burying the report. Only that warning is silenced.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="X does not have valid feature names", category=UserWarning)
        yield


def accuracy_drop_scorer(model: ModelAdapter) -> Callable[[Any, np.ndarray, np.ndarray], float]:
    """A scikit-learn scorer: accuracy of the adapter's predicted class against integer labels."""

    def score(_estimator: Any, x: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean(model.predict_proba(np.asarray(x)).argmax(axis=1) == y))

    return score


class _Predictor:
    """The smallest object ``sklearn.inspection.permutation_importance`` accepts as an estimator."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> _Predictor:  # never called: the model is fitted
        return self


def permutation_scores(
    model: ModelAdapter, x: np.ndarray, y: np.ndarray, *, n_repeats: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Permutation importance (scikit-learn): the drop in accuracy when one feature is shuffled.

    Returns:
        ``(mean, std)`` over ``n_repeats`` shuffles, one value per feature.
    """
    from sklearn.inspection import permutation_importance

    res = permutation_importance(
        _Predictor(),
        x,
        y,
        scoring=accuracy_drop_scorer(model),
        n_repeats=n_repeats,
        random_state=seed,
        n_jobs=None,
    )
    return np.asarray(res.importances_mean, dtype=np.float64), np.asarray(
        res.importances_std, dtype=np.float64
    )


def ablation_values(
    model: ModelAdapter, x: np.ndarray, background: np.ndarray, classes: np.ndarray
) -> np.ndarray:
    """Local attributions without SHAP: ``p(x) - E_b[p(x with feature j from b)]`` per row and feature.

    ``classes`` holds the class explained for each row. Exact for additive models; cost
    ``rows x features x background`` predictions.
    """
    n, m = x.shape
    base = model.predict_proba(x)[np.arange(n), classes]
    out = np.zeros((n, m))
    for i in range(n):
        batch = np.repeat(x[i : i + 1], len(background) * m, axis=0).reshape(m, len(background), m)
        for j in range(m):
            batch[j, :, j] = background[:, j]
        proba = model.predict_proba(batch.reshape(-1, m).astype(x.dtype))[:, classes[i]]
        out[i] = base[i] - proba.reshape(m, len(background)).mean(axis=1)
    return out


def tree_estimator(model: ModelAdapter) -> Any | None:
    """The raw scikit-learn tree model behind a ``SklearnModel`` adapter, or ``None``."""
    est = getattr(model, "estimator", None)
    if est is None or type(est).__name__ not in TREE_MODELS:
        return None
    return est if type(est).__module__.startswith("sklearn.") else None


def shap_values(
    model: ModelAdapter, x: np.ndarray, background: np.ndarray, *, seed: int
) -> tuple[np.ndarray, np.ndarray, str]:
    """SHAP values of every class probability: exact for scikit-learn trees, sampled otherwise.

    Returns:
        ``(values, base, algorithm)``: values of shape ``(rows, features, classes)``, the expected
        probability per class, and ``"tree"`` or ``"permutation"``.

    Raises:
        InputError: the ``shap`` package is missing (``pip install 'mlsecops[explain]'``).
    """
    try:
        import shap
    except ImportError as err:
        raise InputError("SHAP explanations need the shap package: pip install 'mlsecops[explain]'") from err
    est = tree_estimator(model)
    if est is not None:
        explainer = shap.TreeExplainer(
            est, data=background, model_output="probability", feature_perturbation="interventional"
        )
        values = _per_class(np.asarray(explainer.shap_values(x, check_additivity=False)), model.n_classes)
        base = np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64))
        return values, _full_base(base, model.n_classes), "tree"
    masker = shap.maskers.Independent(background, max_samples=len(background))
    m = x.shape[1]
    explainer = shap.explainers.Permutation(
        lambda z: model.predict_proba(np.asarray(z, dtype=x.dtype)), masker, seed=seed
    )
    result = explainer(x, max_evals=max(2 * m + 1, SHAP_MAX_EVALS_PER_FEATURE * m), silent=True)
    values = _per_class(np.asarray(result.values), model.n_classes)
    base = np.asarray(result.base_values, dtype=np.float64)
    base = base.mean(axis=0) if base.ndim == 2 else np.atleast_1d(base)
    return values, _full_base(base, model.n_classes), "permutation"


def _per_class(values: np.ndarray, n_classes: int) -> np.ndarray:
    """SHAP's outputs as ``(rows, features, classes)``, whatever layout the explainer returned."""
    if values.ndim == 2:  # one output: the positive class of a binary model
        return np.stack([-values, values], axis=2) if n_classes == 2 else values[:, :, None]
    if values.ndim == 3 and values.shape[0] == n_classes and values.shape[2] != n_classes:
        return np.transpose(values, (1, 2, 0))  # older list-of-classes layout
    return values


def _full_base(base: np.ndarray, n_classes: int) -> np.ndarray:
    if base.size == 1 and n_classes == 2:
        return np.array([1.0 - float(base[0]), float(base[0])])
    return base
