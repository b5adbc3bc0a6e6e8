"""The sticker (patch) attack and the ``assess.patch`` check, on a small CNN trained on digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlsecops.assess import make_attack
from mlsecops.assess.patch import PatchAttack, evaluate_patches, patch_report
from mlsecops.core.checks import Target, get_check
from mlsecops.core.errors import InputError


def _images(digits, n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    return digits.x_test[:n].reshape(-1, 1, 8, 8), digits.y_test[:n]


def _changed(x: np.ndarray, x_adv: np.ndarray) -> np.ndarray:
    """Per example, the (row, col) pixels the attack changed."""
    return np.abs(x_adv - x).reshape(len(x), 8, 8) > 0


def test_sticker_stays_in_one_square_and_fools_the_model(cnn, digits) -> None:
    x, y = _images(digits)
    res = PatchAttack(size=2, steps=12, candidates=2).generate(cnn, x, y, eps=1.0, seed=0)
    broken = res.fooled & res.clean_correct
    assert broken.sum() >= 10, "a 2x2 sticker should fool a small undefended CNN often"
    changed = _changed(x, res.x_adv)
    for i in np.flatnonzero(res.clean_correct):
        r, c = int(res.extra["patch_row"][i]), int(res.extra["patch_col"][i])
        outside = changed[i].copy()
        outside[r : r + 2, c : c + 2] = False
        assert not outside.any(), f"example {i} changed pixels outside its sticker at {(r, c)}"
    # the attack's verdict is the model's: every example counted as fooled is misclassified
    pred = cnn.predict_proba(res.x_adv).argmax(axis=1)
    assert np.array_equal(pred[broken] != y[broken], np.ones(int(broken.sum()), dtype=bool))
    assert (res.x_adv >= 0).all() and (res.x_adv <= 1).all()


def test_a_clean_input_is_left_alone_and_a_misclassified_one_is_not_attacked(cnn, digits) -> None:
    x, y = _images(digits, 30)
    res = PatchAttack(size=1, steps=5).generate(cnn, x, y, eps=0.0, seed=0)
    assert np.array_equal(res.x_adv, x)  # eps 0: no change at all
    assert not (res.fooled & res.clean_correct).any()


def test_bigger_stickers_fool_more_and_eps_bounds_each_pixel(cnn, digits) -> None:
    x, y = _images(digits, 40)
    ev = evaluate_patches(cnn, x, y, sizes=[1, 3], steps=8, candidates=2, seed=0)
    (s1, r1), (s3, r3) = ev.results
    assert (s1, s3) == (1, 3)
    assert r3.success_rate > r1.success_rate
    small = PatchAttack(size=3, steps=4, candidates=1).generate(cnn, x, y, eps=0.1, seed=0)
    assert np.abs(small.x_adv - x).max() <= 0.1 + 1e-6


def test_fixed_position_puts_every_sticker_in_the_same_place(cnn, digits) -> None:
    x, y = _images(digits, 40)
    res = PatchAttack(size=2, position="fixed", at=(0, 0), steps=10).generate(cnn, x, y, eps=1.0, seed=0)
    changed = _changed(x, res.x_adv)
    assert not changed[:, 2:, :].any() and not changed[:, :, 2:].any()
    assert set(res.extra["patch_row"][res.clean_correct]) == {0.0}


def test_same_seed_same_result(cnn, digits) -> None:
    x, y = _images(digits, 20)
    a = PatchAttack(size=2, position="random", steps=5).generate(cnn, x, y, eps=1.0, seed=3)
    b = PatchAttack(size=2, position="random", steps=5).generate(cnn, x, y, eps=1.0, seed=3)
    assert np.array_equal(a.x_adv, b.x_adv) and np.array_equal(a.fooled, b.fooled)


def test_bad_inputs_are_clear_errors(cnn, mlp, digits) -> None:
    x, y = _images(digits, 5)
    with pytest.raises(InputError, match="image inputs"):
        PatchAttack(size=2).generate(mlp, digits.x_test[:5], y, eps=1.0)
    with pytest.raises(InputError, match="between 1 and 8"):
        PatchAttack(size=9).generate(cnn, x, y, eps=1.0)
    with pytest.raises(InputError, match="does not fit"):
        PatchAttack(size=2, position="fixed", at=(7, 7)).generate(cnn, x, y, eps=1.0)
    with pytest.raises(InputError, match="position"):
        PatchAttack(size=2, position="corner").generate(cnn, x, y, eps=1.0)
    with pytest.raises(InputError, match="norms"):
        PatchAttack(norm="l2").generate(cnn, x, y, eps=1.0)


def test_in_the_attack_catalogue(cnn, digits) -> None:
    attack = make_attack("patch", size=2, steps=5)
    assert isinstance(attack, PatchAttack)
    x, y = _images(digits, 10)
    assert attack.generate(cnn, x, y, eps=1.0).x_adv.shape == x.shape


def test_report_has_metrics_findings_and_captioned_examples(cnn, digits) -> None:
    x, y = _images(digits)
    ev = evaluate_patches(cnn, x, y, sizes=[2], steps=10, candidates=2, seed=0)
    report = patch_report(ev, subject="cnn")
    success = report.metrics["patch_success@2x2"]
    assert success == pytest.approx(ev.results[0][1].success_rate, abs=1e-6)
    assert report.metrics["robust_accuracy@patch_2x2"] < report.metrics["clean_accuracy"]
    assert report.findings and report.findings[0].atlas == "AML.T0015"
    example = report.data["examples"][0]
    assert example["clean_prediction"] == example["true"] != example["patched_prediction"]
    figure = report.figures[-1].content
    assert f"predicted {example['true']} -&gt; {example['patched_prediction']}" in figure


def test_check_runs_from_files_and_refuses_a_model_without_gradients(cnn, digits, tmp_path: Path) -> None:
    import pickle

    from sklearn.linear_model import LogisticRegression

    model = tmp_path / "cnn.pt2"
    cnn.save(model)
    data = tmp_path / "test.npz"
    x, y = _images(digits, 20)
    np.savez(data, X=x, y=y)
    check = get_check("assess.patch").create()
    report = check.run(
        Target(paths=(model, data), options={"sizes": [1, 2], "steps": 3, "candidates": 1}, seed=0)
    )
    assert {"patch_success@1x1", "patch_success@2x2", "clean_accuracy"} <= set(report.metrics)
    flat = tmp_path / "flat.npz"
    np.savez(flat, X=digits.x_test[:20], y=digits.y_test[:20])
    pkl = tmp_path / "logreg.pkl"
    pkl.write_bytes(pickle.dumps(LogisticRegression(max_iter=200).fit(digits.x_train, digits.y_train)))
    with pytest.raises(InputError, match="needs gradients"):
        check.run(Target(paths=(pkl, flat), options={"sizes": [1]}, seed=0))
