from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest
from tests._deps import require

from mlsecops.assess.certify import certify, clopper_pearson_lower
from mlsecops.core.checks import Target, get_check
from mlsecops.core.errors import ConfigError, InputError

torch = require("torch", "torch")


def test_clopper_pearson_matches_the_exact_interval():
    n, alpha = 1000, 0.001
    for k in (0, 1, 500, 900, 999, 1000):
        expected = binomtest(k, n).proportion_ci(confidence_level=1 - 2 * alpha, method="exact").low
        assert clopper_pearson_lower(np.array([k]), n, alpha)[0] == pytest.approx(expected, abs=1e-9)
    assert clopper_pearson_lower(np.array([1000]), 1000, 0.001)[0] == pytest.approx(0.001 ** (1 / 1000))


def _linear(w: np.ndarray, b: float):
    from mlsecops.models import TorchModel

    lin = torch.nn.Linear(len(w), 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(np.stack([w, -w]), dtype=torch.float32))
        lin.bias.copy_(torch.tensor([b, -b], dtype=torch.float32))
    return TorchModel(lin.eval(), input_shape=(len(w),))


def test_radius_is_sound_and_tight_for_a_linear_classifier():
    # for a linear base classifier the smoothed classifier's exact robust radius is the distance to the
    # hyperplane; the certified radius must not exceed it and should come close
    rng = np.random.default_rng(0)
    w = rng.standard_normal(6).astype(np.float32)
    x = rng.random((40, 6)).astype(np.float32)
    b = float(-(x @ w).mean())
    dist = np.abs(x @ w + b) / np.linalg.norm(w)
    y = ((x @ w + b) < 0).astype(int)  # class 0 where w.x+b > 0
    c = certify(_linear(w, b), x, y, sigma=0.25, n=2000, n0=100, alpha=0.001, seed=0)
    certified = c.prediction != -1
    assert np.all(c.radius[certified] <= dist[certified] + 1e-6)
    far = dist > 0.3
    assert np.all(certified[far]) and np.all(c.radius[far] > 0.5 * dist[far])
    assert np.all(c.prediction[certified] == y[certified])
    assert c.certified_accuracy(0.0) >= c.certified_accuracy(0.2) >= c.certified_accuracy(0.5)


def test_abstains_on_a_coin_flip_and_is_seeded():
    model = _linear(np.array([1.0, 0.0], dtype=np.float32), -0.5)
    x = np.full((5, 2), 0.5, dtype=np.float32)  # exactly on the boundary: noise decides
    c = certify(model, x, np.zeros(5, dtype=int), sigma=0.5, n=500, n0=50, seed=1)
    assert c.abstain_rate == 1.0 and c.certified_accuracy(0.0) == 0.0
    c2 = certify(model, x, np.zeros(5, dtype=int), sigma=0.5, n=500, n0=50, seed=1)
    np.testing.assert_array_equal(c.p_lower, c2.p_lower)
    with pytest.raises(InputError):
        certify(model, x, np.zeros(5, dtype=int), sigma=0.0)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        certify(model, bad, np.zeros(5, dtype=int))


def test_certify_check_reports_metrics_and_curve(tmp_path, mlp, digits):
    model_path = mlp.save(tmp_path / "mlp.pt")
    data = tmp_path / "d.npz"
    np.savez(data, X=digits.x_test, y=digits.y_test)
    rep = (
        get_check("assess.certify")
        .create()
        .run(
            Target(paths=(model_path, data), options={"radii": "0.1,0.25", "n": 200, "n0": 20, "sigma": 0.25})
        )
    )
    m = rep.metrics
    assert {"certified_accuracy@0.1", "certified_accuracy@0.25", "abstain_rate", "smoothed_accuracy"} <= set(
        m
    )
    assert m["smoothed_accuracy"] >= m["certified_accuracy@0.1"] >= m["certified_accuracy@0.25"]
    assert m["certified_accuracy@0.1"] > 0.3
    assert rep.figures and rep.figures[0].content.startswith("<svg")
    with pytest.raises(ConfigError, match="option 'n' must be an integer"):
        get_check("assess.certify").create().run(Target(paths=(model_path, data), options={"n": "lots"}))
