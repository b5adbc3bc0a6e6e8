"""``assess.explain_integrity``: planted scaffolded models (Slack et al. 2020) are flagged, honest ones not.

The scaffolds decide on the sensitive column on real rows and on an unrelated column on the inputs
LIME and SHAP generate (``assess._scaffold``). Honest models: logistic regression and gradient boosting
trained on the labels, and a rule that decides on the sensitive column for every input (unfair, and
caught by the fairness audit, but not hiding anything: not flagged here).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tests import _fairness_data

from mlsecops.assess._scaffold import ScaffoldedClassifier, rule_classifier
from mlsecops.assess.explain_integrity import MIN_ROWS, assess_integrity, find_proxies, integrity_report
from mlsecops.core.errors import InputError
from mlsecops.models import SklearnModel

Data = tuple[np.ndarray, np.ndarray, list[str]]


def _synthetic(seed: int, n: int = 1200) -> Data:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    x[:, 0] = rng.random(n) < 0.4  # the sensitive column
    x[:, 5] = np.round(rng.uniform(18, 80, size=n))  # age: the innocuous column the scaffold shows
    y = (x[:, 1] + 0.5 * x[:, 2] + 0.4 * rng.normal(size=n) > 0).astype(int)
    return x, y, ["group", "a", "b", "c", "d", "age"]


def _adapter(est: object, x: np.ndarray) -> SklearnModel:
    return SklearnModel(est, input_shape=(x.shape[1],), n_classes=2)


def _scaffold(x: np.ndarray, names: list[str], sensitive: str, seed: int) -> ScaffoldedClassifier:
    return ScaffoldedClassifier(
        sensitive=names.index(sensitive), innocuous=names.index("age"), n_estimators=50, seed=seed
    ).fit(x)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scaffold_flagged_on_synthetic_data(seed: int) -> None:
    x, _, names = _synthetic(seed)
    scaffold = _scaffold(x, names, "group", seed)
    assert scaffold.biased_share(x) > 0.9  # the attack works: biased on real rows...
    result = assess_integrity(
        _adapter(scaffold, x), x, sensitive=[0], feature_names=names, max_rows=800, seed=seed
    )
    assert result.flagged
    group = next(g for g in result.groups if g.group == "group")
    assert group.in_distribution > 0.2
    assert "lime-gaussian" in group.hidden_from  # ...and hidden from LIME's perturbations
    report = integrity_report(result, subject="scaffold")
    assert report.verdict == "scaffolded" and report.metrics["scaffold_flagged"] == 1.0
    assert report.findings[0].location["feature"] == "group"


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("kind", ["logreg", "gbm", "rule-on-sensitive"])
def test_honest_models_not_flagged_on_synthetic_data(kind: str, seed: int) -> None:
    x, y, names = _synthetic(seed)
    est: object
    if kind == "logreg":
        est = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    elif kind == "gbm":
        est = GradientBoostingClassifier(random_state=seed).fit(x, y)
    else:
        est = rule_classifier(x, 0)
    result = assess_integrity(
        _adapter(est, x), x, sensitive=[0], feature_names=names, max_rows=800, seed=seed
    )
    assert not result.flagged, result.groups
    if kind == "rule-on-sensitive":  # it does decide on the group, openly, on both distributions
        g = result.groups[0]
        assert g.in_distribution > 0.2 and min(g.perturbed.values()) > 0.2
    assert integrity_report(result, subject=kind).verdict == "consistent"


def test_bias_moved_into_a_proxy_is_still_flagged() -> None:
    x, _, names = _synthetic(4)
    rng = np.random.default_rng(4)
    x[:, 3] = x[:, 0] * 2.0 + 0.3 * rng.normal(size=len(x))  # "c" tracks the group closely
    assert 3 in find_proxies(x, [0])
    scaffold = ScaffoldedClassifier(sensitive=3, innocuous=5, n_estimators=50, seed=4).fit(x)  # decides on c
    result = assess_integrity(
        _adapter(scaffold, x), x, sensitive=[0], feature_names=names, max_rows=800, seed=4
    )
    assert "c" in result.proxies
    assert result.flagged
    assert any(g.hidden_from for g in result.groups if "c" in g.group)


@pytest.mark.timeout(240)
@pytest.mark.parametrize(
    ("dataset", "sensitive", "seed"),
    [("arrests", "colour", 0), ("arrests", "sex", 1), ("flchain", "female", 2)],
)
def test_scaffold_and_honest_models_on_real_data(dataset: str, sensitive: str, seed: int) -> None:
    load: Callable[[], Data] = getattr(_fairness_data, dataset)
    x, y, names = load()
    s = names.index(sensitive)
    scaffold = _scaffold(x, names, sensitive, seed)
    flagged = assess_integrity(
        _adapter(scaffold, x), x, sensitive=[s], feature_names=names, max_rows=800, seed=seed
    )
    assert flagged.flagged
    honest = GradientBoostingClassifier(n_estimators=50, random_state=seed).fit(x, y)
    clean = assess_integrity(
        _adapter(honest, x), x, sensitive=[s], feature_names=names, max_rows=800, seed=seed
    )
    assert not clean.flagged, clean.groups


def test_bad_input_is_a_clear_error() -> None:
    x, y, _ = _synthetic(0, n=300)
    model = _adapter(LogisticRegression().fit(x, y), x)
    with pytest.raises(InputError, match=f"at least {MIN_ROWS} rows"):
        assess_integrity(model, x[: MIN_ROWS - 1], sensitive=[0])
    with pytest.raises(InputError, match="not among the 6 features"):
        assess_integrity(model, x, sensitive=[9])
    with pytest.raises(InputError, match="at least one sensitive"):
        assess_integrity(model, x, sensitive=[])
