"""Membership scores (higher = more likely a member), from the target's answers and the references'.

Cheap, reference-free:
- ``loss``: the target's log-likelihood of the true label (Yeom et al. 2018).
- ``confidence``: the target's top probability (Salem et al. 2019).
- ``label_only``: how robust the predicted label is to noise (Choquette-Choo et al. 2021), for models
  that answer labels only (``_label_only.py``).

With K reference models (``_reference.py``):
- ``calibrated``: the loss minus the record's mean loss under the OUT references (difficulty
  calibration, Watson et al. 2022).
- ``lira_offline``: the target's logit-scaled confidence, standardised by its OUT distribution.
- ``lira_online``: the Gaussian likelihood ratio of that confidence under the IN and OUT distributions
  (Carlini et al. 2022). With fewer than ``PER_RECORD_VARIANCE_MIN`` models per side the variance is
  pooled over records (their recommendation for small K).
- ``rmia``: the target's probability of the true label over its mean under all references (Zarifzadeh
  et al. 2024). With the pairwise threshold gamma = 1 their test ranks records exactly as this ratio
  does, so the ratio is reported without the quantisation of counting population records.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "ATTACK_NAMES",
    "REFERENCE_ATTACKS",
    "logit_confidence",
    "reference_scores",
    "threshold_scores",
]

REFERENCE_ATTACKS = ("calibrated", "lira_offline", "lira_online", "rmia")
"""Attacks that need reference models."""
ATTACK_NAMES = ("loss", "confidence", *REFERENCE_ATTACKS, "label_only")
"""Every attack, cheapest first."""
LOG_FLOOR = 1e-12
"""Smallest probability taken to a logarithm: keeps exact zeros and ones (trees, one-hot) finite."""
PER_RECORD_VARIANCE_MIN = 32
"""Models per side (IN or OUT) from which each record gets its own variance instead of a pooled one."""


def _true(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.asarray(p[..., np.arange(p.shape[-2]), y])


def logit_confidence(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``log p_y - log(sum of the other classes)``, stably from the full vector; works on ``(..., n, C)``."""
    py = _true(p, y)
    rest = p.sum(axis=-1) - py
    return np.asarray(np.log(np.maximum(py, LOG_FLOOR)) - np.log(np.maximum(rest, LOG_FLOOR)))


def threshold_scores(p: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """The reference-free scores from the target's probabilities ``(n, C)``."""
    return {
        "loss": np.log(np.maximum(_true(p, y), LOG_FLOOR)),
        "confidence": p.max(axis=1),
    }


def _side_stats(phi: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-record mean and standard deviation of ``phi`` ``(K, n)`` over the models where ``mask``."""
    count = mask.sum(axis=0)
    mean = np.where(mask, phi, 0.0).sum(axis=0) / np.maximum(count, 1)
    var = np.where(mask, (phi - mean) ** 2, 0.0).sum(axis=0) / np.maximum(count - 1, 1)
    if int(count.min()) < PER_RECORD_VARIANCE_MIN:
        var = np.full_like(var, float(np.mean(var)))
    return mean, np.sqrt(np.maximum(var, 1e-6))


def reference_scores(
    p: np.ndarray, ref: np.ndarray, inside: np.ndarray, y: np.ndarray
) -> dict[str, np.ndarray]:
    """Scores of the reference attacks.

    Args:
        p: the target's probabilities on the records, ``(n, C)``.
        ref: the references' probabilities on the same records, ``(K, n, C)``.
        inside: ``(K, n)`` bool, True where record ``i`` trained reference ``k``.
        y: the records' class indices.
    """
    out_mask = ~inside
    loss_t = np.log(np.maximum(_true(p, y), LOG_FLOOR))
    loss_r = np.log(np.maximum(_true(ref, y), LOG_FLOOR))
    out_mean_loss = np.where(out_mask, loss_r, 0.0).sum(axis=0) / np.maximum(out_mask.sum(axis=0), 1)
    phi_t = logit_confidence(p, y)
    phi_r = logit_confidence(ref, y)
    mu_out, sd_out = _side_stats(phi_r, out_mask)
    mu_in, sd_in = _side_stats(phi_r, inside)
    z_out = (phi_t - mu_out) / sd_out
    z_in = (phi_t - mu_in) / sd_in
    online = -0.5 * z_in**2 - np.log(sd_in) + 0.5 * z_out**2 + np.log(sd_out)
    p_mean = np.mean(np.maximum(_true(ref, y), LOG_FLOOR), axis=0)
    return {
        "calibrated": loss_t - out_mean_loss,
        "lira_offline": z_out,
        "lira_online": online,
        "rmia": loss_t - np.log(p_mean),
    }
