"""CKKS encrypted inference of linear models (TenSEAL): agreement with plaintext, the protocol's refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests._deps import require

from mlsecops.core.errors import InputError
from mlsecops.models.interface import ModelError

require("tenseal", "he")

from mlsecops.models.encrypted import EncryptedLinearModel, HeClient, HeServer, linear_parameters  # noqa: E402


@pytest.fixture(scope="module")
def cancer() -> tuple[object, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_breast_cancer(return_X_y=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x[:400], y[:400])
    return model, x[400:], y[400:]


@pytest.fixture(scope="module")
def client() -> HeClient:
    return HeClient()  # key generation is the slow part: once per module


@pytest.mark.timeout(300)
def test_encrypted_predictions_agree_with_plaintext_on_breast_cancer(
    cancer: tuple[object, np.ndarray, np.ndarray], client: HeClient
) -> None:
    model, x, _ = cancer
    enc = EncryptedLinearModel.from_estimator(model)
    rows = x[:40]
    scores = enc.encrypted_scores(rows, client=client)
    plain = model.decision_function(rows)  # type: ignore[attr-defined]
    assert np.max(np.abs(scores[:, 0] - plain)) < 1e-3  # CKKS error at scale 2^40 is ~1e-6
    proba = enc.scores_to_proba(scores)
    np.testing.assert_allclose(proba, model.predict_proba(rows), atol=1e-4)  # type: ignore[attr-defined]
    assert np.array_equal(proba.argmax(1), model.predict(rows))  # type: ignore[attr-defined]


@pytest.mark.timeout(300)
def test_multiclass_scores_through_the_vector_matrix_product(client: HeClient) -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler

    x, y = load_iris(return_X_y=True)
    model = make_pipeline(MinMaxScaler(), LogisticRegression(max_iter=2000)).fit(x, y)
    enc = EncryptedLinearModel.from_estimator(model)
    assert enc.weights.shape == (4, 3)
    scores = enc.encrypted_scores(x[::15], client=client)
    np.testing.assert_allclose(scores, model.decision_function(x[::15]), atol=1e-3)


def test_server_refuses_a_secret_key_and_garbage(client: HeClient) -> None:
    server = HeServer(np.ones((3, 1)), np.zeros(1))
    with pytest.raises(InputError, match="public context first"):
        server.evaluate([b"x"])
    with pytest.raises(InputError, match="not a TenSEAL context"):
        server.load_context(b"not a context")
    with pytest.raises(InputError, match="at most"):
        server.load_context(b"\0" * ((256 << 20) + 1))
    server.load_context(client.public_context())
    with pytest.raises(InputError, match="does not parse"):
        server.evaluate([b"garbage"])
    with pytest.raises(InputError, match="the model takes 3"):
        server.evaluate(client.encrypt(np.ones((1, 5))))


def test_server_refuses_a_context_that_carries_the_secret_key() -> None:
    import tenseal as ts

    ctx = ts.context(ts.SCHEME_TYPE.CKKS, 8192, coeff_mod_bit_sizes=[60, 40, 40, 60])
    with pytest.raises(InputError, match="secret key"):
        HeServer(np.ones((3, 1)), np.zeros(1)).load_context(ctx.serialize(save_secret_key=True))


def test_only_linear_models_are_accepted(tmp_path: Path) -> None:
    from sklearn.ensemble import RandomForestClassifier

    x = np.random.default_rng(0).normal(size=(40, 3))
    y = (x[:, 0] > 0).astype(int)
    with pytest.raises(ModelError, match="supports linear classifiers"):
        linear_parameters(RandomForestClassifier(n_estimators=2).fit(x, y))


@pytest.mark.timeout(300)
def test_assess_encrypted_cli_reports_accuracy_and_latency(
    cli: object, cancer: tuple[object, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    import json

    import joblib

    model, x, y = cancer
    joblib.dump(model, tmp_path / "logreg.joblib")
    np.savez(tmp_path / "test.npz", X=x.astype(np.float32), y=y)
    r = cli(  # type: ignore[operator]
        "assess",
        "encrypted",
        "--model",
        str(tmp_path / "logreg.joblib"),
        "--data",
        str(tmp_path / "test.npz"),
        "--max-rows",
        "20",
        "-f",
        "json",
    )
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    m = doc["metrics"]
    assert m["agreement"] == 1.0 and m["accuracy_difference"] == 0.0 and m["latency_ms_per_row"] > 0
    assert doc["verdict"] == "agrees" and doc["security_bits"] == 128
