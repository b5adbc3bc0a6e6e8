"""Output hardening: what a caller sees of the model's answer, and what that costs in utility.

The guard never returns more than the policy allows (``OutputPolicy``, per model):

- ``probabilities``: every class probability (optionally rounded to ``decimals``), plus the label;
- ``top_k``: the ``top_k`` most likely classes and their probabilities (rounded likewise), plus the label;
- ``label``: the predicted class only.

Fewer and coarser numbers per answer make model extraction and membership inference need more queries
(confidence masking); they do not stop an attacker who can afford enough label-only queries, which is
what rate limits, budgets and the extraction detectors are for.

``utility_cost`` measures the price on labelled test data (``mlsecops serve --dry-run``): accuracy and
top-1 agreement with the full model, the log-loss a caller can reach from the hardened answer, the
information removed (mean KL divergence, in bits, from the model's distribution to the best guess a
caller can rebuild from the answer) and the most information one answer can carry (bits).

The transformations themselves are pure functions in ``mlsecops.models.outputs`` (shared with the
privacy audit's evaluation of output defences); this module applies the guard's policy and prices it.
"""

from __future__ import annotations

import dataclasses
import math
import secrets
import threading
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mlsecops.core.errors import InputError
from mlsecops.models.interface import ModelAdapter
from mlsecops.models.outputs import PROB_FLOOR, HardenedOutput, harden_proba, perturb, rebuild
from mlsecops.runtime.policy import OutputPolicy

__all__ = [
    "HardenedOutput",
    "UtilityCost",
    "answer_bits",
    "harden",
    "output_names",
    "output_tensors",
    "price",
    "rebuild",
    "utility_cost",
]

FLOAT64_BITS = 52
"""Mantissa bits of an unrounded float64 probability: what one full-precision value can carry."""


_rng_lock = threading.Lock()
_rng: np.random.Generator | None = None


def _noise_rng() -> np.random.Generator:
    """The process's generator for output noise, seeded from the OS (never predictable from outside)."""
    global _rng
    if _rng is None:
        _rng = np.random.default_rng(secrets.randbits(128))
    return _rng


def harden(proba: np.ndarray, policy: OutputPolicy) -> HardenedOutput:
    """Apply ``policy`` to class probabilities ``(n, n_classes)`` (``models.outputs.harden_proba``).

    The label is the argmax of the full probabilities (rounding and noise never change the predicted
    class); with ``policy.noise`` the confidences shown are ``models.outputs.perturb``'s.
    """
    if policy.noise is None or policy.mode == "label":
        return harden_proba(proba, mode=policy.mode, top_k=policy.top_k, decimals=policy.decimals)
    with _rng_lock:  # a Generator is not thread-safe; requests answer in several threads
        noisy = perturb(proba, policy.noise, _noise_rng())
    out = harden_proba(noisy, mode=policy.mode, top_k=policy.top_k, decimals=policy.decimals)
    label = np.argmax(proba, axis=1).astype(np.int64) if proba.shape[0] else out.label
    return dataclasses.replace(out, label=label)


def output_tensors(out: HardenedOutput) -> dict[str, tuple[np.ndarray, str]]:
    """The answer's tensors by name, with their protocol datatype."""
    tensors: dict[str, tuple[np.ndarray, str]] = {}
    if out.probabilities is not None:
        tensors["probabilities"] = (out.probabilities, "FP64")
    if out.top_classes is not None and out.top_probabilities is not None:
        tensors["top_k_classes"] = (out.top_classes, "INT64")
        tensors["top_k_probabilities"] = (out.top_probabilities, "FP64")
    tensors["label"] = (out.label, "INT64")
    return tensors


def output_names(policy: OutputPolicy) -> tuple[str, ...]:
    """Names of the tensors an answer under ``policy`` carries (for model metadata)."""
    if policy.mode == "label":
        return ("label",)
    if policy.mode == "top_k":
        return ("top_k_classes", "top_k_probabilities", "label")
    return ("probabilities", "label")


