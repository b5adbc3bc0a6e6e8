"""Output hardening as pure functions on class probabilities: what a caller is shown of an answer.

The one implementation behind the guard's output policy (``mlsecops.runtime.hardening``) and the
privacy audit's evaluation of output defences (``mlsecops.assess.privacy``), so the defence that is
measured is the defence that is served. It lives in ``models`` (below both) because it is a function
of a model's output alone.

- ``probabilities``: every class probability (optionally rounded to ``decimals``), plus the label;
- ``top_k``: the ``top_k`` most likely classes and their probabilities (rounded likewise), plus the label;
- ``label``: the predicted class only.

``perturb`` adds noise to the confidences before any of these (the label stays the model's argmax).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["PROB_FLOOR", "HardenedOutput", "OutputMode", "harden_proba", "perturb", "rebuild"]

OutputMode = Literal["probabilities", "top_k", "label"]

PROB_FLOOR = 1e-6
"""Smallest probability a rebuilt distribution gives a class (a hidden class is never impossible to a
caller); keeps log-loss and KL finite for label-only answers."""


@dataclass(frozen=True)
class HardenedOutput:
    """The answer the caller gets, as arrays (encoded to tensors by the guard).

    Attributes:
        label: predicted class index per row, ``(n,)`` int64 (always present).
        probabilities: ``(n, n_classes)`` in ``probabilities`` mode, else None.
        top_classes: ``(n, k)`` int64 in ``top_k`` mode (most likely first), else None.
        top_probabilities: ``(n, k)`` float64 matching ``top_classes``, else None.
    """

    label: np.ndarray
    probabilities: np.ndarray | None = None
    top_classes: np.ndarray | None = None
    top_probabilities: np.ndarray | None = None


def _round(p: np.ndarray, decimals: int | None) -> np.ndarray:
    return p if decimals is None else np.round(p, decimals)


def harden_proba(
    proba: np.ndarray, *, mode: OutputMode = "probabilities", top_k: int = 1, decimals: int | None = None
) -> HardenedOutput:
    """Apply an output policy to class probabilities ``(n, n_classes)``.

    The label is the argmax of the full probabilities (rounding never changes the predicted class).
    """
    label = np.argmax(proba, axis=1).astype(np.int64) if proba.shape[0] else np.zeros(0, np.int64)
    if mode == "label":
        return HardenedOutput(label=label)
    if mode == "top_k":
        k = min(top_k, proba.shape[1])
        # stable sort on the negated values: ties keep the lower class index first, so top-1 is the label
        order = np.argsort(-proba, axis=1, kind="stable")[:, :k].astype(np.int64)
        top = np.take_along_axis(proba, order, axis=1)
        return HardenedOutput(label=label, top_classes=order, top_probabilities=_round(top, decimals))
    return HardenedOutput(label=label, probabilities=_round(proba, decimals))


def perturb(proba: np.ndarray, scale: float, rng: np.random.Generator) -> np.ndarray:
    """Confidences with Laplace noise of ``scale`` added, clipped at zero and renormalised.

    The noise is drawn afresh per answer, so an attacker who can repeat a query averages it away; it
    only hides what one answer shows.
    """
    noisy = np.asarray(proba, dtype=np.float64) + rng.laplace(0.0, scale, size=proba.shape)
    noisy = np.maximum(noisy, 0.0)
    sums = noisy.sum(axis=1, keepdims=True)
    uniform = np.full_like(noisy, 1.0 / max(proba.shape[1], 1))
    return np.asarray(np.where(sums > 0, noisy / np.where(sums > 0, sums, 1.0), uniform))


def rebuild(out: HardenedOutput, n_classes: int) -> np.ndarray:
    """The best distribution a caller can rebuild from a hardened answer.

    Revealed probabilities are kept (renormalised); the mass they leave is spread evenly over the
    hidden classes; label-only answers give the label the mass the others do not take at the floor.
    Every class keeps at least :data:`PROB_FLOOR`.
    """
    n = out.label.shape[0]
    if out.probabilities is not None:
        q = np.asarray(out.probabilities, dtype=np.float64).copy()
    elif out.top_classes is not None and out.top_probabilities is not None:
        k = out.top_classes.shape[1]
        shown = np.clip(np.asarray(out.top_probabilities, dtype=np.float64), 0.0, 1.0)
        rest = np.clip(1.0 - shown.sum(axis=1, keepdims=True), 0.0, 1.0)
        hidden = max(n_classes - k, 1)
        q = np.broadcast_to(rest / hidden, (n, n_classes)).copy()
        np.put_along_axis(q, out.top_classes, shown, axis=1)
    else:
        q = np.zeros((n, n_classes))
        q[np.arange(n), out.label] = 1.0
    q = np.maximum(q, PROB_FLOOR)
    return np.asarray(q / q.sum(axis=1, keepdims=True))
