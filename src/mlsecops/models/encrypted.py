"""Encrypted inference for linear and logistic models: CKKS homomorphic encryption through TenSEAL.

The client holds the secret key; the server holds the model and never sees an input or a score in the
clear:

1. ``HeClient()`` makes a CKKS context with a secret key and gives the server its public part
   (``public_context()``: encryption parameters, relinearisation and rotation keys, no secret key).
2. The client encrypts each row (``encrypt``), one ciphertext per row.
3. ``HeServer`` computes the scores on the ciphertexts: an encrypted vector times the plaintext weight
   matrix plus the bias (``evaluate``), one ciphertext out per row.
4. The client decrypts the scores and finishes: the logistic sigmoid (binary) or softmax (multi-class)
   is applied **by the client, in the clear, after decryption**. The server could approximate the
   sigmoid with a polynomial on ciphertexts, but that costs multiplicative depth (a larger ring,
   slower), adds approximation error, and protects nothing more: the client sees the probabilities
   either way, and the server learns nothing in both designs.

``EncryptedLinearModel`` packages both sides for a linear model taken from scikit-learn (a
``LogisticRegression``, ``LinearSVC``, ``SGDClassifier``, ``RidgeClassifier``, ``Perceptron``, or a
``Pipeline`` of ``StandardScaler``/``MinMaxScaler``/``MaxAbsScaler`` steps ending in one; the scalers are
folded into the weights, so the server runs one affine map).

What it guarantees, and what it does not: CKKS with the default parameters (ring 8192, moduli
60+40+40+60 bits = 200 bits) gives about 128-bit security under the Homomorphic Encryption Standard's
bounds for that ring; inputs and scores are hidden from the server. The weights are the server's in the
clear (they are not hidden from the server operator), and the client learns the scores, which is what a
model-extraction attack needs: rate limits and the guard's output hardening still apply. CKKS is
approximate: decrypted scores differ from plaintext ones by about 1e-6, which can flip a prediction
only for rows on the decision boundary (``assess encrypted`` measures it). The public context is large
(tens of MB with rotation keys) and is sent once per session, not per request. Serialised inputs from
the other side are bounded (``MAX_CONTEXT_BYTES``, ``MAX_CIPHERTEXT_BYTES``) before TenSEAL parses them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mlsecops.core.errors import InputError
from mlsecops.models.interface import ModelError, check_inputs

__all__ = [
    "DEFAULT_COEFF_MOD_BITS",
    "DEFAULT_POLY_MODULUS_DEGREE",
    "DEFAULT_SCALE_BITS",
    "EncryptedLinearModel",
    "HeClient",
    "HeServer",
    "linear_parameters",
    "security_bits",
]

DEFAULT_POLY_MODULUS_DEGREE = 8192
"""CKKS ring dimension: 4096 slots per ciphertext, enough for rows of up to 4096 features."""
DEFAULT_COEFF_MOD_BITS = (60, 40, 40, 60)
"""Modulus chain: one rescale after the plaintext multiplication; 200 bits <= 218 (128-bit security at 8192)."""
DEFAULT_SCALE_BITS = 40
"""CKKS scale 2^40: about 1e-6 absolute error on the scores of a standardised model."""
RING_MODULI = {8192: (60, 40, 40, 60), 16384: (60, 40, 40, 40, 60)}
"""Ring dimensions offered and their modulus chains (both under the 128-bit bound for the ring)."""
MAX_CONTEXT_BYTES = 256 << 20
"""Largest serialised public context a server accepts (8192-ring contexts with rotation keys: ~35 MB)."""
MAX_CIPHERTEXT_BYTES = 8 << 20
"""Largest serialised ciphertext either side accepts (one 8192-ring ciphertext: ~330 kB)."""
_SCALERS = ("StandardScaler", "MinMaxScaler", "MaxAbsScaler")
_LINEAR = ("LogisticRegression", "LinearSVC", "SGDClassifier", "RidgeClassifier", "Perceptron")


def _tenseal() -> Any:
    import tenseal

    return tenseal


def linear_parameters(estimator: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(W, b, classes)`` of a fitted linear classifier with scalers folded in: scores = x @ W + b.

    ``W`` is ``(n_features, n_outputs)``: one output (the decision function) for a binary model, one per
    class otherwise.

    Raises:
        ModelError: the estimator is not a linear classifier (or a pipeline of scalers and one).
    """
    steps = list(getattr(estimator, "steps", [(None, estimator)]))
    names = [type(s).__name__ for _, s in steps]
    *pre, last = [s for _, s in steps]
    if type(last).__name__ not in _LINEAR or any(type(p).__name__ not in _SCALERS for p in pre):
        raise ModelError(
            f"encrypted inference supports linear classifiers ({', '.join(_LINEAR)}), optionally after "
            f"{', '.join(_SCALERS)}; got {' -> '.join(names)}"
        )
    coef = np.asarray(getattr(last, "coef_", None), dtype=np.float64)
    intercept = np.asarray(getattr(last, "intercept_", 0.0), dtype=np.float64).reshape(-1)
    classes = np.asarray(getattr(last, "classes_", np.arange(max(2, coef.shape[0]))))
    if coef.ndim != 2:
        raise ModelError("the linear model is not fitted (no coef_)")
    w, b = coef.T.copy(), intercept.copy()
    for scaler in reversed(
        pre
    ):  # x' = (x - shift) * factor, so x' @ W + b = x @ (factor W) + (b - shift*factor @ W)
        factor, shift = _affine(scaler, w.shape[0])
        b = b - (shift * factor) @ w
        w = factor[:, None] * w
    if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
        raise ModelError("the linear model has non-finite weights")
    return w, b, classes


