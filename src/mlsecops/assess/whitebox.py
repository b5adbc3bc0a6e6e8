"""Gradient attacks in torch: FGSM and PGD (L-inf and L2, random restarts).

PGD keeps, per example, the first iterate that fools the model and stops attacking it; examples still
standing keep being attacked through every step of every restart. Every iterate is projected onto the
eps ball and the feature constraints, so any iterate is a valid adversarial input.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlsecops.assess._losses import attack_loss
from mlsecops.assess.attack import Attack, register_attack
from mlsecops.assess.constraints import Norm
from mlsecops.models.interface import ModelAdapter, TorchNative

if TYPE_CHECKING:
    import torch

__all__ = ["FgsmAttack", "PgdAttack", "gradient_step", "random_start"]


def gradient_step(
    x: torch.Tensor, grad: torch.Tensor, step: float | torch.Tensor, norm: Norm
) -> torch.Tensor:
    """One ascent step: the sign of the gradient (L-inf) or its unit direction (L2), times ``step``."""
    import torch

    shape = (-1, *([1] * (grad.ndim - 1)))
    s = step.view(shape) if isinstance(step, torch.Tensor) else step
    if norm == "linf":
        out: torch.Tensor = x + s * grad.sign()
    else:
        out = x + s * grad / grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(shape)
    return out


def random_start(x0: torch.Tensor, eps: float, norm: Norm, gen: torch.Generator) -> torch.Tensor:
    """A uniform random point of the eps ball around each original (before projection on the bounds)."""
    import torch

    if norm == "linf":
        noise = torch.rand(x0.shape, generator=gen) * 2 - 1
        return x0 + eps * noise.to(x0.device)
    d = x0[0].numel()
    direction = torch.randn(x0.shape, generator=gen)
    direction = direction / direction.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (x0.ndim - 1)))
    radius = torch.rand(len(x0), generator=gen) ** (1.0 / d)
    out: torch.Tensor = x0 + (eps * radius.view(-1, *([1] * (x0.ndim - 1))) * direction).to(x0.device)
    return out


def _loss_grad(
    model: TorchNative, x: torch.Tensor, y: torch.Tensor, loss: str
) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    x = x.detach().requires_grad_(True)
    logits = model.logits(x)
    values = attack_loss(loss, logits, y)
    (grad,) = torch.autograd.grad(values.sum(), x)
    return grad.detach(), logits.detach()


@register_attack
class FgsmAttack(Attack):
    """Fast gradient sign method (Goodfellow et al. 2015): one step of size eps; L2 steps along the
    normalised gradient.

    Args:
        norm: ``linf`` or ``l2``.
        loss: ``ce`` (default) or ``margin``.
        batch_size: examples attacked together.
    """

    name = "fgsm"

    def __init__(self, *, norm: str = "linf", loss: str = "ce", batch_size: int = 256) -> None:
        super().__init__(norm=norm, batch_size=batch_size)
        self.loss = loss

    def _attack_batch(
        self,
        model: ModelAdapter,
        x0: torch.Tensor,
        y: torch.Tensor,
        eps: float,
        norm: Norm,
        proj: Any,
        gen: Any,
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
        import torch

        assert isinstance(model, TorchNative)
        grad, _ = _loss_grad(model, x0, y, self.loss)
        x_adv = proj(gradient_step(x0, grad, eps, norm), eps, norm)
        return x_adv, torch.ones(len(x0), dtype=torch.long), {}


@register_attack
class PgdAttack(Attack):
    """Projected gradient descent (Madry et al. 2018) with random restarts and early stopping per example.

    Args:
        norm: ``linf`` or ``l2``.
        steps: iterations per restart.
        restarts: random restarts (each starts at a random point of the ball); ``restarts=1`` with
            ``random_init=False`` is the classic deterministic PGD from the original point.
        step_size: absolute step, or ``None`` for ``rel_step * eps``.
        rel_step: step as a fraction of eps when ``step_size`` is ``None`` (default 2.5 / steps).
        random_init: start each restart at a random point of the ball.
        loss: ``ce`` (default), ``margin`` or ``dlr``.
        batch_size: examples attacked together.
    """

    name = "pgd"

    def __init__(
        self,
        *,
        norm: str = "linf",
        steps: int = 50,
        restarts: int = 3,
        step_size: float | None = None,
        rel_step: float | None = None,
        random_init: bool = True,
        loss: str = "ce",
        batch_size: int = 256,
    ) -> None:
        super().__init__(norm=norm, batch_size=batch_size)
        self.steps = steps
        self.restarts = restarts
        self.step_size = step_size
        self.rel_step = rel_step
        self.random_init = random_init
        self.loss = loss

    def _attack_batch(
        self,
        model: ModelAdapter,
        x0: torch.Tensor,
        y: torch.Tensor,
        eps: float,
        norm: Norm,
        proj: Any,
        gen: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
        import torch

        assert isinstance(model, TorchNative)
        steps = max(1, int(self.steps))
        step = self.step_size if self.step_size is not None else eps * (self.rel_step or 2.5 / steps)
        best = x0.clone()
        fooled = torch.zeros(len(x0), dtype=torch.bool, device=x0.device)
        queries = torch.zeros(len(x0), dtype=torch.long)
        for _restart in range(max(1, int(self.restarts)) if self.random_init else 1):
            idx = (~fooled).nonzero().flatten()
            if len(idx) == 0:
                break
            sub = proj.subset(idx)
            start = x0[idx]
            if self.random_init:
                start = random_start(start, eps, norm, gen)
            x = sub(start, eps, norm)
            yb = y[idx]
            live = torch.arange(len(idx), device=x0.device)
            for _ in range(steps):
                grad, logits = _loss_grad(model, x, yb, self.loss)
                queries[idx[live].cpu()] += 1
                done = logits.argmax(dim=1) != yb
                if done.any():
                    best[idx[live[done]]] = x[done]
                    fooled[idx[live[done]]] = True
                keep = ~done
                if not keep.any():
                    break
                x, grad, yb, live = x[keep], grad[keep], yb[keep], live[keep]
                x = sub.subset(live)(gradient_step(x, grad, step, norm), eps, norm)
            else:
                if len(live):
                    with torch.no_grad():
                        hit = model.logits(x).argmax(dim=1) != yb
                    queries[idx[live].cpu()] += 1
                    best[idx[live]] = x
                    fooled[idx[live[hit]]] = True
        return best, queries, {}
