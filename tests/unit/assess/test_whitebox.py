from __future__ import annotations

import itertools

import numpy as np
import pytest

from mlsecops.assess.apgd import checkpoints
from mlsecops.assess.attack import make_attack
from mlsecops.assess.constraints import FeatureConstraints
from mlsecops.core.errors import InputError

WHITE_BOX = [
    ("fgsm", {"norm": "linf"}, 0.1),
    ("fgsm", {"norm": "l2"}, 1.0),
    ("pgd", {"norm": "linf", "steps": 20, "restarts": 2}, 0.1),
    ("pgd", {"norm": "l2", "steps": 20, "restarts": 2}, 1.0),
    ("pgd", {"norm": "linf", "steps": 10, "restarts": 4, "rel_step": 0.25}, 0.1),
    ("pgd", {"norm": "linf", "steps": 10, "restarts": 2, "loss": "margin"}, 0.1),
    ("pgd", {"norm": "l2", "steps": 10, "restarts": 2, "loss": "dlr"}, 1.0),
    ("apgd", {"norm": "linf", "steps": 20}, 0.1),
    ("apgd", {"norm": "l2", "steps": 20}, 1.0),
]


def _norms(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = (a - b).reshape(len(a), -1)
    return np.abs(d).max(axis=1), np.linalg.norm(d, axis=1)


@pytest.mark.parametrize(("name", "params", "eps"), WHITE_BOX)
def test_attack_lowers_accuracy_and_stays_in_ball_and_bounds(mlp, digits, name, params, eps):
    x, y = digits.x_test, digits.y_test
    res = make_attack(name, **params).generate(mlp, x, y, eps=eps, seed=0)
    assert res.clean_accuracy > 0.9
    assert res.robust_accuracy < res.clean_accuracy - 0.2, (name, res.robust_accuracy)
    linf, l2 = _norms(res.x_adv, x)
    assert (linf if params["norm"] == "linf" else l2).max() <= eps * (1 + 1e-5)
    assert res.x_adv.min() >= 0.0 and res.x_adv.max() <= 1.0
    # what the result says is fooled really is misclassified
    pred = mlp.predict_proba(res.x_adv).argmax(axis=1)
    np.testing.assert_array_equal(pred != y, res.fooled)


def test_iterative_attacks_are_at_least_as_strong_as_fgsm(mlp, digits):
    x, y = digits.x_test, digits.y_test
    fgsm = make_attack("fgsm").generate(mlp, x, y, eps=0.1)
    pgd = make_attack("pgd", steps=20, restarts=2).generate(mlp, x, y, eps=0.1)
    apgd = make_attack("apgd", steps=30).generate(mlp, x, y, eps=0.1)
    assert pgd.robust_accuracy <= fgsm.robust_accuracy
    assert apgd.robust_accuracy <= fgsm.robust_accuracy


def test_same_seed_same_result_and_images_work(cnn, digits):
    x, y = digits.x_test[:60].reshape(-1, 1, 8, 8), digits.y_test[:60]
    a = make_attack("pgd", steps=10, restarts=2).generate(cnn, x, y, eps=0.1, seed=3)
    b = make_attack("pgd", steps=10, restarts=2).generate(cnn, x, y, eps=0.1, seed=3)
    np.testing.assert_array_equal(a.x_adv, b.x_adv)
    assert a.x_adv.shape == x.shape and a.robust_accuracy < a.clean_accuracy


def test_tabular_constraints_hold(mlp, digits):
    x, y = digits.x_test, digits.y_test
    # integer features must hold whole values in the data: use a scaled copy where feature 0..7 are 0/1
    lower = np.zeros(64, dtype=np.float32)
    upper = np.ones(64, dtype=np.float32)
    upper[10:20] = x[:, 10:20].max(axis=0)  # tighter per-feature bounds
    lower[30:34] = x[:, 30:34].min(axis=0)
    immutable = tuple(range(20, 30))
    integer = tuple(range(60, 64))
    xi = x.copy()
    xi[:, 60:64] = np.round(xi[:, 60:64])
    cons = FeatureConstraints(lower=tuple(lower), upper=tuple(upper), integer=integer, immutable=immutable)
    for name, norm, eps in (
        ("pgd", "linf", 0.5),
        ("pgd", "l2", 2.0),
        ("apgd", "linf", 0.5),
        ("fgsm", "linf", 0.5),
    ):
        res = (
            make_attack(name, norm=norm, steps=10).generate(mlp, xi, y, eps=eps, constraints=cons)
            if name != "fgsm"
            else make_attack(name, norm=norm).generate(mlp, xi, y, eps=eps, constraints=cons)
        )
        adv = res.x_adv
        assert np.all(adv >= lower - 1e-6) and np.all(adv <= upper + 1e-6)
        np.testing.assert_array_equal(adv[:, 20:30], xi[:, 20:30])
        np.testing.assert_array_equal(adv[:, 60:64], np.round(adv[:, 60:64]))
        assert res.fooled.sum() > (~res.clean_correct).sum()  # it still finds adversarial examples


def test_white_box_attack_on_black_box_model_is_refused(logreg, digits):
    with pytest.raises(InputError, match="white-box"):
        make_attack("pgd").generate(logreg, digits.x_test, digits.y_test, eps=0.1)


def test_bad_inputs_give_clear_errors(mlp, digits):
    x, y = digits.x_test, digits.y_test
    with pytest.raises(InputError, match="expects"):
        make_attack("fgsm").generate(mlp, x[:, :10], y, eps=0.1)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        make_attack("fgsm").generate(mlp, bad, y, eps=0.1)
    with pytest.raises(InputError, match="eps"):
        make_attack("fgsm").generate(mlp, x, y, eps=-1)
    with pytest.raises(InputError, match="outside the feature bounds"):
        make_attack("fgsm").generate(mlp, x + 2, y, eps=0.1, constraints=FeatureConstraints())
    with pytest.raises(InputError, match="unknown attack"):
        make_attack("nonsense")
    with pytest.raises(InputError, match="norm"):
        make_attack("fgsm", norm="l7").generate(mlp, x, y, eps=0.1)


def test_apgd_checkpoints_follow_the_schedule():
    marks = checkpoints(100)
    assert marks[0] == 22 and marks[1] == 41  # p1=0.22, p2=0.22+0.19
    assert all(b > a for a, b in itertools.pairwise(marks)) and marks[-1] < 100


class _CountingNet:
    """Wraps a torch module and counts forward calls and the rows they saw."""

    def __init__(self, net):
        self.net, self.calls, self.rows = net, 0, 0

    def __call__(self, x):
        self.calls += 1
        self.rows += len(x)
        return self.net(x)


def _counting(adapter):
    from mlsecops.models import TorchModel

    model = TorchModel(adapter.module, input_shape=adapter.input_shape)
    counter = _CountingNet(model.module)
    model.module = counter  # TorchModel calls self.module(x) on every pass
    return model, counter


def test_fgsm_costs_one_gradient_pass_and_one_check(mlp, digits):
    model, counter = _counting(mlp)
    res = make_attack("fgsm").generate(model, digits.x_test, digits.y_test, eps=0.1)
    # one forward (with backward) that also gives the clean labels, one forward to check the result
    assert counter.calls == 2 and counter.rows == 2 * len(digits.x_test)
    assert res.robust_accuracy < res.clean_accuracy
    assert np.all(res.queries == 1)


def test_pgd_reads_its_verdict_from_its_own_passes(mlp, digits):
    model, counter = _counting(mlp)
    x, y = digits.x_test, digits.y_test
    res = make_attack("pgd", steps=10, restarts=4, rel_step=0.25).generate(model, x, y, eps=0.1)
    # clean pass + at most 10 gradient passes and one closing check per restart; no re-evaluation
    assert counter.calls <= 1 + 4 * 11
    assert counter.rows == res.queries.sum()
    assert res.queries.max() <= 1 + 4 * 11
    pred = mlp.predict_proba(res.x_adv).argmax(axis=1)
    np.testing.assert_array_equal(pred != y, res.fooled)


def test_short_restarts_beat_one_long_run_at_the_same_gradient_budget(mlp, digits):
    x, y = digits.x_test, digits.y_test
    long = [
        make_attack("pgd", steps=40, restarts=1, rel_step=0.1).generate(mlp, x, y, eps=0.1, seed=s)
        for s in range(3)
    ]
    short = [
        make_attack("pgd", steps=10, restarts=4, rel_step=0.25).generate(mlp, x, y, eps=0.1, seed=s)
        for s in range(3)
    ]
    # same 40 gradient passes per example; 4 random starts of 10 steps find more adversarial examples
    assert np.mean([r.robust_accuracy for r in short]) < np.mean([r.robust_accuracy for r in long])


def test_non_finite_or_misshapen_scores_are_model_errors(digits):
    import torch

    from mlsecops.models import ModelError, TorchModel

    x, y = digits.x_test[:20], digits.y_test[:20]

    class NanNet(torch.nn.Module):
        def forward(self, t):
            return torch.full((len(t), 10), float("nan")) + 0 * t.sum()

    class WideNet(torch.nn.Module):
        def forward(self, t):
            return torch.zeros((len(t), 12)) + 0 * t.sum()

    nan_model = TorchModel(NanNet(), input_shape=(64,), n_classes=10)
    wide_model = TorchModel(WideNet(), input_shape=(64,), n_classes=10)
    for name in ("fgsm", "pgd", "apgd"):
        with pytest.raises(ModelError, match="NaN"):
            make_attack(name, steps=2).generate(nan_model, x, y, eps=0.1) if name != "fgsm" else make_attack(
                name
            ).generate(nan_model, x, y, eps=0.1)
        with pytest.raises(ModelError, match="shape"):
            make_attack(name, steps=2).generate(wide_model, x, y, eps=0.1) if name != "fgsm" else make_attack(
                name
            ).generate(wide_model, x, y, eps=0.1)
