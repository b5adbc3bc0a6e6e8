"""Evaluate encrypted inference of a linear model: accuracy against plaintext and latency per row.

``evaluate_encrypted`` loads a scikit-learn linear classifier (through the artifact scanner, like every
model) and a labelled data set, runs the CKKS exchange of ``mlsecops.models.encrypted`` on up to
``max_rows`` rows (client encrypts, server computes on ciphertexts, client decrypts and applies the
sigmoid or softmax), and reports:

- accuracy of the plaintext model and of the encrypted pipeline, their difference, and the share of
  rows whose predicted class is the same (``agreement``);
- the largest absolute error of a decrypted score against the plaintext score;
- latency per row: client (encrypt + decrypt), server (evaluate), and their sum; key generation and
  the public context's size, paid once per session; the ciphertext size per row.

Timings are wall-clock on this machine and vary between runs; this is a measurement, not a registered
check (a check must give the same report twice). A prediction that differs from plaintext is a finding.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from mlsecops.assess._data import encode_labels, load_dataset, subsample
from mlsecops.core.errors import InputError
from mlsecops.core.findings import Finding, Report, Severity, utcnow
from mlsecops.core.redaction import redact
from mlsecops.models.encrypted import (
    DEFAULT_POLY_MODULUS_DEGREE,
    EncryptedLinearModel,
    HeClient,
    security_bits,
)
from mlsecops.models.interface import ModelError, check_inputs
from mlsecops.models.loading import load_model
from mlsecops.models.sklearn import SklearnModel

__all__ = ["FOLD_TOLERANCE", "evaluate_encrypted"]

KIND = "assess.encrypted"
FOLD_TOLERANCE = 1e-6
"""Largest probability difference allowed between the estimator and its folded affine map in the clear
(a larger one means the model is not the linear map we would encrypt: refused, not mis-measured)."""
ACCURACY_TOLERANCE = 0.01
"""Accuracy lost to encryption above which the finding is medium rather than low."""


def evaluate_encrypted(
    model: str | Path,
    data: str | Path,
    *,
    label: str | None = None,
    max_rows: int = 200,
    poly_modulus_degree: int = DEFAULT_POLY_MODULUS_DEGREE,
    seed: int = 0,
) -> Report:
    """Run encrypted inference on a sample of ``data`` and compare it with plaintext.

    Args:
        model: a scikit-learn linear classifier file (``.skops``, or a pickle/joblib the scanner passes).
        data: labelled data (``.npz`` with ``X``, ``y``, or CSV/Parquet with ``label``).
        label: the label column.
        max_rows: rows to evaluate (chosen at random with ``seed``).
        poly_modulus_degree: CKKS ring dimension.
        seed: chooses the rows.

    Raises:
        InputError: bad data or options.
        ModelError: not a linear classifier.
    """
    started = utcnow()
    if max_rows < 1:
        raise InputError("max_rows must be at least 1")
    x, raw_y = load_dataset(data, label=label)
    adapter = load_model(model, input_shape=tuple(x.shape[1:]))
    if not isinstance(adapter, SklearnModel):
        raise ModelError(
            f"encrypted inference takes a scikit-learn linear classifier; {model} is {type(adapter).__name__}"
        )
    x = check_inputs(x, adapter.input_shape, what="data")
    y = encode_labels(raw_y, adapter.classes)
    enc = EncryptedLinearModel.from_estimator(adapter.estimator, poly_modulus_degree=poly_modulus_degree)
    rows = subsample(len(x), max_rows, seed)
    xs, ys = x[rows], y[rows]
    plain_proba = adapter.predict_proba(xs)
    folded = enc.scores_to_proba(enc.plaintext_scores(xs))
    if plain_proba.shape == folded.shape and float(np.max(np.abs(plain_proba - folded))) > FOLD_TOLERANCE:
        raise ModelError(
            "the model's probabilities are not the sigmoid/softmax of one affine map (e.g. a calibrated or "
            "one-vs-rest model); encrypted inference here covers plain linear and logistic models"
        )
    t0 = time.perf_counter()
    client = HeClient(poly_modulus_degree=poly_modulus_degree)
    public = client.public_context()
    server = enc.server()
    server.load_context(public)
    setup = time.perf_counter() - t0
    t1 = time.perf_counter()
    cts = client.encrypt(xs)
    t2 = time.perf_counter()
    results = server.evaluate(cts)
    t3 = time.perf_counter()
    scores = client.decrypt(results, enc.weights.shape[1])
    t4 = time.perf_counter()
    n = len(xs)
    enc_proba = enc.scores_to_proba(scores)
    plain_pred, enc_pred = plain_proba.argmax(axis=1), enc_proba.argmax(axis=1)
    plain_acc = float(np.mean(plain_pred == ys))
    enc_acc = float(np.mean(enc_pred == ys))
    differ = np.flatnonzero(plain_pred != enc_pred)
    err = float(np.max(np.abs(scores - enc.plaintext_scores(xs))))
    metrics = {
        "plaintext_accuracy": plain_acc,
        "encrypted_accuracy": enc_acc,
        "accuracy_difference": plain_acc - enc_acc,
        "agreement": 1.0 - len(differ) / n,
        "max_abs_score_error": err,
        "latency_ms_per_row": 1000 * (t4 - t1) / n,
        "client_ms_per_row": 1000 * ((t2 - t1) + (t4 - t3)) / n,
        "server_ms_per_row": 1000 * (t3 - t2) / n,
        "ciphertext_kb_per_row": sum(len(c) for c in cts) / n / 1024,
        "result_kb_per_row": sum(len(r) for r in results) / n / 1024,
        "session_setup_seconds": setup,
        "public_context_mb": len(public) / (1 << 20),
    }
    findings = []
    if len(differ):
        findings.append(
            Finding(
                check=KIND,
                severity=Severity.MEDIUM if plain_acc - enc_acc > ACCURACY_TOLERANCE else Severity.LOW,
                title=f"{len(differ)} of {n} encrypted predictions differ from plaintext",
                detail=(
                    f"CKKS is approximate (largest score error {err:.2e}); rows on the decision boundary "
                    "can change class"
                ),
                artifact=redact(str(model)),
                location={"rows": ",".join(str(int(rows[i])) for i in differ[:20])},
                remediation="use a larger CKKS scale (more modulus bits) if these rows matter",
            )
        )
    return Report(
        subject=redact(str(model)),
        kind=KIND,
        started=started,
        finished=utcnow(),
        findings=tuple(findings),
        metrics=metrics,
        verdict="agrees" if not len(differ) else "differs",
        data={
            "scheme": "CKKS (TenSEAL)",
            "poly_modulus_degree": poly_modulus_degree,
            "security_bits": security_bits(poly_modulus_degree),
            "rows": n,
            "features": enc.n_features,
            "outputs": int(enc.weights.shape[1]),
            "server_computes": "x @ W + b on ciphertexts (scalers folded into W, b)",
            "client_computes": "decryption, then the sigmoid or softmax in the clear",
        },
    )
