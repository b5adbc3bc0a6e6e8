"""Output hardening: what each mode reveals, and its priced utility cost on real test data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from mlsecops.core.errors import InputError
from mlsecops.models import SklearnModel
from mlsecops.runtime.hardening import answer_bits, harden, output_tensors, price, rebuild, utility_cost
from mlsecops.runtime.policy import OutputPolicy

P = np.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]])


def test_probabilities_mode_rounds_and_keeps_the_label() -> None:
    out = harden(P + 1e-7, OutputPolicy(mode="probabilities", decimals=2))
    assert out.probabilities is not None
    assert np.array_equal(out.probabilities, np.round(P + 1e-7, 2))
    assert out.label.tolist() == [1, 0]
    assert set(output_tensors(out)) == {"probabilities", "label"}


def test_top_k_reveals_only_k_classes_most_likely_first() -> None:
    out = harden(P, OutputPolicy(mode="top_k", top_k=2))
    assert out.probabilities is None
    assert out.top_classes is not None and out.top_probabilities is not None
    assert out.top_classes.tolist() == [[1, 2], [0, 2]]
    assert np.allclose(out.top_probabilities, [[0.6, 0.3], [0.5, 0.3]])
    assert set(output_tensors(out)) == {"top_k_classes", "top_k_probabilities", "label"}


def test_label_mode_reveals_the_label_only() -> None:
    out = harden(P, OutputPolicy(mode="label"))
    assert set(output_tensors(out)) == {"label"}
    assert out.label.tolist() == [1, 0]


def test_top_k_ties_keep_the_label_first() -> None:
    tied = np.array([[0.4, 0.4, 0.2]])
    out = harden(tied, OutputPolicy(mode="top_k", top_k=1))
    assert out.top_classes is not None
    assert out.top_classes[0, 0] == out.label[0] == 0


def test_rebuild_spreads_hidden_mass() -> None:
    q = rebuild(harden(P, OutputPolicy(mode="top_k", top_k=1)), 3)
    assert np.allclose(q.sum(axis=1), 1.0)
    assert q[0, 1] == pytest.approx(0.6, abs=1e-5) and q[0, 0] == pytest.approx(0.2, abs=1e-5)


def test_answer_bits_shrink_with_hardening() -> None:
    full = answer_bits(OutputPolicy(), 10)
    rounded = answer_bits(OutputPolicy(decimals=2), 10)
    top1 = answer_bits(OutputPolicy(mode="top_k", top_k=1, decimals=2), 10)
    label = answer_bits(OutputPolicy(mode="label"), 10)
    assert full > rounded > top1 > label == pytest.approx(math.log2(10))


def test_utility_cost_on_digits() -> None:
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    model = SklearnModel(LogisticRegression(max_iter=500).fit(X[:1200], y[:1200]))
    full = utility_cost(model, X[1200:], y[1200:], OutputPolicy())
    assert full.information_removed_bits == pytest.approx(0.0, abs=1e-9)
    assert full.log_loss_after == pytest.approx(full.log_loss_before, rel=1e-6)
    label = utility_cost(model, X[1200:], y[1200:], OutputPolicy(mode="label"))
    # the label is the full model's argmax: accuracy and agreement are unchanged...
    assert label.accuracy_after == label.accuracy_before > 0.85
    assert label.top1_agreement == 1.0
    # ...but a caller can no longer tell how sure the model is
    assert label.log_loss_after > full.log_loss_before
    assert label.information_removed_bits > 0.01
    assert label.answer_bits_after < full.answer_bits_after
    rounded = utility_cost(model, X[1200:], y[1200:], OutputPolicy(decimals=1))
    assert 0 < rounded.information_removed_bits < label.information_removed_bits


def test_price_refuses_bad_labels() -> None:
    with pytest.raises(InputError):
        price(P, np.array([0, 5]), OutputPolicy())
    with pytest.raises(InputError):
        price(np.zeros((0, 3)), np.zeros(0, dtype=int), OutputPolicy())


def test_noise_hides_confidences_but_never_the_label() -> None:
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(5), size=400)
    policy = OutputPolicy(mode="probabilities", noise=0.05, decimals=3)
    a, b = harden(proba, policy), harden(proba, policy)
    assert np.array_equal(a.label, proba.argmax(axis=1))  # the model's answer stands
    assert a.probabilities is not None and b.probabilities is not None
    assert not np.allclose(a.probabilities, proba, atol=1e-3)  # the shown confidences are not the model's
    assert not np.array_equal(a.probabilities, b.probabilities)  # fresh noise per answer
    assert np.allclose(a.probabilities.sum(axis=1), 1.0, atol=5e-3)
    top = harden(proba, OutputPolicy(mode="top_k", top_k=2, noise=0.05))
    assert top.top_probabilities is not None and np.array_equal(top.label, proba.argmax(axis=1))
    cost = price(proba, proba.argmax(axis=1), policy)
    assert "Laplace noise 0.05" in cost.mode and cost.accuracy_after == 1.0
