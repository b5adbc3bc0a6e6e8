"""The guard's verified numpy kernels: the estimator's own numbers, or no kernel at all."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from mlsecops.runtime._kernels import linear_kernel


def _fit(est, x, y):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a few iterations: fitted arrays are all a kernel needs
        return est.fit(x[:300], y[:300])


@pytest.mark.parametrize("loader", [load_digits, load_breast_cancer], ids=["multiclass", "binary"])
@pytest.mark.parametrize("intercept", [True, False])
def test_logistic_kernel_reproduces_predict_proba(loader, intercept: bool) -> None:  # type: ignore[no-untyped-def]
    x, y = loader(return_X_y=True)
    est = _fit(LogisticRegression(max_iter=20, fit_intercept=intercept), x, y)
    kernel = linear_kernel(est, x.shape[1], len(est.classes_))
    assert kernel is not None
    extreme = np.vstack([x[:50], x[:50] * 1e6, -x[:50] * 1e6])
    for rows in (x, extreme, x[:1]):
        assert np.abs(kernel(rows) - est.predict_proba(rows)).max() <= 1e-12


def test_other_estimators_get_no_kernel() -> None:
    x, y = load_digits(return_X_y=True)
    assert linear_kernel(_fit(RandomForestClassifier(n_estimators=5), x, y), 64, 10) is None


def test_a_lookalike_subclass_gets_no_kernel() -> None:
    """A subclass may answer differently from the formula: only the exact classes qualify."""

    class Shifted(LogisticRegression):
        def predict_proba(self, X):  # type: ignore[no-untyped-def]
            return super().predict_proba(X)[:, ::-1]

    x, y = load_digits(return_X_y=True)
    assert linear_kernel(_fit(Shifted(max_iter=20), x, y), 64, 10) is None


def test_a_kernel_that_disagrees_is_not_used() -> None:
    """Fitted arrays that do not match what predict_proba computes (a tampered object): no kernel."""
    x, y = load_digits(return_X_y=True)
    est = _fit(LogisticRegression(max_iter=20), x, y)
    original = est.predict_proba
    est.predict_proba = lambda rows: original(rows)[:, ::-1]  # instance attribute: the object lies
    assert linear_kernel(est, 64, 10) is None


def test_the_kernel_is_frozen_at_activation() -> None:
    x, y = load_breast_cancer(return_X_y=True)
    est = _fit(LogisticRegression(max_iter=20), x, y)
    kernel = linear_kernel(est, x.shape[1], 2)
    assert kernel is not None
    before = kernel(x[:5])
    est.coef_[:] = 0.0
    est.intercept_[:] = 0.0
    assert np.array_equal(kernel(x[:5]), before)


def test_wrong_widths_or_class_counts_get_no_kernel() -> None:
    x, y = load_digits(return_X_y=True)
    est = _fit(LogisticRegression(max_iter=20), x, y)
    assert linear_kernel(est, 63, 10) is None
    assert linear_kernel(est, 64, 9) is None