def answer_bits(policy: OutputPolicy, n_classes: int) -> float:
    """The most information one answer can carry, in bits (the output channel's capacity per query).

    Full probabilities: ``n_classes - 1`` free values of :data:`FLOAT64_BITS` bits (or ``log2(10^d + 1)``
    rounded to ``d`` decimals); top-k: which k classes in order plus their values; label: ``log2(n_classes)``.
    """
    per_value = FLOAT64_BITS if policy.decimals is None else math.log2(10**policy.decimals + 1)
    if policy.mode == "label":
        return math.log2(n_classes)
    if policy.mode == "top_k":
        k = min(policy.top_k, n_classes)
        which = sum(math.log2(n_classes - i) for i in range(k))
        return which + k * per_value
    return (n_classes - 1) * per_value


@dataclass(frozen=True)
class UtilityCost:
    """What output hardening costs on labelled test data (before = the model's full answer)."""

    rows: int
    mode: str
    accuracy_before: float
    accuracy_after: float
    top1_agreement: float
    log_loss_before: float
    log_loss_after: float
    information_removed_bits: float
    answer_bits_before: float
    answer_bits_after: float

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def _kl_bits(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """KL(p || q) per row, in bits."""
    logp = np.log2(np.maximum(p, 1e-300))
    return np.asarray(np.sum(np.where(p > 0, p * (logp - np.log2(q)), 0.0), axis=1))


def _log_loss(p: np.ndarray, y: np.ndarray) -> float:
    picked = np.clip(p[np.arange(len(y)), y], PROB_FLOOR, 1.0)
    return float(-np.mean(np.log(picked)))


def utility_cost(model: ModelAdapter, x: np.ndarray, y: np.ndarray, policy: OutputPolicy) -> UtilityCost:
    """Accuracy, agreement, log-loss and information before and after ``policy`` on test data.

    Args:
        model: the served model.
        x: the test rows.
        y: the true class indices, ``(n,)``.
        policy: the output hardening to price.

    Raises:
        InputError: no rows, rows the model does not take, or labels that do not match.
    """
    return price(model.predict_proba(x), np.asarray(y), policy)


def price(proba: np.ndarray, y: np.ndarray, policy: OutputPolicy) -> UtilityCost:
    """``utility_cost`` from the model's probabilities ``(n, n_classes)`` on the test rows."""
    n, k = proba.shape
    if n == 0:
        raise InputError("the test data has no rows; the utility cost needs labelled rows")
    if y.shape != (n,) or (y.size and (int(y.min()) < 0 or int(y.max()) >= k)):
        raise InputError(f"test labels must be {n} class indices in [0, {k - 1}]")
    full = np.maximum(np.asarray(proba, dtype=np.float64), 0.0)
    out = harden(full, policy)
    after = rebuild(out, k)
    before_label = np.argmax(full, axis=1)
    seen_label = np.argmax(after, axis=1)
    baseline = rebuild(harden(full, OutputPolicy()), k)  # the full answer under the same floor
    kl = _kl_bits(full, after) - _kl_bits(full, baseline)
    return UtilityCost(
        rows=n,
        mode=_describe(policy),
        accuracy_before=float(np.mean(before_label == y)),
        accuracy_after=float(np.mean(out.label == y)),
        top1_agreement=float(np.mean(seen_label == before_label)),
        log_loss_before=_log_loss(full, y),
        log_loss_after=_log_loss(after, y),
        information_removed_bits=float(np.mean(np.maximum(kl, 0.0))),
        answer_bits_before=answer_bits(OutputPolicy(), k),
        answer_bits_after=answer_bits(policy, k),
    )


def _describe(policy: OutputPolicy) -> str:
    parts = [] if policy.decimals is None else [f"rounded to {policy.decimals}"]
    if policy.noise is not None and policy.mode != "label":
        parts.append(f"Laplace noise {policy.noise:g}")
    return policy.mode + (f" ({', '.join(parts)})" if parts else "")