def _affine(scaler: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(factor, shift)`` with ``scaler.transform(x) == (x - shift) * factor``."""
    kind = type(scaler).__name__
    if kind == "StandardScaler":
        scale = getattr(scaler, "scale_", None)
        mean = getattr(scaler, "mean_", None)
        factor = 1.0 / np.asarray(scale, np.float64) if scale is not None else np.ones(n)
        shift = np.asarray(mean, np.float64) if mean is not None else np.zeros(n)
    elif kind == "MinMaxScaler":
        factor = np.asarray(scaler.scale_, np.float64)
        shift = -np.asarray(scaler.min_, np.float64) / np.where(factor == 0, 1.0, factor)
    else:  # MaxAbsScaler
        factor = 1.0 / np.asarray(scaler.scale_, np.float64)
        shift = np.zeros(n)
    if factor.shape != (n,) or shift.shape != (n,):
        raise ModelError(f"{kind} does not match the model's {n} features")
    return factor, shift


def _bounded(data: object, limit: int, what: str) -> bytes:
    if not isinstance(data, bytes | bytearray):
        raise InputError(f"{what} must be bytes; got {type(data).__name__}")
    if len(data) > limit:
        raise InputError(f"{what} must be at most {limit} bytes; got {len(data)}")
    return bytes(data)


class HeClient:
    """The client side: holds the secret key, encrypts rows, decrypts scores.

    Args:
        poly_modulus_degree: CKKS ring dimension (``RING_MODULI``).
        scale_bits: CKKS scale in bits.
    """

    def __init__(
        self, *, poly_modulus_degree: int = DEFAULT_POLY_MODULUS_DEGREE, scale_bits: int = DEFAULT_SCALE_BITS
    ) -> None:
        if poly_modulus_degree not in RING_MODULI:
            raise InputError(
                f"poly_modulus_degree must be one of {sorted(RING_MODULI)}; got {poly_modulus_degree}"
            )
        ts = _tenseal()
        self.poly_modulus_degree = poly_modulus_degree
        self._ctx = ts.context(
            ts.SCHEME_TYPE.CKKS,
            poly_modulus_degree,
            coeff_mod_bit_sizes=list(RING_MODULI[poly_modulus_degree]),
        )
        self._ctx.global_scale = 2.0**scale_bits
        self._ctx.generate_galois_keys()  # the server's vector-matrix product rotates slots

    @property
    def slots(self) -> int:
        """Values one ciphertext holds (the widest row it can encrypt)."""
        return self.poly_modulus_degree // 2

    def public_context(self) -> bytes:
        """The context without its secret key, for the server (send once per session)."""
        public = self._ctx.copy()
        public.make_context_public()
        out: bytes = public.serialize()
        return out

    def encrypt(self, x: np.ndarray) -> list[bytes]:
        """One serialised ciphertext per row of ``x``.

        Raises:
            InputError: not a finite 2-D array, or rows wider than ``slots``.
        """
        ts = _tenseal()
        arr = np.asarray(x, dtype=np.float64)
        if arr.ndim != 2 or not np.all(np.isfinite(arr)):
            raise InputError("encrypt takes a finite 2-D array of rows")
        if arr.shape[1] > self.slots:
            raise InputError(f"rows of {arr.shape[1]} features do not fit a ciphertext of {self.slots} slots")
        return [ts.ckks_vector(self._ctx, row.tolist()).serialize() for row in arr]

    def decrypt(self, results: list[bytes], n_outputs: int) -> np.ndarray:
        """The scores from the server's ciphertexts, shape ``(rows, n_outputs)``.

        Raises:
            InputError: a result that is not a ciphertext of this context, or of the wrong size.
        """
        ts = _tenseal()
        out = np.empty((len(results), n_outputs))
        for i, blob in enumerate(results):
            try:
                values = ts.ckks_vector_from(
                    self._ctx, _bounded(blob, MAX_CIPHERTEXT_BYTES, "a result")
                ).decrypt()
            except ValueError as err:
                raise InputError(f"result {i} is not a ciphertext of this session: {err}") from err
            if len(values) != n_outputs:
                raise InputError(f"result {i} holds {len(values)} values; expected {n_outputs}")
            out[i] = values
        return out


class HeServer:
    """The server side: the model's affine map, applied to ciphertexts it cannot decrypt.

    Args:
        weights: ``(n_features, n_outputs)``.
        bias: ``(n_outputs,)``.
    """

    def __init__(self, weights: np.ndarray, bias: np.ndarray) -> None:
        w = np.asarray(weights, dtype=np.float64)
        b = np.asarray(bias, dtype=np.float64).reshape(-1)
        if w.ndim != 2 or b.shape != (w.shape[1],):
            raise InputError(
                f"weights must be (features, outputs) and bias (outputs,); got {w.shape} and {b.shape}"
            )
        self.weights = w
        self.bias = b
        self._ctx: Any = None

    def load_context(self, public_context: bytes) -> None:
        """Accept the client's public context (refused if it carries the secret key: the server must not).

        Raises:
            InputError: oversized or malformed context, or one holding a secret key.
        """
        ts = _tenseal()
        try:
            ctx = ts.context_from(_bounded(public_context, MAX_CONTEXT_BYTES, "the public context"))
        except ValueError as err:
            raise InputError(f"not a TenSEAL context: {err}") from err
        if ctx.is_private():
            raise InputError("the context holds the secret key; the client must send only the public part")
        self._ctx = ctx

    def evaluate(self, ciphertexts: list[bytes]) -> list[bytes]:
        """Encrypted scores ``x @ W + b`` for each encrypted row.

        Raises:
            InputError: no context loaded, or a ciphertext that does not parse or has the wrong width.
        """
        ts = _tenseal()
        if self._ctx is None:
            raise InputError("load the client's public context first")
        single = self.weights.shape[1] == 1
        # one output: an inner product (log2(n) rotations); several: a vector-matrix product (n rotations)
        w_list = self.weights[:, 0].tolist() if single else self.weights.tolist()
        b_list = self.bias.tolist()
        out = []
        for i, blob in enumerate(ciphertexts):
            try:
                vec = ts.ckks_vector_from(self._ctx, _bounded(blob, MAX_CIPHERTEXT_BYTES, "a ciphertext"))
            except ValueError as err:
                raise InputError(f"ciphertext {i} does not parse: {err}") from err
            if vec.size() != self.weights.shape[0]:
                raise InputError(
                    f"ciphertext {i} holds {vec.size()} values; the model takes {self.weights.shape[0]}"
                )
            scores = vec.dot(w_list) if single else vec.matmul(w_list)
            out.append((scores + b_list).serialize())
        return out


@dataclass
class EncryptedLinearModel:
    """A linear classifier served on encrypted inputs (see the module docstring for the protocol).

    ``predict_proba`` runs the whole exchange in one process (client encrypts, server computes,
    client decrypts and applies the sigmoid or softmax), for evaluation; a deployment runs ``client()``
    and ``server()`` on different machines and ships the bytes between them.
    """

    weights: np.ndarray
    """``(n_features, n_outputs)``; scalers already folded in."""
    bias: np.ndarray
    classes: np.ndarray
    poly_modulus_degree: int = DEFAULT_POLY_MODULUS_DEGREE

    @classmethod
    def from_estimator(cls, estimator: Any, **kw: Any) -> EncryptedLinearModel:
        """From a fitted scikit-learn linear classifier or scaler pipeline (see ``linear_parameters``)."""
        w, b, classes = linear_parameters(estimator)
        return cls(weights=w, bias=b, classes=classes, **kw)

    @property
    def n_features(self) -> int:
        """Features per row."""
        return int(self.weights.shape[0])

    def client(self) -> HeClient:
        """A new client with a fresh secret key."""
        return HeClient(poly_modulus_degree=self.poly_modulus_degree)

    def server(self) -> HeServer:
        """The server side holding the model's affine map."""
        return HeServer(self.weights, self.bias)

    def plaintext_scores(self, x: np.ndarray) -> np.ndarray:
        """The same affine map in the clear (the reference encrypted scores are compared with)."""
        arr = check_inputs(np.asarray(x, dtype=np.float32), (self.n_features,))
        out: np.ndarray = arr.astype(np.float64) @ self.weights + self.bias
        return out

    def scores_to_proba(self, scores: np.ndarray) -> np.ndarray:
        """Probabilities from scores, on the client after decryption: sigmoid (binary) or softmax."""
        s = np.asarray(scores, dtype=np.float64)
        if s.shape[1] == 1:
            p1 = 1.0 / (1.0 + np.exp(-np.clip(s[:, 0], -500, 500)))
            return np.stack([1.0 - p1, p1], axis=1)
        z = s - s.max(axis=1, keepdims=True)
        e = np.exp(z)
        out: np.ndarray = e / e.sum(axis=1, keepdims=True)
        return out

    def encrypted_scores(self, x: np.ndarray, *, client: HeClient | None = None) -> np.ndarray:
        """Scores of ``x`` through the encrypted exchange (encrypt, evaluate, decrypt)."""
        arr = check_inputs(np.asarray(x, dtype=np.float32), (self.n_features,))
        cl = client if client is not None else self.client()
        server = self.server()
        server.load_context(cl.public_context())
        return cl.decrypt(server.evaluate(cl.encrypt(arr)), self.weights.shape[1])

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities through the encrypted exchange."""
        return self.scores_to_proba(self.encrypted_scores(x))


def security_bits(poly_modulus_degree: int) -> int:
    """Classical security level of the ring's modulus chain (Homomorphic Encryption Standard, table 1)."""
    bound_128 = {4096: 109, 8192: 218, 16384: 438, 32768: 881}
    total = sum(RING_MODULI.get(poly_modulus_degree, ()))
    return 128 if total and total <= bound_128.get(poly_modulus_degree, -1) else 0
