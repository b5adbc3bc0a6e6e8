"""Square attack (Andriushchenko et al. 2020): a score-based black-box attack under L-inf.

Needs only class probabilities. Starts from vertical stripes of +-eps, then repeatedly proposes to
redraw one random square window (all channels, values +-eps) and keeps the proposal when it lowers the
margin ``log p_true - max_other log p``; the window shrinks on a fixed schedule. Each proposal costs one
query per example still standing; an example stops as soon as it is misclassified. Vectorised over the
batch in numpy (no torch needed); with a PyTorch model the logits are used without gradients.

Inputs of shape ``(C, H, W)`` use square windows; ``(H, W)`` one channel; flat rows ``(d,)`` are
treated as one row of ``d`` features with windows of consecutive features.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mlsecops.assess._losses import margin_np
from mlsecops.assess.attack import BlackBoxAttack, NumpyOutcome, numpy_score_function, register_attack
from mlsecops.assess.constraints import Norm
from mlsecops.models.interface import ModelAdapter

__all__ = ["SquareAttack", "square_fraction"]

# (fraction of the query budget after which, divisor of p_init): the published schedule for 10,000 queries.
_SCHEDULE = (
    (0.001, 1),
    (0.005, 2),
    (0.02, 4),
    (0.05, 8),
    (0.1, 16),
    (0.2, 32),
    (0.4, 64),
    (0.6, 128),
    (0.8, 256),
)


def square_fraction(p_init: float, it: int, n_iters: int) -> float:
    """Share of the features the window covers at iteration ``it`` of ``n_iters``."""
    frac = it / max(1, n_iters)
    for bound, div in _SCHEDULE:
        if frac <= bound:
            return p_init / div
    return p_init / 512


@register_attack
class SquareAttack(BlackBoxAttack):
    """Score-based random-search attack under L-inf.

    Args:
        norm: ``linf`` (the only norm implemented).
        max_queries: query budget per example.
        p_init: initial share of features a window covers.
        batch_size: examples attacked together.
    """

    name = "square"
    norms = ("linf",)

    def __init__(
        self, *, norm: str = "linf", max_queries: int = 5000, p_init: float = 0.05, batch_size: int = 512
    ) -> None:
        super().__init__(norm=norm, batch_size=batch_size)
        self.max_queries = max_queries
        self.p_init = p_init

    def _attack_batch_np(
        self,
        model: ModelAdapter,
        x0: np.ndarray,
        y: np.ndarray,
        eps: float,
        norm: Norm,
        proj: Any,
        rng: np.random.Generator,
    ) -> NumpyOutcome:
        scores = numpy_score_function(model)
        n = len(x0)
        c, h, w = _grid(tuple(x0.shape[1:]))
        dtype = x0.dtype

        def loss(x: np.ndarray, yy: np.ndarray) -> np.ndarray:
            return -margin_np(np.log(np.maximum(scores(x), 1e-30)), yy)

        stripes = (rng.integers(0, 2, (n, c, 1, w)) * 2 - 1).astype(dtype)
        delta = eps * np.broadcast_to(stripes, (n, c, h, w))
        x_best = proj(x0 + delta.reshape(x0.shape), eps, norm)
        m_best = loss(x_best, y)
        queries = np.ones(n, dtype=np.int64)
        n_iters = max(1, int(self.max_queries) - 1)
        rows, cols = np.arange(h), np.arange(w)
        for it in range(n_iters):
            act = np.flatnonzero(m_best > 0)
            if len(act) == 0:
                break
            p = square_fraction(self.p_init, it, n_iters)
            if h == 1:
                sh, sw = 1, max(1, min(w, round(p * w)))
            else:
                side = max(1, min(h, w, round(math.sqrt(p * h * w))))
                sh = sw = side
            top = rng.integers(0, h - sh + 1, len(act))
            left = rng.integers(0, w - sw + 1, len(act))
            mask_h = (rows[None, :] >= top[:, None]) & (rows[None, :] < top[:, None] + sh)
            mask_w = (cols[None, :] >= left[:, None]) & (cols[None, :] < left[:, None] + sw)
            mask = (mask_h[:, :, None] & mask_w[:, None, :])[:, None, :, :]
            signs = (rng.integers(0, 2, (len(act), c, 1, 1)) * 2 - 1).astype(dtype)
            base = x0[act]
            cur = (x_best[act] - base).reshape(len(act), c, h, w)
            cand_delta = np.where(mask, eps * signs, cur).astype(dtype)
            cand = proj.subset(act)(base + cand_delta.reshape(base.shape), eps, norm)
            m_new = loss(cand, y[act])
            queries[act] += 1
            better = m_new < m_best[act]
            if better.any():
                x_best[act[better]] = cand[better]
                m_best[act[better]] = m_new[better]
        return NumpyOutcome(x_best, queries, {})


def _grid(shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(shape) == 3:
        return shape[0], shape[1], shape[2]
    if len(shape) == 2:
        return 1, shape[0], shape[1]
    return 1, 1, int(math.prod(shape))
