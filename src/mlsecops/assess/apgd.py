"""An adaptive-step PGD in the spirit of APGD (Croce and Hein 2020, the core of AutoAttack).

No step size to tune: each example starts with a step of ``2 eps`` and halves it at checkpoints when
progress stalls (too few loss increases since the last checkpoint, or no new best loss at the same step
size), restarting from its best point. Steps use momentum (0.75). One run maximises cross-entropy and a
second the scale-free DLR loss, which defeats models whose cross-entropy gradients vanish or mislead.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, cast

from mlsecops.assess._evasion import EarlyStop, loss_grad, per_row
from mlsecops.assess.attack import Attack, BatchOutcome, register_attack
from mlsecops.assess.constraints import Norm
from mlsecops.assess.whitebox import gradient_step, random_start
from mlsecops.models.interface import ModelAdapter, TorchNative

if TYPE_CHECKING:
    import torch

__all__ = ["ApgdAttack", "checkpoints"]

_RHO = 0.75
_ALPHA = 0.75


def checkpoints(n_iter: int) -> list[int]:
    """Iterations at which the step size may be halved: ``p0=0, p1=0.22, p_{j+1} = p_j +
    max(p_j - p_{j-1} - 0.03, 0.06)``, scaled to ``n_iter``.
    """
    ps = [0.0, 0.22]
    while ps[-1] < 1:
        ps.append(ps[-1] + max(ps[-1] - ps[-2] - 0.03, 0.06))
    return sorted({math.ceil(p * n_iter) for p in ps if 0 < p < 1})


@register_attack
class ApgdAttack(Attack):
    """Adaptive-step projected gradient attack with momentum and checkpoints.

    Args:
        norm: ``linf`` or ``l2``.
        steps: iterations per run.
        restarts: random restarts per loss.
        losses: losses to run one after the other (each only on examples not yet fooled).
        batch_size: examples attacked together (``None``: from the input size).
    """

    name = "apgd"

    def __init__(
        self,
        *,
        norm: str = "linf",
        steps: int = 100,
        restarts: int = 1,
        losses: tuple[str, ...] | list[str] = ("ce", "dlr"),
        batch_size: int | None = None,
    ) -> None:
        super().__init__(norm=norm, batch_size=batch_size)
        self.steps = steps
        self.restarts = restarts
        self.losses = tuple(losses)

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
        native = cast("TorchNative", model)
        record = EarlyStop(x0)
        for loss in self.losses:
            for _ in range(max(1, int(self.restarts))):
                idx = record.standing()
                if len(idx) == 0:
                    return record.outcome()
                adv, hit, q = self._run(native, x0[idx], y[idx], eps, norm, proj.subset(idx), gen, loss)
                record.keep(idx, adv, hit, q)
        return record.outcome()

    def _run(
        self,
        model: TorchNative,
        x0: torch.Tensor,
        y: torch.Tensor,
        eps: float,
        norm: Norm,
        proj: Any,
        gen: torch.Generator,
        loss: str,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        import torch

        n_iter = max(1, int(self.steps))
        marks = set(checkpoints(n_iter))
        n = len(x0)
        dev = x0.device
        out = x0.clone()
        hit = torch.zeros(n, dtype=torch.bool, device=dev)
        queries = torch.zeros(n, dtype=torch.long)

        def evaluate(x: torch.Tensor, yy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            values, g, logits = loss_grad(model, x, yy, loss)
            return values, g, logits.argmax(dim=1) != yy

        live = torch.arange(n, device=dev)
        x = proj(random_start(x0, eps, norm, gen), eps, norm)
        val, grad, wrong = evaluate(x, y)
        queries += 1
        st: dict[str, torch.Tensor] = {
            "x": x,
            "x_prev": x.clone(),
            "grad": grad,
            "val": val,
            "x_best": x.clone(),
            "g_best": grad.clone(),
            "v_best": val.clone(),
            "eta": torch.full((n,), 2.0 * eps, device=dev),
            "eta_ck": torch.full((n,), 2.0 * eps, device=dev),
            "v_ck": val.clone(),
            "succ": torch.zeros(n, device=dev),
            "y": y,
        }
        last_mark = 0
        for k in range(n_iter):
            if wrong.any():
                out[live[wrong]] = st["x"][wrong]
                hit[live[wrong]] = True
                keep = ~wrong
                if not keep.any():
                    return out, hit, queries
                st = {key: v[keep] for key, v in st.items()}
                live = live[keep]
                proj = proj.subset(keep.nonzero().flatten())
            x, x_prev = st["x"], st["x_prev"]
            z = proj(gradient_step(x, st["grad"], st["eta"], norm), eps, norm)
            a = 1.0 if k == 0 else _ALPHA
            x_new = proj(x + a * (z - x) + (1 - a) * (x - x_prev), eps, norm)
            val, grad, wrong = evaluate(x_new, st["y"])
            queries[live.cpu()] += 1
            st["succ"] += (val > st["val"]).float()
            better = val > st["v_best"]
            st["x_best"] = torch.where(per_row(better, x_new), x_new, st["x_best"])
            st["g_best"] = torch.where(per_row(better, grad), grad, st["g_best"])
            st["v_best"] = torch.where(better, val, st["v_best"])
            st["x_prev"], st["x"], st["grad"], st["val"] = x, x_new, grad, val
            if k + 1 in marks:
                span = k + 1 - last_mark
                cond1 = st["succ"] < _RHO * span
                cond2 = (st["eta_ck"] == st["eta"]) & (st["v_ck"] >= st["v_best"])
                halve = (cond1 | cond2) & ~wrong
                st["eta"] = torch.where(halve, st["eta"] / 2, st["eta"])
                st["x"] = torch.where(per_row(halve, x_new), st["x_best"], st["x"])
                st["grad"] = torch.where(per_row(halve, grad), st["g_best"], st["grad"])
                st["succ"] = torch.zeros_like(st["succ"])
                st["eta_ck"], st["v_ck"] = st["eta"].clone(), st["v_best"].clone()
                last_mark = k + 1
        if wrong.any():
            out[live[wrong]] = st["x"][wrong]
            hit[live[wrong]] = True
        rest = ~wrong
        out[live[rest]] = st["x_best"][rest]
        return out, hit, queries
