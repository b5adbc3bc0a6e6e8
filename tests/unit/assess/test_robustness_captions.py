"""The worst adversarial examples are captioned with the true label, the clean and the adversarial prediction."""

from __future__ import annotations

import base64
import dataclasses
import re

import numpy as np

from mlsecops.assess.robustness import evaluate_robustness, robustness_report
from mlsecops.report import Format, render


def test_worst_examples_carry_the_model_predictions(cnn, digits):
    x, y = digits.x_test.reshape(-1, 1, 8, 8)[:64], digits.y_test[:64]
    ev = evaluate_robustness(cnn, x, y, attacks=[("pgd", {"steps": 10, "restarts": 1})], eps=[0.2], seed=0)
    rep = robustness_report(ev, subject="cnn.pt")
    worst = rep.data["worst_examples"]
    assert worst
    x_adv = ev.results[0].x_adv
    svg = next(f.content for f in rep.figures if f.title.startswith("Worst examples"))
    for w in worst:
        i = w["index"]
        clean = int(cnn.predict_proba(x[i : i + 1]).argmax())
        adversarial = int(cnn.predict_proba(x_adv[i : i + 1]).argmax())
        # shown examples were classified right and are fooled: the three labels are what the model says
        assert (w["true"], w["clean_prediction"], w["adversarial_prediction"]) == (
            int(y[i]),
            clean,
            adversarial,
        )
        assert clean == int(y[i]) != adversarial
        assert f"#{i} true {y[i]}: clean {clean}, adversarial {adversarial}" in svg
    page = render(rep, Format.HTML)
    embedded = [
        base64.b64decode(u).decode() for u in re.findall(r"data:image/svg\+xml;base64,([^\"]+)", page)
    ]
    assert any(f"clean {worst[0]['clean_prediction']}, adversarial" in s for s in embedded)


def test_without_a_label_function_captions_stay_plain(cnn, digits):
    x, y = digits.x_test.reshape(-1, 1, 8, 8)[:32], digits.y_test[:32]
    ev = evaluate_robustness(cnn, x, y, attacks=[("fgsm", {})], eps=[0.3], seed=0)
    rep = robustness_report(dataclasses.replace(ev, labels=None), subject="cnn.pt")
    worst = rep.data["worst_examples"]
    assert worst and all("adversarial_prediction" not in w for w in worst)
    svg = next(f.content for f in rep.figures if f.title.startswith("Worst examples"))
    assert "adversarial " not in svg and f"#{worst[0]['index']} true" in svg
    assert np.isfinite([w["distance"] for w in worst]).all()
