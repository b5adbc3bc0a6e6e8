"""HopSkipJump (Chen, Jordan and Wainwright 2020): a decision-based black-box attack, L2 and L-inf.

Needs only the predicted label. Finds a misclassified starting point (uniform noise inside the feature
bounds), then repeats: bisect to the decision boundary between the original and the adversarial point,
estimate the boundary's normal from the labels of random probes around it (with the mean as a
baseline), and step along that estimate with a geometrically shrinking step that must stay
adversarial. The distance to the original shrinks with every round.

Success at a budget means an adversarial point within ``eps``; with ``stop_at_eps`` (the default) an
example stops once it gets there, which is what a robust-accuracy evaluation needs and saves queries.
Queries are counted per example (every probe is one query) and stay within ``max_queries``: a round
starts only where it fits in the remaining budget. Vectorised over the batch in torch.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from mlsecops.assess.attack import Attack, BatchOutcome, register_attack, score_function
from mlsecops.assess.constraints import Norm
from mlsecops.models.interface import ModelAdapter

if TYPE_CHECKING:
    import torch

__all__ = ["HopSkipJumpAttack"]

_BISECTION_STEPS = 10
_STEP_HALVINGS = 8


@register_attack
class HopSkipJumpAttack(Attack):
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
    white_box = False

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

    def _attack_batch(
        self,
        model: ModelAdapter,
        x0: torch.Tensor,
        y: torch.Tensor,
        eps: float,
        norm: Norm,
        proj: Any,
        gen: torch.Generator,
    ) -> BatchOutcome:
        import torch

        scores = score_function(model)
        n, d = len(x0), int(x0[0].numel())
        dev = x0.device
        queries = torch.zeros(n, dtype=torch.long)
        budget = int(self.max_queries)

        def adv(x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
            # index_add_, not ``+=``: probes repeat a row, and every probe is one query
            queries.index_add_(0, rows.cpu(), torch.ones(len(rows), dtype=torch.long))
            return scores(x).argmax(dim=1) != y[rows]

        def dist(a: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
            diff = (a - x0[rows]).flatten(1)
            return diff.abs().max(dim=1).values if norm == "linf" else diff.norm(dim=1)

        # 1. a misclassified starting point: uniform noise inside the bounds
        x_adv = x0.clone()
        found = torch.zeros(n, dtype=torch.bool, device=dev)
        for _ in range(max(1, min(int(self.init_tries), budget - _BISECTION_STEPS - 1))):
            rows = (~found).nonzero().flatten()
            if len(rows) == 0:
                break
            noise = torch.rand(x0[rows].shape, generator=gen).to(dev)
            cand = proj.subset(rows).clip(proj.lo + (proj.hi - proj.lo) * noise)
            ok = adv(cand, rows)
            x_adv[rows[ok]] = cand[ok]
            found[rows[ok]] = True
        rows = found.nonzero().flatten()
        if len(rows) == 0:
            return BatchOutcome(x_adv, queries, {"distance": torch.full((n,), float("inf"))})
        x_adv[rows] = self._bisect(x0, x_adv, rows, proj, norm, adv)
        cur = torch.full((n,), float("inf"), device=dev)
        cur[rows] = dist(x_adv[rows], rows)
        best = x_adv.clone()  # the closest adversarial point found so far, per example
        theta = 1.0 / (d * math.sqrt(d)) if norm == "l2" else 1.0 / (d * d)
        span = float((proj.hi - proj.lo).max())
        for t in range(1, int(self.max_iter) + 1):
            n_evals = min(int(self.init_evals * math.sqrt(t)), int(self.max_evals))
            # a round costs at most n_evals probes + the step search + the bisection: start it only
            # where the whole round fits in the example's remaining budget
            round_cost = n_evals + _STEP_HALVINGS + _BISECTION_STEPS
            live = found & (queries.to(dev) + round_cost <= budget)
            if self.stop_at_eps:
                live &= cur > eps
            rows = live.nonzero().flatten()
            if len(rows) == 0:
                break
            # 2. estimate the boundary normal at x_adv from the labels of random probes
            delta = (
                (math.sqrt(d) * theta * cur[rows])
                if t > 1
                else torch.full((len(rows),), 0.1 * span, device=dev)
            )
            if norm == "l2":
                u = torch.randn((len(rows), n_evals, d), generator=gen).to(dev)
            else:
                u = (torch.rand((len(rows), n_evals, d), generator=gen) * 2 - 1).to(dev)
            u = u / u.norm(dim=2, keepdim=True).clamp_min(1e-12)
            base = x_adv[rows].flatten(1)
            probes = base[:, None, :] + delta[:, None, None] * u
            lo, hi = proj.lo.flatten()[None, None, :], proj.hi.flatten()[None, None, :]
            probes = torch.maximum(torch.minimum(probes, hi), lo)
            u = (probes - base[:, None, :]) / delta[:, None, None].clamp_min(1e-12)
            flat_rows = rows.repeat_interleave(n_evals)
            phi = (
                adv(probes.reshape(-1, *x0.shape[1:]), flat_rows).float().reshape(len(rows), n_evals) * 2 - 1
            )
            mean = phi.mean(dim=1, keepdim=True)
            centred = torch.where((mean.abs() < 1).expand_as(phi), phi - mean, phi)
            grad = (centred[:, :, None] * u).mean(dim=1)
            if norm == "l2":
                direction = grad / grad.norm(dim=1, keepdim=True).clamp_min(1e-12)
            else:
                direction = grad.sign()
            direction = direction.reshape(x0[rows].shape)
            # 3. geometric step search: halve until the step stays adversarial
            step = cur[rows] / math.sqrt(t)
            moved = x_adv[rows].clone()
            pending = torch.ones(len(rows), dtype=torch.bool, device=dev)
            sub = proj.subset(rows)
            for _ in range(_STEP_HALVINGS):
                idx = pending.nonzero().flatten()
                if len(idx) == 0:
                    break
                shape = (-1, *([1] * (x0.ndim - 1)))
                cand = sub.subset(idx).clip(x_adv[rows[idx]] + step[idx].view(shape) * direction[idx])
                ok = adv(cand, rows[idx])
                moved[idx[ok]] = cand[ok]
                pending[idx[ok]] = False
                step[idx[~ok]] /= 2
            # 4. back to the boundary
            x_adv[rows] = self._bisect(x0, moved_into(x_adv, rows, moved), rows, proj, norm, adv)
            new = dist(x_adv[rows], rows)
            closer = new < cur[rows]
            best[rows[closer]] = x_adv[rows[closer]]
            cur[rows] = torch.where(closer, new, cur[rows])
        # the final point within the budget: the adversarial point itself when it is close enough,
        # otherwise its projection on the eps ball (reported as not fooled unless it still is)
        out = proj(best, eps, norm)
        return BatchOutcome(out, queries, {"distance": cur.cpu()})

    @staticmethod
    def _bisect(
        x0: torch.Tensor, x_adv: torch.Tensor, rows: torch.Tensor, proj: Any, norm: Norm, adv: Any
    ) -> torch.Tensor:
        """Move each adversarial point toward its original, to just outside the decision boundary."""
        import torch

        base, far = x0[rows], x_adv[rows]
        sub = proj.subset(rows)
        if norm == "linf":
            high = (far - base).flatten(1).abs().max(dim=1).values
        else:
            high = torch.ones(len(rows), device=x0.device)
        low = torch.zeros_like(high)

        def point(r: torch.Tensor) -> torch.Tensor:
            shape = (-1, *([1] * (x0.ndim - 1)))
            if norm == "linf":
                out: torch.Tensor = sub.clip(
                    torch.maximum(torch.minimum(far, base + r.view(shape)), base - r.view(shape))
                )
            else:
                out = sub.clip(base + r.view(shape) * (far - base))
            return out

        for _ in range(_BISECTION_STEPS):
            mid = (low + high) / 2
            ok = adv(point(mid), rows)
            high = torch.where(ok, mid, high)
            low = torch.where(ok, low, mid)
        return point(high)


def moved_into(x_adv: torch.Tensor, rows: torch.Tensor, moved: torch.Tensor) -> torch.Tensor:
    """A copy of ``x_adv`` with ``rows`` replaced by ``moved``."""
    out = x_adv.clone()
    out[rows] = moved
    return out
