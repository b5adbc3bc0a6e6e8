"""The adversarial-input screen: PGD examples are flagged, clean rows mostly are not.

A small MLP on scikit-learn's digits ([0, 1] pixels), trained with Gaussian noise of the screen's
sigma (as randomized smoothing expects); adversarial inputs come from our own ``mlsecops.assess`` PGD.
The benchmark reports the same numbers on more attacks, and the adaptive attacker who evades it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.datasets import load_digits
from tests._deps import require

from mlsecops.assess.attack import make_attack
from mlsecops.core.errors import ConfigError, InputError
from mlsecops.monitor.adversarial_screen import AdversarialInputScreen, screen
from mlsecops.monitor.interface import Detector, Observation

torch = require("torch", "torch")
torch.set_num_threads(1)  # a tiny MLP: more threads only contend on a shared machine

SIGMA = 0.25


@pytest.fixture(scope="module")
def setup():
    from mlsecops.models import TorchModel

    d = load_digits()
    x, y = (d.data / 16.0).astype(np.float32), d.target
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    xt, yt = torch.from_numpy(x[:1400]), torch.from_numpy(y[:1400])
    gen = torch.Generator().manual_seed(0)
    for _ in range(400):
        opt.zero_grad()
        noisy = xt + SIGMA * torch.randn(xt.shape, generator=gen)
        torch.nn.functional.cross_entropy(net(noisy), yt).backward()
        opt.step()
    model = TorchModel(net.eval(), input_shape=(64,))
    x_test, y_test = x[1400:1600], y[1400:1600]
    res = make_attack("pgd", norm="linf").generate(model, x_test, y_test, eps=0.2, seed=0)
    adv = res.x_adv[res.fooled & res.clean_correct]
    return model, x_test, adv


def test_pgd_examples_flagged_clean_rows_rarely(setup):
    model, clean, adv = setup
    assert len(adv) >= 100  # the attack works on this model
    on_adv = screen(model, adv, sigma=SIGMA, seed=1)
    on_clean = screen(model, clean, sigma=SIGMA, seed=1)
    assert on_adv.flagged.mean() >= 0.8, on_adv.flagged.mean()
    assert on_clean.flagged.mean() <= 0.1, on_clean.flagged.mean()
    # a flag has a reason, and the reasons are what the decisions say
    reasons = on_adv.reasons()
    assert all(bool(r) == f for r, f in zip(reasons, on_adv.flagged.tolist(), strict=True))
    assert set(reasons) <= {"", "disagree", "abstain", "disagree+abstain"}


def test_detector_alerts_on_adversarial_requests_not_clean_ones(setup):
    model, clean, adv = setup
    det = AdversarialInputScreen(model_name="digits", model=model, sigma=SIGMA, seed=3)
    assert isinstance(det, Detector) and det.name == "adversarial_input"
    adv_alerts = [a for i, row in enumerate(adv[:50]) for a in det.observe(_obs("mallory", row, i + 1))]
    clean_alerts = [a for i, row in enumerate(clean[:100]) for a in det.observe(_obs("alice", row, i + 1))]
    assert len(adv_alerts) >= 40 and len(clean_alerts) <= 10, (len(adv_alerts), len(clean_alerts))
    alert = adv_alerts[0]
    assert alert.kind == "adversarial_input" and alert.principal == "mallory" and alert.model == "digits"
    example = alert.evidence["examples"][0]
    assert example["reason"] and 0.0 <= example["p_lower"] <= example["top_share"] <= 1.0
    json.dumps(alert.to_json())
    # a request of many rows gives one alert that counts them
    (batch_alert,) = det.observe(
        Observation(time=0, principal="m", model="digits", inputs=adv[:20], query_index=9)
    )
    assert batch_alert.evidence["rows"] == 20 and batch_alert.evidence["flagged_rows"] >= 15
    assert det.metrics()["screened_rows"] == 170


def test_outputs_in_the_observation_give_the_base_class(setup):
    model, clean, _ = setup
    det = AdversarialInputScreen(model_name="digits", model=model, sigma=SIGMA)
    row = clean[:1]
    truth = int(model.predict_proba(row).argmax())
    lie = np.eye(10)[[(truth + 1) % 10]]  # outputs naming another class: the smoothed vote disagrees
    (alert,) = det.observe(
        Observation(time=0, principal="p", model="digits", inputs=row, outputs=lie, query_index=1)
    )
    assert "disagree" in alert.evidence["examples"][0]["reason"]


def test_odd_inputs_skipped_and_state_round_trip(setup):
    model, clean, _ = setup
    det = AdversarialInputScreen(model_name="digits", model=model)
    for bad in (np.zeros((2, 7)), np.full((1, 64), np.nan), np.array("x")):
        assert det.observe(Observation(time=0, principal="p", model="digits", inputs=bad)) == []
    assert det.metrics()["skipped_rows"] == 4
    det.observe(_obs("p", clean[0], 1))
    other = AdversarialInputScreen(model_name="digits", model=model)
    other.restore(json.loads(json.dumps(det.state())))
    assert other.state() == det.state()
    with pytest.raises(InputError, match="state does not fit"):
        other.restore({"alerts": 1})


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"model": None}, "needs the served model"),
        ({"sigma": 0.0}, "sigma must be"),
        ({"samples": 0}, "samples must be"),
        ({"alpha": 1.0}, "alpha must be"),
        ({"severity": "loud"}, "severity must be"),
    ],
)
def test_bad_options_are_config_errors(setup, options, message):
    kwargs = {"model_name": "digits", "model": setup[0], **options}
    with pytest.raises(ConfigError, match=f"adversarial_input detector: {message}"):
        AdversarialInputScreen(**kwargs)


def test_screen_rejects_bad_arguments(setup):
    model, clean, _ = setup
    with pytest.raises(InputError, match="samples must be"):
        screen(model, clean[:2], samples=0)
    with pytest.raises(InputError, match="base classes"):
        screen(model, clean[:2], base=np.zeros(3))
    assert screen(model, np.zeros((0, 64), dtype=np.float32)).flagged.shape == (0,)


def _obs(principal: str, row: np.ndarray, index: int) -> Observation:
    return Observation(
        time=float(index), principal=principal, model="digits", inputs=row[None], query_index=index
    )
