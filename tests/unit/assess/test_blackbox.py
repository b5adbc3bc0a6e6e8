from __future__ import annotations

import numpy as np
import pytest

from mlsecops.assess.attack import make_attack
from mlsecops.assess.constraints import FeatureConstraints
from mlsecops.assess.square import square_fraction
from mlsecops.core.checks import Target, get_check
from mlsecops.core.errors import InputError


@pytest.mark.parametrize(
    ("name", "params", "eps"),
    [
        ("square", {"max_queries": 300}, 0.2),
        ("hopskipjump", {"norm": "l2", "max_queries": 600}, 1.0),
        ("hopskipjump", {"norm": "linf", "max_queries": 600}, 0.2),
    ],
)
def test_black_box_attack_lowers_accuracy_within_ball_and_budget(logreg, digits, name, params, eps):
    x, y = digits.x_test[:60], digits.y_test[:60]
    res = make_attack(name, **params).generate(logreg, x, y, eps=eps, seed=0)
    assert res.clean_accuracy > 0.9
    assert res.robust_accuracy < res.clean_accuracy - 0.3, res.robust_accuracy
    d = (res.x_adv - x).reshape(len(x), -1)
    size = np.abs(d).max(axis=1) if res.norm == "linf" else np.linalg.norm(d, axis=1)
    assert size.max() <= eps * (1 + 1e-5)
    assert res.x_adv.min() >= 0 and res.x_adv.max() <= 1
    np.testing.assert_array_equal(logreg.predict_proba(res.x_adv).argmax(axis=1) != y, res.fooled)
    # queries are counted and the per-example budget (plus the clean query) is respected
    assert res.queries.min() >= 1 and res.queries.max() <= params["max_queries"] + 1


def test_black_box_attacks_respect_tabular_constraints(logreg, digits):
    x, y = digits.x_test[:40].copy(), digits.y_test[:40]
    x[:, 60:64] = np.round(x[:, 60:64])
    cons = FeatureConstraints(lower=0.0, upper=1.0, integer=(60, 61, 62, 63), immutable=tuple(range(20, 30)))
    for name, norm in (("square", "linf"), ("hopskipjump", "l2")):
        res = make_attack(name, norm=norm, max_queries=300).generate(logreg, x, y, eps=1.0, constraints=cons)
        np.testing.assert_array_equal(res.x_adv[:, 20:30], x[:, 20:30])
        np.testing.assert_array_equal(res.x_adv[:, 60:64], np.round(res.x_adv[:, 60:64]))
        assert res.x_adv.min() >= 0 and res.x_adv.max() <= 1


def test_square_is_seeded(logreg, digits):
    x, y = digits.x_test[:30], digits.y_test[:30]
    a = make_attack("square", max_queries=100).generate(logreg, x, y, eps=0.15, seed=5)
    b = make_attack("square", max_queries=100).generate(logreg, x, y, eps=0.15, seed=5)
    np.testing.assert_array_equal(a.x_adv, b.x_adv)
    np.testing.assert_array_equal(a.queries, b.queries)


def test_square_schedule_shrinks_and_rejects_l2():
    fracs = [square_fraction(0.1, i, 1000) for i in (0, 20, 100, 900)]
    assert fracs == sorted(fracs, reverse=True) and fracs[0] == 0.1
    with pytest.raises(InputError, match="supports norms"):
        make_attack("square", norm="l2").generate(None, np.zeros((1, 2)), np.zeros(1), eps=0.1)  # type: ignore[arg-type]


def test_black_box_check_on_sklearn_model_by_default(tmp_path, logreg, digits, monkeypatch):
    import joblib

    model_path = tmp_path / "lr.joblib"
    joblib.dump(logreg.estimator, model_path)
    data_path = tmp_path / "d.npz"
    np.savez(data_path, X=digits.x_test[:30], y=digits.y_test[:30])
    rep = (
        get_check("assess.robustness")
        .create()
        .run(
            Target(
                paths=(model_path, data_path),
                options={"eps": [0.2], "max_queries": 200},
            )
        )
    )
    assert "robust_accuracy@square_linf_0.2" in rep.metrics
    assert rep.metrics["robust_accuracy@square_linf_0.2"] < rep.metrics["clean_accuracy"]
    assert rep.data["robustness"][0]["median_queries"] is not None


class _Counting:
    """An adapter that counts every row it is asked about."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.rows = 0

    @property
    def n_classes(self) -> int:
        return self.inner.n_classes

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.inner.input_shape

    def predict_proba(self, x):
        self.rows += len(x)
        return self.inner.predict_proba(x)


@pytest.mark.parametrize(("name", "norm"), [("square", "linf"), ("hopskipjump", "l2")])
def test_reported_queries_are_the_rows_the_model_saw(logreg, digits, name, norm):
    # regression: HopSkipJump once counted a batch of probes for one example as a single query
    x, y = digits.x_test[:10], digits.y_test[:10]
    model = _Counting(logreg)
    res = (
        make_attack(name, norm=norm, max_queries=200, stop_at_eps=False).generate(model, x, y, eps=0.5)
        if name == "hopskipjump"
        else make_attack(name, max_queries=200).generate(model, x, y, eps=0.05)
    )
    # every row the model saw is attributed to one example, except the final check of the results
    assert int(res.queries.sum()) == model.rows - len(x)


def test_hopskipjump_returns_its_closest_point(logreg, digits):
    # regression: without early stopping the attack once returned its last boundary point, which can be
    # farther than the closest one it found, so examples broken within eps were reported as robust
    x, y = digits.x_test[:15], digits.y_test[:15]
    res = make_attack("hopskipjump", norm="l2", max_queries=800, stop_at_eps=False).generate(
        logreg, x, y, eps=1.0
    )
    within = res.extra["distance"] <= 1.0
    assert within.any()
    assert np.all(res.fooled[within])
