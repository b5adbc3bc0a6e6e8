"""HopSkipJump (Chen, Jordan and Wainwright 2020): a decision-based black-box attack, L2 and L-inf.

Needs only the predicted label. Finds a misclassified starting point (uniform noise inside the feature
bounds), then repeats: bisect to the decision boundary between the original and the adversarial point,
estimate the boundary's normal from the labels of random probes around it (with the mean as a
baseline), and step along that estimate with a geometrically shrinking step that must stay
adversarial. The distance to the original shrinks with every round.

Success at a budget means an adversarial point within ``eps``; with ``stop_at_eps`` (the default) an
example stops once it gets there, which is what a robust-accuracy evaluation needs and saves queries.
Queries are counted per example (every probe is one query) and stay within ``max_queries``: a round
starts only where it fits in the remaining budget. Vectorised over the batch in numpy (no torch needed).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mlsecops.assess.attack import BlackBoxAttack, NumpyOutcome, numpy_score_function, register_attack
from mlsecops.assess.constraints import Norm
from mlsecops.models.interface import ModelAdapter

__all__ = ["HopSkipJumpAttack"]

_BISECTION_STEPS = 10
_STEP_HALVINGS = 8


@register_attack
class HopSkipJumpAttack(BlackBoxAttack):
    """Decision-based boundary attack.

    Args:
        norm: ``l2`` or ``linf``.
        max_queries: query budget per example.
        max_iter: boundary-walk rounds.
        init_evals: probes for the first gradient estimate (grows with the square root of the round).
        max_evals: cap on probes per estimate.
        init_tries: random draws to find a misclassified starting point.
        stop_at_eps: stop an example as soon as it is fooled within eps.
        batch_size: examples attacked together.
    """

    name = "hopskipjump"

    def __init__(
        self,
        *,
        norm: str = "l2",
        max_queries: int = 5000,
        max_iter: int = 40,
        init_evals: int = 50,
        max_evals: int = 500,
        init_tries: int = 50,
        stop_at_eps: bool = True,
        batch_size: int = 128,
    ) -> None:
        super().__init__(norm=norm, batch_size=batch_size)
        self.max_queries = max_queries
        self.max_iter = max_iter
        self.init_evals = init_evals
        self.max_evals = max_evals
        self.init_tries = init_tries
        self.stop_at_eps = stop_at_eps

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
        n, d = len(x0), int(x0[0].size)
        dtype = x0.dtype
        queries = np.zeros(n, dtype=np.int64)
        budget = int(self.max_queries)

        def adv(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
            # add.at, not ``+=``: probes repeat a row, and every probe is one query
            np.add.at(queries, rows, 1)
            out: np.ndarray = scores(x.astype(dtype, copy=False)).argmax(axis=1) != y[rows]
            return out

        def dist(a: np.ndarray, rows: np.ndarray) -> np.ndarray:
            diff = (a - x0[rows]).reshape(len(rows), -1)
            out: np.ndarray = np.abs(diff).max(axis=1) if norm == "linf" else np.linalg.norm(diff, axis=1)
            return out

        # 1. a misclassified starting point: uniform noise inside the bounds
        x_adv = x0.copy()
        found = np.zeros(n, dtype=bool)
        for _ in range(max(1, min(int(self.init_tries), budget - _BISECTION_STEPS - 1))):
            rows = np.flatnonzero(~found)
            if len(rows) == 0:
                break
            noise = rng.random(x0[rows].shape).astype(dtype)
            cand = proj.subset(rows).clip(proj.lo + (proj.hi - proj.lo) * noise)
            ok = adv(cand, rows)
            x_adv[rows[ok]] = cand[ok]
            found[rows[ok]] = True
        rows = np.flatnonzero(found)
        if len(rows) == 0:
            return NumpyOutcome(x_adv, queries, {"distance": np.full(n, np.inf)})
        x_adv[rows] = self._bisect(x0, x_adv, rows, proj, norm, adv)
        cur = np.full(n, np.inf)
        cur[rows] = dist(x_adv[rows], rows)
        best = x_adv.copy()  # the closest adversarial point found so far, per example
        theta = 1.0 / (d * math.sqrt(d)) if norm == "l2" else 1.0 / (d * d)
        span = float((proj.hi - proj.lo).max())
        lo, hi = proj.lo.reshape(-1)[None, None, :], proj.hi.reshape(-1)[None, None, :]
        shape = (-1, *([1] * (x0.ndim - 1)))
        for t in range(1, int(self.max_iter) + 1):
            n_evals = min(int(self.init_evals * math.sqrt(t)), int(self.max_evals))
            # a round costs at most n_evals probes + the step search + the bisection: start it only
            # where the whole round fits in the example's remaining budget
            round_cost = n_evals + _STEP_HALVINGS + _BISECTION_STEPS
            live = found & (queries + round_cost <= budget)
            if self.stop_at_eps:
                live &= cur > eps
            rows = np.flatnonzero(live)
            if len(rows) == 0:
                break
            # 2. estimate the boundary normal at x_adv from the labels of random probes
            delta = math.sqrt(d) * theta * cur[rows] if t > 1 else np.full(len(rows), 0.1 * span)
            if norm == "l2":
                u = rng.standard_normal((len(rows), n_evals, d))
            else:
                u = rng.random((len(rows), n_evals, d)) * 2 - 1
            u = u / np.maximum(np.linalg.norm(u, axis=2, keepdims=True), 1e-12)
            base = x_adv[rows].reshape(len(rows), -1)
            probes = np.clip(base[:, None, :] + delta[:, None, None] * u, lo, hi)
            u = (probes - base[:, None, :]) / np.maximum(delta[:, None, None], 1e-12)
            flat_rows = np.repeat(rows, n_evals)
            hits = adv(probes.reshape(-1, *x0.shape[1:]), flat_rows)
            phi = hits.astype(np.float64).reshape(len(rows), n_evals) * 2 - 1
            mean = phi.mean(axis=1, keepdims=True)
            centred = np.where(np.abs(mean) < 1, phi - mean, phi)
            grad = (centred[:, :, None] * u).mean(axis=1)
            if norm == "l2":
                direction = grad / np.maximum(np.linalg.norm(grad, axis=1, keepdims=True), 1e-12)
            else:
                direction = np.sign(grad)
            direction = direction.reshape(x0[rows].shape)
            # 3. geometric step search: halve until the step stays adversarial
            step = cur[rows] / math.sqrt(t)
            moved = x_adv[rows].copy()
            pending = np.ones(len(rows), dtype=bool)
            sub = proj.subset(rows)
            for _ in range(_STEP_HALVINGS):
                idx = np.flatnonzero(pending)
                if len(idx) == 0:
                    break
                cand = sub.subset(idx).clip(x_adv[rows[idx]] + step[idx].reshape(shape) * direction[idx])
                ok = adv(cand, rows[idx])
                moved[idx[ok]] = cand[ok]
                pending[idx[ok]] = False
                step[idx[~ok]] /= 2
            # 4. back to the boundary
            x_adv[rows] = self._bisect(x0, moved_into(x_adv, rows, moved), rows, proj, norm, adv)
            new = dist(x_adv[rows], rows)
            closer = new < cur[rows]
            best[rows[closer]] = x_adv[rows[closer]]
            cur[rows] = np.where(closer, new, cur[rows])
        # the final point within the budget: the adversarial point itself when it is close enough,
        # otherwise its projection on the eps ball (reported as not fooled unless it still is)
        out = proj(best, eps, norm)
        return NumpyOutcome(out, queries, {"distance": cur})

    @staticmethod
    def _bisect(
        x0: np.ndarray, x_adv: np.ndarray, rows: np.ndarray, proj: Any, norm: Norm, adv: Any
    ) -> np.ndarray:
        """Move each adversarial point toward its original, to just outside the decision boundary."""
        base, far = x0[rows], x_adv[rows]
        sub = proj.subset(rows)
        if norm == "linf":
            high = np.abs(far - base).reshape(len(rows), -1).max(axis=1).astype(np.float64)
        else:
            high = np.ones(len(rows))
        low = np.zeros_like(high)
        shape = (-1, *([1] * (x0.ndim - 1)))

        def point(r: np.ndarray) -> np.ndarray:
            radius = r.reshape(shape).astype(x0.dtype)
            if norm == "linf":
                out: np.ndarray = sub.clip(np.maximum(np.minimum(far, base + radius), base - radius))
            else:
                out = sub.clip(base + radius * (far - base))
            return out

        for _ in range(_BISECTION_STEPS):
            mid = (low + high) / 2
            ok = adv(point(mid), rows)
            high = np.where(ok, mid, high)
            low = np.where(ok, low, mid)
        return point(high)


def moved_into(x_adv: np.ndarray, rows: np.ndarray, moved: np.ndarray) -> np.ndarray:
    """A copy of ``x_adv`` with ``rows`` replaced by ``moved``."""
    out = x_adv.copy()
    out[rows] = moved
    return out
