"""``assess.explain``: the planted important feature ranks first, local and per-group explanations, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from tests._deps import require

from mlsecops.assess.explain import MIN_GROUP_ROWS, explain, explanation_report
from mlsecops.core.errors import InputError
from mlsecops.models import SklearnModel

NAMES = ["noise_a", "planted", "weak", "noise_b", "sex"]


def _data(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5)).astype(np.float32)
    x[:, 4] = rng.random(n) < 0.5
    y = (2.0 * x[:, 1] + 0.4 * x[:, 2] + 0.3 * rng.normal(size=n) > 0).astype(int)
    return x, y


@pytest.mark.parametrize(
    "estimator",
    [
        LogisticRegression(),
        GradientBoostingClassifier(random_state=0),
        RandomForestClassifier(30, random_state=0),
    ],
    ids=["logreg", "gbm", "forest"],
)
def test_planted_feature_ranks_first_by_permutation(estimator: object) -> None:
    x, y = _data()
    model = SklearnModel(estimator.fit(x, y))  # type: ignore[attr-defined]
    expl = explain(model, x, y, feature_names=NAMES, method="permutation", n_repeats=3)
    assert expl.method == "permutation"
    ranked = [n for n, _ in expl.ranking.ranked()]
    assert ranked[0] == "planted"
    assert expl.ranking.importance[NAMES.index("planted")] > 0.3
    assert expl.accuracy > 0.9


def test_shap_tree_is_exact_and_ranks_the_planted_feature_first() -> None:
    require("shap", "explain")
    x, y = _data()
    model = SklearnModel(GradientBoostingClassifier(random_state=0).fit(x, y))
    expl = explain(model, x, y, feature_names=NAMES, rows=[0, 5], method="shap", max_rows=300)
    assert expl.method == "shap-tree"
    assert expl.ranking.ranked()[0][0] == "planted"
    for le in expl.local:  # SHAP values add up to the prediction minus the expected value (efficiency)
        assert sum(le.contributions.values()) == pytest.approx(le.probability - le.base, abs=1e-4)
        assert max(le.contributions, key=lambda k: abs(le.contributions[k])) == "planted"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_shap_model_agnostic_for_an_mlp() -> None:  # slow: shap's first call compiles with numba
    require("shap", "explain")
    x, y = _data(400)
    mlp = MLPClassifier(hidden_layer_sizes=(16,), max_iter=400, random_state=0).fit(x, y)
    expl = explain(
        SklearnModel(mlp), x, y, feature_names=NAMES, rows=[1], method="shap", max_rows=60, background_rows=30
    )
    assert expl.method == "shap-permutation"
    assert expl.ranking.ranked()[0][0] == "planted"
    le = expl.local[0]
    assert sum(le.contributions.values()) == pytest.approx(le.probability - le.base, abs=0.02)


def test_local_ablation_without_shap_names_the_planted_feature() -> None:
    x, y = _data()
    model = SklearnModel(LogisticRegression().fit(x, y))
    rows = np.argsort(-np.abs(x[:, 1]))[:3].tolist()  # rows where the planted feature is far from 0
    expl = explain(model, x, y, feature_names=NAMES, rows=rows, method="permutation")
    for le in expl.local:
        top = max(le.contributions, key=lambda k: abs(le.contributions[k]))
        assert top == "planted"
        assert le.contributions["planted"] > 0  # it pushed towards the predicted class


def test_groups_ranked_and_small_group_reported_too_small() -> None:
    x, y = _data(500)
    groups = np.where(np.arange(500) < MIN_GROUP_ROWS - 5, "tiny", np.where(x[:, 4] > 0.5, "f", "m"))
    model = SklearnModel(LogisticRegression().fit(x, y))
    expl = explain(model, x, y, feature_names=NAMES, sensitive=groups, method="permutation", n_repeats=2)
    by = {g.group: g for g in expl.groups}
    assert by["tiny"].ranking is None and by["tiny"].n == MIN_GROUP_ROWS - 5
    assert by["f"].ranking is not None and by["f"].ranking.ranked()[0][0] == "planted"
    report = explanation_report(expl, subject="m")
    rows = {r["group"]: r for r in report.data["group_rankings"]}  # type: ignore[union-attr,index]
    assert "too small" in rows["tiny"]["status"]  # type: ignore[index]


def test_model_deciding_on_the_sensitive_feature_gets_a_finding() -> None:
    x, _ = _data()
    y = (x[:, 4] > 0.5).astype(int)  # the label is the group: the model learns to decide on it
    model = SklearnModel(GradientBoostingClassifier(random_state=0).fit(x, y))
    expl = explain(
        model, x, y, feature_names=NAMES, sensitive=x[:, 4], sensitive_name="sex", method="permutation"
    )
    report = explanation_report(expl, subject="m")
    assert report.metrics["sensitive_rank"] == 1
    assert [f.location["feature"] for f in report.findings] == ["sex"]
    assert report.figures  # charts for the HTML report
    honest = explain(
        SklearnModel(LogisticRegression().fit(*_data())),
        *_data(),
        feature_names=NAMES,
        sensitive_name="sex",
        method="permutation",
    )
    assert not explanation_report(honest, subject="m").findings


def test_same_seed_same_explanation() -> None:
    x, y = _data()
    model = SklearnModel(RandomForestClassifier(20, random_state=0).fit(x, y))
    a = explain(model, x, y, method="permutation", rows=[1], seed=3)
    b = explain(model, x, y, method="permutation", rows=[1], seed=3)
    assert np.array_equal(a.ranking.importance, b.ranking.importance)
    assert a.local == b.local


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "lime"}, "method must be one of"),
        ({"rows": [10_000]}, "row 10000 is not in the data"),
        ({"feature_names": ["a"]}, "5 features but 1 feature names"),
        ({"sensitive": np.arange(600)}, "distinct values"),
        ({"sensitive": np.zeros(3)}, "sensitive values"),
    ],
)
def test_bad_input_is_a_clear_error(kwargs: dict[str, object], message: str) -> None:
    x, y = _data()
    model = SklearnModel(LogisticRegression().fit(x, y))
    with pytest.raises(InputError, match=message):
        explain(model, x, y, **{"method": "permutation", **kwargs})  # type: ignore[arg-type]
