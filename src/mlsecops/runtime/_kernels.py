"""Verified numpy kernels for models whose ``predict_proba`` is a few array operations.

scikit-learn's ``predict_proba`` spends most of a one-row call validating its input (dtype, finiteness,
feature names, dataframe detection): about 20 times the arithmetic for a logistic regression on 64
features. The guard has already validated every row (shape, dtype, finite values, the data profile),
so for the estimators listed here it evaluates the same formula on the estimator's own fitted arrays.

A kernel is used only after it reproduced the estimator's ``predict_proba`` on probe rows (ordinary,
extreme and zero rows) to within :data:`KERNEL_TOLERANCE`; any other estimator, or a kernel that
disagrees, keeps the estimator's own method. The arrays are copied at activation: a later change to
the estimator object cannot make the kernel answer for a different model than the one verified.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["KERNEL_TOLERANCE", "linear_kernel"]

log = logging.getLogger("mlsecops.runtime")

KERNEL_TOLERANCE = 1e-12
"""Largest absolute difference from the estimator's own ``predict_proba`` on the probe rows (float64
rounding of the same formula; anything larger means the kernel is not the estimator's formula)."""
PROBE_ROWS = 64
"""Random probe rows per scale at activation (three scales, plus a zero row)."""

_LOGISTIC = (
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.linear_model._logistic.LogisticRegressionCV",
)


def _qualname(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _logistic(estimator: Any, n_features: int, n_classes: int) -> Callable[[np.ndarray], np.ndarray] | None:
    coef = np.asarray(getattr(estimator, "coef_", None), dtype=np.float64)
    intercept = np.asarray(getattr(estimator, "intercept_", None), dtype=np.float64)
    classes = getattr(estimator, "classes_", None)
    if classes is None or len(classes) != n_classes or coef.ndim != 2 or coef.shape[1] != n_features:
        return None
    from scipy.special import expit  # scikit-learn's own logistic function (scipy comes with it)

    weights = np.array(coef.T, order="C", copy=True)  # (features, outputs): one product per batch
    bias = np.array(intercept.reshape(-1), copy=True)
    if n_classes == 2 and coef.shape[0] == 1 and bias.shape == (1,):

        def binary(x: np.ndarray) -> np.ndarray:
            p1 = expit(x @ weights + bias)  # (n, 1)
            return np.hstack([1.0 - p1, p1])

        return binary
    if n_classes > 2 and coef.shape[0] == n_classes and bias.shape == (n_classes,):

        def softmax(x: np.ndarray) -> np.ndarray:
            z = x @ weights + bias
            z -= z.max(axis=1, keepdims=True)
            np.exp(z, out=z)
            z /= z.sum(axis=1, keepdims=True)
            return z

        return softmax
    return None


def _probes(n_features: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    rows = [np.zeros((1, n_features))]
    for scale in (1.0, 30.0, 1e4):
        rows.append(rng.normal(0.0, scale, size=(PROBE_ROWS, n_features)))
    return np.vstack(rows)


def linear_kernel(
    estimator: Any, n_features: int, n_classes: int
) -> Callable[[np.ndarray], np.ndarray] | None:
    """A verified kernel computing ``estimator.predict_proba`` on ``(n, n_features)`` float64 rows.

    Args:
        estimator: a fitted scikit-learn estimator (loaded through the scanner).
        n_features: the width of a row.
        n_classes: the number of classes the estimator answers.

    Returns:
        The kernel, or None when the estimator is not one of the supported types or the kernel does
        not reproduce its ``predict_proba`` on the probe rows.
    """
    if _qualname(estimator) not in _LOGISTIC:
        return None
    kernel = _logistic(estimator, n_features, n_classes)
    if kernel is None:
        return None
    probes = _probes(n_features)
    try:
        want = np.asarray(estimator.predict_proba(probes), dtype=np.float64)
        got = kernel(probes)
    except Exception as err:  # a kernel that cannot even run is simply not used
        log.debug("no kernel for %s: %s", _qualname(estimator), err)
        return None
    if want.shape != got.shape or not np.all(np.abs(want - got) <= KERNEL_TOLERANCE):
        log.debug("the kernel disagrees with %s.predict_proba: not used", _qualname(estimator))
        return None
    return kernel
