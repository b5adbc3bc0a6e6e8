"""Auditing a deployed model through the guard's Open Inference Protocol endpoint.

The session's guard serves a logistic regression on digits with top-3, 4-decimal outputs; the audits
see what any outside caller sees (the hardened answers), with an API key from the environment.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tests.integration.runtime.conftest import Guard, train_digits

from mlsecops.cli.main import main
from mlsecops.models import HttpModel


def _members() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    idx = np.random.default_rng(0).permutation(len(X))[:900]  # the rows train_digits() fits on
    return X[idx], y[idx]


def test_the_adapter_sees_the_hardened_answers(guard: Guard, monkeypatch) -> None:
    monkeypatch.setenv("MLSECOPS_MODEL_TOKEN", guard.keys["alice"])
    remote = HttpModel(f"{guard.url}/v2/models/digits/infer", input_shape=(64,))
    assert remote.protocol == "oip" and remote.n_classes == 10  # from the metadata's parameters
    local, X, _ = train_digits()
    p = remote.predict_proba(X[:40])
    truth = local.predict_proba(X[:40])
    assert np.array_equal(p.argmax(1), truth.argmax(1))
    top3 = np.round(np.sort(truth, axis=1)[:, ::-1][:, :3], 4)
    shown = np.sort(p, axis=1)[:, ::-1][:, :3]
    # the spread mass of the seven unshown classes never outranks a shown one
    np.testing.assert_allclose(shown * (1.0 / p.sum(axis=1, keepdims=True)), top3, atol=2e-4)
    unshown = np.ones_like(p, dtype=bool)
    np.put_along_axis(unshown, np.argsort(-truth, axis=1)[:, :3], False, axis=1)
    rest = p[unshown].reshape(len(p), 7)
    assert np.ptp(rest, axis=1).max() < 1e-12  # the seven unshown classes share the unshown mass


def test_privacy_audit_runs_against_the_live_guard(guard: Guard, tmp_path: Path, monkeypatch) -> None:
    Xm, ym = _members()
    _, Xn, yn = train_digits()
    np.savez(tmp_path / "in.npz", X=Xm[:300], y=ym[:300])
    np.savez(tmp_path / "out.npz", X=Xn[:300], y=yn[:300])
    out = tmp_path / "r.json"
    url = f"{guard.url}/v2/models/digits/infer"
    args = ["assess", "privacy", "--model", url, "--members", str(tmp_path / "in.npz")]
    args += ["--non-members", str(tmp_path / "out.npz"), "--attacks", "loss,confidence"]
    monkeypatch.delenv("MLSECOPS_MODEL_TOKEN", raising=False)
    assert main([*args, "--no-defences", "-q", "-o", str(out)]) == 2  # no key: refused, clearly
    key = guard.keys["alice"]
    monkeypatch.setenv("MLSECOPS_MODEL_TOKEN", key)
    assert main([*args, "--no-defences", "-q", "-o", str(out)]) in (0, 1)
    text = out.read_text()
    doc = json.loads(text)
    assert 0.0 <= doc["metrics"]["membership_auc"] <= 1.0
    assert {a["attack"] for a in doc["privacy"]["attacks"]} >= {"loss", "confidence"}
    assert key not in text and key not in guard.log()
